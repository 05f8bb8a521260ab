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
  const groups = isIPv6(ip) ? v6Groups(ip) : undefined
  if (groups !== undefined) {
    const [g0 = 0, g1 = 0, g2 = 0, , , g5 = 0, g6 = 0, g7 = 0] = groups
    const zeros = (n: number): boolean => groups.slice(0, n).every((g) => g === 0)
    const embedded = (hi: number, lo: number): string => [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.')
    // An IPv4 address written as IPv6, in any of its spellings (::ffff:7f00:1 is 127.0.0.1): judged as that address.
    // IPv4-mapped ::ffff:0:0/96, IPv4-translated ::ffff:0:0:0/96, IPv4-compatible ::/96, NAT64 64:ff9b::/96 and 6to4 2002::/16
    // (which carries it in groups 1-2).
    const translated = zeros(4) && groups[4] === 0xffff && g5 === 0 // ::ffff:0:0/96, IPv4-translated
    if ((zeros(5) && g5 === 0xffff) || translated || (zeros(6) && (g6 !== 0 || g7 > 1)) || (g0 === 0x64 && g1 === 0xff9b && groups.slice(2, 6).every((g) => g === 0))) {
      return ipScope(embedded(g6, g7))
    }
    if (g0 === 0x2002) return ipScope(embedded(g1, g2))
    if (zeros(8)) return 'unspecified'
    if (zeros(7) && g7 === 1) return 'loopback'
    // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 site-local, ff00::/8 multicast, 100::/64 discard, and NAT64's
    // local-use 64:ff9b:1::/48 (whatever IPv4 it carries, it leads into the operator's own network).
    if ((g0 & 0xfe00) === 0xfc00 || (g0 & 0xffc0) === 0xfe80 || (g0 & 0xffc0) === 0xfec0 || (g0 & 0xff00) === 0xff00 ||
      (g0 === 0x100 && g1 === 0 && g2 === 0 && groups[3] === 0) || (g0 === 0x64 && g1 === 0xff9b && g2 === 1)) return 'private'
    return 'public'
  }
  return 'public'
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, a trailing dotted IPv4 read as two groups, a zone dropped). */
function v6Groups (ip: string): number[] | undefined {
  let text = ip.toLowerCase().replace(/%.*$/, '')
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number]
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const part = (s: string): number[] => s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16))
  const front = part(head)
  const back = tail === undefined ? [] : part(tail)
  const groups = tail === undefined ? front : [...front, ...Array<number>(8 - front.length - back.length).fill(0), ...back]
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined
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
 * private network reaches that network); an address outside those only when
 * the operator named that address (IPFS_PEERS, IPFS_BOOTSTRAP; Kubo's
 * Peering.Peers). A peer id vouches for no address: anyone can write a named
 * peer's id after another host and port. So a pin request's `origins` cannot
 * make the node knock on this machine's other ports or on the LAN behind it
 * unless it listens there itself.
 */
export class DialPolicy {
  readonly #scopes = new Set<AddressScope>(['public'])
  /** Each address the operator named, host and port (see hostPort). */
  readonly #named = new Set<string>()

  constructor (init: DialPolicyInit) {
    for (const text of init.listen) {
      const parsed = parseTcpMultiaddr(text)
      if (typeof parsed === 'string') continue
      const scope = ipScope(parsed.host)
      if (scope !== 'unspecified') this.#scopes.add(scope)
    }
    for (const text of init.explicit) {
      const parsed = parseTcpMultiaddr(text)
      if (typeof parsed !== 'string') this.#named.add(hostPort(parsed.host, parsed.port))
    }
  }

  /** Why `ip`:`port` is not dialed; undefined when it may be. Whose peer id follows it does not matter. */
  refusal (ip: string, port: number | undefined): string | undefined {
    if (!isIPv4(ip) && !isIPv6(ip)) return `"${ip}" is not an IP address`
    if (this.#named.has(hostPort(ip, port))) return undefined
    const scope = ipScope(ip)
    if (this.#scopes.has(scope)) return undefined
    return scope === 'unspecified'
      ? 'an unspecified address (0.0.0.0 or ::) is not a peer'
      : `a ${scope} address: this node dials ${scope} addresses only when it listens on one itself (IPFS_LISTEN) or the operator named that address and port (IPFS_PEERS; over Kubo, Peering.Peers)`
  }

  /**
   * Why the DNS name `host` (`port` undefined for /dnsaddr/) is not dialed;
   * undefined when the operator named it. Not resolved and judged here: the
   * dial resolves it again (libp2p's TCP dial, Kubo's `swarm connect`), and a
   * name may answer a public address to this check and 127.0.0.1 to the dial.
   */
  nameRefusal (host: string, port: number | undefined): string | undefined {
    return this.#named.has(hostPort(host, port))
      ? undefined
      : 'a DNS name: it could lead to this machine or the network behind it, so only the operator\'s own (IPFS_PEERS; over Kubo, Peering.Peers) are dialed; give an /ip4/ or /ip6/ address'
  }

  /** The same, for an origin of a pin request as its client wrote it. */
  originRefusal (text: string): string | undefined {
    const parsed = parseTcpMultiaddr(text)
    if (typeof parsed === 'string') return parsed
    return parsed.protocol === 'ip4' || parsed.protocol === 'ip6' ? this.refusal(parsed.host, parsed.port) : this.nameRefusal(parsed.host, parsed.port)
  }
}

/** An address's host and port as one key, an IPv6 address in one spelling of its many, a name in lower case. */
function hostPort (host: string, port: number | undefined): string {
  const groups = isIPv6(host) ? v6Groups(host) : undefined
  const key = groups === undefined ? host.toLowerCase().replace(/\.$/, '') : `${groups.map((g) => g.toString(16)).join(':')}${/%.*$/.exec(host)?.[0] ?? ''}`
  return `${key} ${port ?? ''}`
}
