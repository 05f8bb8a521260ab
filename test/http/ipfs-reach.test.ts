import { describe, expect, it } from 'vitest'
import { describeReach, ipfsReachOf } from '../../src/http/ipfs-reach.ts'
import type { NodeNetwork } from '../../src/ipfs/ipfs-backend.ts'

const online = { mode: 'public' } as unknown as NodeNetwork

describe('where uploads can be fetched from, as the list of uploads says', () => {
  it('over Kubo: public when Kubo is on the network, this gateway only when it runs offline', () => {
    expect(describeReach(ipfsReachOf({ kind: 'kubo', network: online }), 'https://x/ipfs/').ipfsNetwork).toBe('public')
    expect(describeReach(ipfsReachOf({ kind: 'kubo', network: undefined }), 'https://x/ipfs/').ipfsNetwork).toBe('none')
  })

  it('the embedded node: as IPFS_NETWORK says', () => {
    expect(ipfsReachOf({ kind: 'helia', network: undefined })).toBe('local')
    expect(ipfsReachOf({ kind: 'helia', network: { mode: 'private' } as unknown as NodeNetwork })).toBe('peers')
    expect(ipfsReachOf({ kind: 'helia', network: online })).toBe('network')
  })
})
