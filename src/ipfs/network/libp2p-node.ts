import { withBitswap } from '@helia/bitswap'
import { bootstrap } from '@libp2p/bootstrap'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { identify, identifyPush } from '@libp2p/identify'
import { KEEP_ALIVE, type Libp2p, type PeerId } from '@libp2p/interface'
import { kadDHT, removePrivateAddressesMapper, removePublicAddressesMapper, type KadDHT, type SingleKadDHT } from '@libp2p/kad-dht'
import { noise } from '@libp2p/noise'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import type { MultihashHasher } from 'multiformats'
import type { CID } from 'multiformats/cid'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import type { Logger } from 'pino'
import type { NetworkConfig } from '../../config.ts'
import { DialPolicy } from './address-policy.ts'
import { BandwidthGovernor } from './bandwidth.ts'

/** The Amino DHT, and the LAN DHT beside it (as Kubo runs both): peers on private networks and loopback. */
const WAN_PROTOCOL = '/ipfs/kad/1.0.0'
const LAN_PROTOCOL = '/ipfs/lan/kad/1.0.0'
/** How often peers of IPFS_PEERS that are not connected are dialed again. */
const REDIAL_MS = 15_000
const HOUR = 3600_000

type ServiceFactory = NonNullable<Libp2pOptions['services']>[string]

/** What Bitswap serves from: this node's own blocks, never the network. */
export interface ServedBlocks {
  has: (cid: CID) => Promise<boolean>
  get: (cid: CID, options: { signal?: AbortSignal }) => Promise<Uint8Array>
}

export interface EmbeddedNetworkInit {
  config: NetworkConfig & { mode: 'private' | 'public' }
  /** DATA_DIR/peer-key's libp2p PrivateKey protobuf: the same peer id as the Pinning Service API's delegates. */
  privateKey: Uint8Array
  blocks: ServedBlocks
  logger: Logger
}

/** @helia/bitswap's block broker, as `withBitswap` makes it. */
interface BitswapBroker {
  start: () => Promise<void>
  stop: () => Promise<void>
  announce: (cid: CID) => Promise<void>
  retrieve: (cid: CID, options: { signal?: AbortSignal, providers?: Multiaddr[] }) => Promise<Uint8Array>
}

const HASHERS = new Map<number, MultihashHasher>([sha256, sha512].map((hasher) => [hasher.code, hasher]))

/**
 * The embedded node on the IPFS network: a libp2p node of the pieces a
 * server needs (TCP, noise, yamux, identify, ping; the DHTs in `public`
 * mode only) and Bitswap. Nothing is discovered on its own: no mDNS, no
 * relay, no UPnP, no autodial; in `private` mode it dials only IPFS_PEERS
 * (and a pin request's origins), in `public` mode also the bootstrap peers
 * and whom the DHT leads to. Bitswap serves any block this node holds and
 * fetches only when asked (`retrieve`): the node's reads stay offline.
 */
export class EmbeddedNetwork {
  readonly mode: 'private' | 'public'
  readonly libp2p: Libp2p
  readonly #broker: BitswapBroker
  readonly #policy: DialPolicy
  readonly #logger: Logger
  readonly #peers: Array<{ id: PeerId, address: Multiaddr }>
  readonly #dhts: KadDHT[]
  #redial: NodeJS.Timeout | undefined
  #stopped = false

  private constructor (init: { mode: 'private' | 'public', libp2p: Libp2p, broker: BitswapBroker, policy: DialPolicy, logger: Logger, peers: Array<{ id: PeerId, address: Multiaddr }>, dhts: KadDHT[] }) {
    this.mode = init.mode
    this.libp2p = init.libp2p
    this.#broker = init.broker
    this.#policy = init.policy
    this.#logger = init.logger
    this.#peers = init.peers
    this.#dhts = init.dhts
  }

