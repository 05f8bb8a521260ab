import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { carBlocks, gateFileBlocks, type Block, type BlockGetter } from '../../src/gateway/dag-walk.ts'
import type { CarParams } from '../../src/gateway/format.ts'
import { encodedOrderDag, rawBlock, unixfsNode } from '../support/cars.ts'

/**
 * A file of `outer` links to one node of `inner` links to 1-byte leaves: one leaf linked `inner` times (three blocks),
 * or with `distinct` a leaf per byte of the node (so a range picks different leaves of each occurrence of the node).
 */
async function repeatedFile (outer: number, inner: number, distinct = false): Promise<{ file: Block, blocks: Map<string, Block> }> {
  const leaves = await Promise.all(Array.from({ length: distinct ? inner : 1 }, async (_, i) => rawBlock(Uint8Array.of(i))))
  const leafAt = (i: number): Block => leaves[distinct ? i : 0] as Block
  const mid = await unixfsNode(new UnixFS({ type: 'file', blockSizes: Array.from({ length: inner }, () => 1n) }), Array.from({ length: inner }, (_, i) => ({ Hash: leafAt(i).cid, Tsize: 1 })))
  const file = await unixfsNode(new UnixFS({ type: 'file', blockSizes: Array.from({ length: outer }, () => BigInt(inner)) }), Array.from({ length: outer }, () => ({ Hash: mid.cid, Tsize: inner })))
  return { file, blocks: new Map([...leaves, mid, file].map((b) => [b.cid.toString(), b])) }
}

/** Every block of the entity's CAR, and how many blocks the walk read. */
async function entityCar (file: Block, blocks: Map<string, Block>, params: Partial<CarParams>): Promise<{ cids: string[], reads: number }> {
  let reads = 0
  const source: BlockGetter = {
    getBlock: async (cid: CID) => {
      reads++
      const block = blocks.get(cid.toString())
      if (block === undefined) throw new Error(`no block ${cid.toString()}`)
      return await Promise.resolve(block.bytes)
    }
  }
  const cids: string[] = []
  for await (const block of carBlocks(source, { pathBlocks: [], roots: [file.cid], terminal: file }, { scope: 'entity', order: 'dfs', dups: false, ...params } as CarParams)) cids.push(block.cid.toString())
  return { cids, reads }
}

describe('a CAR of a file that links one subtree many times (dag-scope=entity)', () => {
  it('with dups=n walks a repeated subtree once per part of it the range covers, not once per link', async () => {
    const { file, blocks } = await repeatedFile(256, 1024)
    const started = Date.now()
    const { cids, reads } = await entityCar(file, blocks, {})
    expect(cids).toHaveLength(3)
    // The file's 256 links and one walk of the node's 1,024: before, 256 walks of it (262,144 leaf reads, 11.7 s).
    expect(reads).toBeLessThan(2_000)
    expect(Date.now() - started).toBeLessThan(5_000)
  })

  it.each([[undefined], [{ from: 20, to: 100 }], [{ from: 5, to: 6 }], [{ from: -30, to: null }], [{ from: 0, to: 127 }]])('gives the blocks dups=y gives, once each, in the same order (entity-bytes %j)', async (range) => {
    const { file, blocks } = await repeatedFile(8, 16, true)
    const once = await entityCar(file, blocks, { range: range ?? undefined })
    const every = await entityCar(file, blocks, { range: range ?? undefined, dups: true })
    expect(once.cids).toEqual([...new Set(every.cids)])
    expect(once.cids.length).toBeGreaterThan(2)
  })
})

describe('a CAR through dag-cbor and dag-json (dag-scope=all)', () => {
  it('takes each block\'s links in the order its bytes hold them, as Kubo: not sorted, not integer-like keys first', async () => {
    const { root, blocks, dfsOrder } = await encodedOrderDag()
    const held = new Map(blocks.map((b) => [b.cid.toString(), b.bytes]))
    const source: BlockGetter = {
      getBlock: async (cid: CID) => {
        const bytes = held.get(cid.toString())
        if (bytes === undefined) throw new Error(`no block ${cid.toString()}`)
        return await Promise.resolve(bytes)
      }
    }
    const cids: string[] = []
    for await (const block of carBlocks(source, { pathBlocks: [], roots: [root.cid], terminal: root }, { scope: 'all', order: 'dfs', dups: false } as CarParams)) cids.push(block.cid.toString())
    expect(cids).toEqual(dfsOrder.map((b) => b.cid.toString()))
  })
})

