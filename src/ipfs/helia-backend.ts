import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { unixfs, type UnixFS } from '@helia/unixfs'
import { FsBlockstore } from 'blockstore-fs'
import { exporter, type UnixFSEntry } from 'ipfs-unixfs-exporter'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import * as dagPb from '@ipld/dag-pb'
import type { Logger } from 'pino'
import { concat } from 'uint8arrays/concat'
import type { NetworkConfig } from '../config.ts'
import { NotFoundError } from '../errors.ts'
import { BlockCollector, SHARDING, blockKey } from './block-collector.ts'
import { hashMatches } from './block-hash.ts'
import type { BlockLeaseRepository } from '../db/block-lease-repository.ts'
import type { BlockStorage } from '../storage/block-storage.ts'
import type { Within } from '../storage/pack-index.ts'
import { FsBlockStorage } from '../storage/fs-block-storage.ts'
import { StorageBlockstore } from '../storage/storage-blockstore.ts'
import { SharedBlockCollector, type LocalCopies, type SharedPins } from './shared-block-collector.ts'
import type { PinStore } from './pin-store.ts'
import { IMPORT_PROFILES } from './import-profiles.ts'
import { createLightNode } from './helia-light.ts'
import { shardFoldersAsKubo } from './folder-sharding.ts'
import { unixfsPinWalker } from './unixfs-pin-walker.ts'
import { rawStat, unixfsStat } from './unixfs-stat.ts'
import { fileWindow } from './unixfs-file-window.ts'
import { LeanFsDatastore } from './lean-fs-datastore.ts'
import { PinRecords } from './pin-records.ts'
import { ChunkPool, pooledChunker, rawLeafImporter } from './raw-leaf-importer.ts'
import { lockRepo } from './repo-lock.ts'
import type { DirectoryEntry, GcReport, ImportCandidate, ImportedNode, ImportLease, IpfsBackend, NodeNetwork, NodeStat, ReadOptions, VerifiedBlock } from './ipfs-backend.ts'
import type { Helia } from '@helia/interface'
import type { EmbeddedNetwork } from './network/libp2p-node.ts'
import type { Providing } from './network/providing.ts'

/** Blocks in a store several instances share, with pins and import leases in their PostgreSQL (BLOCKSTORE=s3). */
export interface SharedStore {
  storage: BlockStorage
  pins: PinStore & SharedPins
  leases: BlockLeaseRepository
  /** This instance's name in the leases. */
  instance: string
  /** Its local copies of blocks (the read cache), which forget what any instance collects. */
  copies?: LocalCopies
  /** Collector timings (tests shorten them). */
  collector?: { heartbeatSeconds?: number, leaseTtlSeconds?: number, pauseMs?: number, syncSeconds?: number }
}

/** What the embedded node needs to join the IPFS network (IPFS_NETWORK=private or public). */
export interface HeliaNetworkOptions {
  config: NetworkConfig
  /** DATA_DIR/peer-key: the libp2p PrivateKey protobuf. */
  privateKey: Uint8Array
  logger: Logger
}

// Blocks we do not hold are never looked for elsewhere: the embedded Helia node
// has no block brokers and no routers, and every read says `offline` as well.
// Only `fetchBlock` asks the network (when the node is on it).
const OFFLINE = { offline: true } as const

/** How many blocks putBlocks writes at once: each at most the CAR reader's largest block, 32 MiB in flight at worst. */
const PUT_WINDOW = 16
/** The identity multihash: the block is the digest itself. */
const IDENTITY = 0x00

const PIN_WALKER = unixfsPinWalker()

/** sha2-256 of zero bytes as a raw block: a CID to look up when probing the datastore. */
const EMPTY_BLOCK = CID.parse('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')

const NOT_FOUND_ERRORS = new Set(['BlockNotFoundWhileOfflineError', 'NotFoundError', 'ResolveError', 'NoContentError', 'NotUnixFSError'])

/** A block handed over in pieces, as one buffer (every caller here hands whole blocks). */
async function wholeBlock (pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const part of pieces) parts.push(part)
  return concat(parts)
}

