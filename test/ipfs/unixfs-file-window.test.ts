import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { fileWindow } from '../../src/ipfs/unixfs-file-window.ts'
import { rawBlock, unixfsNode, type Block } from '../support/cars.ts'

/** A block getter over `blocks` that counts its reads. */
function store (blocks: readonly Block[]): { get: (cid: CID) => Promise<Uint8Array>, reads: () => number } {
  const byCid = new Map(blocks.map((b) => [b.cid.toString(), b.bytes]))
  let reads = 0
  return {
    get: async (cid) => {
      reads++
      const bytes = byCid.get(cid.toString())
      return bytes === undefined ? Promise.reject(new Error(`no ${cid.toString()}`)) : Promise.resolve(bytes)
    },
    reads: () => reads
  }
}

async function read (root: Block, start: number, end: number, get: (cid: CID) => Promise<Uint8Array>): Promise<number[]> {
  const node = dagPb.decode(root.bytes)
  const out: number[] = []
  for await (const chunk of fileWindow(node, UnixFS.unmarshal(node.Data as Uint8Array), start, end, get)) out.push(...chunk)
  return out
}

describe('fileWindow', () => {
  it('reads a window of a file across raw leaves, dag-pb nodes and the data nodes hold, reading only the leaves it covers', async () => {
    const leaves = await Promise.all([[0, 1, 2], [3, 4, 5], [6, 7, 8]].map(async (bytes) => rawBlock(Uint8Array.from(bytes))))
    const inner = await unixfsNode(new UnixFS({ type: 'file', data: Uint8Array.of(9, 10), blockSizes: [3n, 3n] }), leaves.slice(1).map((l) => ({ Hash: l.cid, Tsize: 3 })))
    const root = await unixfsNode(new UnixFS({ type: 'file', blockSizes: [3n, 8n] }), [{ Hash: leaves[0]?.cid as CID, Tsize: 3 }, { Hash: inner.cid, Tsize: 8 }])
    const { get, reads } = store([...leaves, inner, root])
    expect(await read(root, 0, Number.POSITIVE_INFINITY, get)).toEqual([0, 1, 2, 9, 10, 3, 4, 5, 6, 7, 8])
    const before = reads()
    expect(await read(root, 4, 7, get)).toEqual([10, 3, 4])
    expect(reads() - before).toBe(2) // the inner node and the second leaf; neither the first leaf nor the last
    expect(await read(root, 11, 20, get)).toEqual([])
  })

  it('reads a DAG thousands of levels deep, a chain of one-link nodes, in one loop rather than a generator per level', async () => {
    const leaf = await rawBlock(Uint8Array.of(42))
    const blocks: Block[] = [leaf]
    let top: Block = leaf
    for (let level = 0; level < 5000; level++) {
      top = await unixfsNode(new UnixFS({ type: 'file', blockSizes: [1n] }), [{ Hash: top.cid, Tsize: 1 }])
      blocks.push(top)
    }
    expect(await read(top, 0, 1, store(blocks).get)).toEqual([42])
  })

  it('refuses a file that holds less than its root promises', async () => {
    const leaf = await rawBlock(Uint8Array.of(1, 2))
    const root = await unixfsNode(new UnixFS({ type: 'file', blockSizes: [5n] }), [{ Hash: leaf.cid, Tsize: 2 }])
    await expect(read(root, 0, Number.POSITIVE_INFINITY, store([leaf, root]).get)).rejects.toThrow('the file holds 2 of the 5 bytes its root node promises')
  })
})
