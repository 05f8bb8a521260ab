import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeZip } from '../support/fixtures.ts'
import { asBytes, blockFiles, createIdentity, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

/** A glTF's buffer: any bytes pass as .bin. */
const bin = (bytes: number): Buffer => randomBytes(bytes)

describe('garbage collection of the embedded node, over HTTP', () => {
  let t: TestHeimdall
  let token: string
  beforeAll(async () => {
    t = await startTestHeimdall({ GC_INTERVAL_SECONDS: '0' })
    token = (await createIdentity(t.request)).token
  })
  afterAll(async () => { await t.close() })

  const upload = async (data: Buffer, name: string): Promise<string> => {
    const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', data, name).expect(200)
    return (res.body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
  }
  const idOf = async (rootCid: string): Promise<number> => {
    const res = await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)
    return (res.body.uploads as Array<{ id: number, rootCid: string }>).find((u) => u.rootCid === rootCid)?.id ?? -1
  }

  it('a deleted upload stops being served and its blocks go; a file another upload pins stays', async () => {
    const shared = bin(1_500_000)
    const own = bin(2_500_000)
    const empty = await blockFiles(t.dataDir)
    const keep = await upload(await makeZip([{ path: 'shared.bin', data: shared, compress: false }]), 'keep.zip')
    const afterKeep = await blockFiles(t.dataDir)
    const gone = await upload(await makeZip([{ path: 'shared.bin', data: shared, compress: false }, { path: 'own.bin', data: own, compress: false }]), 'gone.zip')
    await t.request.get(`/ipfs/${gone}/own.bin`).expect(200)

    await t.request.delete(`/uploads/${await idOf(gone)}`).set('Authorization', `Bearer ${token}`).expect(204)
    await t.heimdall.collector.idle()
    await t.request.get(`/ipfs/${gone}/own.bin`).expect(404)
    await t.request.get(`/ipfs/${gone}`).expect(404)
    const served = await t.request.get(`/ipfs/${keep}/shared.bin`).buffer(true).parse(asBytes).expect(200)
    expect(Buffer.compare(served.body as Buffer, shared)).toBe(0)
    // Back to what the kept upload alone needs: the deleted one's own blocks are gone, not just its root.
    expect(await blockFiles(t.dataDir)).toEqual(afterKeep)

    await t.request.delete(`/uploads/${await idOf(keep)}`).set('Authorization', `Bearer ${token}`).expect(204)
    await t.heimdall.collector.idle()
    expect((await blockFiles(t.dataDir)).files).toBe(empty.files)
  })

  it('a 415 after import (content not matching its type) and a 422 leave no block behind', async () => {
    const before = await blockFiles(t.dataDir)
    // A .png of 5 MiB that is not a PNG: imported while it streams, refused at commit.
    await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', bin(5 * 1024 * 1024), 'fake.png').expect(415)
    expect(await blockFiles(t.dataDir)).toEqual(before)
    const zip = await makeZip([{ path: 'avatar.fst', data: 'name = a\nfilename = missing.fbx\n' }, { path: 'big.bin', data: bin(2_000_000), compress: false }])
    await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', zip, 'broken.zip').expect(422)
    expect(await blockFiles(t.dataDir)).toEqual(before)
  })

  it('collections running again and again during many concurrent uploads never take a block of one', async () => {
    const files = Array.from({ length: 12 }, (_, i) => ({ name: `c${i}.bin`, data: bin(1_200_000 + i * 77_777) }))
    let collecting = true
    let runs = 0
    const collector = (async () => {
      // At least three collections, the first ones while the uploads run (how many overlap depends on the machine's speed).
      while (collecting || runs < 3) { await t.heimdall.backend.gc(); runs++; await new Promise((resolve) => setImmediate(resolve)) }
    })()
    const roots = await Promise.all(files.map(async ({ name, data }) => upload(data, name)))
    collecting = false
    await collector
    expect(runs).toBeGreaterThan(2)
    await t.heimdall.backend.gc()
    for (const [i, root] of roots.entries()) {
      const file = files[i]
      const res = await t.request.get(`/ipfs/${root}/${file?.name ?? ''}`).buffer(true).parse(asBytes).expect(200)
      expect(Buffer.compare(res.body as Buffer, file?.data ?? Buffer.alloc(0))).toBe(0)
    }
  })
})
