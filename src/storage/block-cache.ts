import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { blockKey } from '../ipfs/block-collector.ts'
import { FsBlockStorage } from './fs-block-storage.ts'

/**
 * A bounded cache of blocks on the local disk, in front of a remote store:
 * at most `maxBytes` of block files, the least recently read removed first.
 * Blocks never change, so a cached block is never stale; one the remote
 * store has since collected is dropped with `forget`. What is on disk at
 * start is taken back (in no particular order of use).
 */
export class BlockCache {
  readonly #files: FsBlockStorage
  readonly #maxBytes: number
  /** Key → size, least recently used first (a Map keeps insertion order; a hit moves the key to the end). */
  readonly #sizes = new Map<string, number>()
  #bytes = 0
  #epoch = 0

  private constructor (files: FsBlockStorage, maxBytes: number) {
    this.#files = files
    this.#maxBytes = maxBytes
  }

  static async open (dir: string, maxBytes: number): Promise<BlockCache> {
    const cache = new BlockCache(await new FsBlockStorage(dir).open(), maxBytes)
    for await (const block of cache.#files.list()) cache.#remember(block.key, block.size)
    await cache.#evict()
    return cache
  }

  get dir (): string { return this.#files.localDir }
  /** Bytes of block files held now. */
  get bytes (): number { return this.#bytes }
  /** The budget: 0 when nothing is cached. */
  get maxBytes (): number { return this.#maxBytes }

  /** Whether the block is cached (known to the cache; its file read on `get`). */
  has (cid: CID): boolean {
    return this.#sizes.has(blockKey(cid))
  }

  async readInto (cid: CID, into: Uint8Array): Promise<number | undefined> {
    if (this.#maxBytes === 0) return undefined
    const read = await this.#files.readInto(cid, into)
    if (read !== undefined) this.#touch(blockKey(cid))
    return read
  }

  async get (cid: CID): Promise<Uint8Array | undefined> {
    if (this.#maxBytes === 0) return undefined
    const bytes = await this.#files.get(cid)
    if (bytes !== undefined) this.#touch(blockKey(cid))
    return bytes
  }

  /**
   * Where the cache stands before a read from the remote store begins: pass
   * it to `add` with what the read returned. A read in flight while the
   * store collected its block must not put the block back after `forget`
   * (found by review: one instance served a collected file from its cache
   * indefinitely, and took it as held when asked to pin it).
   */
  get epoch (): number { return this.#epoch }

  /**
   * Keeps a block read from the remote store (its bytes already checked
   * against its CID), unless blocks were forgotten since `readSince` (the
   * `epoch` taken before the read began): the read may have raced their
   * collection, so it is not kept (forgetting happens once per collection,
   * and the next read caches it).
   */
  async add (cid: CID, bytes: Uint8Array, readSince: number): Promise<void> {
    if (bytes.length > this.#maxBytes || readSince !== this.#epoch) return
    const key = blockKey(cid)
    if (this.#sizes.has(key)) { this.#touch(key); return }
    await this.#files.put(cid, bytes)
    // A forget that ran while the file was written could not see it: checked again before it is remembered.
    if (readSince !== this.#epoch) { await this.#files.delete([key]); return }
    this.#remember(key, bytes.length)
    await this.#evict()
  }

  /** Drops blocks the remote store no longer holds; reads in flight meanwhile are not kept (see `epoch`). */
  async forget (keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return
    this.#epoch++
    const held = keys.filter((key) => this.#sizes.has(key))
    for (const key of held) { this.#bytes -= this.#sizes.get(key) ?? 0; this.#sizes.delete(key) }
    await this.#files.delete(held)
  }

  /** Drops every cached block. */
  async clear (): Promise<void> {
    this.#epoch++
    const keys = [...this.#sizes.keys()]
    this.#sizes.clear()
    this.#bytes = 0
    await this.#files.delete(keys)
  }

  /**
   * Up to which batch of collected_blocks this cache has forgotten what other
   * instances collected (undefined: unknown, e.g. a new cache).
   */
  async readCursor (): Promise<number | undefined> {
    try {
      const value = Number((await readFile(join(this.dir, 'collected-cursor'), 'utf8')).trim())
      return Number.isSafeInteger(value) && value >= 0 ? value : undefined
    } catch {
      return undefined
    }
  }

  async writeCursor (id: number): Promise<void> {
    const file = join(this.dir, 'collected-cursor')
    await writeFile(`${file}.tmp`, `${id}\n`)
    await rename(`${file}.tmp`, file)
  }

  #remember (key: string, size: number): void {
    if (this.#sizes.has(key)) return
    this.#sizes.set(key, size)
    this.#bytes += size
  }

  #touch (key: string): void {
    const size = this.#sizes.get(key)
    if (size === undefined) return
    this.#sizes.delete(key)
    this.#sizes.set(key, size)
  }

  async #evict (): Promise<void> {
    const evicted: string[] = []
    for (const [key, size] of this.#sizes) {
      if (this.#bytes <= this.#maxBytes) break
      this.#sizes.delete(key)
      this.#bytes -= size
      evicted.push(key)
    }
    if (evicted.length > 0) await this.#files.delete(evicted)
  }
}
