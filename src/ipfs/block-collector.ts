import { lstat, readdir, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { NextToLast } from 'blockstore-fs/sharding'
import { base36 } from 'multiformats/bases/base36'
import { base32upper } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import * as raw from 'multiformats/codecs/raw'
import { NotFoundError } from '../errors.ts'
import type { GcReport, ImportLease } from './ipfs-backend.ts'
import type { Helia } from '@helia/interface'

type Blockstore = Helia['blockstore']
type Datastore = Helia['datastore']

const SHARD_CHARS = 2
/** How blockstore-fs names a block's file (its default, spelled out); the collector lists those files instead of reading blocks. */
export const SHARDING = new NextToLast({ prefixLength: SHARD_CHARS, extension: '.data' })
const BLOCK_EXT = SHARDING.extension
const PINNED_BLOCK_PREFIX = '/pinned-block/'
const DELETE_BATCH = 64

/** A block's file name (`<base32 multihash>.data`): the key a block is known by here, whatever its CID's codec. */
export const blockKey = (cid: CID): string => SHARDING.encode(cid).file
/** A CID (raw codec) of the block a key names: what a block known only by its key is checked and cached under. */
export const cidOfKey = (key: string): CID => CID.createV1(raw.code, Digest.decode(base32upper.decoder.decode(key.slice(0, key.length - BLOCK_EXT.length))))
/** The shard folder of a block key (the two characters before its last, as NextToLast names it). */
export const shardOf = (key: string): string => key.slice(key.length - BLOCK_EXT.length - SHARD_CHARS, key.length - BLOCK_EXT.length)
/** steno (blockstore-fs's atomic writer) writes `.<name>.tmp` beside the block and renames it. */
const tmpName = (key: string): string => `.${key}.tmp`

export interface BlockCollectorInit {
  /** The blockstore-fs directory. */
  dir: string
  /** Where imports write (Helia's blockstore); puts go through a lease first. */
  blockstore: Pick<Blockstore, 'put'>
  /** The same blocks, each read whole in one read, for marking; NotFoundError for a block not held. */
  getBlock: (cid: CID) => Promise<Uint8Array>
  datastore: Pick<Datastore, 'queryKeys' | 'delete'>
  /** Every pinned root. */
  roots: () => AsyncIterable<CID>
}

class Lease implements ImportLease {
  /** Keys of every block this import wrote, or was about to write. */
  readonly keys = new Set<string>()
  settled = false
  readonly #collector: BlockCollector

  constructor (collector: BlockCollector) { this.#collector = collector }

  async release (): Promise<void> { this.#collector.settle(this); await Promise.resolve() }
  async discard (): Promise<void> { await this.#collector.discard(this) }
}

/**
 * Garbage collection for the embedded node: mark every block a pin reaches
 * (dag-pb nodes are read for their links; raw leaves are known by their CID
 * and never read), sweep every other block file. Blocks of imports under way
 * are held by leases. A put and a delete of the same block cannot interleave:
 * a put records its key in its lease, then waits out a delete of that key
 * already started; a delete starts only if, at that same instant (no await
 * between check and start), no lease holds the key.
 */
export class BlockCollector {
  readonly #init: BlockCollectorInit
  /** How many open leases hold each key. */
  readonly #leased = new Map<string, number>()
  readonly #deleting = new Map<string, Promise<number>>()
  /** Reachable sets being built; a pin that completes meanwhile adds to them. */
  readonly #marking = new Set<Set<string>>()
  /** What pins reached at the last mark, plus pins since: a superset of what is pinned now. */
  #reachable: Set<string> | undefined
  #gc: Promise<unknown> = Promise.resolve()

  constructor (init: BlockCollectorInit) {
    this.#init = init
  }

  lease (): ImportLease { return new Lease(this) }

  /** The blockstore an import writes to under `lease` (each put is stored when it returns: `flush` has nothing to wait for). */
  writer (lease: ImportLease): Pick<Blockstore, 'put'> & { flush: () => Promise<void> } {
    if (!(lease instanceof Lease)) throw new Error('the lease was not opened by this node')
    return {
      put: async (cid, bytes, options) => {
        if (lease.settled) throw new Error('the import lease was already released')
        const key = blockKey(cid)
        if (!lease.keys.has(key)) {
          lease.keys.add(key)
          this.#leased.set(key, (this.#leased.get(key) ?? 0) + 1)
        }
        await this.#deleting.get(key)
        return this.#init.blockstore.put(cid, bytes, options)
      },
      flush: async () => {}
    }
  }

  /**
   * The keys of every block `lease` holds (written, or found on disk), when
   * it is a live lease of this collector that holds `root`: what a pin of an
   * import's own root reaches, with no walk. Undefined otherwise.
   */
  importedKeys (lease: ImportLease, root: CID): Promise<ReadonlySet<string> | undefined> {
    return Promise.resolve(lease instanceof Lease && !lease.settled && lease.keys.has(blockKey(root)) ? lease.keys : undefined)
  }

  /** After a pin: its blocks stay reachable for every sweep under way and for discards. Call before the lease is released. */
  pinned (keys: Iterable<string>): void {
    for (const set of [this.#reachable, ...this.#marking]) {
      if (set !== undefined) for (const key of keys) set.add(key)
    }
  }

  settle (lease: Lease): boolean {
    if (lease.settled) return false
    lease.settled = true
    for (const key of lease.keys) {
      const n = (this.#leased.get(key) ?? 1) - 1
      if (n === 0) this.#leased.delete(key)
      else this.#leased.set(key, n)
    }
    return true
  }

  /** Removes the blocks a dropped import wrote that no pin reaches and no other lease holds. */
  async discard (lease: Lease): Promise<{ blocks: number, bytes: number }> {
    if (!this.settle(lease)) return { blocks: 0, bytes: 0 }
    if (lease.keys.size === 0) return { blocks: 0, bytes: 0 }
    if (this.#reachable === undefined) await this.#mark()
    const freed = { blocks: 0, bytes: 0 }
    const keys = [...lease.keys]
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      // Read per batch: a collection may have replaced the remembered set, and pins since went to the new one.
      const reachable = this.#reachable ?? new Set()
      const started = keys.slice(i, i + DELETE_BATCH).map((key) => this.#deleteUnlessKept(key, reachable, [tmpName(key), key]))
      for (const bytes of await Promise.all(started)) {
        if (bytes !== undefined) { freed.blocks++; freed.bytes += bytes }
      }
    }
    return freed
  }

  /** Mark and sweep; runs one at a time. */
  async collect (options: { dryRun?: boolean } = {}): Promise<GcReport> {
    const run = this.#gc.then(async () => this.#collect(options.dryRun === true))
    this.#gc = run.catch(() => {})
    return run
  }

  async #collect (dryRun: boolean): Promise<GcReport> {
    // In #marking from before the first pin is listed until the sweep ends: a pin that completes meanwhile adds to it.
    const reachable = new Set<string>()
    this.#marking.add(reachable)
    const report: GcReport = { dryRun, blocks: 0, bytes: 0, records: 0 }
    try {
      for await (const root of this.#init.roots()) await this.#walk(root, reachable)
      for (const shard of await readdir(this.#init.dir, { withFileTypes: true })) {
        if (!shard.isDirectory()) continue
        const names = await readdir(join(this.#init.dir, shard.name)).catch(() => [])
        const batch: Array<Promise<number | undefined>> = []
        for (const name of names) {
          const key = name.endsWith(BLOCK_EXT) ? name : name.startsWith('.') && name.endsWith(`${BLOCK_EXT}.tmp`) ? name.slice(1, -4) : undefined
          if (key === undefined) continue
          batch.push(dryRun ? this.#sizeUnlessKept(key, name, reachable) : this.#deleteUnlessKept(key, reachable, [name]))
        }
        for (const bytes of await Promise.all(batch)) {
          if (bytes !== undefined) { report.blocks++; report.bytes += bytes }
        }
      }
      // Per-block pin records, which earlier versions wrote through Helia's pins (see pin-records.ts): gone once nothing pins their block.
      for await (const record of this.#init.datastore.queryKeys({ prefix: PINNED_BLOCK_PREFIX })) {
        const key = keyOfRecord(record.toString())
        if (key === undefined || reachable.has(key) || this.#leased.has(key)) continue
        report.records++
        if (!dryRun) await this.#init.datastore.delete(record)
      }
      if (!dryRun) this.#reachable = reachable
    } finally {
      this.#marking.delete(reachable)
    }
    return report
  }

  /** Remembers what the pins reach now, for discards; set before pins stop adding to it, so none is missed. */
  async #mark (): Promise<void> {
    const reachable = new Set<string>()
    this.#marking.add(reachable)
    try {
      for await (const root of this.#init.roots()) await this.#walk(root, reachable)
      this.#reachable = reachable
    } finally {
      this.#marking.delete(reachable)
    }
  }

  /** After an unpin: what it held may be unreachable now, so the next discard marks again. */
  unpinned (): void {
    this.#reachable = undefined
  }

  async #walk (root: CID, reachable: Set<string>): Promise<void> {
    const stack = [root]
    for (let cid = stack.pop(); cid !== undefined; cid = stack.pop()) {
      const key = blockKey(cid)
      if (reachable.has(key)) continue
      reachable.add(key)
      if (cid.code === raw.code) continue
      if (cid.code !== dagPb.code) continue
      let bytes: Uint8Array
      try {
        bytes = await this.#init.getBlock(cid)
      } catch (err) {
        // A pinned DAG missing a block: nothing below it to keep. Any other failure (EACCES, EIO, EMFILE) ends the
        // collection, so that a block that could not be read never lets a sweep take what is under it.
        if (err instanceof NotFoundError) continue
        throw err
      }
      for (const link of dagPb.decode(bytes).Links) stack.push(link.Hash)
    }
  }

  /** `reachable`: a mark (a sweep's own), or the remembered superset (a discard's, which also asks the current one). */
  #kept (key: string, reachable: Set<string>): boolean {
    return reachable.has(key) || this.#leased.has(key) || this.#deleting.has(key)
  }

  async #sizeUnlessKept (key: string, name: string, reachable: Set<string>): Promise<number | undefined> {
    if (this.#kept(key, reachable)) return undefined
    return lstat(join(this.#init.dir, shardOf(key), name)).then((s) => s.size, () => undefined)
  }

  /**
   * Deletes the files of a block (`names`: the block, a partial write of it)
   * unless it is kept. The check and the start of the delete happen in one
   * synchronous step.
   */
  #deleteUnlessKept (key: string, reachable: Set<string>, names: readonly string[]): Promise<number | undefined> {
    if (this.#kept(key, reachable)) return Promise.resolve(undefined)
    const dir = join(this.#init.dir, shardOf(key))
    const removal = (async () => {
      let bytes = 0
      for (const name of names) {
        try {
          const { size } = await lstat(join(dir, name))
          await unlink(join(dir, name))
          bytes += size
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        }
      }
      return bytes
    })()
    this.#deleting.set(key, removal)
    return removal.finally(() => { this.#deleting.delete(key) }).then((bytes) => (bytes > 0 ? bytes : undefined))
  }
}

/** `/pinned-block/<base36 multihash>` → the block's file name. */
function keyOfRecord (record: string): string | undefined {
  try {
    const multihash = base36.decode(record.slice(PINNED_BLOCK_PREFIX.length))
    return SHARDING.encode({ multihash: { bytes: multihash } } as unknown as CID).file
  } catch {
    return undefined
  }
}
