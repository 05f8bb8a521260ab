import { createHash } from 'node:crypto'
import type { BufferImporter } from 'ipfs-unixfs-importer'
import type { Chunker } from 'ipfs-unixfs-importer/chunker'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'

/**
 * Chunk-sized buffers used again from one block to the next. An upload
 * otherwise allocates a new chunk for every block (1 MiB each in the
 * default profile) outside V8's heap, and that churn alone set off a full
 * garbage collection every ~15 MB imported: more time than the hashing.
 */
export class ChunkPool {
  readonly chunkSize: number
  readonly #free: Uint8Array[] = []
  readonly #owned = new WeakSet<ArrayBufferLike>()
  readonly #keep: number

  constructor (chunkSize: number, keep: number) {
    this.chunkSize = chunkSize
    this.#keep = keep
  }

  take (): Uint8Array {
    const chunk = this.#free.pop()
    if (chunk !== undefined) return chunk
    const fresh = new Uint8Array(this.chunkSize)
    this.#owned.add(fresh.buffer)
    return fresh
  }

  /** Gives back a chunk (or a view of one) that nothing reads any more; anything else is left alone. */
  give (chunk: Uint8Array): void {
    if (!this.#owned.has(chunk.buffer) || this.#free.length >= this.#keep) return
    this.#free.push(new Uint8Array(chunk.buffer, 0, this.chunkSize))
  }
}

/**
 * Fixed-size chunks, as the importer's `fixedSize` chunker cuts them, copied
 * into pooled buffers instead of new ones. The last chunk is a view of its
 * buffer; an empty file is one empty chunk.
 */
export function pooledChunker (pool: ChunkPool): Chunker {
  const size = pool.chunkSize
  return async function * chunks (source) {
    let chunk = pool.take()
    let filled = 0
    let emitted = false
    for await (const piece of source) {
      for (let offset = 0; offset < piece.byteLength;) {
        const n = Math.min(size - filled, piece.byteLength - offset)
        chunk.set(piece.subarray(offset, offset + n), filled)
        filled += n
        offset += n
        if (filled === size) {
          yield chunk
          emitted = true
          chunk = pool.take()
          filled = 0
        }
      }
    }
    if (filled > 0 || !emitted) yield chunk.subarray(0, filled)
    else pool.give(chunk)
  }
}

/**
 * The importer's leaf step for raw leaves (profile unixfs-v1-2025): hash,
 * write, then give the chunk back to the pool. Raw leaves are the chunk
 * itself, and once written the importer reads nothing of it again (it keeps
 * a single leaf's bytes only to re-encode it with mtime or mode, which we
 * never set). The blockstore must not keep the bytes it is given once its
 * put resolved (block files are written out; a store that kept a reference
 * would see the chunk used again). Same bytes, same CIDs as the default
 * importer (the Kubo vectors check it).
 */
export function rawLeafImporter (pool: ChunkPool): BufferImporter {
  return async function * importLeaves (file, blockstore) {
    for await (const block of file.content) {
      yield async () => {
        const digest = createHash('sha256').update(block).digest()
        const cid = CID.createV1(raw.code, Digest.create(sha256.code, digest))
        await blockstore.put(cid, block)
        const size = block.byteLength
        pool.give(block)
        return { cid, size: BigInt(size), block: EMPTY }
      }
    }
  }
}

const EMPTY = new Uint8Array(0)