/** A block source over `blocks` that counts its reads. */
function counting (blocks: readonly Block[]): BlockGetter & { reads: number } {
  const held = new Map(blocks.map((b) => [b.cid.toString(), b.bytes]))
  const source = {
    reads: 0,
    getBlock: async (cid: CID) => {
      source.reads++
      const bytes = held.get(cid.toString())
      if (bytes === undefined) throw new Error(`no block ${cid.toString()}`)
      return await Promise.resolve(bytes)
    }
  }
  return source
}

async function car (source: BlockGetter, root: Block, params: Partial<CarParams>): Promise<Block[]> {
  const out: Block[] = []
  for await (const block of carBlocks(source, { pathBlocks: [], roots: [root.cid], terminal: root }, { scope: 'all', order: 'dfs', dups: false, ...params } as CarParams)) out.push(block)
  return out
}

describe('a CAR of a DAG that links one block many times', () => {
  it('with dups=n reads a repeated block once, not once per link (dag-scope=all), and with dups=y sends it at every link', async () => {
    // As found by review, small: a node of 26,000 links to one 1 MiB leaf read 26 GiB for a CAR of 2 MB.
    const leaf = await rawBlock(new Uint8Array(1024).fill(7))
    const node = await unixfsNode(new UnixFS({ type: 'directory' }), Array.from({ length: 2_000 }, (_, i) => ({ Name: `n${i}`, Hash: leaf.cid })))
    const once = counting([node, leaf])
    expect((await car(once, node, {})).map((b) => b.cid.toString())).toEqual([node.cid.toString(), leaf.cid.toString()])
    expect(once.reads).toBe(1)
    const every = counting([node, leaf])
    const repeated = await car(every, node, { dups: true })
    expect(repeated).toHaveLength(2_001)
    expect(repeated.slice(1).every((b) => b.cid.equals(leaf.cid))).toBe(true)
  })

  it('with dups=n reads a repeated HAMT shard once (dag-scope=entity)', async () => {
    const hamt = new UnixFS({ type: 'hamt-sharded-directory', fanout: 256n })
    const file = await rawBlock(Uint8Array.of(1))
    const sub = await unixfsNode(hamt, [{ Name: '00a.bin', Hash: file.cid }])
    const top = await unixfsNode(hamt, Array.from({ length: 256 }, (_, i) => ({ Name: i.toString(16).toUpperCase().padStart(2, '0'), Hash: sub.cid })))
    const source = counting([top, sub, file])
    expect((await car(source, top, { scope: 'entity' })).map((b) => b.cid.toString())).toEqual([top.cid.toString(), sub.cid.toString()])
    expect(source.reads).toBe(1)
  })

  it('with dups=n reads a file\'s repeated leaf once (dag-scope=entity)', async () => {
    const { file, blocks } = await repeatedFile(1, 4_096)
    const { cids, reads } = await entityCar(file, blocks, {})
    expect(cids).toHaveLength(3)
    // The node of 4,096 links and its one leaf: before, a read per link.
    expect(reads).toBe(2)
  })
})

describe('gateFileBlocks', () => {
  it('asks the gate of, and reads, each block of a file once, however often the file links it', async () => {
    const { file, blocks } = await repeatedFile(256, 1_024)
    const source = counting([...blocks.values()])
    const asked: string[] = []
    await gateFileBlocks(source, file.cid, (cid) => { asked.push(cid.toString()) })
    // The file, its node and its leaf: before, 256 reads of the node and 262,401 checks.
    expect(asked).toHaveLength(3)
    expect(source.reads).toBe(2)
  })
})
