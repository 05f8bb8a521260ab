import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { makeZip } from '../support/fixtures.ts'
import { expectNothingLeftBehind, leftovers, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { createScratchDatabase } from '../support/postgres-server.ts'

const KiB = 1024
/** A script of exactly `bytes` bytes, different every time. */
const script = (bytes: number): Buffer => Buffer.concat([Buffer.from(`// ${Math.random()}\n`), Buffer.alloc(bytes, 'x')]).subarray(0, bytes)

// The suite's PostgreSQL when there is one, so `npm run admin` (another process) can reach the same database.
const postgresUrl = inject('postgresUrl')

let t: TestHeimdall
let dropDatabase = async (): Promise<void> => {}
let databaseUrl = ''
let person: { username: string, token: string }
beforeAll(async () => {
  const env: Record<string, string> = { QUOTA_BYTES: String(256 * KiB), QUOTA_UPLOADS: '4' }
  if (postgresUrl !== '') {
    const scratch = await createScratchDatabase(postgresUrl)
    env.DATABASE_URL = databaseUrl = scratch.url
    dropDatabase = scratch.drop
  }
  t = await startTestHeimdall(env)
  const res = await t.request.post('/new').send({ username: 'quota-person' }).expect(201)
  person = { username: 'quota-person', token: (res.body as { token: string }).token }
})
afterAll(async () => { await t.close(); await dropDatabase() })

const upload = (file: Buffer, name = 'a.js') => t.request.post('/upload').set('Authorization', `Bearer ${person.token}`).attach('file', file, name)
const usage = async () => ((await t.request.get('/account').set('Authorization', `Bearer ${person.token}`).expect(200)).body as { usage: { bytes: number, uploads: number }, quota: { bytes: number, uploads: number } })

describe('quotas per identity', () => {
  it('usage and quota are answered in JSON and shown on My uploads', async () => {
    expect(await usage()).toMatchObject({ usage: { bytes: 0, uploads: 0 }, quota: { bytes: 256 * KiB, uploads: 4 } })
    await upload(script(100 * KiB)).expect(200)
    expect((await usage()).usage).toEqual({ bytes: 100 * KiB, uploads: 1 })
    const list = await t.request.get('/uploads').set('Authorization', `Bearer ${person.token}`).expect(200)
    expect(list.body).toMatchObject({ usage: { bytes: 100 * KiB, uploads: 1 }, quota: { bytes: 256 * KiB, uploads: 4 } })
    const browser = t.browser()
    await browser.get(`/uploads?username=${person.username}&token=${encodeURIComponent(person.token)}`).set('Accept', 'text/html').expect(303)
    const page = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
    expect(page.text).toContain('Using <strong>100 KiB</strong> of 256 KiB and <strong>1</strong> of 4 uploads.')
  })

  it('an upload declared larger than what is left is refused (413) before its file is read', async () => {
    // Headers that promise 10 MiB, then a few bytes: the answer comes without the rest being sent.
    const { port } = await t.listen()
    const boundary = 'quota-boundary'
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.js"\r\nContent-Type: application/javascript\r\n\r\n// a start\n`
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${person.token}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${10 * 1024 * KiB}\r\n\r\n${head}`)
      })
      let text = ''
      socket.setEncoding('utf8')
      socket.on('data', (chunk: string) => { text += chunk; if (text.includes('}')) { socket.destroy(); resolve(text) } })
      socket.on('error', reject)
      setTimeout(() => { socket.destroy(); reject(new Error(`no answer; got ${text}`)) }, 5000)
    })
    expect(answer).toMatch(/^HTTP\/1\.1 413 /)
    const body = JSON.parse(answer.slice(answer.indexOf('{'))) as { code: string, error: string, details: string[] }
    expect(body.code).toBe('ERR_QUOTA_EXCEEDED')
    expect(body.error).toMatch(/does not fit in your quota: 156 KiB of 256 KiB left/)
    expect(body.details).toEqual(['quota: 256 KiB (262144 bytes) in 4 uploads', 'used: 100 KiB (102400 bytes) in 1 uploads'])
  })

  it('a file found larger than what is left while it streams is cut off: 413, nothing stored', async () => {
    const before = await leftovers(t)
    // 200 KiB declared passes the early check (multipart framing is allowed for), but 156 KiB is all that is left.
    const res = await upload(script(200 * KiB)).expect(413)
    expect(res.body).toMatchObject({ code: 'ERR_QUOTA_EXCEEDED' })
    await expectNothingLeftBehind(t, before)
    // Credentials after the file: it is received into a temp file, then refused by its size before import.
    const after = await t.request.post('/upload').attach('file', script(200 * KiB), 'late.js').field('username', person.username).field('token', person.token).expect(413)
    expect(after.body).toMatchObject({ code: 'ERR_QUOTA_EXCEEDED' })
    await expectNothingLeftBehind(t, before)
    expect((await usage()).usage).toEqual({ bytes: 100 * KiB, uploads: 1 })
  })

  it('a bundle that unpacks to more than what is left is refused when recorded, its blocks and pin released', async () => {
    const before = await leftovers(t)
    // 300 KiB of scripts that compress to almost nothing.
    const zip = await makeZip([{ path: 'a.js', data: script(150 * KiB) }, { path: 'b.js', data: script(150 * KiB) }])
    expect(zip.length).toBeLessThan(10 * KiB)
    const res = await upload(zip, 'bundle.zip').expect(413)
    expect(res.body).toMatchObject({ code: 'ERR_QUOTA_EXCEEDED' })
    await expectNothingLeftBehind(t, before)
  })

  it('concurrent uploads of one identity cannot pass the quota together (more of them than the pool has connections)', async () => {
    const res = await t.request.post('/new').send({ username: 'quota-racer' }).expect(201)
    const racer = `Bearer ${(res.body as { token: string }).token}`
    const before = await leftovers(t)
    const results = await Promise.all(Array.from({ length: 14 }, async () => t.request.post('/upload').set('Authorization', racer).attach('file', script(100 * KiB), 'race.js')))
    // 256 KiB hold two of 100 KiB: the others are refused when recorded, one after the other under the identity's lock.
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, ...Array<number>(12).fill(413)])
    const after = await leftovers(t)
    expect(after.uploads).toBe(before.uploads + 2)
    expect(after.pins).toHaveLength(before.pins.length + 2)
    expect(after.tmpFiles).toEqual([])
  })

  it('the number of uploads: 403 once they are all used', async () => {
    for (let i = 0; i < 3; i++) await upload(script(KiB)).expect(200)
    const before = await leftovers(t)
    const res = await upload(script(KiB)).expect(403)
    expect(res.body).toMatchObject({ code: 'ERR_QUOTA_EXCEEDED', error: 'you have used all of your 4 uploads (a pinned pin request counts as one): delete some to upload or pin more' })
    await expectNothingLeftBehind(t, before)
  })

  it('a bundle that fills exactly what is left is accepted, though the zip itself is larger (its headers)', async () => {
    await t.heimdall.database.knex('identities').where({ username: person.username }).update({ quota_uploads: 100 })
    const { usage: used, quota } = await usage()
    const left = quota.bytes - used.bytes
    const zip = await makeZip([{ path: 'a.js', data: script(Math.floor(left / 2)), compress: false }, { path: 'b.js', data: script(left - Math.floor(left / 2)), compress: false }])
    expect(zip.length).toBeGreaterThan(left)
    await upload(zip, 'exact.zip').expect(200)
    expect((await usage()).usage.bytes).toBe(quota.bytes)
    const before = await leftovers(t)
    await upload(script(1)).expect(413)
    await expectNothingLeftBehind(t, before)
    await t.heimdall.database.knex('identities').where({ username: person.username }).update({ quota_uploads: null })
    await t.request.delete(`/uploads/${(await t.heimdall.database.knex('uploads').where({ name: 'exact' }).first('id')).id}`).set('Authorization', `Bearer ${person.token}`).expect(204)
  })

  it.skipIf(postgresUrl === '')('an operator changes one identity\'s quota: npm run admin -- quota', async () => {
    const admin = async (...args: string[]): Promise<{ code: number | null, out: string }> => new Promise((resolve) => {
      const child = spawn(process.execPath, ['src/cli/admin.ts', ...args], { env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl, QUOTA_BYTES: String(256 * KiB), QUOTA_UPLOADS: '4', DATA_DIR: t.dataDir } })
      let out = ''
      child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
      child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
      child.on('close', (code) => { resolve({ code, out }) })
    })
    const shown = await admin('quota', person.username)
    expect(shown).toMatchObject({ code: 0 })
    expect(shown.out).toContain('quota-person: 103 KiB of 256 KiB (105472 of 262144 bytes), 4 of 4 uploads')
    const set = await admin('quota', person.username, '--uploads', '6', '--bytes', '1M')
    expect(set.code).toBe(0)
    expect(set.out).toContain('4 of 6 uploads')
    expect((await usage()).quota).toEqual({ bytes: 1024 * KiB, uploads: 6 })
    await upload(script(200 * KiB)).expect(200)
    expect((await admin('quota', 'nobody-here', '--uploads', '1')).out).toContain('no identity named "nobody-here"')
    await admin('quota', person.username, '--uploads', 'default', '--bytes', 'default')
    expect((await usage()).quota).toEqual({ bytes: 256 * KiB, uploads: 4 })
  })
})

describe('pin requests in the quota', () => {
  const newIdentity = async (username: string): Promise<string> => ((await t.request.post('/new').send({ username }).expect(201)).body as { token: string }).token
  const pinRequest = async (token: string, cid: string): Promise<{ status: string, info: { status_details?: string } }> =>
    (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid }).expect(202)).body as { status: string, info: { status_details?: string } }
  const usageOf = async (token: string): Promise<{ bytes: number, uploads: number }> =>
    ((await t.request.get('/account').set('Authorization', `Bearer ${token}`).expect(200)).body as { usage: { bytes: number, uploads: number } }).usage

  it('count as uploads of their DAG\'s bytes: one that does not fit fails with the quota\'s reason and pins nothing', async () => {
    const owner = await newIdentity('pin-content-owner')
    await t.heimdall.database.knex('identities').where({ username: 'pin-content-owner' }).update({ quota_bytes: 1024 * KiB })
    const rootOf = async (bytes: number): Promise<string> =>
      ((await t.request.post('/upload').set('Authorization', `Bearer ${owner}`).attach('file', script(bytes), 'p.js').expect(200)).body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
    const small = await rootOf(100 * KiB)
    const large = await rootOf(200 * KiB)
    const pinner = await newIdentity('pin-person')

    expect(await pinRequest(pinner, small)).toMatchObject({ status: 'pinned' })
    const used = await usageOf(pinner)
    // The DAG: the file's 100 KiB and the folder that names it.
    expect(used.uploads).toBe(1)
    expect(used.bytes).toBeGreaterThan(100 * KiB)
    expect(used.bytes).toBeLessThan(101 * KiB)

    // 200 KiB more do not fit in 256 KiB: an identity refused an upload could pin without end before.
    const refused = await pinRequest(pinner, large)
    expect(refused.status).toBe('failed')
    expect(refused.info.status_details).toMatch(/^content refused: this upload \(at least 200 KiB\) does not fit in your quota: /)
    expect(await usageOf(pinner)).toEqual(used)
    await t.request.post('/upload').set('Authorization', `Bearer ${pinner}`).attach('file', script(200 * KiB), 'q.js').expect(413)

    // The owner's upload still holds it; the request's failure released nothing of theirs.
    await t.request.get(`/ipfs/${large}/p.js`).expect(200)
    expect(await t.heimdall.backend.isPinned(CID.parse(large))).toBe(true)
  })

  it('a replace is checked without the request it replaces: one that fits in its place is pinned, and the same content renamed too', async () => {
    const owner = await newIdentity('replace-content-owner')
    await t.heimdall.database.knex('identities').where({ username: 'replace-content-owner' }).update({ quota_bytes: 1024 * KiB })
    const rootOf = async (bytes: number): Promise<string> =>
      ((await t.request.post('/upload').set('Authorization', `Bearer ${owner}`).attach('file', script(bytes), 'r.js').expect(200)).body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
    const [first, second] = [await rootOf(100 * KiB), await rootOf(200 * KiB)]
    const pinner = await newIdentity('replace-person')
    const pinned = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${pinner}`).send({ cid: first }).expect(202)).body as { requestid: string, status: string }
    expect(pinned.status).toBe('pinned')
    // 100 + 200 KiB pass the 256 KiB quota: counted, the request replaced failed the replace (and still went).
    const replaced = (await t.request.post(`/psa/pins/${pinned.requestid}`).set('Authorization', `Bearer ${pinner}`).send({ cid: second }).expect(202)).body as { requestid: string, status: string, info: { status_details?: string } }
    expect(replaced).toMatchObject({ status: 'pinned' })
    const used = await usageOf(pinner)
    expect(used.uploads).toBe(1)
    expect(used.bytes).toBeGreaterThan(200 * KiB)
    const renamed = (await t.request.post(`/psa/pins/${replaced.requestid}`).set('Authorization', `Bearer ${pinner}`).send({ cid: second, name: 'renamed' }).expect(202)).body as { status: string }
    expect(renamed.status).toBe('pinned')
    expect(await usageOf(pinner)).toEqual(used)
    const listed = (await t.request.get('/psa/pins?status=pinned').set('Authorization', `Bearer ${pinner}`).expect(200)).body as { count: number }
    expect(listed.count).toBe(1)
  })
})
