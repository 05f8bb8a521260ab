import { randomUUID } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { blockKey, cidOfKey, shardOf } from '../ipfs/block-collector.ts'
import { hashMatches } from '../ipfs/block-hash.ts'
import type { BlockCache } from './block-cache.ts'
import { IDENTITY, readIdentityInto, type BlockStorage, type StoredBlock } from './block-storage.ts'
import type { PackEntry, PackIndex, Within } from './pack-index.ts'
import { PackMemory, PackWriter, type BatchHooks, type BlockBatch, type Pack } from './pack-writer.ts'
import type { S3Client } from './s3-client.ts'
import type { CompactReport } from '../ipfs/ipfs-backend.ts'

const DELETE_BATCH = 1000
/** Whole packs read at once to fill the read cache; past that, a cold read takes just its block (a ranged GET). */
const PACK_READS = 4
/** Larger packs (written with a larger S3_PACK_BYTES) are read a block at a time. */
const READ_AHEAD_BYTES = 32 * 1024 * 1024
/** Old packs rewritten into one new pack at most: each is one GET and one PUT's worth of work between pauses. */
const COMPACT_GROUP = 64
/** Names of pack objects (and of an unfinished pack as the collector lists it); never a block key, which is base32 upper case. */
const PACK = 'pack-'

/** A block read back from the bucket whose bytes are not its CID's. */
export class CorruptBlockError extends Error {
  constructor (cid: CID) {
    super(`the S3 store returned bytes for ${cid.toString()} that do not hash to it`)
    this.name = 'CorruptBlockError'
  }
}

export interface S3BlockStorageOptions {
  prefix: string
  cache: BlockCache
  /** Where packed blocks are (PostgreSQL); without it, or with `packBytes` 0, every block is an object of its own. */
  index?: PackIndex | undefined
  /** An import's blocks are sent in packs of this size (S3_PACK_BYTES). */
  packBytes?: number
  /** Packs of one import sent at once. */
  packsInFlight?: number
  /** What the pack buffers of all imports may hold at once (S3_PACK_MEMORY); past it, packs are sent smaller. */
  packMemory?: number
}

/** S3_PACK_MEMORY's default: a few imports at full pack size (each holds up to three packs). */
export const DEFAULT_PACK_MEMORY = 64 * 1024 * 1024

/**
 * Blocks in an S3-compatible bucket, in two layouts read side by side:
 *
 * - Packs (`<prefix>packs/<name>`): an import's blocks back to back, a few
 *   MiB to an object, with the pack index in PostgreSQL saying where each
 *   block is (a ranged GET reads it). One PUT per pack instead of per block:
 *   what object stores bill and what their request rate limits.
 * - One object per block (`<prefix>blocks/<shard>/<key>`, the file store's
 *   names; the shard, two characters from the end of the multihash, spreads
 *   keys over the bucket's partitions): a put outside an import's batch
 *   (Helia's own), `S3_PACK_BYTES=0`, and buckets written before packs.
 *
 * Reads go through a bounded cache on the local disk; a block fetched from
 * the bucket is checked against its CID before it is cached or returned.
 * A block of a pack not yet stored is read from the pack in memory.
 */
export class S3BlockStorage implements BlockStorage {
  readonly kind = 's3'
  readonly #s3: S3Client
  readonly #prefix: string
  readonly #cache: BlockCache
  readonly #index: PackIndex | undefined
  readonly #packBytes: number
  readonly #packsInFlight: number
  readonly #packMemory: PackMemory
  readonly #writing = new Map<string, Promise<void>>()
  /** Blocks in packs of this process not yet stored, by key, with the pack holding them. */
  readonly #pending = new Map<string, { pack: Pack, bytes: Uint8Array }>()
  /** Whole-pack reads under way, by pack name: the blocks each holds, by key. */
  readonly #packReads = new Map<string, Promise<Map<string, Uint8Array> | undefined>>()

  constructor (s3: S3Client, options: S3BlockStorageOptions) {
    this.#s3 = s3
    this.#prefix = options.prefix
    this.#cache = options.cache
    this.#index = options.index
    this.#packBytes = options.packBytes ?? 0
    this.#packsInFlight = options.packsInFlight ?? 2
    this.#packMemory = new PackMemory(options.packMemory ?? DEFAULT_PACK_MEMORY)
  }

