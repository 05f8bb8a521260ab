import { isIPv4, isIPv6 } from 'node:net'
import { base58btc } from 'multiformats/bases/base58'
import { decode as decodeMultihash } from 'multiformats/hashes/digest'

/**
 * The multiaddrs the configuration takes, checked as text so that loading
 * the configuration does not load libp2p: TCP over IPv4, IPv6 or a DNS name
 * (or a `/dnsaddr/` name, which carries no port), optionally ending in
 * `/p2p/<peer id>`. Nothing else is dialed or listened on by this node.
 */
export interface TcpMultiaddr {
  /** `ip4`, `ip6`, `dns`, `dns4`, `dns6` or `dnsaddr`. */
  protocol: string
  host: string
  /** Undefined for `/dnsaddr/`. */
  port: number | undefined
  peerId: string | undefined
}

const HOST_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i

/** Whether `text` is a peer id: base58btc of an identity (Ed25519 keys) or sha2-256 (RSA keys) multihash. */
export function isPeerId (text: string): boolean {
  try {
    const digest = decodeMultihash(base58btc.baseDecode(text))
    return digest.code === 0x00 || digest.code === 0x12
  } catch {
    return false
  }
}

/** Parses one multiaddr; a string saying what is wrong with it when it is not one this node uses. */
export function parseTcpMultiaddr (text: string): TcpMultiaddr | string {
  const parts = text.split('/')
  if (parts[0] !== '' || parts.length < 3) return 'is not a multiaddr (e.g. /ip4/203.0.113.7/tcp/4001)'
  const [, protocol = '', host = ''] = parts
  let rest = parts.slice(3)
  let port: number | undefined
  switch (protocol) {
    case 'ip4': if (!isIPv4(host)) return `has "${host}", not an IPv4 address`; break
    case 'ip6': if (!isIPv6(host)) return `has "${host}", not an IPv6 address`; break
    case 'dns': case 'dns4': case 'dns6': case 'dnsaddr':
      if (!HOST_NAME.test(host)) return `has "${host}", not a host name`
      break
    default: return `starts with /${protocol}/: only /ip4/, /ip6/, /dns/, /dns4/, /dns6/ and /dnsaddr/ addresses are used`
  }
  if (protocol !== 'dnsaddr') {
    if (rest[0] !== 'tcp') return 'is not a TCP address: this node speaks TCP only (…/tcp/<port>)'
    const portText = rest[1] ?? ''
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN
    if (!(port >= 0 && port <= 65535)) return `has "${portText}", not a TCP port`
    rest = rest.slice(2)
  }
  let peerId: string | undefined
  if (rest[0] === 'p2p') {
    peerId = rest[1] ?? ''
    if (!isPeerId(peerId)) return `has "${peerId}", not a peer id`
    rest = rest.slice(2)
  }
  if (rest.length > 0) return `has /${rest.join('/')} at its end, which this node does not use`
  return { protocol, host, port, peerId }
}

/** A comma-separated list, spaces around the commas allowed; empty items dropped. */
export const splitList = (text: string | undefined): string[] => (text ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '')
