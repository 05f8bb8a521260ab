import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
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
