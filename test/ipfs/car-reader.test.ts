import { describe, expect, it } from 'vitest'
import { readCar } from '../../src/ipfs/car-reader.ts'
import { carV2, unixfsBlocks, writeCar } from '../support/cars.ts'

const MiB = 1024 * 1024

/** `car` in pieces, with `extra` fresh (never reused) zero bytes spliced in at `at`, noting the most ArrayBuffer memory seen. */
function streamed (car: Buffer, at: number, extra: number, peak: { bytes: number }): AsyncIterable<Uint8Array> {
  return (async function * () {
    yield car.subarray(0, at)
    for (let left = extra; left > 0; left -= MiB) {
      // A turn of the event loop per chunk, as from a socket.
      await new Promise((resolve) => { setImmediate(resolve) })
      peak.bytes = Math.max(peak.bytes, process.memoryUsage().arrayBuffers)
      yield Buffer.alloc(Math.min(MiB, left))
    }
    yield car.subarray(at)
  })()
}

describe('a CARv2 read as it streams', () => {
  it('holds none of a large padding before its payload, nor of its index after it', { timeout: 60_000 }, async () => {
    const { root, blocks } = await unixfsBlocks([{ path: 'a.txt', data: 'hello' }, { path: 'b.txt', data: 'world' }], { wrap: true })
    const v1 = await writeCar([root], blocks)
    const padding = 512 * MiB
    // The header says where the payload is: after the padding that is spliced in as the file streams.
    const padded = carV2(v1, { offset: 51 + padding })
    const indexed = carV2(v1, { trailer: Buffer.alloc(0) })
    for (const [car, at, what] of [[padded, 51, 'padding'], [indexed, indexed.length, 'index']] as const) {
      const before = process.memoryUsage().arrayBuffers
      const peak = { bytes: 0 }
      const read = await readCar(streamed(car, at, padding, peak))
      expect(read.root.toString()).toBe(root.toString())
      const cids: string[] = []
      for await (const block of read.blocks) cids.push(block.cid.toString())
      expect(cids.sort()).toEqual(blocks.map((b) => b.cid.toString()).sort())
      // Garbage not yet collected may sit there for a while (V8 collects past ~64 MB of it); what is kept is the whole.
      expect(peak.bytes - before, what).toBeLessThan(padding / 2)
    }
  })
})