  static async start (init: EmbeddedNetworkInit): Promise<EmbeddedNetwork> {
    const { config, logger } = init
    const privateKey = privateKeyFromProtobuf(init.privateKey)
    const explicit = [...config.peers, ...config.bootstrap]
    const policy = new DialPolicy({ listen: config.listen, explicit })
    const governor = new BandwidthGovernor({ total: config.maxBytesPerSecond, perHost: config.maxPeerBytesPerSecond })
    const self = peerIdFromString(privateKey.publicKey.toString())
    const peers: Array<{ id: PeerId, address: Multiaddr }> = []
    for (const text of config.peers) {
      const address = multiaddr(text)
      const id = address.getComponents().findLast((c) => c.name === 'p2p')?.value
      if (id === undefined) continue
      if (id === self.toString()) { logger.warn({ peer: text }, 'IPFS_PEERS names this node itself; it is left out'); continue }
      peers.push({ id: peerIdFromString(id), address })
    }

    const reprovide = reprovideTimes(config.reprovideIntervalSeconds)
    const services: Libp2pOptions['services'] = { identify: identify(), identifyPush: identifyPush(), ping: ping() }
    if (config.mode === 'public') {
      // The DHTs find their `ping` among the services above.
      services.dht = kadDHT({ protocol: WAN_PROTOCOL, peerInfoMapper: removePrivateAddressesMapper, reprovide }) as unknown as ServiceFactory
      services.lanDht = kadDHT({
        protocol: LAN_PROTOCOL,
        peerInfoMapper: removePublicAddressesMapper,
        clientMode: false,
        logPrefix: 'libp2p:kad-dht:lan',
        datastorePrefix: '/dht-lan',
        metricsPrefix: 'libp2p_kad_dht_lan',
        reprovide
      }) as unknown as ServiceFactory
    }
    const libp2p = await createLibp2p({
      privateKey,
      start: false,
      nodeInfo: { name: 'heimdall', version: '1' },
      addresses: { listen: config.listen, announce: config.announce },
      transports: [governed(tcp(), governor)],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { maxConnections: config.maxConnections },
      connectionGater: {
        // Judged by the address alone, never by the peer id after it: anyone can write a named peer's id after another address.
        denyDialMultiaddr: (address: Multiaddr) => {
          const parts = address.getComponents()
          const ip = parts.find((c) => c.name === 'ip4' || c.name === 'ip6')?.value
          const name = parts.find((c) => c.name === 'dns' || c.name === 'dns4' || c.name === 'dns6' || c.name === 'dnsaddr')?.value
          const port = parts.find((c) => c.name === 'tcp')?.value
          const portNumber = port === undefined ? undefined : Number(port)
          if (ip !== undefined) return policy.refusal(ip, portNumber) !== undefined
          // A name reaches whatever it resolves to when the TCP dial resolves it: dialed only as the operator named it.
          return name === undefined || policy.nameRefusal(name, portNumber) !== undefined
        }
      },
      peerDiscovery: config.mode === 'public' && config.bootstrap.length > 0 ? [bootstrap({ list: config.bootstrap })] : [],
      services
    })

    let broker: BitswapBroker | undefined
    let mixin: { start?: (host: unknown) => Promise<void> } | undefined
    // withBitswap's mixin builds its broker from what a Helia node offers. This host offers
    // our libp2p and blocks, and no routers but the DHT: the Helia node itself gets no
    // block broker, so none of its reads can reach the network.
    const dhts = ['dht', 'lanDht'].map((name) => (libp2p.services as Record<string, unknown>)[name]).filter((dht): dht is KadDHT => dht !== undefined)
    const host = {
      status: 'starting',
      libp2p,
      blockstore: {
        has: async (cid: CID) => init.blocks.has(cid),
        get: async function * (cid: CID, options: { signal?: AbortSignal } = {}) { yield await init.blocks.get(cid, options) }
      },
      logger: libp2p.logger,
      getHasher: async (code: number) => {
        const hasher = HASHERS.get(code)
        if (hasher === undefined) throw new Error(`hash function 0x${code.toString(16)} is not accepted here`)
        return Promise.resolve(hasher)
      },
      routing: {
        findProviders: async function * (cid: CID, options: { signal?: AbortSignal } = {}) {
          if (dhts.length === 0) return
          for await (const provider of libp2p.contentRouting.findProviders(cid, options)) yield { ...provider, routing: 'libp2p' }
        }
      },
      hasBlockBroker: () => false,
      addBlockBroker: (b: BitswapBroker) => { broker = b },
      addMixin: (m: typeof mixin) => { mixin = m }
    }
    withBitswap(host as unknown as Parameters<typeof withBitswap>[0], { maxWantlistSize: 1024 })

    try {
      await libp2p.start()
    } catch (err) {
      throw new Error(`the embedded IPFS node could not start its networking on IPFS_LISTEN=${config.listen.join(',')}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
    try {
      await mixin?.start?.(host)
      if (broker === undefined) throw new Error('@helia/bitswap made no block broker')
      const network = new EmbeddedNetwork({ mode: config.mode, libp2p, broker, policy, logger, peers, dhts })
      if (config.mode === 'public' && config.announce.length > 0) {
        // Announced addresses are ours to vouch for: answer DHT queries on them at once.
        await (libp2p.services.dht as KadDHT).setMode('server').catch((err: unknown) => { logger.warn({ err }, 'the DHT stays a client') })
      }
      await network.#keepPeers()
      return network
    } catch (err) {
      await libp2p.stop()
      throw err
    }
  }

  get peerId (): string { return this.libp2p.peerId.toString() }

  /** Where other nodes reach this one: each address ends in /p2p/<peer id>. */
  addresses (): string[] {
    return [...new Set(this.libp2p.getMultiaddrs().map((ma) => ma.toString()))]
  }

  /** How many peers are connected now. */
  peerCount (): number {
    return this.libp2p.getPeers().length
  }

  /** Peers of IPFS_PEERS are kept: tagged so the connection manager never prunes them, and dialed again whenever they drop. */
  async #keepPeers (): Promise<void> {
    for (const peer of this.#peers) {
      await this.libp2p.peerStore.merge(peer.id, { multiaddrs: [peer.address.decapsulateCode(0x01a5)], tags: { [`${KEEP_ALIVE}-heimdall`]: { value: 100 } } })
    }
    const connected = new Set<string>()
    this.libp2p.addEventListener('peer:connect', (event) => {
      const id = event.detail.toString()
      if (this.#peers.some((p) => p.id.toString() === id) && !connected.has(id)) {
        connected.add(id)
        this.#logger.info({ peer: id }, 'connected to a peer of IPFS_PEERS')
      }
    })
    this.libp2p.addEventListener('peer:disconnect', (event) => {
      const id = event.detail.toString()
      if (connected.delete(id)) this.#logger.warn({ peer: id }, 'a peer of IPFS_PEERS disconnected; redialing')
      if (!this.#stopped && this.#peers.some((p) => p.id.toString() === id)) this.#dialPeers()
    })
    this.#dialPeers()
    this.#redial = setInterval(() => { this.#dialPeers() }, REDIAL_MS)
    this.#redial.unref()
  }

  #dialPeers (): void {
    for (const peer of this.#peers) {
      if (this.#stopped || this.libp2p.getConnections(peer.id).length > 0) continue
      this.libp2p.dial(peer.address, { signal: AbortSignal.timeout(10_000) }).catch((err: unknown) => {
        this.#logger.debug({ err, peer: peer.address.toString() }, 'a peer of IPFS_PEERS could not be dialed; trying again later')
      })
    }
  }

  /** Why an origin of a pin request is not dialed, or undefined when it is. */
  originRefusal (origin: string): string | undefined {
    return this.#policy.originRefusal(origin)
  }

  /** Dials a pin request's origins (those the dial policy allows), each at most `timeoutMs`; the ones that fail are left. */
  async connect (origins: readonly string[], signal?: AbortSignal): Promise<number> {
    let connected = 0
    await Promise.all(origins.filter((o) => this.originRefusal(o) === undefined).map(async (origin) => {
      try {
        await this.libp2p.dial(multiaddr(origin), { signal: AbortSignal.any([AbortSignal.timeout(10_000), ...(signal === undefined ? [] : [signal])]) })
        connected++
      } catch (err) {
        this.#logger.debug({ err, origin }, 'an origin of a pin request could not be dialed')
      }
    }))
    return connected
  }

  /**
   * One block from the network by Bitswap, its bytes checked against the
   * CID's multihash: asked of every connected peer (and, in `public` mode,
   * of providers the DHT finds) until `signal` aborts.
   */
  async retrieve (cid: CID, options: { signal: AbortSignal }): Promise<Uint8Array> {
    return this.#broker.retrieve(cid, { signal: options.signal })
  }

  /** A block arrived here: peers that asked for it get it. */
  announce (cid: CID): void {
    this.#broker.announce(cid).catch((err: unknown) => { this.#logger.debug({ err }, 'could not tell peers of a new block') })
  }

  /** Whether this node announces content in a DHT (`public` mode). */
  get providing (): boolean {
    return this.#dhts.length > 0
  }

  /**
   * Announces that this node provides `cid`, in each DHT; the number of
   * peers that took the record. Each DHT re-provides it on its own schedule
   * (IPFS_REPROVIDE_INTERVAL_SECONDS) until `cancelProvide`.
   */
  async provide (cid: CID, signal: AbortSignal): Promise<number> {
    let stored = 0
    await Promise.all(this.#dhts.map(async (dht) => {
      // A DHT with no peer yet would hold the query until one comes: it is asked again at the next pass.
      if ((dht as SingleKadDHT).routingTable.size === 0) return
      try {
        for await (const event of dht.provide(cid, { signal })) {
          if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') stored++
        }
      } catch (err) {
        if (signal.aborted) throw err
        this.#logger.debug({ err, cid: cid.toString() }, 'a DHT could not take a provider record')
      }
    }))
    return stored
  }

  async cancelProvide (cid: CID): Promise<void> {
    await Promise.all(this.#dhts.map(async (dht) => dht.cancelReprovide(cid)))
  }

  async stop (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearInterval(this.#redial)
    await this.#broker.stop().catch(() => {})
    await this.libp2p.stop()
  }
}

/**
 * The DHT re-provides our records `interval` after they were provided:
 * each lives `validity` (at least the Amino DHT's 48 hours) and is
 * re-provided once less than `threshold` of it is left.
 */
function reprovideTimes (intervalSeconds: number): { interval: number, threshold: number, validity: number } {
  const every = intervalSeconds * 1000
  const validity = Math.max(48 * HOUR, every + HOUR)
  return { validity, threshold: validity - every, interval: Math.max(60_000, Math.min(HOUR, every / 4)) }
}

/** The TCP transport with each new connection put under the bandwidth caps before its upgrade. */
function governed (factory: ReturnType<typeof tcp>, governor: BandwidthGovernor): ReturnType<typeof tcp> {
  if (!governor.active) return factory
  return (components) => {
    const transport = factory(components)
    const wrap = <T extends { upgrader: object }>(options: T): T => ({
      ...options,
      upgrader: new Proxy(options.upgrader, {
        get (target, key, receiver) {
          const value = Reflect.get(target, key, receiver) as unknown
          if ((key === 'upgradeInbound' || key === 'upgradeOutbound') && typeof value === 'function') {
            return (connection: unknown, ...rest: unknown[]) => { governor.govern(connection); return (value as (...a: unknown[]) => unknown).call(target, connection, ...rest) }
          }
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
        }
      })
    })
    const dial = transport.dial.bind(transport)
    const createListener = transport.createListener.bind(transport)
    transport.dial = async (address, options) => dial(address, wrap(options))
    transport.createListener = (options) => createListener(wrap(options))
    return transport
  }
}
