import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SHARDING } from '../../src/ipfs/block-collector.ts'
import { BlockFileWriter } from '../../src/ipfs/block-file-writer.ts'
import { ChunkPool, pooledChunker, rawLeafImporter } from '../../src/ipfs/raw-leaf-importer.ts'
import { kuboDeterministicStream } from '../support/kubo-vectors.ts'

const KiB = 1024

async function collect (source: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  // Copied as they come: the pool may hand the same buffer out again once it is given back.
  for await (const chunk of source) out.push(Uint8Array.from(chunk))
  return out
}

/** The bytes as a stream of `size`-byte pieces, one per turn of the event loop's microtasks. */
async function * pieces (bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) {
    await Promise.resolve()
    yield bytes.subarray(i, i + size)
  }
}

describe('pooled chunks', () => {
  it('cuts exactly as the importer\'s fixedSize chunker, whatever pieces the bytes arrive in', async () => {
    const next = kuboDeterministicStream('pooled-chunks')
    for (const [length, piece] of [[0, 7], [1, 1], [64 * KiB, 1000], [64 * KiB * 3, 64 * KiB], [64 * KiB * 3 + 5, 4096], [200_001, 65_537]] as const) {
      const bytes = next(length)
      const pool = new ChunkPool(64 * KiB, 4)
      const ours = await collect(pooledChunker(pool)(pieces(bytes, piece)))
      const theirs = await collect(fixedSize({ chunkSize: 64 * KiB })(pieces(bytes, piece)))
      expect(ours.map((c) => Buffer.from(c).toString('hex')), `${length} bytes in pieces of ${piece}`).toEqual(theirs.map((c) => Buffer.from(c).toString('hex')))
    }
  })

  it('hands a given-back chunk out again, keeps no more than it was told, and ignores buffers it does not own', () => {
    const pool = new ChunkPool(16, 1)
    const a = pool.take()
    const b = pool.take()
    expect(a.buffer).not.toBe(b.buffer)
    pool.give(a.subarray(0, 3)) // a view of the last, short chunk gives back the whole buffer
    pool.give(b) // over `keep`: dropped
    pool.give(new Uint8Array(16)) // not the pool's
    const again = pool.take()
    expect(again.buffer).toBe(a.buffer)
    expect(again.length).toBe(16)
    expect(pool.take().buffer).not.toBe(b.buffer)
  })

  it('gives the same CIDs as the importer\'s own leaf step, and reuses its buffers', async () => {
    const next = kuboDeterministicStream('pooled-import')
    const files = [next(0), next(10), next(256 * KiB), next(256 * KiB * 5 + 17)]
    const options = { cidVersion: 1 as const, rawLeaves: true, layout: balanced({ maxChildrenPerNode: 3 }), wrapWithDirectory: true }
    const candidates = () => files.map((bytes, i) => ({ path: `dir/f${i}.bin`, content: pieces(bytes, 10_000) }))
    // Copies what it is given, as the block files do: a store that kept the buffer would see it used again.
    const copying = (into: Map<string, Uint8Array>) => ({ put: async (cid: CID, bytes: Uint8Array) => { into.set(cid.toString(), Uint8Array.from(bytes)); return Promise.resolve(cid) } })
    const theirs = []
    for await (const entry of importer(candidates(), copying(new Map()), { ...options, chunker: fixedSize({ chunkSize: 256 * KiB }) })) theirs.push(`${entry.path ?? ''} ${entry.cid.toString()} ${entry.size}`)
    const pool = new ChunkPool(256 * KiB, 8)
    let taken = 0
    const distinct = new Set<ArrayBufferLike>()
    const take = pool.take.bind(pool)
    pool.take = () => { taken++; const chunk = take(); distinct.add(chunk.buffer); return chunk }
    const blocks = new Map<string, Uint8Array>()
    const ours = []
    for await (const entry of importer(candidates(), copying(blocks), { ...options, chunker: pooledChunker(pool), bufferImporter: rawLeafImporter(pool), fileImportConcurrency: 1 })) ours.push(`${entry.path ?? ''} ${entry.cid.toString()} ${entry.size}`)
    expect(ours).toEqual(theirs)
    // Every leaf that was written is intact, though its buffer was used again afterwards.
    for (const [key, block] of blocks) {
      const cid = CID.parse(key)
      if (cid.code !== raw.code) continue
      expect(CID.createV1(raw.code, await sha256.digest(block)).equals(cid)).toBe(true)
    }
    // Chunks of the files imported earlier were used again for the later ones.
    expect(taken).toBeGreaterThanOrEqual(9)
    expect(distinct.size).toBeLessThan(taken)
  })
})

describe('BlockFileWriter', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'heimdall-block-writer-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('writes each block where blockstore-fs looks for it, whole, once, with no temp file left', async () => {
    const writer = new BlockFileWriter(dir)
    const next = kuboDeterministicStream('block-writer')
    const blocks = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const bytes = next(1000 + i)
      return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
    }))
    // Every block asked for twice at once: one write each, no shared temp file.
    await Promise.all(blocks.flatMap(({ cid, bytes }) => [writer.put(cid, bytes), writer.put(cid, bytes)]))
    for (const { cid, bytes } of blocks) {
      const { dir: shard, file } = SHARDING.encode(cid)
      expect(Buffer.compare(await readFile(join(dir, shard, file)), bytes)).toBe(0)
    }
    const names = (await Promise.all((await readdir(dir)).map(async (shard) => readdir(join(dir, shard))))).flat()
    expect(names.filter((name) => name.endsWith('.tmp'))).toEqual([])
    expect(names).toHaveLength(40)
    // A block already on disk is not written again.
    const first = blocks[0] as { cid: CID, bytes: Uint8Array }
    await writer.put(first.cid, new Uint8Array(first.bytes.length))
    const { dir: shard, file } = SHARDING.encode(first.cid)
    expect(Buffer.compare(await readFile(join(dir, shard, file)), first.bytes)).toBe(0)
  })
})
