import * as dagPb from '@ipld/dag-pb'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import type { CID } from 'multiformats/cid'
import { beforeEach, describe, expect, it } from 'vitest'
import { UnixFS } from 'ipfs-unixfs'
import { NotFoundError, UnprocessableContentError } from '../../src/errors.ts'
import { ByteLru } from '../../src/gateway/byte-lru.ts'
import { LISTING_MAX_ENTRIES, UnixfsReader } from '../../src/gateway/unixfs-reader.ts'
import { rawBlock, unixfsNode } from '../support/cars.ts'

/** Blocks in memory, counting every read: what a reader asks for is what it costs. */
class CountingBlocks {
  readonly blocks = new Map<string, Uint8Array>()
  gets: string[] = []
  async put (cid: CID, bytes: Uint8Array): Promise<CID> { this.blocks.set(cid.toString(), bytes); return Promise.resolve(cid) }
  async getBlock (cid: CID): Promise<Uint8Array> {
    this.gets.push(cid.toString())
    const block = this.blocks.get(cid.toString())
    if (block === undefined) throw new NotFoundError(`block ${cid.toString()} not found on this node`)
    return Promise.resolve(block)
  }
}

/** A deterministic byte pattern, so any misplaced byte shows. */
const pattern = (size: number, seed = 0): Uint8Array => Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed + (i >> 8)) & 0xff)

async function importTree (blocks: CountingBlocks, files: Array<{ path: string, content: Uint8Array }>, options: Record<string, unknown> = {}): Promise<Map<string, CID>> {
  const cids = new Map<string, CID>()
  for await (const entry of importer(files.map((f) => ({ path: f.path, content: [f.content] })), blocks, { cidVersion: 1, rawLeaves: true, wrapWithDirectory: true, ...options })) cids.set(entry.path ?? '', entry.cid)
  return cids
}

async function collect (source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const chunk of source) chunks.push(chunk)
  return Buffer.concat(chunks)
}

