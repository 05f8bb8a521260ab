import type { IpfsBackend } from '../ipfs/ipfs-backend.ts'

/**
 * Where uploaded content can be fetched from, said on every page (the
 * footer) and in the JSON list of uploads. `local`: this service's gateway
 * only (the embedded node with IPFS_NETWORK=off). `peers`: also the IPFS
 * nodes the embedded node is connected to (IPFS_NETWORK=private), by CID,
 * over Bitswap; announced nowhere. `network`: announced to the IPFS network
 * (IPFS_NETWORK=public, or a Kubo on the network, which joins it itself), so
 * any IPFS node or gateway can find it. A Kubo found offline at start (no
 * swarm addresses: `ipfs daemon --offline`) is `local`.
 */
export type IpfsReach = 'local' | 'peers' | 'network'

export function ipfsReachOf (backend: Pick<IpfsBackend, 'kind' | 'network'>): IpfsReach {
  if (backend.kind === 'kubo') return backend.network === undefined ? 'local' : 'network'
  const mode = backend.network?.mode
  return mode === 'public' ? 'network' : mode === 'private' ? 'peers' : 'local'
}

export interface ReachAnswer {
  /** Always: this service's gateway, `<gateway><cid>/<path>`. */
  gateway: string
  /** `none`, `peers` (the nodes this one is connected to) or `public` (announced: any IPFS node or gateway). */
  ipfsNetwork: 'none' | 'peers' | 'public'
  /** The same, for a person. */
  note: string
}

export function describeReach (reach: IpfsReach, gatewayUrl: string): ReachAnswer {
  switch (reach) {
    case 'network': return { gateway: gatewayUrl, ipfsNetwork: 'public', note: 'on this service\'s gateway, and on the IPFS network: other IPFS nodes and gateways can fetch it by its CID' }
    case 'peers': return { gateway: gatewayUrl, ipfsNetwork: 'peers', note: 'on this service\'s gateway, and from its IPFS node by the IPFS nodes it is connected to; it is not announced to the public IPFS network, so public gateways cannot find it' }
    case 'local': return { gateway: gatewayUrl, ipfsNetwork: 'none', note: 'on this service\'s gateway only: its IPFS node is not on the IPFS network, so other IPFS nodes and public gateways cannot fetch it' }
  }
}
