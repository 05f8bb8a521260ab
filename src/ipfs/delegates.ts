import type { Logger } from 'pino'
import { delegateAddresses } from './peer-identity.ts'
import type { IpfsBackend } from './ipfs-backend.ts'
import type { KuboBackend } from './kubo-backend.ts'
import { ipScope } from './network/address-policy.ts'
import { parseTcpMultiaddr } from './network/multiaddr-text.ts'

/** At most this many delegates: enough hints for a client, an answer that stays small. */
const MAX_DELEGATES = 8
const KUBO_REFRESH_MS = 5 * 60_000
/** The swarm port docker-compose.yml publishes for Kubo. */
const KUBO_SWARM_PORT = 4001

export interface Delegates {
  /** Kept up to date in place: the Pinning Service API answers with its contents at the time. */
  list: string[]
  close: () => void
}

function replace (list: string[], items: readonly string[]): void {
  const unique = [...new Set(items)].slice(0, MAX_DELEGATES)
  if (unique.length > 0) list.splice(0, list.length, ...unique)
}

/** A multiaddr the Pinning Service API may offer: TCP or QUIC, with a peer id. */
const offerable = (text: string): boolean => text.includes('/p2p/') && (/\/tcp\/\d+\/p2p\//.test(text) || /\/udp\/\d+\/quic-v1\/p2p\//.test(text))

/** Public addresses first, then private ones, loopback last: the order a remote client should try them in. */
function byReach (addresses: readonly string[]): string[] {
  const rank = (text: string): number => {
    const host = text.split('/')[2] ?? ''
    const scope = /^(ip4|ip6)$/.test(text.split('/')[1] ?? '') ? ipScope(host) : 'public'
    return scope === 'public' ? 0 : scope === 'private' ? 1 : 2
  }
  return [...addresses].sort((a, b) => rank(a) - rank(b))
}

/**
 * The Pinning Service API's `delegates`: where the node that holds the pins
 * can be dialed, each ending in /p2p/<its peer id>. The embedded node on the
 * network names the addresses its libp2p node listens on (or announces),
 * and PUBLIC_URL's host on its port when it listens on every interface;
 * off the network, PUBLIC_URL's host on the swarm port with our own stable
 * peer id (the spec wants one at least). Over Kubo, Kubo's own peer id and
 * the addresses it announces (its `id`), with PUBLIC_URL's host on the
 * swarm port docker-compose.yml publishes; refreshed every few minutes.
 */
export async function openDelegates (backend: IpfsBackend, options: { publicUrl: string, ownPeerId: string, listen: readonly string[], logger: Logger }): Promise<Delegates> {
  const list = [...delegateAddresses(options.publicUrl, options.ownPeerId)]
  const network = backend.network
  if (network !== undefined) {
    const wildcard = options.listen.map((text) => parseTcpMultiaddr(text)).find((a) => typeof a !== 'string' && (a.host === '0.0.0.0' || a.host === '::'))
    const publicHost = wildcard !== undefined && typeof wildcard !== 'string' && wildcard.port !== undefined
      ? delegateAddresses(options.publicUrl, network.peerId, wildcard.port)
      : []
    const update = (): void => { replace(list, [...publicHost, ...byReach(network.addresses().filter(offerable))]) }
    update()
    const timer = setInterval(update, 60_000)
    timer.unref()
    return { list, close: () => { clearInterval(timer) } }
  }
  if (backend.kind !== 'kubo') return { list, close: () => {} }
  const kubo = backend as unknown as KuboBackend
  const refresh = async (): Promise<void> => {
    try {
      const { peerId, addresses } = await kubo.identify()
      replace(list, [...delegateAddresses(options.publicUrl, peerId, KUBO_SWARM_PORT), ...byReach(addresses.filter(offerable))])
    } catch (err) {
      options.logger.warn({ err }, 'could not ask Kubo for its peer id and addresses; the Pinning Service API names the last ones known')
    }
  }
  await refresh()
  const timer = setInterval(() => { void refresh() }, KUBO_REFRESH_MS)
  timer.unref()
  return { list, close: () => { clearInterval(timer) } }
}