describe('UnixfsReader', () => {
  let blocks: CountingBlocks
  beforeEach(() => { blocks = new CountingBlocks() })

  it('reads a range of a multi-level file from only the blocks that hold it', async () => {
    // 1 KiB chunks, 4 links a node: 64 leaves under 3 levels of nodes.
    const data = pattern(64 * 1024)
    const cids = await importTree(blocks, [{ path: 'big.bin', content: data }], { chunker: fixedSize({ chunkSize: 1024 }), layout: balanced({ maxChildrenPerNode: 4 }) })
    const reader = new UnixfsReader(blocks, { cacheBytes: 1024 * 1024 })
    const node = await reader.resolve(cids.get('') as CID, ['big.bin'])
    expect(node).toEqual({ cid: cids.get('big.bin'), type: 'file', size: data.length })

    blocks.gets = []
    // 100 bytes across the boundary of leaves 40 and 41.
    const bytes = await collect(reader.read(node, { offset: 41 * 1024 - 50, length: 100 }))
    expect(Buffer.compare(bytes, data.subarray(41 * 1024 - 50, 41 * 1024 + 50))).toBe(0)
    // Root cached; below it, two intermediate nodes and two leaves at most, not 64 leaves and 20 nodes.
    expect(blocks.gets.length).toBeLessThanOrEqual(6)
    const leaves = blocks.gets.filter((cid) => (blocks.blocks.get(cid)?.length ?? 0) === 1024)
    expect(leaves).toHaveLength(2)

    blocks.gets = []
    expect(Buffer.compare(await collect(reader.read(node, { offset: 0, length: data.length })), data)).toBe(0)
    expect(blocks.gets.length).toBeGreaterThan(64)
    // The last byte alone, and nothing past the end.
    expect([...await collect(reader.read(node, { offset: data.length - 1, length: 1 }))]).toEqual([data[data.length - 1]])
  })

  it('lists a 2,000-entry directory from its own block, never reading a child', async () => {
    const files = Array.from({ length: 2000 }, (_, i) => ({ path: `dir/f${String(i).padStart(4, '0')}.png`, content: pattern(100 + i, i) }))
    files.push({ path: 'dir/sub/inner.txt', content: pattern(10) })
    // Unsharded whatever its size, and dag-pb leaves: children that would have to be read to learn their type.
    const cids = await importTree(blocks, files, { rawLeaves: false, reduceSingleLeafToSelf: false, shardSplitThresholdBytes: Number.MAX_SAFE_INTEGER })
    const reader = new UnixfsReader(blocks, { cacheBytes: 16 * 1024 * 1024 })
    blocks.gets = []
    const dir = await reader.resolve(cids.get('') as CID, ['dir'])
    expect(dir.type).toBe('directory')
    const entries = await reader.list(dir)
    expect(blocks.gets).toEqual([cids.get('')?.toString(), cids.get('dir')?.toString()])
    expect(entries).toHaveLength(2001)
    const first = entries.find((e) => e.name === 'f0000.png')
    expect(first?.cid.toString()).toBe(cids.get('dir/f0000.png')?.toString())
    // A dag-pb child's size is its DAG's (Tsize), as Kubo lists it: a little more than its 100 bytes.
    expect(first?.type).toBe('unknown')
    expect(first?.size).toBeGreaterThan(100)
    // Listed again: from the cache.
    blocks.gets = []
    expect(await reader.list(dir)).toBe(entries)
    expect(blocks.gets).toEqual([])
  })

  it('lists raw children as files with their exact sizes', async () => {
    const cids = await importTree(blocks, [{ path: 'a.png', content: pattern(1234) }, { path: 'b.png', content: pattern(10) }])
    const reader = new UnixfsReader(blocks, { cacheBytes: 1024 * 1024 })
    const entries = await reader.list(await reader.resolve(cids.get('') as CID, []))
    expect(entries.map((e) => [e.name, e.type, e.size])).toEqual([['a.png', 'file', 1234], ['b.png', 'file', 10]])
  })

  it('finds a name in a HAMT-sharded directory by its hash, reading only the shards on the way', async () => {
    const files = Array.from({ length: 3000 }, (_, i) => ({ path: `sharded/n${i}.bin`, content: pattern(8, i) }))
    const cids = await importTree(blocks, files, { shardSplitThresholdBytes: 1 })
    const shardedCid = cids.get('sharded') as CID
    const shards = [...blocks.blocks.entries()].filter(([cid, bytes]) => cid !== cids.get('')?.toString() && cid.startsWith('bafy') && dagPb.decode(bytes).Links.length > 0)
    expect(shards.length).toBeGreaterThan(10)
    const reader = new UnixfsReader(blocks, { cacheBytes: 16 * 1024 * 1024 })
    blocks.gets = []
    const node = await reader.resolve(cids.get('') as CID, ['sharded', 'n1234.bin'])
    expect(node.cid.toString()).toBe(cids.get('sharded/n1234.bin')?.toString())
    expect(Buffer.compare(await collect(reader.read(node, { offset: 0, length: 8 })), pattern(8, 1234))).toBe(0)
    // The wrapping directory, the shard root (twice: decoded, then walked by the exporter's resolver), a sub-shard or two, the file.
    expect(blocks.gets.length).toBeLessThanOrEqual(7)
    await expect(reader.resolve(cids.get('') as CID, ['sharded', 'n999999.bin'])).rejects.toBeInstanceOf(NotFoundError)

    const entries = await reader.list(await reader.resolve(cids.get('') as CID, ['sharded']))
    expect(entries.map((e) => e.name).sort()).toEqual(files.map((f) => f.path.slice('sharded/'.length)).sort())
    expect(entries.find((e) => e.name === 'n7.bin')?.cid.toString()).toBe(cids.get('sharded/n7.bin')?.toString())
    expect(shardedCid.code).toBe(dagPb.code)
  })

  it('answers unknown content, missing names and paths below a file with NotFoundError', async () => {
    const cids = await importTree(blocks, [{ path: 'a.png', content: pattern(10) }])
    const reader = new UnixfsReader(blocks, { cacheBytes: 1024 * 1024 })
    const root = cids.get('') as CID
    await expect(reader.resolve(root, ['missing.png'])).rejects.toBeInstanceOf(NotFoundError)
    await expect(reader.resolve(root, ['a.png', 'deeper'])).rejects.toBeInstanceOf(NotFoundError)
    await expect(reader.resolve(cids.get('a.png') as CID, [])).resolves.toMatchObject({ type: 'file', size: 10 })
    blocks.blocks.delete(root.toString())
    const fresh = new UnixfsReader(blocks, { cacheBytes: 1024 * 1024 })
    await expect(fresh.resolve(root, ['a.png'])).rejects.toBeInstanceOf(NotFoundError)
  })

  it('resolves each path once, keeps distinct roots apart, and stays within its byte budget', async () => {
    const roots: CID[] = []
    for (let i = 0; i < 40; i++) roots.push((await importTree(blocks, [{ path: 'same.png', content: pattern(50, i) }])).get('') as CID)
    const reader = new UnixfsReader(blocks, { cacheBytes: 1024 * 1024 })
    const first = await reader.resolve(roots[0] as CID, ['same.png'])
    blocks.gets = []
    expect(await reader.resolve(roots[0] as CID, ['same.png'])).toEqual(first)
    expect(blocks.gets).toEqual([])

    const small = new UnixfsReader(blocks, { cacheBytes: 4096 })
    const seen = new Set<string>()
    for (const root of roots) {
      const node = await small.resolve(root, ['same.png'])
      seen.add(node.cid.toString())
      expect(small.cached.bytes).toBeLessThanOrEqual(4096)
    }
    // Same name under 40 roots: 40 different files, each still right after evictions.
    expect(seen.size).toBe(40)
    for (const [i, root] of roots.entries()) {
      const node = await small.resolve(root, ['same.png'])
      expect(Buffer.compare(await collect(small.read(node, { offset: 0, length: 50 })), pattern(50, i))).toBe(0)
    }
    expect(small.cached.entries).toBeGreaterThan(0)
  })
})

