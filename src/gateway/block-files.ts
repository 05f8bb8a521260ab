import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { base32upper } from 'multiformats/bases/base32'
import type { CID } from 'multiformats/cid'
import type { BlockSource } from './content-reader.ts'
import { readFileInto } from '../ipfs/read-file-into.ts'

/** What Kubo writes into `blocks/SHARDING` for its default flatfs: a block in the folder named by the two characters before its name's last. */
const KUBO_FLATFS_SHARDING = '/repo/flatfs/shard/v1/next-to-last/2'
const IDENTITY = 0x00

/**
 * Blocks read straight from the files of a flatfs folder: Kubo's `blocks`,
 * shared read-only with this process (IPFS_BLOCKS_DIR). A block is one file
 * named by its multihash, written whole and renamed into place by Kubo, which
 * hashed it when it was added; reading it is one open, one read and one
 * close, with no hop through Kubo's gateway and no second copy over loopback.
 * A block with no file here (Kubo keeps some elsewhere: its filestore, an
 * unfinished write) is asked of `fallback`, Kubo itself.
 */
export class BlockFiles implements BlockSource {
  readonly #dir: string
  readonly #fallback: BlockSource

  /** Refuses a folder that is not flatfs as Kubo lays it out by default: a wrong mount must not look like missing content. */
  constructor (dir: string, fallback: BlockSource) {
    let sharding: string
    try {
      sharding = readFileSync(join(dir, 'SHARDING'), 'utf8').trim()
    } catch (err) {
      throw new Error(`IPFS_BLOCKS_DIR: ${dir} has no readable SHARDING file; it must be Kubo's flatfs "blocks" folder (or unset it)`, { cause: err })
    }
    if (sharding !== KUBO_FLATFS_SHARDING) throw new Error(`IPFS_BLOCKS_DIR: ${dir} is sharded as ${sharding}, not ${KUBO_FLATFS_SHARDING}`)
    this.#dir = dir
    this.#fallback = fallback
  }

  /** Kubo's key of a block: its multihash in RFC 4648 base32, upper case, unpadded (no multibase prefix, unlike blockstore-fs's names). */
  #path (cid: CID): string {
    const key = base32upper.baseEncode(cid.multihash.bytes)
    return join(this.#dir, key.slice(-3, -1), `${key}.data`)
  }

  async getBlock (cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    options.signal?.throwIfAborted()
    if (cid.multihash.code === IDENTITY) return cid.multihash.digest
    try {
      return await readFile(this.#path(cid))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    return this.#fallback.getBlock(cid, options)
  }

  async readBlockInto (cid: CID, into: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<number> {
    options.signal?.throwIfAborted()
    const read = await readFileInto(this.#path(cid), into)
    if (read !== undefined) return read
    const block = await this.#fallback.getBlock(cid, options)
    into.set(block.subarray(0, into.length))
    return block.length
  }
}
