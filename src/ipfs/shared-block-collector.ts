import { setTimeout as sleep } from 'node:timers/promises'
import * as dagPb from '@ipld/dag-pb'
import type { Knex } from 'knex'
import type { CID } from 'multiformats/cid'
import type { BlockLeaseRepository } from '../db/block-lease-repository.ts'
import { NotFoundError, ServiceUnavailableError } from '../errors.ts'
import type { BlockStorage } from '../storage/block-storage.ts'
import type { BlockBatch } from '../storage/pack-writer.ts'
import { blockKey } from './block-collector.ts'
import type { CompactReport, GcReport, ImportLease } from './ipfs-backend.ts'

/** What the collector reads of the pins (PgPinStore). */
export interface SharedPins {
  list: () => AsyncIterable<CID>
  maxSeq: () => Promise<bigint>
  /** Pins after `seq`; `within`: the sweep batch's transaction, read on its connection. */
  addedSince: (seq: bigint, limit?: number, within?: Knex.Transaction) => Promise<{ seq: bigint, cids: CID[] }>
}

export interface SharedBlockCollectorInit {
  /** Where sweeps list and delete, and imports write in batches when the store packs them. */
  storage: Pick<BlockStorage, 'list' | 'delete' | 'batch' | 'reclaim' | 'compact'>
  /** How an import's block is written one at a time (to the storage, announced to peers). */
  put: (cid: CID, bytes: Uint8Array) => Promise<unknown>
  /** Told of blocks an import's batch has stored (announced to peers). */
  stored?: (cid: CID) => void
  leases: BlockLeaseRepository
  pins: SharedPins
  /**
   * A block's bytes; NotFoundError when it is not held. `within`: the sweep
   * batch's transaction, when the read is made under the sweep lock (a
   * store's index is read on that connection, never on a second one).
   */
  getBlock: (cid: CID, within?: Knex.Transaction) => Promise<Uint8Array>
  /** This instance's name in block_leases. */
  instance: string
  /** Seconds between heartbeats of this instance's leases. */
  heartbeatSeconds?: number
  /** Leases not beaten for this long belong to a dead instance. */
  leaseTtlSeconds?: number
  /** Pause after each batch of reads or deletes, so a collection never starves the gateway. */
  pauseMs?: number
  /** This instance's local copies of blocks (the S3 store's read cache), kept in step with what any instance collects. */
  copies?: LocalCopies
  /** Seconds between looks at what other instances collected. */
  syncSeconds?: number
  /** Told the keys any instance collected (this one's included), after `copies` forgot them: the gateway's caches forget too. */
  onCollected?: (keys: readonly string[]) => void
}

/** Local copies of shared blocks (BlockCache), and how far they follow collected_blocks. */
export interface LocalCopies {
  readonly bytes: number
  forget: (keys: readonly string[]) => Promise<void>
  clear: () => Promise<void>
  readCursor: () => Promise<number | undefined>
  writeCursor: (id: number) => Promise<void>
}

/** How long batches of collected keys are kept for instances to read. */
const COLLECTED_KEPT_SECONDS = 24 * 3600

const SWEEP_BATCH = 1000
/** A pack whose indexed blocks fill less than this of it is rewritten: after a collection, no pack is mostly dead bytes. */
const COMPACT_BELOW = 0.5
const WALK_BATCH = 200

class SharedLease implements ImportLease {
  readonly id: number
  /** Keys this import wrote or is about to write. */
  readonly keys = new Set<string>()
  /** Keys not yet recorded in block_lease_keys. */
  readonly unregistered = new Set<string>()
  /** Keys whose block this import has written (counted in the collector's `present`). */
  readonly written = new Set<string>()
  /** Keys the store already held when they were leased: not written again. */
  readonly stored = new Set<string>()
  flushing: Promise<void> | undefined
  /** The import's writes when the store packs them (undefined: not yet asked; null: one at a time). */
  batch: BlockBatch | null | undefined
  settled = false
  readonly #collector: SharedBlockCollector

