import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { carBlocks, type Block, type BlockGetter } from '../../src/gateway/dag-walk.ts'
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