  /** The bytes the pack buffers of this process's imports hold, against their budget. */
  get packMemory (): PackMemory { return this.#packMemory }

  get localDir (): string { return this.#cache.dir }
  get cache (): BlockCache { return this.#cache }

  #objectKey (key: string): string {
    return `${this.#prefix}blocks/${shardOf(key)}/${key}`
  }

  #packKey (name: string): string {
    return `${this.#prefix}packs/${name}`
  }

  /** A batch of an import's writes, sent in packs; undefined when this store writes a block at a time. */
  batch (hooks: BatchHooks): BlockBatch | undefined {
    const index = this.#index
    if (index === undefined || this.#packBytes <= 0) return undefined
    return new PackWriter({
      packBytes: this.#packBytes,
      memory: this.#packMemory,
      inFlight: this.#packsInFlight,
      pending: (key, pack, bytes) => { this.#pending.set(key, { pack, bytes }) },
      store: async (pack) => { await this.#store(pack, index, hooks) },
      drop: (pack) => { this.#unpend(pack) }
    }, hooks)
  }

  /** The pack's object, then its index rows: a row never names an object that is not there. */
  async #store (pack: Pack, index: PackIndex, hooks: BatchHooks): Promise<void> {
    try {
      await hooks.beforeWrite(pack.name)
      await this.#s3.putObject(this.#packKey(pack.name), pack.bytes)
      const indexed = await index.record(pack.name, pack.size, pack.entries.map(({ key, offset, length }) => ({ key, offset, length })))
      // Every block of it was indexed in another pack first (the same content imported at once elsewhere). Left to the
      // collector if this delete fails: the object is unrecorded, and every block of it is stored.
      if (indexed === 0) await this.#s3.deleteObjects([this.#packKey(pack.name)]).catch(() => {})
    } finally {
      this.#unpend(pack)
    }
  }

  #unpend (pack: Pack): void {
    // Only this pack's entries: another import may be holding the same block in a pack of its own.
    for (const { key } of pack.entries) if (this.#pending.get(key)?.pack === pack) this.#pending.delete(key)
  }

  async put (cid: CID, bytes: Uint8Array): Promise<void> {
    if (cid.multihash.code === IDENTITY) return
    const key = blockKey(cid)
    let write = this.#writing.get(key)
    if (write === undefined) {
      write = this.#s3.putObject(this.#objectKey(key), bytes).finally(() => { this.#writing.delete(key) })
      this.#writing.set(key, write)
    }
    await write
  }

  /**
   * The block's bytes from a pending pack, a stored pack or its own object,
   * unchecked; undefined when none has it. `within`: the sweep's transaction
   * (index reads on its connection, no read-ahead under the lock).
   */
  async #fetch (key: string, within?: Within): Promise<Uint8Array | undefined> {
    const pending = this.#pending.get(key)
    if (pending !== undefined) return pending.bytes
    if (this.#index !== undefined) {
      let at = await this.#index.locate(key, within)
      while (at !== undefined) {
        const whole = within === undefined && this.#cache.maxBytes > 0 && at.packSize <= READ_AHEAD_BYTES && (this.#packReads.size < PACK_READS || this.#packReads.has(at.pack))
        const bytes = whole
          ? (await this.#readPack(at.pack))?.get(key)
          : await this.#s3.getRange(this.#packKey(at.pack), at.offset, at.length)
        if (bytes !== undefined) return bytes
        // The pack went between the lookup and the read: the block was collected, or moved by a compaction.
        const now = await this.#index.locate(key, within)
        at = now?.pack === at.pack ? undefined : now
      }
    }
    return this.#s3.getObject(this.#objectKey(key))
  }

  /**
   * A whole pack in one GET, its blocks that hash right put in the read
   * cache: a file or a bundle is read in the order it was packed, so the
   * blocks next to the one asked for are the next ones asked. Returns every
   * indexed block's bytes (checked by the caller), or undefined when the
   * pack is gone.
   */
  async #readPack (name: string): Promise<Map<string, Uint8Array> | undefined> {
    let read = this.#packReads.get(name)
    if (read === undefined) {
      read = (async () => {
        const since = this.#cache.epoch
        const [object, blocks] = await Promise.all([this.#s3.getObject(this.#packKey(name)), this.#index?.blocksOf(name) ?? []])
        if (object === undefined) return undefined
        const found = new Map<string, Uint8Array>()
        for (const block of blocks) {
          // A copy: a block kept by a caller (the gateway's caches) must not keep the whole pack's buffer alive.
          const bytes = Buffer.from(object.subarray(block.offset, block.offset + block.length))
          found.set(block.key, bytes)
          const cid = cidOfKey(block.key)
          if (bytes.length === block.length && hashMatches(cid, bytes)) await this.#cache.add(cid, bytes, since)
        }
        return found
      })().finally(() => { this.#packReads.delete(name) })
      this.#packReads.set(name, read)
    }
    return read
  }

  async get (cid: CID, within?: Within): Promise<Uint8Array | undefined> {
    if (cid.multihash.code === IDENTITY) return cid.multihash.digest
    const cached = await this.#cache.get(cid)
    if (cached !== undefined) return cached
    const since = this.#cache.epoch
    const bytes = await this.#fetch(blockKey(cid), within)
    if (bytes === undefined) return undefined
    if (!hashMatches(cid, bytes)) throw new CorruptBlockError(cid)
    await this.#cache.add(cid, bytes, since)
    return bytes
  }

  async readInto (cid: CID, into: Uint8Array): Promise<number | undefined> {
    if (cid.multihash.code === IDENTITY) return readIdentityInto(cid, into)
    const cached = await this.#cache.readInto(cid, into)
    if (cached !== undefined) return cached
    const key = blockKey(cid)
    if (this.#index !== undefined || this.#pending.has(key)) {
      // Packed (or pending): the block comes whole from a ranged read, then into the caller's buffer.
      const bytes = await this.get(cid)
      if (bytes === undefined) return undefined
      into.set(bytes.subarray(0, into.length))
      return Math.min(into.length, bytes.length)
    }
    const since = this.#cache.epoch
    const got = await this.#s3.getObjectInto(this.#objectKey(key), into)
    if (got === undefined) return undefined
    // A buffer shorter than the block (a caller's mistake) cannot be checked, so it is neither checked nor cached.
    if (got.size <= into.length) {
      const bytes = into.subarray(0, got.read)
      if (!hashMatches(cid, bytes)) throw new CorruptBlockError(cid)
      await this.#cache.add(cid, bytes, since)
    }
    return got.read
  }

  async has (cid: CID): Promise<boolean> {
    if (cid.multihash.code === IDENTITY) return true
    if (this.#cache.has(cid)) return true
    const key = blockKey(cid)
    if (this.#pending.has(key)) return true
    if (this.#index !== undefined && (await this.#index.locate(key)) !== undefined) return true
    return (await this.#s3.headObject(this.#objectKey(key))) !== undefined
  }

  /**
   * Every block held: objects of their own, packed blocks (from the index),
   * and, named by the pack, pack objects with no index row (an import that
   * never finished, or still sending: the collector's leases tell which).
   */
  async * list (): AsyncIterable<StoredBlock> {
    const prefix = `${this.#prefix}blocks/`
    for await (const object of this.#s3.listObjects(prefix)) {
      const key = object.key.slice(object.key.lastIndexOf('/') + 1)
      if (key.endsWith('.data')) yield { key, size: object.size }
    }
    if (this.#index === undefined) return
    yield * this.#index.list()
    let page: StoredBlock[] = []
    const unrecorded = async function * (index: PackIndex, blocks: StoredBlock[]): AsyncIterable<StoredBlock> {
      const recorded = await index.recorded(blocks.map((b) => b.key))
      for (const block of blocks) if (!recorded.has(block.key)) yield block
    }
    for await (const object of this.#s3.listObjects(`${this.#prefix}packs/`)) {
      const name = object.key.slice(object.key.lastIndexOf('/') + 1)
      if (!name.startsWith(PACK)) continue
      page.push({ key: name, size: object.size })
      if (page.length >= DELETE_BATCH) { yield * unrecorded(this.#index, page); page = [] }
    }
    if (page.length > 0) yield * unrecorded(this.#index, page)
  }

  /**
   * Removes blocks (their own objects and their index rows) and unrecorded
   * packs by name. `within`: the sweep's transaction, which index changes
   * run on; then the caller reclaims the packs left empty once it has
   * committed (without it, they are reclaimed here).
   */
  async delete (keys: readonly string[], within?: Within): Promise<readonly string[] | undefined> {
    const blocks = keys.filter((key) => !key.startsWith(PACK))
    let packs = keys.filter((key) => key.startsWith(PACK))
    if (this.#index !== undefined) {
      // A pack recorded since it was listed is not an orphan: it goes only with its last block.
      const recorded = await this.#index.recorded(packs, within)
      packs = packs.filter((name) => !recorded.has(name))
    }
    const touched = new Set<string>()
    for (let i = 0; i < blocks.length; i += DELETE_BATCH) {
      const batch = blocks.slice(i, i + DELETE_BATCH)
      await this.#s3.deleteObjects(batch.map((key) => this.#objectKey(key)))
      for (const pack of await this.#index?.remove(batch, within) ?? []) touched.add(pack)
      await this.#cache.forget(batch)
    }
    await this.#deletePacks(packs)
    if (within !== undefined) return [...touched]
    await this.reclaim([...touched])
    return undefined
  }

  /**
   * Deletes the objects of packs left with no block: of `candidates` (the
   * packs a sweep's deletes touched), or of all. The collector calls it once
   * a sweep's rows are committed: an object goes only after the last row
   * naming it, so a block the index places is always there to read.
   */
  async reclaim (candidates?: readonly string[]): Promise<void> {
    if (this.#index !== undefined) await this.#deletePacks(await this.#index.emptied(candidates))
  }

  async #deletePacks (names: readonly string[]): Promise<void> {
    for (let i = 0; i < names.length; i += DELETE_BATCH) {
      await this.#s3.deleteObjects(names.slice(i, i + DELETE_BATCH).map((name) => this.#packKey(name)))
    }
  }

  /**
   * Rewrites packs most of whose bytes were collected (live blocks under
   * `fraction` of the pack): their live blocks are copied into new packs of
   * up to S3_PACK_BYTES, each leased with `beforeWrite` before it is
   * written; the rows are moved to it inside `locked` (the sweep lock, so no
   * sweep or discard changes them meanwhile), and the old objects go once
   * no row names them. A read that found the old place looks again.
   */
  async compact (options: { fraction: number, beforeWrite: (name: string) => Promise<void>, locked: (work: (within: Within) => Promise<void>) => Promise<void>, pause: () => Promise<void> }): Promise<CompactReport> {
    const index = this.#index
    const report: CompactReport = { packs: 0, bytes: 0 }
    if (index === undefined || this.#packBytes <= 0) return report
    // Packs with nothing left are not among them (reclaim takes those as they are).
    const sparse = await index.sparse(options.fraction, 1000)
    while (sparse.length > 0) {
      // A group's new pack is at most S3_PACK_BYTES, and its old packs are read one at a time, their live blocks copied out.
      const group = [sparse.shift() as typeof sparse[number]]
      let live = group[0]?.live ?? 0
      while (sparse.length > 0 && live + (sparse[0]?.live ?? 0) <= this.#packBytes && group.length < COMPACT_GROUP) {
        const next = sparse.shift() as typeof sparse[number]
        group.push(next)
        live += next.live
      }
      const parts: Buffer[] = []
      const entries: Array<PackEntry & { from: string }> = []
      let size = 0
      const damaged = new Set<string>()
      for (const pack of group) {
        const blocks = await index.blocksOf(pack.name)
        const object = blocks.length === 0 ? undefined : await this.#s3.getObject(this.#packKey(pack.name))
        if (object === undefined) continue
        // Every block copied is checked: a pack whose object lost or changed bytes is left as it is (its blocks read
        // as damaged where they are), never spread into a new pack whose offsets would all be wrong (found by review).
        const copies = blocks.map((block) => Buffer.from(object.subarray(block.offset, block.offset + block.length)))
        if (blocks.some((block, i) => copies[i]?.length !== block.length || !hashMatches(cidOfKey(block.key), copies[i]))) {
          damaged.add(pack.name)
          continue
        }
        for (const [i, block] of blocks.entries()) {
          parts.push(copies[i] as Buffer)
          entries.push({ key: block.key, offset: size, length: block.length, from: pack.name })
          size += block.length
        }
      }
      if (entries.length > 0) {
        const name = `${PACK}${randomUUID()}`
        await options.beforeWrite(name)
        await this.#s3.putObject(this.#packKey(name), Buffer.concat(parts, size))
        await options.locked(async (within) => { await index.move(name, size, entries, within) })
      }
      await this.reclaim()
      if (damaged.size > 0) report.damaged = [...(report.damaged ?? []), ...damaged]
      const rewritten = group.filter((pack) => !damaged.has(pack.name))
      report.packs += rewritten.length
      report.bytes += rewritten.reduce((sum, pack) => sum + pack.size, 0) - size
      await options.pause()
    }
    return report
  }

  async ping (): Promise<void> {
    await this.#s3.ping()
  }

  async close (): Promise<void> {
    await Promise.allSettled(this.#writing.values())
    this.#s3.close()
  }
}