function asNotFound (err: unknown, what: string): never {
  if (err instanceof Error && NOT_FOUND_ERRORS.has(err.name)) throw new NotFoundError(`${what} not found on this node`)
  throw err
}

/**
 * The in-process IPFS node: Helia with no block brokers and no routers (every
 * read stays on this node), blocks and pins on disk. With networking on, a
 * libp2p node beside it serves the blocks over Bitswap and fetches blocks
 * for `fetchBlock` only (see network/libp2p-node.ts).
 */
export class HeliaBackend implements IpfsBackend {
  readonly kind = 'helia'
  readonly #helia: Helia
  readonly #fs: UnixFS
  readonly #collector: BlockCollector | SharedBlockCollector
  readonly #pins: PinStore
  readonly #storage: BlockStorage
  readonly #unlock: () => Promise<void>
  #network: EmbeddedNetwork | undefined
  #providing: Providing | undefined
  #running = true

  private constructor (helia: Helia, storage: BlockStorage, unlock: () => Promise<void>, shared: SharedStore | undefined) {
    this.#helia = helia
    this.#fs = unixfs(helia)
    this.#storage = storage
    this.#unlock = unlock
    // A new block is offered to peers that asked for it.
    const stored = (cid: CID): void => {
      this.#network?.announce(cid)
      if (this.#strategy === 'all') this.#providing?.changed()
    }
    const put = async (cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: { signal?: AbortSignal }): Promise<CID> => {
      options?.signal?.throwIfAborted()
      await storage.put(cid, bytes instanceof Uint8Array ? bytes : await wholeBlock(bytes))
      stored(cid)
      return cid
    }
    if (shared !== undefined) {
      this.#pins = shared.pins
      this.#collector = new SharedBlockCollector({
        storage,
        put,
        stored,
        leases: shared.leases,
        pins: shared.pins,
        // Under the sweep lock, on the lock's connection (see SharedBlockCollectorInit.getBlock).
        getBlock: async (cid, within) => this.#fromStore(cid, within),
        instance: shared.instance,
        ...(shared.copies === undefined ? {} : { copies: shared.copies }),
        onCollected: () => { for (const listener of this.#collectedListeners) listener() },
        ...shared.collector
      })
    } else {
      this.#pins = new PinRecords(helia.datastore)
      this.#collector = new BlockCollector({
        dir: storage.localDir,
        blockstore: { put },
        getBlock: async (cid) => this.getBlock(cid),
        datastore: helia.datastore,
        roots: () => this.listPins()
      })
    }
  }

  #strategy: NetworkConfig['provideStrategy'] | undefined
  readonly #collectedListeners = new Set<() => void>()
  readonly #pools = new Map<number, ChunkPool>()

  /**
   * Calls `listener` whenever blocks were collected from a store this node
   * shares with other instances, by any of them (the gateway's caches forget
   * what they remembered). Never called for the file store: its
   * collections are this process's own.
   */
  onSharedCollection (listener: () => void): void {
    this.#collectedListeners.add(listener)
  }

  /** Whether a live import lease of this process wrote the block to the shared store (see StorageBlockstore). */
  #holds (cid: CID): boolean {
    return this.#collector instanceof SharedBlockCollector && this.#collector.holds(cid)
  }

  /** The chunks imports of this chunk size share: enough for the leaves in flight of a few imports at once. */
  #pool (chunkSize: number): ChunkPool {
    let pool = this.#pools.get(chunkSize)
    if (pool === undefined) this.#pools.set(chunkSize, pool = new ChunkPool(chunkSize, 16))
    return pool
  }

  /**
   * Opens the repo in `dir`, holding `dir/repo.lock` until `close`: one
   * process at a time. With `network` (and its mode not `off`) the node
   * joins the IPFS network; the libp2p modules are loaded only then. With
   * `shared`, blocks live in that store (S3) and pins and import leases in
   * PostgreSQL, shared with other instances; else blocks are files in
   * `dir/blocks` and pins records in `dir/datastore`.
   */
  static async open (dir: string, options: { network?: HeliaNetworkOptions, shared?: SharedStore } = {}): Promise<HeliaBackend> {
    await mkdir(dir, { recursive: true })
    const unlock = await lockRepo(dir)
    let backend: HeliaBackend | undefined
    try {
      const shared = options.shared
      let storage: BlockStorage
      let blockstore: Parameters<typeof createLightNode>[0]['blockstore']
      if (shared === undefined) {
        const blocks = new FsBlockstore(join(dir, 'blocks'), { shardingStrategy: SHARDING })
        await blocks.open() // creates the directory that readiness and free-space checks look at
        storage = await new FsBlockStorage(blocks.path).open()
        blockstore = blocks
      } else {
        storage = shared.storage
        blockstore = new StorageBlockstore(storage, (cid) => backend !== undefined && backend.#holds(cid))
      }
      const helia = createLightNode({ blockstore, datastore: new LeanFsDatastore(join(dir, 'datastore')) })
      await helia.start()
      backend = new HeliaBackend(helia, storage, unlock, shared)
      if (backend.#collector instanceof SharedBlockCollector) await backend.#collector.start()
      const network = options.network
      if (network !== undefined && network.config.mode !== 'off') await backend.#join(network.config as NetworkConfig & { mode: 'private' | 'public' }, network)
      return backend
    } catch (err) {
      if (backend !== undefined) {
        await backend.close().catch(() => {})
      } else {
        await options.shared?.storage.close().catch(() => {})
        await unlock()
      }
      throw err
    }
  }

  async #join (config: NetworkConfig & { mode: 'private' | 'public' }, options: HeliaNetworkOptions): Promise<void> {
    const { EmbeddedNetwork } = await import('./network/libp2p-node.ts')
    this.#network = await EmbeddedNetwork.start({
      config,
      privateKey: options.privateKey,
      logger: options.logger,
      blocks: {
        has: async (cid) => cid.multihash.code === IDENTITY || this.#storage.has(cid),
        get: async (cid, o) => this.getBlock(cid, o)
      }
    })
    if (this.#network.providing) {
      const { Providing } = await import('./network/providing.ts')
      const network = this.#network
      this.#strategy = config.provideStrategy
      this.#providing = new Providing({
        cids: () => this.#announced(config.provideStrategy),
        provide: async (cid, signal) => network.provide(cid, signal),
        cancel: async (cid) => network.cancelProvide(cid),
        logger: options.logger
      })
      this.#providing.start()
    }
  }

  /** What the provide strategy announces: pinned roots, every block pinned DAGs reach, or every block held. */
  async * #announced (strategy: NetworkConfig['provideStrategy']): AsyncIterable<CID> {
    if (strategy === 'roots') { yield * this.listPins(); return }
    if (strategy === 'all') {
      for await (const block of this.#storage.list()) {
        try { yield SHARDING.decode(block.key) } catch { /* not a block's name */ }
      }
      return
    }
    const seen = new Set<string>()
    for await (const root of this.listPins()) {
      const stack = [root]
      for (let cid = stack.pop(); cid !== undefined; cid = stack.pop()) {
        const key = blockKey(cid)
        if (seen.has(key)) continue
        seen.add(key)
        yield cid
        if (cid.code !== dagPb.code) continue
        try {
          for (const link of dagPb.decode(await this.getBlock(cid)).Links) stack.push(link.Hash)
        } catch { /* a block missing below a pin: nothing under it to announce */ }
      }
    }
  }

  /** The node on the IPFS network; undefined with IPFS_NETWORK=off. */
  get network (): NodeNetwork | undefined {
    const network = this.#network
    if (network === undefined) return undefined
    return {
      mode: network.mode,
      peerId: network.peerId,
      addresses: () => network.addresses(),
      peerCount: () => network.peerCount(),
      originRefusal: (origin) => network.originRefusal(origin),
      connect: async (origins, signal) => network.connect(origins, signal)
    }
  }

  /** The libp2p node, for tests and diagnostics; undefined with networking off. */
  get libp2p (): EmbeddedNetwork['libp2p'] | undefined {
    return this.#network?.libp2p
  }

  async fetchBlock (cid: CID, options: { lease: ImportLease, signal: AbortSignal }): Promise<Uint8Array> {
    options.signal.throwIfAborted()
    let bytes = await this.getBlock(cid, options).catch((err: unknown) => {
      if (!(err instanceof NotFoundError) || this.#network === undefined) throw err
      return undefined
    })
    if (bytes === undefined && this.#network !== undefined) {
      bytes = await this.#network.retrieve(cid, { signal: options.signal })
      // Fetched bytes are stored only when they hash to the CID's own multihash.
      if (!hashMatches(cid, bytes)) throw new Error(`a peer sent bytes for ${cid.toString()} that do not match it`)
    }
    if (bytes === undefined) throw new NotFoundError(`block ${cid.toString()} not found on this node`)
    // Under the lease whether it was here or not: a block only some other import held must not vanish under this one.
    const writer = this.#collector.writer(options.lease)
    await writer.put(cid, bytes, { signal: options.signal })
    await writer.flush()
    return bytes
  }

  async openLease (): Promise<ImportLease> {
    return this.#collector.lease()
  }

  async gc (options: { dryRun?: boolean } = {}): Promise<GcReport> {
    const report = await this.#collector.collect(options)
    if (!report.dryRun && report.blocks > 0 && this.#strategy === 'all') this.#providing?.changed()
    return report
  }

  async importTree (candidates: AsyncIterable<ImportCandidate> | Iterable<ImportCandidate>, options: { profile: keyof typeof IMPORT_PROFILES, signal?: AbortSignal, lease?: ImportLease }): Promise<ImportedNode[]> {
    if (options.lease === undefined) {
      // Unleased, the blocks would be fair game for a sweep before the caller pins them.
      const lease = await this.#collector.lease()
      try {
        return await this.importTree(candidates, { ...options, lease })
      } finally {
        await lease.release()
      }
    }
    const profile = IMPORT_PROFILES[options.profile]
    const nodes: ImportedNode[] = []
    const directories: string[] = []
    const tracked = (async function * () {
      // Every folder the tree has so far: named by its own entry, or by a path below it.
      const folders = new Set<string>()
      for await (const candidate of candidates) {
        if (candidate.content === undefined) {
          // The importer replaces a folder it already holds with an empty one when told of it again (a zip may list
          // `d/` after `d/a.txt`, or twice): the folder's files were lost from the tree, though answered as imported.
          if (folders.has(candidate.path)) continue
          folders.add(candidate.path)
          directories.push(candidate.path)
        }
        for (let slash = candidate.path.indexOf('/'); slash !== -1; slash = candidate.path.indexOf('/', slash + 1)) folders.add(candidate.path.slice(0, slash))
        yield candidate
      }
    })()
    const writer = this.#collector.writer(options.lease)
    const folderOptions = { profile: profile.name, cidVersion: profile.cidVersion, shardSplitStrategy: profile.shardSplitStrategy }
    const source = importer(tracked, writer, {
      ...folderOptions,
      rawLeaves: profile.rawLeaves,
      layout: balanced({ maxChildrenPerNode: profile.maxChildrenPerNode }),
      // Raw leaves (the default profile) are cut into pooled chunks and hashed and written by our leaf step.
      ...(profile.rawLeaves
        ? { chunker: pooledChunker(this.#pool(profile.chunkSize)), bufferImporter: rawLeafImporter(this.#pool(profile.chunkSize)) }
        : { chunker: fixedSize({ chunkSize: profile.chunkSize }) }),
      wrapWithDirectory: true,
      fileImportConcurrency: 16
    })
    for await (const entry of source) {
      options.signal?.throwIfAborted()
      nodes.push({ path: entry.path ?? '', cid: entry.cid, dagSize: entry.size })
    }
    // Every block stored before the tree is read back, pinned or answered.
    await writer.flush()
    // The importer builds empty directories into the tree but does not report them; `ipfs add` does.
    const root = nodes.at(-1)
    const reported = new Set(nodes.map((n) => n.path))
    const missing = directories.filter((dir) => !reported.has(dir))
    if (root !== undefined && missing.length > 0) {
      const found: ImportedNode[] = []
      for (const dir of missing) {
        const stat = await this.#fs.stat(root.cid, { ...OFFLINE, path: dir, extended: true })
        found.push({ path: dir, cid: stat.cid, dagSize: stat.dagSize })
      }
      nodes.splice(nodes.length - 1, 0, ...found)
    }
    const sharded = await shardFoldersAsKubo(nodes, new Set(directories), { get: async (cid) => this.#fromStore(cid) }, folderOptions, writer)
    // Folders built again wrote blocks of their own.
    if (sharded !== nodes) await writer.flush()
    return sharded
  }

  /**
   * Writes a CAR's (or a fetched DAG's) blocks, up to PUT_WINDOW at once:
   * one after the other, a block file took five thread-pool jobs end to end,
   * ~0.5 ms however small the block, and a CAR of 1 M one-link nodes 539 s.
   * Every write has ended when this returns or throws, so that a dropped
   * import's blocks are all there for its lease to remove.
   */
  async putBlocks (blocks: AsyncIterable<VerifiedBlock> | Iterable<VerifiedBlock>, options: { lease: ImportLease, signal?: AbortSignal }): Promise<void> {
    const writer = this.#collector.writer(options.lease)
    const writing = new Set<Promise<void>>()
    let failed: { err: unknown } | undefined
    try {
      for await (const block of blocks) {
        options.signal?.throwIfAborted()
        if (failed !== undefined) break
        const write: Promise<void> = Promise.resolve(writer.put(block.cid, block.bytes, { signal: options.signal })).then(
          () => { writing.delete(write) },
          (err: unknown) => { failed ??= { err }; writing.delete(write) })
        writing.add(write)
        if (writing.size >= PUT_WINDOW) await Promise.race(writing)
      }
    } finally {
      await Promise.all(writing)
    }
    if (failed !== undefined) throw failed.err
    await writer.flush()
  }

  async pin (cid: CID, options: { signal?: AbortSignal, imported?: ImportLease } = {}): Promise<void> {
    if (await this.#pins.has(cid)) return
    // An import's own root: its live lease holds every block of the DAG (each one the importer made, or a CAR's whole
    // checked tree, written or found stored), so those keys are what the pin reaches, and nothing is read back.
    // Otherwise the whole DAG must be here: the walk reads every dag-pb node and checks every raw leaf is present.
    let keys: Iterable<string> | undefined = options.imported === undefined ? undefined : await this.#collector.importedKeys(options.imported, cid)
    if (keys === undefined) {
      const walked: string[] = []
      const walker = PIN_WALKER({ blockstore: this.#helia.blockstore, getCodec: this.#helia.getCodec })
      for await (const node of walker.walk(cid, { ...OFFLINE, signal: options.signal })) walked.push(blockKey(node.block.cid))
      keys = walked
    }
    options.signal?.throwIfAborted()
    await this.#pins.add(cid)
    this.#collector.pinned(keys)
    this.#providing?.changed()
  }

  async unpin (cid: CID): Promise<void> {
    if (!(await this.isPinned(cid))) return
    await this.#pins.remove(cid)
    this.#collector.unpinned()
    this.#providing?.changed()
  }

  /** Whether `cid` is itself a pinned root. */
  async isPinned (cid: CID): Promise<boolean> {
    return this.#pins.has(cid)
  }

  async * listPins (_options: { signal?: AbortSignal } = {}): AsyncIterable<CID> {
    yield * this.#pins.list()
  }

  async stat (cid: CID, path: readonly string[] = [], options: { signal?: AbortSignal } = {}): Promise<NodeStat> {
    try {
      const stat = await this.#fs.stat(cid, { ...OFFLINE, path: path.join('/'), signal: options.signal })
      // @helia/unixfs calls a symlink a file: its node's own data says.
      return stat.unixfs === undefined ? rawStat(stat.cid, Number(stat.size)) : unixfsStat(stat.cid, stat.unixfs)
    } catch (err) {
      return asNotFound(err, `/ipfs/${[cid.toString(), ...path].join('/')}`)
    }
  }

  /** A UnixFS file's bytes, a block at a time as they are asked for (see fileWindow); anything else (a raw block, a symlink) as @helia/unixfs's `cat` reads it. */
  async * read (cid: CID, path: readonly string[], options: ReadOptions = {}): AsyncIterable<Uint8Array> {
    const where = `/ipfs/${[cid.toString(), ...path].join('/')}`
    let entry: UnixFSEntry
    try {
      entry = await exporter(path.length === 0 ? cid : `${cid.toString()}/${path.join('/')}`, this.#helia.blockstore, { ...OFFLINE, signal: options.signal })
    } catch (err) {
      return asNotFound(err, where)
    }
    // The exporter calls every dag-pb node that is not a directory a file: a symlink's data is its target, not bytes to read.
    if (entry.type === 'file' && (entry.unixfs.type === 'file' || entry.unixfs.type === 'raw')) {
      const start = options.offset ?? 0
      const end = options.length === undefined ? Number.POSITIVE_INFINITY : start + options.length
      yield * fileWindow(entry.node, entry.unixfs, start, end, async (block) => {
        options.signal?.throwIfAborted()
        return this.#fromStore(block)
      })
      return
    }
    try {
      // A raw or identity block's bytes came with its entry; anything else (a symlink, a folder) as `cat` answers it.
      const window = { offset: options.offset, length: options.length, signal: options.signal }
      yield * (entry.type === 'raw' || entry.type === 'identity' ? entry.content(window) : this.#fs.cat(cid, { ...OFFLINE, ...window, path: path.join('/') }))
    } catch (err) {
      asNotFound(err, where)
    }
  }

  async * list (cid: CID, path: readonly string[] = [], options: { signal?: AbortSignal } = {}): AsyncIterable<DirectoryEntry> {
    const names: Array<{ name: string, cid: CID }> = []
    try {
      for await (const entry of this.#fs.ls(cid, { ...OFFLINE, path: path.join('/'), signal: options.signal })) names.push({ name: entry.name, cid: entry.cid })
    } catch (err) {
      asNotFound(err, `/ipfs/${[cid.toString(), ...path].join('/')}`)
    }
    for (const { name, cid: child } of names) yield { name, ...await this.stat(child, [], options) }
  }

  /**
   * The block whole, in one read (a file, or one GET through the S3 store's
   * cache): blockstore-fs streams it in 64 KiB chunks that would be copied
   * together again, and an aborted get there leaves its file handle open
   * until garbage collection.
   */
  async getBlock (cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    options.signal?.throwIfAborted()
    return this.#fromStore(cid)
  }

  /** The block from the store (`within`: the collector's sweep transaction); NotFoundError when it is not held. */
  async #fromStore (cid: CID, within?: Within): Promise<Uint8Array> {
    const bytes = await this.#storage.get(cid, within)
    if (bytes === undefined) throw new NotFoundError(`block ${cid.toString()} not found on this node`)
    return bytes
  }

  /**
   * The block read into `into` (for the gateway's pooled buffers): for files
   * one open, one read and one close (callback fs: no FileHandle object per
   * block). The byte count read: less than `into.length` is a short block.
   */
  async readBlockInto (cid: CID, into: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<number> {
    options.signal?.throwIfAborted()
    const read = await this.#storage.readInto(cid, into)
    if (read === undefined) throw new NotFoundError(`block ${cid.toString()} not found on this node`)
    return read
  }

  async ping (): Promise<void> {
    if (!this.#running) throw new Error('the embedded IPFS node is stopped')
    // Writes nothing: the block store takes writes, and the pins answer a read.
    await this.#storage.ping()
    await this.isPinned(EMPTY_BLOCK)
  }

  /** The local folder of blocks (or, for the S3 store, of its read cache), for free-space checks. */
  get blocksDir (): string { return this.#storage.localDir }

  async close (): Promise<void> {
    if (!this.#running) return
    this.#running = false
    if (this.#collector instanceof SharedBlockCollector) await this.#collector.stop()
    else await this.#collector.collect({ dryRun: true }).catch(() => {}) // waits out a collection under way
    await this.#providing?.stop()
    await this.#network?.stop()
    await this.#helia.stop()
    await this.#storage.close()
    await this.#unlock()
  }
}
