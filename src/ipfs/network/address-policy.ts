import { isIPv4, isIPv6 } from 'node:net'
import { parseTcpMultiaddr } from './multiaddr-text.ts'

/** Where an IP address leads: this machine, a private network, the internet, or "every interface" (a listen address). */
export type AddressScope = 'loopback' | 'private' | 'public' | 'unspecified'

const v4 = (ip: string): number => ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0)
const inV4 = (ip: number, base: string, bits: number): boolean => bits === 0 || Math.floor(ip / 2 ** (32 - bits)) === Math.floor(v4(base) / 2 ** (32 - bits))

/** IPv4 ranges that are not the public internet: RFC 1918, CGNAT, link-local, "this network", multicast and reserved. */
const V4_PRIVATE: Array<[string, number]> = [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10], ['169.254.0.0', 16], ['0.0.0.0', 8], ['224.0.0.0', 4], ['240.0.0.0', 4], ['192.0.0.0', 24], ['198.18.0.0', 15]]

export function ipScope (ip: string): AddressScope {
  if (isIPv4(ip)) {
    const n = v4(ip)
    if (n === 0) return 'unspecified'
    if (inV4(n, '127.0.0.0', 8)) return 'loopback'
    return V4_PRIVATE.some(([base, bits]) => inV4(n, base, bits)) ? 'private' : 'public'
  }
  if (isIPv6(ip)) {
    const lower = ip.toLowerCase()
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower)?.[1]
    if (mapped !== undefined) return ipScope(mapped)
    if (lower === '::') return 'unspecified'
    if (lower === '::1') return 'loopback'
    // fc00::/7 unique local, fe80::/10 link-local, ff00::/8 multicast.
    if (/^f[cd]/.test(lower) || /^fe[89ab]/.test(lower) || lower.startsWith('ff')) return 'private'
    return 'public'
  }
  return 'public'
}

export interface DialPolicyInit {
  /** Our listen addresses: a peer in the same scope (loopback, private network) may be dialed. */
  listen: readonly string[]
  /** Addresses the operator named (peers, bootstrap): always dialed, whatever their scope. */
  explicit: readonly string[]
}

/**
 * Which addresses this node dials. The public internet, and addresses in the
 * scope it listens in (a node on loopback reaches loopback peers, one on a
 * private network reaches that network); addresses outside those only when
 * the operator named them (IPFS_PEERS, IPFS_BOOTSTRAP) or named the peer.
 * A pin request's `origins` cannot make the node knock on this machine's
 * other ports or on the LAN behind it unless it listens there itself.
 */
export class DialPolicy {
  readonly #scopes = new Set<AddressScope>(['public'])
  readonly #hosts = new Set<string>()
  readonly #peers = new Set<string>()

  constructor (init: DialPolicyInit) {
    for (const text of init.listen) {
      const parsed = parseTcpMultiaddr(text)
      if (typeof parsed === 'string') continue
      const scope = ipScope(parsed.host)
      if (scope !== 'unspecified') this.#scopes.add(scope)
    }
    for (const text of init.explicit) {
      const parsed = parseTcpMultiaddr(text)
      if (typeof parsed === 'string') continue
      this.#hosts.add(`${parsed.host}:${parsed.port ?? ''}`)
      if (parsed.peerId !== undefined) this.#peers.add(parsed.peerId)
    }
  }

  /** Whether a peer id is one the operator named. */
  isExplicitPeer (peerId: string): boolean {
    return this.#peers.has(peerId)
  }

  /**
   * Why `ip`:`port` (of peer `peerId`, when known) is not dialed; undefined
   * when it may be. DNS names are judged once resolved.
   */
  refusal (ip: string, port: number | undefined, peerId?: string): string | undefined {
    if (this.#hosts.has(`${ip}:${port ?? ''}`)) return undefined
    if (peerId !== undefined && this.#peers.has(peerId)) return undefined
    if (!isIPv4(ip) && !isIPv6(ip)) return undefined
    const scope = ipScope(ip)
    if (this.#scopes.has(scope)) return undefined
    return scope === 'unspecified'
      ? 'an unspecified address (0.0.0.0 or ::) is not a peer'
      : `a ${scope} address: this node dials ${scope} addresses only when it listens on one itself (IPFS_LISTEN) or the peer is in IPFS_PEERS`
  }

  /** The same, for an origin of a pin request as its client wrote it. */
  originRefusal (text: string): string | undefined {
    const parsed = parseTcpMultiaddr(text)
    if (typeof parsed === 'string') return parsed
    if (parsed.protocol !== 'ip4' && parsed.protocol !== 'ip6') return undefined
    return this.refusal(parsed.host, parsed.port, parsed.peerId)
  }
}
