import { multiaddr } from '@multiformats/multiaddr'
import type { KuboRPCClient } from 'kubo-rpc-client'
import type { NodeNetwork } from './ipfs-backend.ts'
import { DialPolicy } from './network/address-policy.ts'

/**
 * Kubo on the IPFS network, as pin requests use it: Kubo joins the network
 * itself (its swarm, its routing), so a block it lacks is fetched by asking
 * Kubo for it online. A pin request's origins are dialed with `swarm
 * connect`, under the same dial policy as the embedded node's: public
 * addresses, loopback or private ones only where Kubo's Addresses.Swarm
 * listens itself (not on every interface, 0.0.0.0: the addresses `id`
 * reports then include 127.0.0.1 and the LAN's, which would let any pin
 * request reach them), and the addresses of its Peering config (a Peering
 * peer's id before another address opens nothing; a DNS name is dialed only
 * as Peering names it, since `swarm connect` resolves it in Kubo). `peerId` and
 * `addresses` are Kubo's (KuboBackend.identify); an offline Kubo (no swarm
 * addresses) is not on the network: undefined.
 */
export async function kuboNetwork (client: KuboRPCClient, { peerId, addresses }: { peerId: string, addresses: string[] }): Promise<NodeNetwork | undefined> {
  if (addresses.length === 0) return undefined
  const listen = await client.config.get('Addresses.Swarm').then((value) => Array.isArray(value) ? value.filter((a): a is string => typeof a === 'string') : [], () => [])
  const explicit = await client.config.get('Peering.Peers').then(peeringAddresses, () => [])
  const policy = new DialPolicy({ listen, explicit })
  let peers = 0
  // A signal, not the client's `timeout` option, which kubo-rpc-client 7.1 never applies.
  const countPeers = async (): Promise<void> => { peers = (await client.swarm.peers({ signal: AbortSignal.timeout(5000) })).length }
  await countPeers().catch(() => {})
  return {
    mode: 'public',
    peerId,
    addresses: () => addresses,
    peerCount: () => peers,
    originRefusal: (origin) => policy.originRefusal(origin),
    connect: async (origins, signal) => {
      let connected = 0
      await Promise.all(origins.filter((origin) => policy.originRefusal(origin) === undefined).map(async (origin) => {
        try {
          await client.swarm.connect(multiaddr(origin), { signal: AbortSignal.any([AbortSignal.timeout(10_000), ...(signal === undefined ? [] : [signal])]) })
          connected++
        } catch {
          // An origin that does not answer is one fewer place to fetch from, not an error.
        }
      }))
      await countPeers().catch(() => {})
      return connected
    }
  }
}

/** Kubo's Peering.Peers (`[{ ID, Addrs }]`, or null) as dialable multiaddrs, each ending in its peer's /p2p/ id. */
function peeringAddresses (value: unknown): string[] {
  if (!Array.isArray(value)) return []
  return value.flatMap((peer: { ID?: unknown, Addrs?: unknown } | null) => {
    const { ID: id, Addrs: addrs } = peer ?? {}
    return typeof id === 'string' && Array.isArray(addrs) ? addrs.filter((a): a is string => typeof a === 'string').map((a) => `${a}/p2p/${id}`) : []
  })
}
