import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import type { KuboRPCClient } from 'kubo-rpc-client'
import { kuboNetwork } from '../../src/ipfs/kubo-network.ts'
import { DialPolicy, ipScope } from '../../src/ipfs/network/address-policy.ts'
import { BandwidthGovernor, TokenBucket } from '../../src/ipfs/network/bandwidth.ts'
import { parseTcpMultiaddr } from '../../src/ipfs/network/multiaddr-text.ts'

const PEER = '12D3KooWGWFjX6fL6scCLszn4yfWoGsM45XTuTBdTEwLomJGNa9Q'

describe('multiaddrs as the configuration writes them', () => {
  it('reads TCP addresses over IPv4, IPv6 and DNS, with or without a peer id', () => {
    expect(parseTcpMultiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`)).toEqual({ protocol: 'ip4', host: '127.0.0.1', port: 4001, peerId: PEER })
    expect(parseTcpMultiaddr('/ip6/::1/tcp/0')).toEqual({ protocol: 'ip6', host: '::1', port: 0, peerId: undefined })
    expect(parseTcpMultiaddr('/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN')).toMatchObject({ protocol: 'dnsaddr', port: undefined })
    for (const bad of ['', 'ip4/1.2.3.4/tcp/1', '/ip4/1.2.3.4', '/ip4/1.2.3.4/tcp/70000', '/ip4/1.2.3.4/tcp/1/ws', '/unix/tmp/x', '/dns4/-bad-/tcp/1']) {
      expect(typeof parseTcpMultiaddr(bad)).toBe('string')
    }
  })
})

describe('the dial policy', () => {
  it('sorts addresses by where they lead', () => {
    expect(['127.0.0.1', '::1', '10.1.2.3', '172.20.0.5', '192.168.1.1', '100.64.0.1', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '0.0.0.0', '::', '8.8.8.8', '2001:db8::1'].map(ipScope))
      .toEqual(['loopback', 'loopback', 'private', 'private', 'private', 'private', 'private', 'private', 'loopback', 'unspecified', 'unspecified', 'public', 'public'])
  })

  it('judges an IPv4 address written as IPv6 by the IPv4 address, however it is spelled', () => {
    const cases: Array<[string, string]> = [
      ['::ffff:7f00:1', 'loopback'], ['::FFFF:7F00:0001', 'loopback'], ['0:0:0:0:0:ffff:127.0.0.1', 'loopback'], ['::ffff:c0a8:101', 'private'],
      ['::ffff:a9fe:a9fe', 'private'], ['::ffff:808:808', 'public'], ['::ffff:0:0', 'unspecified'], ['::7f00:1', 'loopback'], ['::127.0.0.1', 'loopback'],
      ['64:ff9b::a00:1', 'private'], ['64:ff9b::808:808', 'public'], ['2002:7f00:1::', 'loopback'], ['2002:c0a8:101::1', 'private'],
      ['0:0:0:0:0:0:0:1', 'loopback'], ['0::0', 'unspecified'], ['fe80::1%eth0', 'private'], ['fec0::1', 'private'], ['ff02::1', 'private'], ['2606:4700::1111', 'public'],
      ['100::1', 'private'], ['100:0:0:1::1', 'public'], ['::ffff:0:7f00:1', 'loopback'], ['::ffff:0:808:808', 'public'], ['64:ff9b:1::808:808', 'private']
    ]
    expect(cases.map(([ip]) => [ip, ipScope(ip)])).toEqual(cases)
    const policy = new DialPolicy({ listen: ['/ip4/0.0.0.0/tcp/4001'], explicit: [] })
    expect(policy.refusal('::ffff:7f00:1', 4780)).toMatch(/^a loopback address/)
    expect(policy.refusal('::ffff:c0a8:101', 22)).toMatch(/^a private address/)
  })

  it('over Kubo, origins are judged by where Kubo listens (Addresses.Swarm) and whom it peers with, not by the addresses id reports', async () => {
    const OTHER = '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'
    // The client's two config answers, as Kubo gives them; the policy built from them is what is tested.
    const dialed: string[] = []
    const kubo = (swarm: unknown, peering: unknown): KuboRPCClient => ({
      config: { get: async (key: string) => Promise.resolve(key === 'Addresses.Swarm' ? swarm : peering) },
      swarm: { peers: async () => Promise.resolve([]), connect: async (address: unknown) => { dialed.push(String(address)); return Promise.resolve([]) } }
    }) as unknown as KuboRPCClient
    // On every interface, as in the compose stack: `id` lists 127.0.0.1 and the LAN's addresses, which must not open them.
    const everywhere = await kuboNetwork(kubo(['/ip4/0.0.0.0/tcp/4001', '/ip6/::/tcp/4001', '/ip4/0.0.0.0/udp/4001/quic-v1'], [{ ID: PEER, Addrs: ['/ip4/192.168.1.9/tcp/4001'] }, null]),
      { peerId: OTHER, addresses: ['/ip4/127.0.0.1/tcp/4001', '/ip4/192.168.1.5/tcp/4001', '/ip6/::1/tcp/4001'] })
    expect(everywhere?.originRefusal(`/ip4/127.0.0.1/tcp/5432/p2p/${OTHER}`)).toMatch(/^a loopback address/)
    expect(everywhere?.originRefusal(`/ip6/::ffff:7f00:1/tcp/5432/p2p/${OTHER}`)).toMatch(/^a loopback address/)
    expect(everywhere?.originRefusal(`/ip4/192.168.1.7/tcp/4001/p2p/${OTHER}`)).toMatch(/^a private address/)
    expect(everywhere?.originRefusal(`/ip4/192.168.1.9/tcp/4001/p2p/${PEER}`)).toBeUndefined() // a Peering peer
    expect(everywhere?.originRefusal(`/ip4/8.8.8.8/tcp/4001/p2p/${OTHER}`)).toBeUndefined()
    // The Peering peer's id before another address, and names, which `swarm connect` would resolve in Kubo: not dialed.
    const refused = [`/ip4/192.168.1.9/tcp/6379/p2p/${PEER}`, `/ip4/10.0.0.5/tcp/6379/p2p/${PEER}`, `/dns4/localhost/tcp/5432/p2p/${PEER}`, `/dns4/postgres/tcp/5432/p2p/${OTHER}`, `/dnsaddr/internal.example.org/p2p/${PEER}`]
    expect(refused.map((origin) => everywhere?.originRefusal(origin))).toEqual([expect.stringMatching(/^a private address/), expect.stringMatching(/^a private address/), ...Array<unknown>(3).fill(expect.stringMatching(/^a DNS name/))])
    expect(await everywhere?.connect([...refused, `/ip4/192.168.1.9/tcp/4001/p2p/${PEER}`, `/ip4/8.8.8.8/tcp/4001/p2p/${OTHER}`])).toBe(2)
    expect(dialed).toEqual([`/ip4/192.168.1.9/tcp/4001/p2p/${PEER}`, `/ip4/8.8.8.8/tcp/4001/p2p/${OTHER}`])
    // Listening on loopback only (the tests' Kubo): loopback peers are its own scope. No config answer: public only.
    const onLoopback = await kuboNetwork(kubo(['/ip4/127.0.0.1/tcp/0'], null), { peerId: OTHER, addresses: ['/ip4/127.0.0.1/tcp/40123'] })
    expect(onLoopback?.originRefusal(`/ip4/127.0.0.1/tcp/40124/p2p/${PEER}`)).toBeUndefined()
    const unanswered = await kuboNetwork({ config: { get: async () => Promise.reject(new Error('no')) }, swarm: { peers: async () => Promise.resolve([]) } } as unknown as KuboRPCClient, { peerId: OTHER, addresses: ['/ip4/127.0.0.1/tcp/4001'] })
    expect(unanswered?.originRefusal(`/ip4/127.0.0.1/tcp/4002/p2p/${PEER}`)).toMatch(/^a loopback address/)
  })

  it('a node listening on every interface dials the internet, and private or loopback peers only when named', () => {
    const policy = new DialPolicy({ listen: ['/ip4/0.0.0.0/tcp/4001'], explicit: [`/ip4/192.168.1.20/tcp/4001/p2p/${PEER}`] })
    expect(policy.refusal('8.8.8.8', 4001)).toBeUndefined()
    expect(policy.refusal('127.0.0.1', 5432)).toMatch(/^a loopback address/)
    expect(policy.refusal('10.0.0.7', 4001)).toMatch(/^a private address/)
    expect(policy.refusal('192.168.1.20', 4001)).toBeUndefined()
    // Another port of the named host is another service on it.
    expect(policy.refusal('192.168.1.20', 4002)).toMatch(/^a private address/)
    expect(policy.originRefusal('/ip4/127.0.0.1/tcp/22')).toMatch(/loopback/)
    expect(policy.originRefusal('/ip4/203.0.113.9/tcp/4001')).toBeUndefined()
    expect(policy.originRefusal('/ip4/1.2.3.4/udp/4001/quic-v1')).toMatch(/TCP/)
  })

  it('a named peer\'s id opens no other address: only the address and port the operator named, whoever\'s id follows them', () => {
    const KUBO = '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'
    const policy = new DialPolicy({
      listen: ['/ip4/0.0.0.0/tcp/4001'],
      explicit: [`/ip4/192.168.1.20/tcp/4001/p2p/${PEER}`, `/ip6/fd00::0014/tcp/4001/p2p/${PEER}`, `/dns4/kubo/tcp/4001/p2p/${KUBO}`]
    })
    // The ids are public (the default bootstrap peers'): written after any host and port, they reach nothing new.
    for (const origin of [`/ip4/10.0.0.5/tcp/6379/p2p/${PEER}`, `/ip4/192.168.1.20/tcp/22/p2p/${PEER}`, `/ip6/fd00::14/tcp/5432/p2p/${PEER}`]) {
      expect([origin, policy.originRefusal(origin)]).toEqual([origin, expect.stringMatching(/^a private address/)])
    }
    expect(policy.originRefusal(`/ip4/127.0.0.1/tcp/5432/p2p/${PEER}`)).toMatch(/^a loopback address/)
    expect(policy.originRefusal(`/ip6/::ffff:a00:5/tcp/6379/p2p/${PEER}`)).toMatch(/^a private address/)
    // The named addresses themselves, an IPv6 one however it is spelled, and with any id (a wrong one fails the handshake there).
    expect(policy.originRefusal(`/ip4/192.168.1.20/tcp/4001/p2p/${PEER}`)).toBeUndefined()
    expect(policy.originRefusal(`/ip6/fd00:0:0:0:0:0:0:14/tcp/4001/p2p/${PEER}`)).toBeUndefined()
    expect(policy.originRefusal(`/ip4/192.168.1.20/tcp/4001/p2p/${KUBO}`)).toBeUndefined()
    expect(policy.refusal('kubo', 4001)).toMatch(/not an IP address/)
  })

  it('a DNS name is dialed only as the operator named it: a pin request\'s names could lead to this machine or the LAN', () => {
    const KUBO = '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'
    // Listening on loopback and the LAN does not open names: where they lead is known only when they are dialed.
    const policy = new DialPolicy({ listen: ['/ip4/127.0.0.1/tcp/4001', '/ip4/192.168.1.5/tcp/4001'], explicit: [`/dns4/kubo/tcp/4001/p2p/${KUBO}`, `/dnsaddr/peers.example.org/p2p/${PEER}`] })
    for (const origin of [`/dns4/localhost/tcp/5432/p2p/${KUBO}`, `/dns4/postgres/tcp/5432/p2p/${KUBO}`, `/dns/redis/tcp/6379/p2p/${PEER}`, `/dns6/localhost/tcp/22`,
      `/dnsaddr/bootstrap.libp2p.io/p2p/${PEER}`, `/dns4/kubo/tcp/5001/p2p/${KUBO}`, `/dns4/kubo.example.org/tcp/4001/p2p/${KUBO}`]) {
      expect([origin, policy.originRefusal(origin)]).toEqual([origin, expect.stringMatching(/^a DNS name/)])
    }
    expect(policy.originRefusal(`/dns4/kubo/tcp/4001/p2p/${KUBO}`)).toBeUndefined()
    expect(policy.originRefusal('/dns4/KUBO./tcp/4001')).toBeUndefined()
    expect(policy.originRefusal(`/dnsaddr/peers.example.org/p2p/${PEER}`)).toBeUndefined()
    expect(policy.nameRefusal('kubo', 4001)).toBeUndefined()
    expect(policy.nameRefusal('postgres', 5432)).toMatch(/^a DNS name/)
  })

  it('a node on loopback reaches loopback peers (the tests\' network), and not the LAN', () => {
    const policy = new DialPolicy({ listen: ['/ip4/127.0.0.1/tcp/0'], explicit: [] })
    expect(policy.refusal('127.0.0.1', 40123)).toBeUndefined()
    expect(policy.refusal('192.168.0.2', 4001)).toMatch(/private/)
  })
})

describe('the bandwidth caps', () => {
  it('a token bucket lets a second of its rate go at once, then makes the sender wait out the debt', () => {
    const bucket = new TokenBucket(100_000)
    expect(bucket.waitMs()).toBe(0)
    bucket.take(100_000)
    expect(bucket.waitMs()).toBe(0)
    bucket.take(50_000)
    expect(bucket.waitMs()).toBeGreaterThan(450)
    expect(bucket.waitMs()).toBeLessThanOrEqual(500)
  })

  /** A stand-in for @libp2p/tcp's connection: what the governor wraps. */
  function fakeConnection (remote: string): { conn: Record<string, unknown>, sent: number[], paused: () => boolean, events: EventEmitter } {
    const events = new EventEmitter()
    const sent: number[] = []
    let paused = false
    const conn: Record<string, unknown> = {
      remoteAddr: { toString: () => remote },
      sendData: (data: { byteLength: number }) => { sent.push(data.byteLength); return { sentBytes: data.byteLength, canSendMore: true } },
      onData: () => {},
      sendPause: () => { paused = true },
      sendResume: () => { paused = false },
      safeDispatchEvent: (type: string) => events.emit(type),
      addEventListener: (type: string, listener: () => void) => { events.once(type, listener) }
    }
    return { conn, sent, paused: () => paused, events }
  }

  it('holds a connection\'s writes once the host has spent its budget, and releases them with a drain', async () => {
    const governor = new BandwidthGovernor({ total: 0, perHost: 64 * 1024 })
    const { conn, sent, events } = fakeConnection('/ip4/198.51.100.7/tcp/4001')
    governor.govern(conn)
    const send = conn.sendData as (d: { byteLength: number }) => { sentBytes: number, canSendMore: boolean }
    expect(send({ byteLength: 64 * 1024 })).toEqual({ sentBytes: 64 * 1024, canSendMore: true })
    expect(send({ byteLength: 32 * 1024 })).toEqual({ sentBytes: 32 * 1024, canSendMore: false })
    // In debt: nothing more goes out until the drain.
    expect(send({ byteLength: 1 })).toEqual({ sentBytes: 0, canSendMore: false })
    const started = Date.now()
    await new Promise((resolve) => events.once('drain', resolve))
    expect(Date.now() - started).toBeGreaterThanOrEqual(400)
    expect(sent).toEqual([64 * 1024, 32 * 1024])
    events.emit('close')
  })

  it('pauses reading past the budget and resumes after it, keeping the stream\'s own pause', async () => {
    const governor = new BandwidthGovernor({ total: 32 * 1024, perHost: 0 })
    const { conn, paused } = fakeConnection('/ip4/198.51.100.8/tcp/4001')
    governor.govern(conn)
    const onData = conn.onData as (d: { byteLength: number }) => void
    onData({ byteLength: 48 * 1024 })
    expect(paused()).toBe(true)
    // The stream resuming on its own does not lift the cap.
    ;(conn.sendResume as () => void)()
    expect(paused()).toBe(true)
    await new Promise((resolve) => setTimeout(resolve, 700))
    expect(paused()).toBe(false)
  })
})
