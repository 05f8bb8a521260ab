import { constants } from 'node:fs'
import { access, lstat, mkdir, readdir, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { SHARDING, shardOf } from '../ipfs/block-collector.ts'
import { BlockFileWriter } from '../ipfs/block-file-writer.ts'
import { readFileInto } from '../ipfs/read-file-into.ts'
import { IDENTITY, readIdentityInto, type BlockStorage, type StoredBlock } from './block-storage.ts'


/**
 * Blocks as files in blockstore-fs's layout (`<dir>/<shard>/<key>.data`,
 * see SHARDING): the embedded node's default store, and the S3 store's local
 * read cache. Writes go through BlockFileWriter (temp file and rename).
 */
export class FsBlockStorage implements BlockStorage {
  readonly kind = 'fs'
  readonly #dir: string
  readonly #writer: BlockFileWriter

  constructor (dir: string) {
    this.#dir = dir
    this.#writer = new BlockFileWriter(dir)
  }

  /** Creates the folder: readiness and free-space checks look at it before the first block. */
  async open (): Promise<this> {
    await mkdir(this.#dir, { recursive: true })
    return this
  }

  get localDir (): string { return this.#dir }

  #path (cid: CID): string {
    const { dir, file } = SHARDING.encode(cid)
    return join(this.#dir, dir, file)
  }

  async put (cid: CID, bytes: Uint8Array): Promise<void> {
    if (cid.multihash.code === IDENTITY) return
    await this.#writer.put(cid, bytes)
  }

  async get (cid: CID): Promise<Uint8Array | undefined> {
    if (cid.multihash.code === IDENTITY) return cid.multihash.digest
    try {
      return await readFile(this.#path(cid))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  async readInto (cid: CID, into: Uint8Array): Promise<number | undefined> {
    if (cid.multihash.code === IDENTITY) return readIdentityInto(cid, into)
    return readFileInto(this.#path(cid), into)
  }

  async has (cid: CID): Promise<boolean> {
    if (cid.multihash.code === IDENTITY) return true
    return access(this.#path(cid)).then(() => true, () => false)
  }

  async * list (): AsyncIterable<StoredBlock> {
    const shards = await readdir(this.#dir, { withFileTypes: true }).catch(() => [])
    for (const shard of shards) {
      if (!shard.isDirectory()) continue
      for (const name of await readdir(join(this.#dir, shard.name)).catch(() => [])) {
        if (!name.endsWith(SHARDING.extension) || name.startsWith('.')) continue
        const size = await lstat(join(this.#dir, shard.name, name)).then((s) => s.size, () => undefined)
        if (size !== undefined) yield { key: name, size }
      }
    }
  }

  async delete (keys: readonly string[]): Promise<undefined> {
    await Promise.all(keys.map(async (key) => {
      await unlink(join(this.#dir, shardOf(key), key)).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      })
    }))
  }

  async ping (): Promise<void> {
    // Writes nothing: the folder takes writes.
    await access(this.#dir, constants.R_OK | constants.W_OK | constants.X_OK)
  }

  async close (): Promise<void> {}
}

