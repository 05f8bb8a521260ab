import { Readable } from 'node:stream'
import { UnixFS } from 'ipfs-unixfs'
import { describe, expect, it } from 'vitest'
import { BadRequestError, PayloadTooLargeError } from '../../src/errors.ts'
import { CarBundle, MAX_FILE_DEPTH } from '../../src/services/car-bundle.ts'
import { rawBlock, unixfsNode, type Block } from '../support/cars.ts'

const LIMITS = { maxEntries: 100, maxUncompressedBytes: 1024 * 1024, maxRatio: 1000 }

async function record (bundle: CarBundle, blocks: readonly Block[]): Promise<void> {
  for await (const _ of bundle.record(Readable.from(blocks))) { /* passed on */ }
}

describe('a CAR bundle', () => {
  const tiny = Promise.all(Array.from({ length: 1002 }, async (_, i) => rawBlock(Uint8Array.of(i >> 8, i & 255))))

  it('refuses more blocks than the links allowed and its root, however small and unlinked: each block noted costs its key and size', async () => {
    const blocks = await tiny
    const bundle = new CarBundle((blocks[0] as Block).cid, { maxLinks: 1000 })
    const refused = await record(bundle, blocks).catch((err: unknown) => err)
    expect(refused).toBeInstanceOf(PayloadTooLargeError)
    expect((refused as Error).message).toBe('the CAR has more than 1001 blocks')
  })

  it('takes the most a DAG within the links\' bound has, a root and a block per link, and walks its packed links', async () => {
    const leaves = (await tiny).slice(0, 999)
    const file = await unixfsNode(new UnixFS({ type: 'file', blockSizes: leaves.map(() => 2n) }), leaves.map((leaf) => ({ Hash: leaf.cid, Tsize: 2 })))
    const dir = await unixfsNode(new UnixFS({ type: 'directory' }), [{ Name: 'all.bin', Hash: file.cid, Tsize: 2000 }])
    const bundle = new CarBundle(dir.cid, { maxLinks: 1000 })
    await record(bundle, [dir, file, ...leaves])
    const { entries, rootIsFile } = bundle.tree(LIMITS)
    expect(rootIsFile).toBe(false)
    expect(entries.map((e) => ({ path: e.path, cid: e.cid.toString(), size: e.size, dagSize: e.dagSize }))).toEqual([
      { path: 'all.bin', cid: file.cid.toString(), size: 1998, dagSize: BigInt(file.bytes.length + 999 * 2) },
      { path: '', cid: dir.cid.toString(), size: 0, dagSize: BigInt(dir.bytes.length + 2000) }
    ])
    // One leaf short: named as missing, where it was needed.
    const short = new CarBundle(dir.cid, { maxLinks: 1000 })
    await record(short, [dir, file, ...leaves.slice(1)])
    expect(() => short.tree(LIMITS)).toThrow('blocks are missing')
  })

  it(`refuses a file whose DAG is deeper than ${MAX_FILE_DEPTH} levels (a chain of one-link nodes), and takes one of exactly that`, async () => {
    const leaf = await rawBlock(Uint8Array.of(42))
    const chain: Block[] = [leaf]
    // The leaf is a level, and so is each node above it.
    for (let level = 2; level <= MAX_FILE_DEPTH; level++) chain.push(await unixfsNode(new UnixFS({ type: 'file', blockSizes: [1n] }), [{ Hash: (chain.at(-1) as Block).cid, Tsize: 1 }]))
    const wrap = async (file: Block): Promise<Block> => unixfsNode(new UnixFS({ type: 'directory' }), [{ Name: 'deep.bin', Hash: file.cid, Tsize: 1 }])
    const deepest = await wrap(chain.at(-1) as Block)
    const taken = new CarBundle(deepest.cid, { maxLinks: 10_000 })
    await record(taken, [deepest, ...chain])
    expect(taken.tree(LIMITS).entries.map((e) => e.path)).toEqual(['deep.bin', ''])
    const deeper = await unixfsNode(new UnixFS({ type: 'file', blockSizes: [1n] }), [{ Hash: (chain.at(-1) as Block).cid, Tsize: 1 }])
    const over = await wrap(deeper)
    const refused = new CarBundle(over.cid, { maxLinks: 10_000 })
    await record(refused, [over, deeper, ...chain])
    expect(() => refused.tree(LIMITS)).toThrow(BadRequestError)
    expect(() => refused.tree(LIMITS)).toThrow(`the CAR's file deep.bin is a DAG deeper than ${MAX_FILE_DEPTH} levels`)
  })
})
