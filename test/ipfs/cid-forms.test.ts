import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { rootForms, rootKey } from '../../src/ipfs/cid-forms.ts'

const V0 = 'QmeMryekKxagA1vmMFuKf3RKmq2YAQ31cnHHH5ur6KoCZs'
const V1 = 'bafybeihobjyxa3nnjoldxj55yc6uzqhpwhotlzl374gdxxued4irjlkkvy'

describe('one root, whatever its spelling', () => {
  it('a CIDv0 and its CIDv1 (as Kubo converts them) have one key and the same two forms', () => {
    expect(rootKey(V0)).toBe(V1)
    expect(rootKey(V1)).toBe(V1)
    expect(rootKey(CID.parse(V0))).toBe(V1)
    expect(rootForms(V0)).toEqual([V1, V0])
    expect(rootForms(V1)).toEqual([V1, V0])
  })

  it('a CIDv1 in another base is the same root; a raw or non-sha2-256 root has no CIDv0; text that is not a CID is itself', async () => {
    const base36 = CID.parse(V1).toString((await import('multiformats/bases/base36')).base36)
    expect(rootKey(base36)).toBe(V1)
    expect(rootForms(base36)).toEqual([V1, V0, base36])
    const leaf = CID.createV1(raw.code, await sha256.digest(new Uint8Array([1])))
    expect(rootForms(leaf)).toEqual([leaf.toString()])
    expect(rootKey('not a cid')).toBe('not a cid')
    expect(rootForms('not a cid')).toEqual(['not a cid'])
  })
})