  constructor (id: number, collector: SharedBlockCollector) {
    this.id = id
    this.#collector = collector
  }

  async release (): Promise<void> { await this.#collector.release(this) }
  async discard (): Promise<void> { await this.#collector.discard(this) }
}

/**
 * Garbage collection of a block store that several instances share (the S3
 * store): the same mark and sweep as the file store's BlockCollector, with
 * what must be agreed on in PostgreSQL.
 *
 * - A lease is a row; every key an import writes is recorded under it
 *   before the block is written (batched: one statement for all the keys
 *   waiting when it runs).
 * - A sweep deletes in batches. Each batch holds an advisory lock alone
 *   while it reads which keys are leased, and until its deletes are done;
 *   a registration holds the same lock shared. So a sweep either sees a
 *   key as leased, or its delete is over before the write that follows the
 *   registration: a block an upload in progress wrote is never lost.
 * - Pins that complete after the mark (on any instance) are found by their
 *   sequence number at every batch and walked before it deletes anything:
 *   a pin is recorded before its lease ends.
 * - One collection runs at a time across instances (a session lock).
 * - Leases of an instance that stopped beating (killed) end after
 *   `leaseTtlSeconds`; those of this instance's previous run end at start.
 */
export class SharedBlockCollector {
  readonly #init: Required<Omit<SharedBlockCollectorInit, 'copies' | 'onCollected' | 'stored'>> & Pick<SharedBlockCollectorInit, 'copies' | 'onCollected' | 'stored'>
  /** Keys written under live leases of this process, with how many: present in the store for as long as a lease holds them. */
  readonly #present = new Map<string, number>()
  /** What pins reached at the last mark, with the pin sequence it covers: a superset of what is pinned now. */
  #reachable: { keys: Set<string>, seq: bigint } | undefined
  #gc: Promise<unknown> = Promise.resolve()
  #heartbeat: NodeJS.Timeout | undefined
  #sync: NodeJS.Timeout | undefined
  /** The last batch of collected_blocks this instance has followed. */
  #cursor = 0
  #following: Promise<void> | undefined

  constructor (init: SharedBlockCollectorInit) {
    const leaseTtlSeconds = init.leaseTtlSeconds ?? 300
    // Several beats within one TTL: a live instance's lease must never look dead (GC_LEASE_TTL_SECONDS may be as low as 10).
    this.#init = { ...init, heartbeatSeconds: init.heartbeatSeconds ?? Math.min(30, leaseTtlSeconds / 3), pauseMs: init.pauseMs ?? 5, syncSeconds: init.syncSeconds ?? 2, leaseTtlSeconds }
  }

  /** Ends what this instance's previous run left, then beats for its leases and follows what others collect. */
  async start (): Promise<void> {
    await this.#init.leases.dropInstance(this.#init.instance)
    await this.#catchUp()
    this.#sync = setInterval(() => { this.#follow().catch(() => {}) }, this.#init.syncSeconds * 1000)
    this.#sync.unref()
    this.#heartbeat = setInterval(() => { this.#init.leases.heartbeat(this.#init.instance).catch(() => {}) }, this.#init.heartbeatSeconds * 1000)
    this.#heartbeat.unref()
  }

  /** Stops beating and following, and waits out a collection under way. */
  async stop (): Promise<void> {
    clearInterval(this.#heartbeat)
    clearInterval(this.#sync)
    await this.#following
    await this.#gc
  }

  /**
   * At start: the local copies forget what was collected while this
   * instance was away, or are dropped whole when that is not known (a new
   * cache, or one older than the batches kept, or from another database).
   */
  async #catchUp (): Promise<void> {
    const copies = this.#init.copies
    const range = await this.#init.leases.collectedRange()
    this.#cursor = range.last
    if (copies === undefined) return
    const cursor = await copies.readCursor()
    if (cursor === undefined || cursor > range.last || (range.first !== undefined && cursor < range.first - 1)) {
      if (copies.bytes > 0) await copies.clear()
    } else {
      this.#cursor = cursor
      await this.#follow()
    }
    await copies.writeCursor(this.#cursor)
  }

  /** Forgets what any instance collected since the last look (one look at a time). */
  async #follow (): Promise<void> {
    this.#following ??= (async () => {
      for (;;) {
        const batch = await this.#init.leases.collectedSince(this.#cursor)
        if (batch.id === this.#cursor) return
        await this.#init.copies?.forget(batch.keys)
        this.#init.onCollected?.(batch.keys)
        this.#cursor = batch.id
        await this.#init.copies?.writeCursor(batch.id)
      }
    })().finally(() => { this.#following = undefined })
    await this.#following
  }

  async lease (): Promise<ImportLease> {
    return new SharedLease(await this.#init.leases.open(this.#init.instance), this)
  }

  /**
   * Whether a live lease of this process wrote the block: then it is in the
   * store, and no sweep can take it (unless this instance missed its
   * heartbeats for the TTL and another expired the lease: `importedKeys`
   * finds that out before a pin).
   */
  holds (cid: CID): boolean {
    return this.#present.has(blockKey(cid))
  }

  /**
   * How an import writes under its lease. Every key is recorded under the
   * lease before its block is written. Where the store packs an import's
   * blocks, `put` returns once the block is taken and `flush` once all are
   * stored: an import flushes before it pins or answers.
   */
  writer (lease: ImportLease): { put: (cid: CID, bytes: Uint8Array, options?: { signal?: AbortSignal }) => Promise<CID>, flush: () => Promise<void> } {
    if (!(lease instanceof SharedLease)) throw new Error('the lease was not opened by this node')
    return {
      put: async (cid, bytes, options) => {
        if (lease.settled) throw new Error('the import lease was already released')
        options?.signal?.throwIfAborted()
        const key = blockKey(cid)
        await this.#leased(lease, key)
        if (lease.stored.has(key)) {
          // Stored already, and kept now that the lease holds it: a bundle uploaded again costs no second copy.
          this.#written(lease, [key])
          return cid
        }
        const batch = this.#batch(lease)
        if (batch !== null) {
          await batch.put(cid, bytes)
          return cid
        }
        await this.#init.put(cid, bytes)
        this.#written(lease, [key])
        return cid
      },
      flush: async () => { await lease.batch?.flush() }
    }
  }

  /** Records `key` (a block's, or a pack's name) under the lease; resolves once it is registered. */
  async #leased (lease: SharedLease, key: string): Promise<void> {
    if (!lease.keys.has(key)) {
      lease.keys.add(key)
      lease.unregistered.add(key)
    }
    await this.#registered(lease, key)
  }

  #batch (lease: SharedLease): BlockBatch | null {
    if (lease.batch === undefined) {
      lease.batch = this.#init.storage.batch?.({
        // A pack's name is leased like a block's key: an unfinished pack is collected only once its lease is over.
        beforeWrite: async (name) => { await this.#leased(lease, name) },
        written: (cids) => {
          this.#written(lease, cids.map(blockKey))
          for (const cid of cids) this.#init.stored?.(cid)
        }
      }) ?? null
    }
    return lease.batch
  }

  /** Blocks now in the store under a live lease: `holds` answers for them without asking the store. */
  #written (lease: SharedLease, keys: readonly string[]): void {
    if (lease.settled) return
    for (const key of keys) {
      if (lease.written.has(key)) continue
      lease.written.add(key)
      this.#present.set(key, (this.#present.get(key) ?? 0) + 1)
    }
  }

  /**
   * The keys `lease` holds (its blocks, written or found stored, and the
   * names of its packs), when it is a lease of this process not yet
   * released that holds `root`: a superset of what a pin of an import's own
   * root reaches, with no walk. Its row is renewed by this call, so no sweep
   * takes its blocks from then on. Undefined for any other lease (the
   * caller walks). A lease whose row another instance's collection expired
   * (this one missed its heartbeats for the TTL) is a ServiceUnavailableError:
   * that instance's sweeps may have taken any of its blocks, and a walk could
   * not tell, since `holds` vouched for them; it is settled here, so that
   * `holds` no longer does.
   */
  async importedKeys (lease: ImportLease, root: CID): Promise<ReadonlySet<string> | undefined> {
    if (!(lease instanceof SharedLease) || lease.settled || !lease.keys.has(blockKey(root))) return undefined
    if (await this.#init.leases.renew(lease.id)) return lease.keys
    this.#settle(lease)
    throw new ServiceUnavailableError('this upload was held too long before it was kept (its import lease expired): send it again')
  }

  /** After a pin: its blocks stay reachable for discards until the next mark. */
  pinned (keys: Iterable<string>): void {
    if (this.#reachable !== undefined) for (const key of keys) this.#reachable.keys.add(key)
  }

  /** Nothing to do here: the remembered reachable set stays a superset, and the next collection marks anew. */
  unpinned (): void {}

  async #registered (lease: SharedLease, key: string): Promise<void> {
    while (lease.unregistered.has(key)) {
      lease.flushing ??= (async () => {
        const batch = [...lease.unregistered]
        for (const k of await this.#init.leases.register(lease.id, batch)) lease.stored.add(k)
        for (const k of batch) lease.unregistered.delete(k)
      })().finally(() => { lease.flushing = undefined })
      await lease.flushing
    }
  }

  #settle (lease: SharedLease): boolean {
    if (lease.settled) return false
    lease.settled = true
    for (const key of lease.written) {
      const n = (this.#present.get(key) ?? 1) - 1
      if (n === 0) this.#present.delete(key)
      else this.#present.set(key, n)
    }
    return true
  }

  async release (lease: SharedLease): Promise<void> {
    await lease.batch?.abort()
    if (!this.#settle(lease)) return
    await lease.flushing?.catch(() => {})
    await this.#init.leases.close(lease.id)
  }

  /** Ends the lease and deletes the blocks it wrote that no pin reaches and no other lease holds. */
  async discard (lease: SharedLease): Promise<{ blocks: number, bytes: number }> {
    // Packs still being sent are stored or failed before the sweep below looks at what the lease wrote.
    await lease.batch?.abort()
    if (!this.#settle(lease)) return { blocks: 0, bytes: 0 }
    await lease.flushing?.catch(() => {})
    await this.#init.leases.close(lease.id)
    if (lease.keys.size === 0) return { blocks: 0, bytes: 0 }
    const reachable = this.#reachable ?? await this.#mark()
    const keys = [...lease.keys]
    let blocks = 0
    for (let i = 0; i < keys.length; i += SWEEP_BATCH) {
      blocks += (await this.#sweepBatch(keys.slice(i, i + SWEEP_BATCH), reachable, false)).length
    }
    return { blocks, bytes: 0 }
  }

  /** Mark and sweep, one at a time on this instance and across instances. */
  async collect (options: { dryRun?: boolean } = {}): Promise<GcReport> {
    const run = this.#gc.then(async () => this.#init.leases.exclusiveCollection(async () => this.#collect(options.dryRun === true)))
    this.#gc = run.catch(() => {})
    return run
  }

  async #collect (dryRun: boolean): Promise<GcReport> {
    if (!dryRun) {
      await this.#init.leases.expire(this.#init.leaseTtlSeconds)
      await this.#init.leases.pruneCollected(COLLECTED_KEPT_SECONDS)
    }
    const reachable = await this.#mark()
    const report: GcReport = { dryRun, blocks: 0, bytes: 0, records: 0 }
    let batch: Array<{ key: string, size: number }> = []
    const flush = async (): Promise<void> => {
      const sizes = new Map(batch.map((b) => [b.key, b.size]))
      batch = []
      for (const key of await this.#sweepBatch([...sizes.keys()], reachable, dryRun)) {
        report.blocks++
        report.bytes += sizes.get(key) ?? 0
      }
      await sleep(this.#init.pauseMs)
    }
    for await (const block of this.#init.storage.list()) {
      if (reachable.keys.has(block.key)) continue
      batch.push(block)
      if (batch.length >= SWEEP_BATCH) await flush()
    }
    if (batch.length > 0) await flush()
    if (!dryRun && this.#init.storage.compact !== undefined) report.compacted = await this.#compact()
    // Empty packs a crash left between a sweep's commit and its reclaim: one look per collection.
    if (!dryRun) await this.#init.storage.reclaim?.()
    return report
  }

  /** Packs most of whose blocks this or earlier collections took are rewritten, under a lease of the collector's own. */
  async #compact (): Promise<CompactReport | undefined> {
    const lease = await this.lease() as SharedLease
    try {
      return await this.#init.storage.compact?.({
        fraction: COMPACT_BELOW,
        beforeWrite: async (name) => { await this.#leased(lease, name) },
        locked: async (work) => { await this.#init.leases.sweep(async ({ transaction }) => { await work(transaction) }) },
        pause: async () => { await sleep(this.#init.pauseMs) }
      })
    } finally {
      await lease.release()
    }
  }

  /**
   * Deletes those of `keys` that no pin reaches and no lease holds, with the
   * sweep lock held alone; first reads the leases, then walks the pins
   * recorded since the mark.
   * Returns the keys deleted (or, with `dryRun`, that would be).
   */
  async #sweepBatch (keys: readonly string[], reachable: { keys: Set<string>, seq: bigint }, dryRun: boolean): Promise<string[]> {
    let touched: readonly string[] = []
    const doomed = await this.#init.leases.sweep(async ({ leased, collected, transaction }) => {
      // Leases first, pins second: an import pins before it ends its lease, so a lease ended before this read has its
      // pin visible to the next; read the other way round, a pin and its lease's end could both fall between them.
      const held = await leased(keys)
      const added = await this.#init.pins.addedSince(reachable.seq, undefined, transaction)
      for (const root of added.cids) await this.#walk(root, reachable.keys, transaction)
      reachable.seq = added.seq
      const doomed = keys.filter((key) => !reachable.keys.has(key) && !held.has(key))
      if (!dryRun) {
        touched = await this.#init.storage.delete(doomed, transaction) ?? []
        await collected(doomed)
      }
      return doomed
    })
    // Committed: the packs those deletes left empty can go.
    if (touched.length > 0) await this.#init.storage.reclaim?.(touched)
    return doomed
  }

  /** What every pin reaches now, remembered for discards. */
  async #mark (): Promise<{ keys: Set<string>, seq: bigint }> {
    const reachable = { keys: new Set<string>(), seq: await this.#init.pins.maxSeq() }
    for await (const root of this.#init.pins.list()) await this.#walk(root, reachable.keys)
    this.#reachable = reachable
    return reachable
  }

  /**
   * Adds what `root` reaches. A block that is not there has nothing below it
   * to keep; any other error (the store unreachable) ends the collection, so
   * that a read that failed never lets a sweep take what is under it.
   */
  async #walk (root: CID, reachable: Set<string>, within?: Knex.Transaction): Promise<void> {
    const stack = [root]
    let read = 0
    for (let cid = stack.pop(); cid !== undefined; cid = stack.pop()) {
      const key = blockKey(cid)
      if (reachable.has(key)) continue
      reachable.add(key)
      if (cid.code !== dagPb.code) continue
      let bytes: Uint8Array
      try {
        bytes = await this.#init.getBlock(cid, within)
      } catch (err) {
        if (err instanceof NotFoundError) continue
        throw err
      }
      for (const link of dagPb.decode(bytes).Links) stack.push(link.Hash)
      if (++read % WALK_BATCH === 0) await sleep(this.#init.pauseMs)
    }
  }
}