describe('ByteLru', () => {
  it('evicts the least recently used first, by bytes, and keeps nothing heavier than its budget', () => {
    const lru = new ByteLru<string>(100)
    lru.set('a', 'A', 40)
    lru.set('b', 'B', 40)
    expect(lru.get('a')).toBe('A') // a is now the most recent
    lru.set('c', 'C', 40)
    expect(lru.get('b')).toBeUndefined()
    expect([lru.get('a'), lru.get('c')]).toEqual(['A', 'C'])
    expect(lru.bytes).toBe(80)
    lru.set('huge', 'H', 101)
    expect(lru.get('huge')).toBeUndefined()
    lru.set('a', 'A2', 10)
    expect([lru.get('a'), lru.bytes]).toEqual(['A2', 50])
  })
})

describe('UnixfsReader listing a HAMT-sharded directory made by hand', () => {
  const hamt = (): UnixFS => new UnixFS({ type: 'hamt-sharded-directory', fanout: 256n })
  const hex = (i: number): string => i.toString(16).toUpperCase().padStart(2, '0')

  /** A shard of `count` entries named `<prefix>e<i>.bin`, each a link to one raw block. */
  async function leafShard (blocks: CountingBlocks, prefix: string, count: number): Promise<CID> {
    const file = await rawBlock(Uint8Array.of(1))
    await blocks.put(file.cid, file.bytes)
    const shard = await unixfsNode(hamt(), Array.from({ length: count }, (_, i) => ({ Name: `${hex(i % 256)}${prefix}e${i}.bin`, Hash: file.cid, Tsize: 1 })))
    return blocks.put(shard.cid, shard.bytes)
  }

  it('refuses a directory whose shards link one shard more than once, reading each shard once', async () => {
    const blocks = new CountingBlocks()
    // As found by review, small: the top shard links one sub-shard 16 times, which links one leaf shard 16 times.
    const leaf = await leafShard(blocks, 'x', 200)
    const sub = await unixfsNode(hamt(), Array.from({ length: 16 }, (_, i) => ({ Name: hex(i), Hash: leaf })))
    await blocks.put(sub.cid, sub.bytes)
    const top = await unixfsNode(hamt(), Array.from({ length: 16 }, (_, i) => ({ Name: hex(i), Hash: sub.cid })))
    await blocks.put(top.cid, top.bytes)
    const reader = new UnixfsReader(blocks, { cacheBytes: 1024 * 1024 })
    const node = await reader.resolve(top.cid, [])
    blocks.gets = []
    // Before, 51,200 entries (16 × 16 × 200): with 1,024 × 256 links, 52 M and the process out of memory.
    await expect(reader.list(node)).rejects.toBeInstanceOf(UnprocessableContentError)
    expect(blocks.gets).toEqual([sub.cid.toString(), leaf.toString()])
  })

  it(`refuses to build a listing of more than ${LISTING_MAX_ENTRIES} entries`, async () => {
    const blocks = new CountingBlocks()
    const perShard = 1_000
    const leaves = []
    for (let i = 0; i <= LISTING_MAX_ENTRIES / perShard; i++) leaves.push(await leafShard(blocks, `s${i}-`, perShard))
    const top = await unixfsNode(hamt(), leaves.map((cid, i) => ({ Name: hex(i), Hash: cid })))
    await blocks.put(top.cid, top.bytes)
    const reader = new UnixfsReader(blocks, { cacheBytes: 1024 * 1024 })
    await expect(reader.list(await reader.resolve(top.cid, []))).rejects.toThrow(`more than ${LISTING_MAX_ENTRIES} entries`)
  })

  it('stops reading shards once its signal is aborted (the client left)', async () => {
    const blocks = new CountingBlocks()
    const leaves = []
    for (let i = 0; i < 8; i++) leaves.push(await leafShard(blocks, `s${i}-`, 10))
    const top = await unixfsNode(hamt(), leaves.map((cid, i) => ({ Name: hex(i), Hash: cid })))
    await blocks.put(top.cid, top.bytes)
    const reader = new UnixfsReader(blocks, { cacheBytes: 1024 * 1024 })
    const node = await reader.resolve(top.cid, [])
    const abort = new AbortController()
    blocks.gets = []
    const getBlock = blocks.getBlock.bind(blocks)
    // The client leaves while the second shard is read.
    blocks.getBlock = async (cid: CID) => { if (blocks.gets.length === 1) abort.abort(); return getBlock(cid) }
    await expect(reader.list(node, { signal: abort.signal })).rejects.toThrow(/abort/i)
    expect(blocks.gets).toHaveLength(2)
  })
})
