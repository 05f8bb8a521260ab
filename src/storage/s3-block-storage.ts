import type { CID } from 'multiformats/cid'
import { blockKey, shardOf } from '../ipfs/block-collector.ts'
import { hashMatches } from '../ipfs/block-hash.ts'
import type { BlockCache } from './block-cache.ts'
import { IDENTITY, readIdentityInto, type BlockStorage, type StoredBlock } from './block-storage.ts'
import type { S3Client } from './s3-client.ts'

const DELETE_BATCH = 1000

/** A block read back from the bucket whose bytes are not its CID's. */
export class CorruptBlockError extends Error {
  constructor (cid: CID) {
    super(`the S3 store returned bytes for ${cid.toString()} that do not hash to it`)
    this.name = 'CorruptBlockError'
  }
}

/**
 * Blocks as objects in an S3-compatible bucket, one object per block, at
 * `<prefix>blocks/<shard>/<key>` (the same names as the file store; the shard,
 * two characters from the end of the multihash, spreads keys over the
 * bucket's partitions where the common `CIQ…` start of every sha2-256 key
 * would not). One object per block keeps a delete one key and a read one
 * GET; the README's benchmark compares it with the file store.
 *
 * Reads go through a bounded cache on the local disk; a block fetched from
 * the bucket is checked against its CID before it is cached or returned. A
 * write always PUTs (an idempotent overwrite): whether the block was there
 * before is not worth a HEAD, and the collector relies on every write of an
 * import reaching the bucket.
 */
export class S3BlockStorage implements BlockStorage {
  readonly kind = 's3'
  readonly #s3: S3Client
  readonly #prefix: string
  readonly #cache: BlockCache
  readonly #writing = new Map<string, Promise<void>>()

  constructor (s3: S3Client, options: { prefix: string, cache: BlockCache }) {
    this.#s3 = s3
    this.#prefix = options.prefix
    this.#cache = options.cache
  }

  get localDir (): string { return this.#cache.dir }
  get cache (): BlockCache { return this.#cache }

  #objectKey (key: string): string {
    return `${this.#prefix}blocks/${shardOf(key)}/${key}`
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

  async get (cid: CID): Promise<Uint8Array | undefined> {
    if (cid.multihash.code === IDENTITY) return cid.multihash.digest
    const cached = await this.#cache.get(cid)
    if (cached !== undefined) return cached
    const bytes = await this.#s3.getObject(this.#objectKey(blockKey(cid)))
    if (bytes === undefined) return undefined
    if (!hashMatches(cid, bytes)) throw new CorruptBlockError(cid)
    await this.#cache.add(cid, bytes)
    return bytes
  }

  async readInto (cid: CID, into: Uint8Array): Promise<number | undefined> {
    if (cid.multihash.code === IDENTITY) return readIdentityInto(cid, into)
    const cached = await this.#cache.readInto(cid, into)
    if (cached !== undefined) return cached
    const got = await this.#s3.getObjectInto(this.#objectKey(blockKey(cid)), into)
    if (got === undefined) return undefined
    // A buffer shorter than the block (a caller's mistake) cannot be checked, so it is neither checked nor cached.
    if (got.size <= into.length) {
      const bytes = into.subarray(0, got.read)
      if (!hashMatches(cid, bytes)) throw new CorruptBlockError(cid)
      await this.#cache.add(cid, bytes)
    }
    return got.read
  }

  async has (cid: CID): Promise<boolean> {
    if (cid.multihash.code === IDENTITY) return true
    if (this.#cache.has(cid)) return true
    return (await this.#s3.headObject(this.#objectKey(blockKey(cid)))) !== undefined
  }

  async * list (): AsyncIterable<StoredBlock> {
    const prefix = `${this.#prefix}blocks/`
    for await (const object of this.#s3.listObjects(prefix)) {
      const key = object.key.slice(object.key.lastIndexOf('/') + 1)
      if (key.endsWith('.data')) yield { key, size: object.size }
    }
  }

  async delete (keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH)
      await this.#s3.deleteObjects(batch.map((key) => this.#objectKey(key)))
      await this.#cache.forget(batch)
    }
  }

  async ping (): Promise<void> {
    await this.#s3.ping()
  }

  async close (): Promise<void> {
    await Promise.allSettled(this.#writing.values())
    this.#s3.close()
  }
}
