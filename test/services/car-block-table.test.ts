import { randomBytes } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create } from 'multiformats/hashes/digest'
import { Readable } from 'node:stream'
import { UnixFS } from 'ipfs-unixfs'
import { describe, expect, it } from 'vitest'
import { cidKey } from '../../src/ipfs/cid-key.ts'
import { BlockTable, type Links } from '../../src/services/car-block-table.ts'
import { CarBundle } from '../../src/services/car-bundle.ts'

const SHA2_256 = 0x12
const someCid = (code = raw.code): CID => CID.createV1(code, create(SHA2_256, randomBytes(32)))
const all = (links: Links): Array<{ name: string, cid: string }> => Array.from({ length: links.length }, (_, i) => ({ name: links.name(i), cid: links.cid(i).toString() }))

describe('the table of a CAR\'s blocks', () => {
  it('gives back what each block was noted with: sizes, links and their names, UnixFS fields, exact past 2^53', () => {
    const table = new BlockTable()
    const leaf = someCid()
    const [a, b, c] = [someCid(), someCid(), someCid(dagPb.code)]
    const dir = someCid(dagPb.code)
    const file = someCid(dagPb.code)
    const huge = 2n ** 64n + 7n
    table.addLeaf(cidKey(leaf), 1234)
    table.add(cidKey(dir), { size: 300, linkedSize: huge, type: 'hamt-sharded-directory', fanout: 256n, links: [{ Name: 'FFa.png', Hash: a, Tsize: 1 }, { Hash: b, Tsize: 2 }, { Name: '0Bsub', Hash: c, Tsize: 3 }] })
    table.add(cidKey(file), { size: 80, linkedSize: 10n, type: 'file', fileSize: 2n ** 53n + 1n, links: [] })
    // The same block again (a CAR may repeat one): noted once.
    table.add(cidKey(file), { size: 1, linkedSize: 0n, links: [] })
    table.add(cidKey(c), { size: 5, linkedSize: 0n, type: 'dag-cbor', links: [] })

    expect(table.size).toBe(4)
    expect(table.info(cidKey(leaf))).toMatchObject({ size: 1234, linkedSize: 0n, links: { length: 0 } })
    const shard = table.info(cidKey(dir))
    expect(shard).toMatchObject({ size: 300, linkedSize: huge, type: 'hamt-sharded-directory', fanout: 256n })
    expect(shard?.fileSize).toBeUndefined()
    expect(all(shard?.links as Links)).toEqual([{ name: 'FFa.png', cid: a.toString() }, { name: '', cid: b.toString() }, { name: '0Bsub', cid: c.toString() }])
    // A link's CID owns its bytes: an entry that keeps it keeps 36 bytes, not every link's (its multihash is a view
    // into what it was decoded from).
    const kept = (shard?.links as Links).cid(2)
    expect(kept.multihash.bytes.buffer.byteLength).toBe(kept.bytes.byteLength)
    expect(table.info(cidKey(file))).toEqual({ size: 80, linkedSize: 10n, type: 'file', fileSize: 2n ** 53n + 1n, links: expect.objectContaining({ length: 0 }) as unknown })
    expect(table.info(cidKey(c))).toMatchObject({ type: 'dag-cbor', size: 5 })
    expect(table.info(cidKey(someCid()))).toBeUndefined()
  })

  it('keeps a node of one link in ~220 bytes, not the ~760 an object with its own link arrays took', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const nodes = 50_000
    const data = new UnixFS({ type: 'file', blockSizes: [1024n] }).marshal()
    // What a CAR of one-link nodes brings, made as it streams (their CIDs need not be their hashes here: the reader checked them).
    function * blocks (): Iterable<{ cid: CID, bytes: Uint8Array }> {
      for (let i = 0; i < nodes; i++) yield { cid: someCid(dagPb.code), bytes: dagPb.encode({ Data: data, Links: [{ Hash: someCid(), Tsize: 1024 }] }) }
    }
    gc()
    const before = process.memoryUsage()
    const bundle = new CarBundle(someCid(dagPb.code), { maxLinks: 10 * nodes })
    for await (const _ of bundle.record(Readable.from(blocks()))) { /* passed on */ }
    // Array buffers the table outgrew are freed by a sweeper after the collection: counted once it has run.
    for (let i = 0; i < 3; i++) { gc(); await new Promise((resolve) => setTimeout(resolve, 20)) }
    const after = process.memoryUsage()
    const perNode = (after.heapUsed - before.heapUsed + after.arrayBuffers - before.arrayBuffers) / nodes
    expect(perNode).toBeLessThan(300)
    // Still there when measured.
    expect(() => bundle.tree()).toThrow('holds no block for its root')
  })
})
