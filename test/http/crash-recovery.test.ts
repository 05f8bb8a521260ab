import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { afterAll, describe, expect, it } from 'vitest'
import { Readable } from 'node:stream'
import { ServiceUnavailableError } from '../../src/errors.ts'
import { unixfsBlocks, writeCar } from '../support/cars.ts'
import { asBytes, createIdentity, makeDataDir, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

/**
 * A process killed between "pin" and "record" (or between a delete's record
 * and its unpin) leaves a pin journal row; the next start settles it: pinned
 * exactly when an upload references the root, and the rest collected.
 */
describe('pins a crash left between pin and record', () => {
  let t: TestHeimdall | undefined
  afterAll(async () => { await t?.close() })

  it('are released at the next start and their blocks collected; recorded uploads keep theirs', async () => {
    const dataDir = await makeDataDir()
    t = await startTestHeimdall({}, dataDir)
    const { token } = await createIdentity(t.request)
    const kept = (await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', Buffer.from('kept'), 'kept.bin').expect(200)).body as Array<{ Hash: string }>
    const keptRoot = kept.at(-1)?.Hash ?? ''

    // What a commit killed after its pin leaves: blocks, a pin, a journal row, no upload record.
    const { backend, database } = t.heimdall
    const lease = await backend.openLease()
    const lostBytes = randomBytes(2 * 1024 * 1024)
    const nodes = await backend.importTree([{ path: 'lost.bin', content: (async function * () { yield await Promise.resolve(lostBytes) })() }], { profile: 'unixfs-v1-2025', lease })
    const lostRoot = nodes.at(-1)?.cid
    if (lostRoot === undefined) throw new Error('no root')
    await backend.pin(lostRoot)
    await lease.release()
    const instance = (await readFile(join(dataDir, 'instance-id'), 'utf8')).trim()
    await database.knex('pin_intents').insert([{ root_cid: lostRoot.toString(), instance }, { root_cid: keptRoot, instance }])
    await t.request.get(`/ipfs/${lostRoot.toString()}/lost.bin`).expect(200)
    await t.close({ keepData: true })

    t = await startTestHeimdall({}, dataDir)
    await t.heimdall.collector.idle()
    expect(await t.heimdall.backend.isPinned(lostRoot)).toBe(false)
    await t.request.get(`/ipfs/${lostRoot.toString()}/lost.bin`).expect(404)
    expect(await t.heimdall.backend.isPinned((await import('multiformats/cid')).CID.parse(keptRoot))).toBe(true)
    expect(String((await t.request.get(`/ipfs/${keptRoot}/kept.bin`).buffer(true).parse(asBytes).expect(200)).body)).toBe('kept')
    expect(await t.heimdall.database.knex('pin_intents').count<Array<{ n: string | number }>>({ n: '*' }).then(([row]) => Number(row?.n))).toBe(0)
  })

  it('a delete the node cannot unpin answers 204 and leaves its row in the journal, settled once the node answers again; so does a pin request deleted then', async () => {
    t ??= await startTestHeimdall()
    const { token } = await createIdentity(t.request)
    const journal = async (): Promise<number> => t?.heimdall.database.knex('pin_intents').count<Array<{ n: string | number }>>({ n: '*' }).then(([row]) => Number(row?.n)) ?? -1
    const { backend, database } = t.heimdall
    const bytes = randomBytes(5000)
    const root = ((await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', bytes, 'away.bin').expect(200)).body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
    const id = ((await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)).body as { uploads: Array<{ id: number, rootCid: string }> }).uploads.find((u) => u.rootCid === root)?.id ?? 0
    // A pin request of content held elsewhere: pinned at once (another upload of the same bytes keeps the request's content here).
    const other = (await import('node:crypto')).randomBytes(3000)
    const otherRoot = ((await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', other, 'other.bin').expect(200)).body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
    const otherId = ((await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)).body as { uploads: Array<{ id: number, rootCid: string }> }).uploads.find((u) => u.rootCid === otherRoot)?.id ?? 0
    const request = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid: otherRoot }).expect(202)).body as { requestid: string, status: string }
    expect(request.status).toBe('pinned')
    await t.request.delete(`/uploads/${otherId}`).set('Authorization', `Bearer ${token}`).expect(204)

    // The node away: every unpin fails.
    const unpin = backend.unpin.bind(backend)
    Object.assign(backend, { unpin: async () => await Promise.reject(new ServiceUnavailableError('the IPFS node cannot be reached')) })
    try {
      await t.request.delete(`/uploads/${id}`).set('Authorization', `Bearer ${token}`).expect(204)
      await t.request.delete(`/psa/pins/${request.requestid}`).set('Authorization', `Bearer ${token}`).expect(202)
      await t.request.get(`/psa/pins/${request.requestid}`).set('Authorization', `Bearer ${token}`).expect(404)
    } finally {
      Object.assign(backend, { unpin })
    }
    expect(await backend.isPinned(CID.parse(root))).toBe(true)
    expect(await backend.isPinned(CID.parse(otherRoot))).toBe(true)
    expect(await journal()).toBe(2)
    // Too recent for the running settlement (work of this instance may still be under way), settled once ten minutes old.
    expect(await t.heimdall.settlePins()).toBe(0)
    await database.knex('pin_intents').update({ created_at: new Date(Date.now() - 11 * 60_000) })
    expect(await t.heimdall.settlePins()).toBe(2)
    expect(await journal()).toBe(0)
    expect(await backend.isPinned(CID.parse(root))).toBe(false)
    expect(await backend.isPinned(CID.parse(otherRoot))).toBe(false)
  })

  it('an upload whose record fails, with the node away, keeps its journal row, and its pin is released when settled', async () => {
    t ??= await startTestHeimdall()
    const { token } = await createIdentity(t.request)
    const { backend, database } = t.heimdall
    const unpin = backend.unpin.bind(backend)
    // The record fails after the pin (the database refuses the row), and the node is gone before that pin is released.
    await database.knex.raw(`CREATE FUNCTION test_refuse_upload() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the disk is failing'; END $$;
      CREATE TRIGGER test_refuse_upload BEFORE INSERT ON uploads FOR EACH ROW EXECUTE FUNCTION test_refuse_upload()`)
    Object.assign(backend, { unpin: async () => await Promise.reject(new ServiceUnavailableError('the IPFS node cannot be reached')) })
    let root: string
    try {
      await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', randomBytes(4000), 'late.bin').expect(500)
      root = (await database.knex('pin_intents').first<{ root_cid: string } | undefined>('root_cid'))?.root_cid ?? ''
    } finally {
      Object.assign(backend, { unpin })
      await database.knex.raw('DROP TRIGGER test_refuse_upload ON uploads; DROP FUNCTION test_refuse_upload()')
    }
    expect(root).not.toBe('')
    expect(await backend.isPinned(CID.parse(root))).toBe(true)
    await database.knex('pin_intents').update({ created_at: new Date(Date.now() - 11 * 60_000) })
    expect(await t.heimdall.settlePins()).toBe(1)
    expect(await backend.isPinned(CID.parse(root))).toBe(false)
  })

  it("an operator's unpin the node does not take says so (deferred to the journal), and the pin goes when settled", async () => {
    t ??= await startTestHeimdall()
    const { backend, database } = t.heimdall
    const { root, blocks } = await unixfsBlocks([{ path: 'op.bin', data: randomBytes(3000) }], { wrap: true })
    await t.heimdall.importCar(Readable.from([await writeCar([root], blocks)]), { fileName: 'op.car', actor: 'tester' })
    expect(await backend.isPinned(root)).toBe(true)
    const unpin = backend.unpin.bind(backend)
    Object.assign(backend, { unpin: async () => await Promise.reject(new ServiceUnavailableError('the IPFS node cannot be reached')) })
    try {
      expect(await t.heimdall.unpinOperator(root.toString())).toEqual({ removed: true, unpinned: false, deferred: true })
    } finally {
      Object.assign(backend, { unpin })
    }
    await database.knex('pin_intents').update({ created_at: new Date(Date.now() - 11 * 60_000) })
    expect(await t.heimdall.settlePins()).toBe(1)
    expect(await backend.isPinned(root)).toBe(false)
  })

  it('closing does not wait long for a settlement stuck on a node that stopped answering; its row stays', async () => {
    const dataDir = await makeDataDir()
    const stuck = await startTestHeimdall({}, dataDir)
    let root: string
    try {
      const { token } = await createIdentity(stuck.request)
      const { backend, database } = stuck.heimdall
      root = ((await stuck.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', randomBytes(2000), 'stuck.bin').expect(200)).body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
      const id = ((await stuck.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)).body as { uploads: Array<{ id: number }> }).uploads[0]?.id ?? 0
      const unpin = backend.unpin.bind(backend)
      Object.assign(backend, { unpin: async () => await Promise.reject(new ServiceUnavailableError('the IPFS node cannot be reached')) })
      await stuck.request.delete(`/uploads/${id}`).set('Authorization', `Bearer ${token}`).expect(204)
      await database.knex('pin_intents').update({ created_at: new Date(Date.now() - 11 * 60_000) })
      // The node now takes every unpin and never answers; closing starts once the settlement waits on it.
      let entered = (): void => {}
      const waiting = new Promise<void>((resolve) => { entered = resolve })
      Object.assign(backend, { unpin: async () => { entered(); await new Promise<void>(() => {}) } })
      const settling = stuck.heimdall.settlePins()
      await waiting
      const started = Date.now()
      await stuck.close({ keepData: true })
      expect(Date.now() - started).toBeLessThan(8000)
      expect(await database.knex('pin_intents').count<Array<{ n: string | number }>>({ n: '*' }).catch(() => undefined)).toBeUndefined() // closed
      void settling
      Object.assign(backend, { unpin })
    } catch (err) {
      await stuck.close().catch(() => {})
      throw err
    }
    // The row stayed: the next start settles it, releasing the pin of the deleted upload.
    t = await startTestHeimdall({}, dataDir)
    expect(await t.heimdall.backend.isPinned(CID.parse(root))).toBe(false)
    expect(await t.heimdall.database.knex('pin_intents').count<Array<{ n: string | number }>>({ n: '*' }).then(([row]) => Number(row?.n))).toBe(0)
  })

  it('leave no journal rows behind on the normal paths: upload, refusal, delete', async () => {
    t ??= await startTestHeimdall()
    const { token } = await createIdentity(t.request)
    const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', Buffer.from('x'), 'x.bin').expect(200)
    await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', Buffer.from('not a png'), 'x.png').expect(415)
    const root = (res.body as Array<{ Hash: string }>).at(-1)?.Hash
    const list = (await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)).body as { uploads: Array<{ id: number, rootCid: string }> }
    const id = list.uploads.find((u) => u.rootCid === root)?.id ?? 0
    await t.request.delete(`/uploads/${id}`).set('Authorization', `Bearer ${token}`).expect(204)
    expect(await t.heimdall.database.knex('pin_intents').count<Array<{ n: string | number }>>({ n: '*' }).then(([row]) => Number(row?.n))).toBe(0)
  })
})
