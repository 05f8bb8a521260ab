import express, { type ErrorRequestHandler } from 'express'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import type { Denylist } from '../../src/denylist/denylist.ts'
import { HeimdallError, NotFoundError } from '../../src/errors.ts'
import { UnixfsReader } from '../../src/gateway/unixfs-reader.ts'
import type { IpfsBackend } from '../../src/ipfs/ipfs-backend.ts'
import { gatewayRoutes } from '../../src/http/routes/gateway-routes.ts'
import { rawBlock, unixfsNode } from '../support/cars.ts'

/** Folders nested `depth` deep, each one `a` in the one above, the last holding `f.bin`: the root, and every CID on the way. */
async function nested (depth: number): Promise<{ blocks: Map<string, Uint8Array>, chain: CID[] }> {
  const file = await rawBlock(Uint8Array.of(1, 2, 3))
  const blocks = new Map([[file.cid.toString(), file.bytes]])
  const chain = [file.cid]
  let below = await unixfsNode(new UnixFS({ type: 'directory' }), [{ Name: 'f.bin', Hash: file.cid, Tsize: 3 }])
  for (let i = 0; i < depth; i++) {
    blocks.set(below.cid.toString(), below.bytes)
    chain.unshift(below.cid)
    below = await unixfsNode(new UnixFS({ type: 'directory' }), [{ Name: 'a', Hash: below.cid, Tsize: 0 }])
  }
  blocks.set(below.cid.toString(), below.bytes)
  chain.unshift(below.cid)
  return { blocks, chain }
}

/** The gateway's routes over `blocks`, counting the path segments its reader walks (every resolution, every walk along). */
function gatewayOver (blocks: Map<string, Uint8Array>, options: { denylist?: boolean } = {}): { app: express.Express, walked: () => number } {
  const source = {
    getBlock: async (cid: CID) => {
      const bytes = blocks.get(cid.toString())
      if (bytes === undefined) throw new NotFoundError(`block ${cid.toString()} not found on this node`)
      return Promise.resolve(bytes)
    }
  }
  const reader = new UnixfsReader(source, { cacheBytes: 64 * 1024 * 1024 })
  let walked = 0
  const resolve = reader.resolve.bind(reader)
  reader.resolve = async (root, path, opts) => { walked += path.length; return resolve(root, path, opts) }
  const along = reader.along.bind(reader)
  reader.along = async (root, path, opts) => { walked += path.length; return along(root, path, opts) }
  const backend = { ...source, isPinned: async () => Promise.resolve(true) } as unknown as IpfsBackend
  const denylist = options.denylist === true ? { empty: false, checkCid: () => undefined, checkPath: () => undefined } as unknown as Denylist : undefined
  const app = express()
  app.use(gatewayRoutes({ backend, reader, ...(denylist === undefined ? {} : { denylist }) }))
  const answer: ErrorRequestHandler = (err, _req, res, _next) => {
    res.status(err instanceof HeimdallError ? err.status : 500).json({ error: (err as Error).message })
  }
  app.use(answer)
  return { app, walked: () => walked }
}

describe('GET /ipfs/<cid>/<a long path>', () => {
  // As found by review, smaller: 7,000 nested folders (a 14 KB URL) resolved each prefix from the root, all at once, for
  // minutes. 200 keeps X-Ipfs-Roots (a CID per segment) within the 16 KiB of headers Node's client reads.
  const depth = 200
  const url = (root: CID): string => `/ipfs/${root.toString()}/${'a/'.repeat(depth)}f.bin`

  it.each([[false], [true]])('walks the path a few times, not once per prefix, for the same X-Ipfs-Roots (denylist loaded: %s)', async (withDenylist) => {
    const { blocks, chain } = await nested(depth)
    const { app, walked } = gatewayOver(blocks, { denylist: withDenylist })
    const started = Date.now()
    const res = await request(app).get(url(chain[0] as CID)).expect(200)
    expect(res.headers['x-ipfs-roots']).toBe(chain.map((cid) => cid.toString()).join(','))
    // Before: a resolve of each of the 201 prefixes (20,000 segments walked), twice with a denylist.
    expect(walked()).toBeLessThanOrEqual(4 * (depth + 1))
    expect(Date.now() - started).toBeLessThan(3_000)
  })
})

describe('UnixfsReader.along', () => {
  it('stops walking when its signal is aborted (the client left)', async () => {
    const { blocks, chain } = await nested(50)
    let reads = 0
    const abort = new AbortController()
    const reader = new UnixfsReader({
      getBlock: async (cid: CID) => {
        // The client leaves while the tenth folder is read.
        if (++reads === 10) abort.abort()
        return Promise.resolve(blocks.get(cid.toString()) as Uint8Array)
      }
    }, { cacheBytes: 0 })
    await expect(reader.along(chain[0] as CID, Array.from({ length: 50 }, () => 'a'), { signal: abort.signal })).rejects.toThrow(/abort/i)
    expect(reads).toBe(10)
  })

  it('gives the CIDs as far as the path goes, and throws what is not "not there"', async () => {
    const { blocks, chain } = await nested(3)
    const reader = new UnixfsReader({ getBlock: async (cid: CID) => Promise.resolve(blocks.get(cid.toString()) as Uint8Array) }, { cacheBytes: 0 })
    expect(await reader.along(chain[0] as CID, ['a', 'a', 'b', 'c'])).toEqual(chain.slice(0, 3))
    const failing = new UnixfsReader({ getBlock: async () => Promise.reject(new Error('Kubo is not answering')) }, { cacheBytes: 0 })
    await expect(failing.along(chain[0] as CID, ['a'])).rejects.toThrow('Kubo is not answering')
  })
})
