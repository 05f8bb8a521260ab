import { createHash } from 'node:crypto'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { readdir, readlink, stat, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import * as tus from 'tus-js-client'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { fixture } from '../support/fixtures.ts'
import { createIdentity, csrfField, expectNothingLeftBehind, leftovers, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { answerBody, uploadStream } from '../support/heimdall-process.ts'
import { kuboDeterministicStream } from '../support/kubo-vectors.ts'

const MB = 1000 * 1000
const QUOTA = 350 * MB
const BASE = '/upload/resumable'

let t: TestHeimdall
let url: string
let alice: { username: string, token: string }
let bob: { username: string, token: string }
let before: Awaited<ReturnType<typeof leftovers>>

beforeAll(async () => {
  t = await startTestHeimdall({ QUOTA_BYTES: String(QUOTA) })
  ;({ url } = await t.listen())
  alice = await createIdentity(t.request, 'alice')
  bob = await createIdentity(t.request, 'bob')
})
afterAll(async () => { await t.close() })
beforeEach(async () => { before = await leftovers(t) })

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64')
const tusHeaders = (token: string, extra: Record<string, string> = {}): Record<string, string> => ({ 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}`, ...extra })
const resumableFiles = async (dir = t.dataDir): Promise<string[]> => readdir(join(dir, 'resumable'))
const rows = async (): Promise<number> => Number((await t.heimdall.database.knex('resumable_uploads').count<Array<{ n: string }>>({ n: '*' }))[0]?.n ?? 0)

interface Answer { status: number, headers: IncomingHttpHeaders, body: unknown }

/** One raw request over its own connection (no keep-alive), `body` as bytes or a stream. */
async function send (method: string, path: string, headers: Record<string, string>, body?: Buffer | Readable): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method, headers: { Connection: 'close', ...headers }, agent: false }, (res) => {
      answerBody(res).then((body) => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) }, reject)
    })
    req.on('error', reject)
    if (body instanceof Readable) body.pipe(req)
    else req.end(body)
  })
}

/** POST /upload/resumable; with `body`, creation-with-upload. */
async function create (token: string, fileName: string, length: number, body?: Buffer, extra: Record<string, string> = {}): Promise<Answer & { path: string }> {
  const answer = await send('POST', BASE, tusHeaders(token, {
    'Upload-Length': String(length),
    'Upload-Metadata': `filename ${b64(fileName)}`,
    ...(body === undefined ? {} : { 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(body.length) }),
    ...extra
  }), body)
  return { ...answer, path: answer.headers.location ?? '' }
}

async function patch (token: string, path: string, offset: number, body: Buffer): Promise<Answer> {
  return send('PATCH', path, tusHeaders(token, { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(body.length) }), body)
}

async function plainUpload (token: string, bytes: Buffer, fileName: string): Promise<{ status: number, body: unknown }> {
  const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', bytes, fileName)
  return { status: res.status, body: res.body as unknown }
}

describe('tus discovery and preconditions', () => {
  it('OPTIONS says the version, the extensions and the largest upload', async () => {
    const res = await send('OPTIONS', BASE, {})
    expect(res.status).toBe(204)
    expect(res.headers['tus-resumable']).toBe('1.0.0')
    expect(res.headers['tus-version']).toBe('1.0.0')
    expect(res.headers['tus-extension']).toBe('creation,creation-with-upload,expiration,termination,checksum')
    expect(res.headers['tus-checksum-algorithm']).toBe('md5,sha1,sha256,sha512')
    expect(res.headers['tus-max-size']).toBe(String(1_073_741_824))
  })

  it('PLUGIN_ROUTES names the endpoint', async () => {
    const res = await t.request.get('/plugin_routes').expect(200)
    expect(res.body).toMatchObject({ asset_upload: '/upload', resumable_upload: BASE })
  })

  it('refuses a request without Tus-Resumable: 1.0.0 with 412, Tus-Version and a JSON error', async () => {
    for (const version of [undefined, '0.2.2']) {
      const res = await send('POST', BASE, { Authorization: `Bearer ${alice.token}`, 'Upload-Length': '10', 'Upload-Metadata': `filename ${b64('a.glb')}`, ...(version === undefined ? {} : { 'Tus-Resumable': version }) })
      expect(res.status).toBe(412)
      expect(res.headers['tus-version']).toBe('1.0.0')
      expect(res.headers['tus-resumable']).toBe('1.0.0')
      expect(res.body).toMatchObject({ code: 'ERR_PRECONDITION_FAILED' })
    }
    expect(await rows()).toBe(0)
  })

  it('needs credentials, as POST /upload does: an API key with the upload scope does, one without is 403', async () => {
    const headers = { 'Upload-Length': '10', 'Upload-Metadata': `filename ${b64('a.glb')}` }
    const res = await send('POST', BASE, { 'Tus-Resumable': '1.0.0', ...headers })
    expect(res.status).toBe(401)
    expect((await send('POST', BASE, tusHeaders('wrong-token', headers))).status).toBe(401)
    const key = async (scopes: string[]): Promise<string> => ((await t.request.post('/account/keys').set('Authorization', `Bearer ${alice.token}`).send({ name: `k-${scopes.join('-')}`, scopes }).expect(201)).body as { key: string }).key
    const listOnly = await send('POST', BASE, tusHeaders(await key(['list']), headers))
    expect(listOnly.status).toBe(403)
    expect(listOnly.body).toMatchObject({ code: 'ERR_INSUFFICIENT_SCOPE' })
    expect(await rows()).toBe(0)
    const uploader = await send('POST', BASE, tusHeaders(await key(['upload']), headers))
    expect(uploader.status).toBe(201)
    // The key's identity owns it: the token of the same identity may HEAD it.
    expect((await send('HEAD', uploader.headers.location ?? '', tusHeaders(alice.token))).headers['upload-offset']).toBe('0')
    expect((await send('DELETE', uploader.headers.location ?? '', tusHeaders(alice.token))).status).toBe(204)
  })
})

describe('creation refusals: before any byte is stored', () => {
  it.each([
    ['Upload-Length over MAX_UPLOAD_BYTES', 'big.bin', 2 * 1024 ** 3, {}, 413, 'ERR_PAYLOAD_TOO_LARGE'],
    ['Upload-Length over the quota', 'big.bin', QUOTA + 1, {}, 413, 'ERR_QUOTA_EXCEEDED'],
    ['a type not accepted', 'virus.exe', 10, {}, 415, 'ERR_UNSUPPORTED_MEDIA_TYPE'],
    ['no Upload-Length', 'a.glb', Number.NaN, {}, 400, 'ERR_BAD_REQUEST'],
    ['Upload-Defer-Length', 'a.glb', 10, { 'Upload-Defer-Length': '1' }, 400, 'ERR_BAD_REQUEST'],
    // Concatenation is not offered: a part (tus-js-client's parallelUploads sends them unasked) is not an upload of its own.
    ['Upload-Concat: partial', 'a.glb', 10, { 'Upload-Concat': 'partial' }, 400, 'ERR_BAD_REQUEST'],
    ['Upload-Concat: final', 'a.glb', Number.NaN, { 'Upload-Concat': `final;${BASE}/a ${BASE}/b` }, 400, 'ERR_BAD_REQUEST'],
    ['no filename', 'a.glb', 10, { 'Upload-Metadata': `name ${b64('a.glb')}` }, 400, 'ERR_BAD_REQUEST'],
    ['malformed metadata', 'a.glb', 10, { 'Upload-Metadata': 'filename %%%' }, 400, 'ERR_BAD_REQUEST']
  ])('%s → %i', async (_what, fileName, length, extra, status, code) => {
    const headers: Record<string, string> = { 'Upload-Metadata': `filename ${b64(fileName)}`, ...(Number.isNaN(length) ? {} : { 'Upload-Length': String(length) }), ...extra }
    // Creation-with-upload: the first bytes come with the refused request, and none of them is kept.
    const res = await send('POST', BASE, tusHeaders(alice.token, { ...headers, 'Content-Type': 'application/offset+octet-stream', 'Content-Length': '5' }), Buffer.from('glTF!'))
    expect(res.status).toBe(status)
    expect(res.body).toMatchObject({ code })
    expect(typeof (res.body as { error: unknown }).error).toBe('string')
    expect(res.headers.location).toBeUndefined()
    expect(await rows()).toBe(0)
    expect(await resumableFiles()).toEqual([])
    await expectNothingLeftBehind(t, before)
  })
})

describe('more bytes than Upload-Length, sent chunked (no Content-Length to refuse up front)', () => {
  /** A chunked body of `bytes` random bytes in 64 KiB pieces. */
  const chunked = (bytes: number): Readable => Readable.from((function * () { for (let sent = 0; sent < bytes; sent += 65536) yield Buffer.alloc(Math.min(65536, bytes - sent), sent % 251) })())

  it('a creation is answered 413 (not a reset), without an address, and nothing of it stays to hold the quota', async () => {
    const res = await send('POST', BASE, tusHeaders(alice.token, { 'Upload-Length': String(4 * MB), 'Upload-Metadata': `filename ${b64('c2.bin')}`, 'Content-Type': 'application/offset+octet-stream', 'Transfer-Encoding': 'chunked' }), chunked(5 * MB))
    expect(res.status).toBe(413)
    expect(res.body).toMatchObject({ code: 'ERR_PAYLOAD_TOO_LARGE' })
    expect(res.headers.location).toBeUndefined()
    expect(await rows()).toBe(0)
    expect(await resumableFiles()).toEqual([])
    // The whole quota is free again for a creation.
    const again = await create(alice.token, 'after.bin', QUOTA)
    expect(again.status).toBe(201)
    expect((await send('DELETE', again.path, tusHeaders(alice.token))).status).toBe(204)
    await expectNothingLeftBehind(t, before)
  })

  it('a PATCH is answered 413; what fitted is kept and the upload goes on from there', async () => {
    const created = await create(alice.token, 'p2.bin', 3 * MB)
    expect(created.status).toBe(201)
    const res = await send('PATCH', created.path, tusHeaders(alice.token, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Transfer-Encoding': 'chunked' }), chunked(4 * MB))
    expect(res.status).toBe(413)
    expect(res.body).toMatchObject({ code: 'ERR_PAYLOAD_TOO_LARGE' })
    const head = await send('HEAD', created.path, tusHeaders(alice.token))
    expect(Number(head.headers['upload-offset'])).toBeLessThanOrEqual(3 * MB)
    expect((await send('DELETE', created.path, tusHeaders(alice.token))).status).toBe(204)
    await expectNothingLeftBehind(t, before)
  })
})

describe('a client gone before its request is looked at', () => {
  /** This process's open files under DATA_DIR/resumable (the server runs in it). */
  const openResumableFiles = async (): Promise<number> => {
    let n = 0
    for (const fd of await readdir('/proc/self/fd')) if ((await readlink(`/proc/self/fd/${fd}`).catch(() => '')).startsWith(join(t.dataDir, 'resumable'))) n++
    return n
  }
  /** Headers and 100 of the declared bytes, then a reset: the request is closed before the server has read it. */
  const resetAfter = async (head: string): Promise<void> => {
    const socket = connect(Number(new URL(url).port), '127.0.0.1')
    socket.on('error', () => {})
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write(Buffer.concat([Buffer.from(head), Buffer.alloc(100, 1)]), () => { socket.resetAndDestroy() })
  }
  const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + 10_000
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  it('a creation-with-upload is removed, its file closed and its lock let go (they were held forever)', async () => {
    for (let i = 0; i < 3; i++) {
      await resetAfter(`POST ${BASE} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice.token}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 1000\r\n` +
        `Upload-Metadata: filename ${b64('gone.raw')}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 1000\r\n\r\n`)
    }
    await until('the creations to be removed', async () => (await rows()) === 0 && (await resumableFiles()).length === 0 && (await openResumableFiles()) === 0)
    await expectNothingLeftBehind(t, before)
  })

  it('a creation whose whole body came before its client closed is removed, not left waiting (the file stayed open)', async () => {
    for (const close of ['end', 'destroy'] as const) {
      const socket = connect(Number(new URL(url).port), '127.0.0.1')
      socket.on('error', () => {})
      await new Promise((resolve) => socket.once('connect', resolve))
      const head = `POST ${BASE} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice.token}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\n` +
        `Upload-Metadata: filename ${b64('whole.raw')}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 5\r\n\r\nhello`
      socket.write(head, () => { if (close === 'end') socket.end(); else socket.destroy() })
    }
    await until('the creations to be removed and their files closed', async () => (await rows()) === 0 && (await resumableFiles()).length === 0 && (await openResumableFiles()) === 0)
    await expectNothingLeftBehind(t, before)
  })

  it('a PATCH keeps what came, closes its file and lets the next request in', async () => {
    const created = await create(alice.token, 'later.raw', 1000)
    await resetAfter(`PATCH ${created.path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice.token}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n` +
      'Content-Type: application/offset+octet-stream\r\nContent-Length: 1000\r\n\r\n')
    await until('the PATCH to let its file go', async () => (await openResumableFiles()) === 0)
    const head = await send('HEAD', created.path, tusHeaders(alice.token))
    expect(Number(head.headers['upload-offset'])).toBeLessThanOrEqual(100)
    expect((await send('DELETE', created.path, tusHeaders(alice.token))).status).toBe(204)
    await expectNothingLeftBehind(t, before)
  })
})

describe('quota: unfinished uploads hold their length', () => {
  it('a creation must fit beside the owner\'s other unfinished uploads; terminating one frees its length; other identities are not affected', async () => {
    const carol = await createIdentity(t.request, 'carol')
    const first = await create(carol.token, 'first.glb', 200 * MB)
    expect(first.status).toBe(201)
    // 200 + 200 MB would not fit a 350 MB quota once both are stored: refused now, before a byte, not at the last byte.
    const second = await create(carol.token, 'second.glb', 200 * MB, Buffer.from('glTF!'))
    expect(second.status).toBe(413)
    expect(second.body).toMatchObject({ code: 'ERR_QUOTA_EXCEEDED' })
    expect((second.body as { error: string }).error).toMatch(/1 unfinished resumable upload/)
    expect((second.body as { details: string[] }).details.join('\n')).toMatch(/held by 1 unfinished resumable upload\(s\).*200000000 bytes/)
    expect(second.headers.location).toBeUndefined()
    const small = await create(carol.token, 'small.glb', 100 * MB)
    expect(small.status).toBe(201)
    // Someone else's quota is their own.
    const other = await createIdentity(t.request, 'dave')
    const theirs = await create(other.token, 'theirs.glb', 300 * MB)
    expect(theirs.status).toBe(201)
    expect((await send('DELETE', first.path, tusHeaders(carol.token))).status).toBe(204)
    const again = await create(carol.token, 'second.glb', 200 * MB)
    expect(again.status).toBe(201)
    for (const [token, path] of [[carol.token, small.path], [other.token, theirs.path], [carol.token, again.path]] as const) {
      expect((await send('DELETE', path, tusHeaders(token))).status).toBe(204)
    }
    expect(await resumableFiles()).toEqual([])
    await expectNothingLeftBehind(t, before)
  })

  it('creations sent at once cannot all pass one count: exactly what fits is created', async () => {
    const erin = await createIdentity(t.request, 'erin')
    const answers = await Promise.all(Array.from({ length: 8 }, async (_, i) => create(erin.token, `part${i}.glb`, 100 * MB)))
    expect(answers.map((a) => a.status).sort()).toEqual([201, 201, 201, 413, 413, 413, 413, 413])
    for (const answer of answers.filter((a) => a.status === 201)) expect((await send('DELETE', answer.path, tusHeaders(erin.token))).status).toBe(204)
    expect(await resumableFiles()).toEqual([])
    await expectNothingLeftBehind(t, before)
  })
})

describe('an upload in pieces', () => {
  it('creation-with-upload of a whole GLB answers 201 with what POST /upload answers (asked with Accept); GET afterwards the same', async () => {
    const glb = fixture('glb/BoxTextured.glb')
    const res = await create(alice.token, 'BoxTextured.glb', glb.length, glb, { Accept: 'application/json' })
    expect(res.status).toBe(201)
    expect(res.path).toMatch(/^\/upload\/resumable\/[0-9a-f]{32}$/)
    expect(res.headers['upload-offset']).toBe(String(glb.length))
    expect(res.headers['tus-resumable']).toBe('1.0.0')
    const plain = await plainUpload(bob.token, glb, 'BoxTextured.glb')
    expect(plain.status).toBe(200)
    expect(res.body).toEqual(plain.body)
    const again = await send('GET', res.path, { Authorization: `Bearer ${alice.token}` })
    expect(again.status).toBe(200)
    expect(again.body).toEqual(plain.body)
    const head = await send('HEAD', res.path, tusHeaders(alice.token))
    expect(head.status).toBe(200)
    expect(head.headers['upload-offset']).toBe(String(glb.length))
    // The bytes were imported: none stay on disk.
    expect(await resumableFiles()).toEqual([])
    // A repeat of the final PATCH whose answer was lost: the same answer, or tus's 204 to a client that does not ask for it.
    const repeat = await send('PATCH', res.path, tusHeaders(alice.token, { 'Upload-Offset': String(glb.length), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': '0', Accept: 'application/json' }))
    expect(repeat.status).toBe(200)
    expect(repeat.body).toEqual(plain.body)
    const bare = await send('PATCH', res.path, tusHeaders(alice.token, { 'Upload-Offset': String(glb.length), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': '0' }))
    expect(bare.status).toBe(204)
    // Without Accept, a creation that completes the upload is tus's bare 201.
    const plainCreate = await create(bob.token, 'again.glb', glb.length, glb)
    expect(plainCreate.status).toBe(201)
    expect(plainCreate.headers['content-length'] ?? '0').toBe('0')
  })

  it('takes an FBX in three PATCHes; a wrong offset is 409; HEAD says the offset, length, expiry and no-store', async () => {
    const fbx = fixture('fbx/box-binary.fbx')
    const created = await create(alice.token, 'box.fbx', fbx.length)
    expect(created.status).toBe(201)
    expect(created.headers['upload-offset']).toBe('0')
    expect(Date.parse(String(created.headers['upload-expires']))).toBeGreaterThan(Date.now() + 23 * 3600 * 1000)
    const third = Math.floor(fbx.length / 3)
    const first = await patch(alice.token, created.path, 0, fbx.subarray(0, third))
    expect(first.status).toBe(204)
    expect(first.headers['upload-offset']).toBe(String(third))
    const wrong = await patch(alice.token, created.path, 0, fbx.subarray(0, third))
    expect(wrong.status).toBe(409)
    expect(wrong.body).toMatchObject({ code: 'ERR_CONFLICT' })
    const head = await send('HEAD', created.path, tusHeaders(alice.token))
    expect(head.status).toBe(200)
    expect(head.headers).toMatchObject({ 'upload-offset': String(third), 'upload-length': String(fbx.length), 'cache-control': 'no-store', 'upload-metadata': `filename ${b64('box.fbx')}` })
    expect(Number.isNaN(Date.parse(String(head.headers['upload-expires'])))).toBe(false)
    // Upload-Metadata comes back as the client sent it, keys without values and unknown keys included.
    const sent = `filename ${b64('meta.glb')},filetype ${b64('model/gltf-binary')},is_confidential`
    const described = await send('POST', BASE, tusHeaders(alice.token, { 'Upload-Length': '10', 'Upload-Metadata': sent }))
    expect((await send('HEAD', String(described.headers.location), tusHeaders(alice.token))).headers['upload-metadata']).toBe(sent)
    expect((await send('DELETE', String(described.headers.location), tusHeaders(alice.token))).status).toBe(204)
    const early = await send('GET', created.path, { Authorization: `Bearer ${alice.token}` })
    expect(early.status).toBe(409)
    expect(early.headers['upload-offset']).toBe(String(third))
    // Not offset+octet-stream: 415; more than the upload lacks: 413; neither writes a byte.
    expect((await send('PATCH', created.path, tusHeaders(alice.token, { 'Upload-Offset': String(third), 'Content-Type': 'application/json' }), Buffer.from('{}'))).status).toBe(415)
    // Whatever the body: not read as JSON or a form first (a parser's 400 or 413 would answer instead).
    expect((await send('PATCH', created.path, tusHeaders(alice.token, { 'Upload-Offset': String(third), 'Content-Type': 'application/json' }), fbx.subarray(third))).status).toBe(415)
    expect((await send('PATCH', created.path, tusHeaders(alice.token, { 'Upload-Offset': String(third), 'Content-Type': 'application/x-www-form-urlencoded' }), Buffer.alloc(64 * 1024, 0x61))).status).toBe(415)
    expect((await patch(alice.token, created.path, third, Buffer.concat([fbx.subarray(third), Buffer.alloc(1)]))).status).toBe(413)
    expect((await stat(join(t.dataDir, 'resumable', created.path.split('/').pop() ?? ''))).size).toBe(third)
    expect((await patch(alice.token, created.path, third, fbx.subarray(third, 2 * third))).status).toBe(204)
    // The last PATCH: 204, as tus requires of every PATCH (go-tus accepts nothing else); the answer is the upload's URL's.
    const last = await patch(alice.token, created.path, 2 * third, fbx.subarray(2 * third))
    expect(last.status).toBe(204)
    const plain = await plainUpload(bob.token, fbx, 'box.fbx')
    const answer = await send('GET', created.path, { Authorization: `Bearer ${alice.token}` })
    expect(answer.status).toBe(200)
    expect(answer.body).toEqual(plain.body)
  })

  it('a HEAD while an earlier PATCH still hangs (its client gone unnoticed) stops that PATCH and counts what it wrote', async () => {
    const size = 1024 * 1024
    const data = Buffer.alloc(size, 7)
    const created = await create(alice.token, 'hang.bin', size)
    const file = join(t.dataDir, 'resumable', created.path.split('/').pop() ?? '')
    const hanging = httpRequest(`${url}${created.path}`, { method: 'PATCH', agent: false, headers: tusHeaders(alice.token, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(size) }) })
    const outcome = new Promise<string>((resolve) => {
      hanging.on('response', (res) => { res.resume(); resolve(String(res.statusCode)) })
      hanging.on('error', (err) => { resolve(err.message) })
    })
    hanging.write(data.subarray(0, 300_000))
    const deadline = Date.now() + 5000
    while ((await stat(file)).size < 300_000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    const head = await send('HEAD', created.path, tusHeaders(alice.token))
    expect(head.status).toBe(200)
    expect(head.headers['upload-offset']).toBe('300000')
    // The stopped request is answered 409, or its connection closed.
    expect(await outcome).toMatch(/^409$|socket hang up|ECONNRESET|EPIPE/)
    const rest = await send('PATCH', created.path, tusHeaders(alice.token, { 'Upload-Offset': '300000', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(size - 300_000), Accept: 'application/json' }), data.subarray(300_000))
    expect(rest.status).toBe(200)
    expect((rest.body as Array<{ Name: string }>).at(-1)?.Name).toBe('hang')
  })

  it('a GET once every byte is in answers the upload, importing it again if its import failed (a 5xx at the last PATCH, a restart)', async () => {
    const glb = fixture('glb/BoxTextured.glb')
    const created = await create(alice.token, 'retried.glb', glb.length)
    const id = created.path.split('/').pop() ?? ''
    // What a last PATCH whose import failed on the server's side leaves: every byte on disk and counted, no answer.
    await writeFile(join(t.dataDir, 'resumable', id), glb)
    await t.heimdall.database.knex('resumable_uploads').where({ id }).update({ upload_offset: glb.length })
    // tus-js-client's retry is a HEAD, which says the upload is complete; the client then stops, and asks the URL.
    const head = await send('HEAD', created.path, tusHeaders(alice.token))
    expect(head.headers['upload-offset']).toBe(String(glb.length))
    const answer = await send('GET', created.path, { Authorization: `Bearer ${alice.token}`, Accept: 'application/json' })
    expect(answer.status).toBe(200)
    const plain = await plainUpload(bob.token, glb, 'retried.glb')
    expect(answer.body).toEqual(plain.body)
    expect(await resumableFiles()).toEqual([])
    expect((await send('GET', created.path, { Authorization: `Bearer ${alice.token}` })).body).toEqual(plain.body)
  })

  it('answers 404 to anyone but the owner, for HEAD, PATCH, DELETE and GET', async () => {
    const created = await create(alice.token, 'other.glb', 100)
    expect(created.status).toBe(201)
    expect((await send('HEAD', created.path, tusHeaders(bob.token))).status).toBe(404)
    expect((await patch(bob.token, created.path, 0, Buffer.from('glTF'))).status).toBe(404)
    expect((await send('DELETE', created.path, tusHeaders(bob.token))).status).toBe(404)
    expect((await send('GET', created.path, { Authorization: `Bearer ${bob.token}` })).status).toBe(404)
    expect((await send('HEAD', `${BASE}/${'0'.repeat(32)}`, tusHeaders(alice.token))).status).toBe(404)
    expect((await send('HEAD', `${BASE}/not-an-id`, tusHeaders(alice.token))).status).toBe(404)
    // Still there for its owner.
    expect((await send('HEAD', created.path, tusHeaders(alice.token))).headers['upload-offset']).toBe('0')
    await send('DELETE', created.path, tusHeaders(alice.token))
  })

  it('DELETE terminates: 204, then 404, and its bytes are gone', async () => {
    const rowsBefore = await rows()
    const created = await create(alice.token, 'gone.glb', 100)
    expect((await patch(alice.token, created.path, 0, Buffer.from('glTF0123'))).status).toBe(204)
    expect(await resumableFiles()).toHaveLength(1)
    const res = await send('DELETE', created.path, tusHeaders(alice.token))
    expect(res.status).toBe(204)
    expect(res.headers['tus-resumable']).toBe('1.0.0')
    expect((await send('HEAD', created.path, tusHeaders(alice.token))).status).toBe(404)
    expect((await patch(alice.token, created.path, 8, Buffer.from('x'))).status).toBe(404)
    expect(await resumableFiles()).toEqual([])
    expect(await rows()).toBe(rowsBefore)
    await expectNothingLeftBehind(t, before)
  })

  it('a .glb that is not glTF is refused at its last byte with the 415 of POST /upload, and nothing is left behind', async () => {
    const bytes = Buffer.from('this is not a binary glTF file at all, just text')
    const plain = await plainUpload(alice.token, bytes, 'fake.glb')
    expect(plain.status).toBe(415)
    before = await leftovers(t)
    const created = await create(alice.token, 'fake.glb', bytes.length)
    expect((await patch(alice.token, created.path, 0, bytes.subarray(0, 10))).status).toBe(204)
    const last = await patch(alice.token, created.path, 10, bytes.subarray(10))
    expect(last.status).toBe(415)
    const { requestId: _a, ...refusal } = last.body as Record<string, unknown>
    const { requestId: _b, ...expected } = plain.body as Record<string, unknown>
    expect(refusal).toEqual(expected)
    await expectNothingLeftBehind(t, before)
    expect(await resumableFiles()).toEqual([])
    // The resource is gone; its answer is kept for a client whose connection broke before it.
    expect((await send('HEAD', created.path, tusHeaders(alice.token))).status).toBe(404)
    const got = await send('GET', created.path, { Authorization: `Bearer ${alice.token}` })
    expect(got.status).toBe(415)
    expect(got.body).toMatchObject(expected)
  })

  it('a browser session needs the CSRF token in X-CSRF-Token, as every browser write does', async () => {
    const person = await createIdentity(t.request)
    const browser = t.browser()
    const page = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
    await browser.post('/uploads').type('form').set('Accept', 'text/html').send({ ...person, _csrf: csrfField(page.text) }).expect(303)
    const csrf = csrfField((await browser.get('/upload').set('Accept', 'text/html').expect(200)).text)
    const headers = { 'Tus-Resumable': '1.0.0', 'Upload-Length': '4', 'Upload-Metadata': `filename ${b64('s.glb')}` }
    const refused = await browser.post(BASE).set(headers).expect(403)
    // tus: Tus-Resumable on every answer, a refusal by the CSRF check included.
    expect(refused.headers['tus-resumable']).toBe('1.0.0')
    const created = await browser.post(BASE).set({ ...headers, 'X-CSRF-Token': csrf }).expect(201)
    const path = created.headers.location ?? ''
    await browser.head(path).set('Tus-Resumable', '1.0.0').expect(200)
    expect((await browser.delete(path).set('Tus-Resumable', '1.0.0').expect(403)).headers['tus-resumable']).toBe('1.0.0')
    await browser.delete(path).set({ 'Tus-Resumable': '1.0.0', 'X-CSRF-Token': csrf }).expect(204)
  })
})

describe('tus-js-client', () => {
  it('uploads an FBX in several PATCHes through the real client; its last answer, asked for with Accept, is POST /upload\'s JSON', async () => {
    const fbx = fixture('fbx/cubes-ascii.fbx')
    const chunkSize = Math.ceil(fbx.length / 4)
    const patches: number[] = []
    const answer = await new Promise<string>((resolve, reject) => {
      const upload = new tus.Upload(fbx, {
        endpoint: `${url}${BASE}`,
        headers: { Authorization: `Bearer ${alice.token}`, Accept: 'application/json' },
        metadata: { filename: 'cubes.fbx', filetype: 'application/octet-stream' },
        chunkSize,
        retryDelays: [],
        onChunkComplete: (_chunk, accepted) => { patches.push(accepted) },
        onSuccess: (payload) => { resolve(payload.lastResponse.getBody()) },
        onError: reject
      })
      upload.start()
    })
    expect(patches.length).toBeGreaterThanOrEqual(4)
    const plain = await plainUpload(bob.token, fbx, 'cubes.fbx')
    expect(JSON.parse(answer)).toEqual(plain.body)
  })

  it('as the client is by default (no Accept): the last PATCH is tus\'s 204, and the upload\'s URL gives the answer', async () => {
    const fbx = fixture('fbx/box-binary.fbx')
    const { status, location } = await new Promise<{ status: number, location: string }>((resolve, reject) => {
      const upload = new tus.Upload(fbx, {
        endpoint: `${url}${BASE}`,
        headers: { Authorization: `Bearer ${alice.token}` },
        metadata: { filename: 'default-client.fbx' },
        chunkSize: Math.ceil(fbx.length / 2),
        retryDelays: [],
        onSuccess: (payload) => { resolve({ status: payload.lastResponse.getStatus(), location: upload.url ?? '' }) },
        onError: reject
      })
      upload.start()
    })
    expect(status).toBe(204)
    const answer = await send('GET', new URL(location).pathname, { Authorization: `Bearer ${alice.token}` })
    expect(answer.status).toBe(200)
    expect((answer.body as Array<{ Name: string }>).at(-1)?.Name).toBe('default-client')
  })
})

describe('expiration', () => {
  it('sweeps an unfinished upload once it expired: its row and bytes go, and it answers 404', async () => {
    const short = await startTestHeimdall({ RESUMABLE_EXPIRY_SECONDS: '1', RESUMABLE_SWEEP_SECONDS: '1' })
    try {
      const person = await createIdentity(short.request)
      const created = await short.request.post(BASE).set(tusHeaders(person.token, { 'Upload-Length': '100', 'Upload-Metadata': `filename ${b64('late.glb')}` })).expect(201)
      const path = created.headers.location ?? ''
      await short.request.patch(path).set(tusHeaders(person.token, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' })).send(Buffer.from('glTF0123')).expect(204)
      expect(await resumableFiles(short.dataDir)).toHaveLength(1)
      const deadline = Date.now() + 10_000
      while ((await resumableFiles(short.dataDir)).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
      expect(await resumableFiles(short.dataDir)).toEqual([])
      expect(Number((await short.heimdall.database.knex('resumable_uploads').count<Array<{ n: string }>>({ n: '*' }))[0]?.n)).toBe(0)
      await short.request.head(path).set(tusHeaders(person.token)).expect(404)
      await short.request.patch(path).set(tusHeaders(person.token, { 'Upload-Offset': '8', 'Content-Type': 'application/offset+octet-stream' })).send(Buffer.from('x')).expect(404)
    } finally {
      await short.close()
    }
  }, 30_000)
})

describe('checksum extension: a request\'s bytes count only if they hash to its Upload-Checksum', () => {
  const digest = (algorithm: string, bytes: Buffer): string => createHash(algorithm).update(bytes).digest('base64')
  const patchWith = async (token: string, path: string, offset: number, body: Buffer, checksum: string): Promise<Answer> =>
    send('PATCH', path, tusHeaders(token, { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(body.length), 'Upload-Checksum': checksum }), body)
  const fileSize = async (path: string): Promise<number> => (await stat(join(t.dataDir, 'resumable', path.split('/').at(-1) ?? ''))).size

  it('a right sha1 is taken; a wrong one is 460 and keeps nothing of the request (the offset stays, the bytes go); sent again right, the upload completes', async () => {
    const glb = fixture('glb/BoxTextured.glb')
    const { path } = await create(alice.token, 'checked.glb', glb.length)
    const half = Math.floor(glb.length / 2)
    const first = await patchWith(alice.token, path, 0, glb.subarray(0, half), `sha1 ${digest('sha1', glb.subarray(0, half))}`)
    expect(first.status).toBe(204)
    expect(first.headers['upload-offset']).toBe(String(half))
    const rest = glb.subarray(half)
    const corrupted = Buffer.from(rest)
    corrupted[10] = (corrupted[10] ?? 0) ^ 0xff
    const wrong = await patchWith(alice.token, path, half, corrupted, `sha256 ${digest('sha256', rest)}`)
    expect(wrong.status).toBe(460)
    expect(wrong.body).toMatchObject({ code: 'ERR_CHECKSUM_MISMATCH' })
    expect(wrong.headers['upload-offset']).toBeUndefined()
    const head = await t.request.head(path).set(tusHeaders(alice.token)).expect(200)
    expect(head.headers['upload-offset']).toBe(String(half))
    expect(await fileSize(path)).toBe(half)
    const right = await send('PATCH', path, tusHeaders(alice.token, { 'Upload-Offset': String(half), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(rest.length), 'Upload-Checksum': `sha256 ${digest('sha256', rest)}`, Accept: 'application/json' }), rest)
    expect(right.status).toBe(200)
    const plain = await plainUpload(alice.token, glb, 'checked.glb')
    expect((right.body as Array<{ Hash: string }>).at(-1)?.Hash).toBe((plain.body as Array<{ Hash: string }>).at(-1)?.Hash)
  })

  it('an algorithm not offered, or a digest of the wrong length, is 400 before any byte is written; a creation-with-upload that does not match leaves nothing', async () => {
    const rowsBefore = await rows()
    const { path } = await create(alice.token, 'algo.glb', 100)
    const bytes = Buffer.from('glTF0123')
    expect((await patchWith(alice.token, path, 0, bytes, 'crc32 AAAAAA==')).status).toBe(400)
    expect((await patchWith(alice.token, path, 0, bytes, `sha1 ${digest('md5', bytes)}`)).status).toBe(400)
    expect((await t.request.head(path).set(tusHeaders(alice.token)).expect(200)).headers['upload-offset']).toBe('0')
    // An empty request is checked too: the digest of no bytes.
    expect((await patchWith(alice.token, path, 0, Buffer.alloc(0), `sha1 ${digest('sha1', Buffer.from('zzz'))}`)).status).toBe(460)
    expect((await patchWith(alice.token, path, 0, Buffer.alloc(0), `sha1 ${digest('sha1', Buffer.alloc(0))}`)).status).toBe(204)
    await t.request.delete(path).set(tusHeaders(alice.token)).expect(204)
    const refused = await create(alice.token, 'whole.glb', bytes.length, bytes, { 'Upload-Checksum': `md5 ${digest('md5', Buffer.from('other'))}` })
    expect(refused.status).toBe(460)
    expect(refused.path).toBe('')
    expect(await rows()).toBe(rowsBefore)
    expect(await resumableFiles()).toEqual([])
    await expectNothingLeftBehind(t, before)
  })
})

describe('expiration while bytes still come', () => {
  it('an upload does not expire while a request is receiving it (it expires after its last byte): a sweep passes it by, and it completes', async () => {
    const short = await startTestHeimdall({ RESUMABLE_EXPIRY_SECONDS: '1', RESUMABLE_SWEEP_SECONDS: '1' })
    try {
      const { url: shortUrl } = await short.listen()
      const person = await createIdentity(short.request)
      const glb = fixture('glb/BoxTextured.glb')
      const created = await short.request.post(BASE).set(tusHeaders(person.token, { 'Upload-Length': String(glb.length), 'Upload-Metadata': `filename ${b64('slow.glb')}` })).expect(201)
      const path = created.headers.location ?? ''
      // Half the file in ten pieces over 3.5 s: three sweeps and more than three expiry periods pass while it comes.
      const half = Math.floor(glb.length / 2)
      const pieces = Array.from({ length: 10 }, (_, i) => glb.subarray(Math.floor(half * i / 10), Math.floor(half * (i + 1) / 10)))
      const slowly = Readable.from((async function * () { for (const piece of pieces) { await new Promise((resolve) => setTimeout(resolve, 350)); yield piece } })())
      const answer = await new Promise<{ status: number, offset: unknown }>((resolve, reject) => {
        const req = httpRequest(`${shortUrl}${path}`, { method: 'PATCH', agent: false, headers: tusHeaders(person.token, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(half) }) }, (res) => {
          res.resume()
          res.on('end', () => { resolve({ status: res.statusCode ?? 0, offset: res.headers['upload-offset'] }) })
        })
        req.on('error', reject)
        slowly.pipe(req)
      })
      expect(answer).toEqual({ status: 204, offset: String(half) })
      const head = await short.request.head(path).set(tusHeaders(person.token)).expect(200)
      expect(head.headers['upload-offset']).toBe(String(half))
      await short.request.patch(path).set(tusHeaders(person.token, { 'Upload-Offset': String(half), 'Content-Type': 'application/offset+octet-stream' })).send(glb.subarray(half)).expect(204)
      const done = await short.request.get(path).set(tusHeaders(person.token)).expect(200)
      expect((done.body as Array<{ Name: string }>).map((i) => i.Name)).toContain('slow/slow.glb')
    } finally {
      await short.close()
    }
  }, 30_000)
})

describe('the issue\'s test: 300 MB cut off at half, resumed', () => {
  const SIZE = 300 * MB
  const SEED = 'resumable-300mb'

  /** The file's bytes from `from` on, made as they are sent (the keystream before `from` is made and dropped). */
  function bytesFrom (from: number): Readable {
    const next = kuboDeterministicStream(SEED)
    return Readable.from((function * () {
      for (let skip = from; skip > 0; skip -= Math.min(skip, MB)) next(Math.min(skip, MB))
      for (let left = SIZE - from; left > 0; left -= MB) yield next(Math.min(left, MB))
    })())
  }

  it('resumes without re-sending what the server acknowledged, and ends with the CID of a plain upload', async () => {
    const created = await create(alice.token, 'large.bin', SIZE)
    expect(created.status).toBe(201)

    // The first PATCH announces everything, sends about half, and its TCP connection is reset (no polite end).
    const sentBeforeCut = await new Promise<number>((resolve, reject) => {
      let sent = 0
      const req = httpRequest(`${url}${created.path}`, {
        method: 'PATCH',
        agent: false,
        headers: tusHeaders(alice.token, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(SIZE) })
      })
      req.on('error', () => { resolve(sent) })
      req.on('response', () => { reject(new Error('the cut PATCH was answered')) })
      const source = bytesFrom(0)
      source.on('data', (chunk: Buffer) => {
        if (sent >= SIZE / 2) {
          source.destroy()
          req.socket?.resetAndDestroy()
          return
        }
        sent += chunk.length
        if (!req.write(chunk)) { source.pause(); req.once('drain', () => { source.resume() }) }
      })
    })
    expect(sentBeforeCut).toBeGreaterThanOrEqual(SIZE / 2)

    // HEAD: what the server fsynced and recorded; never more than was sent, and something.
    const head = await send('HEAD', created.path, tusHeaders(alice.token))
    expect(head.status).toBe(200)
    const offset = Number(head.headers['upload-offset'])
    expect(offset).toBeGreaterThan(0)
    expect(offset).toBeLessThanOrEqual(sentBeforeCut)
    expect((await stat(join(t.dataDir, 'resumable', created.path.split('/').pop() ?? ''))).size).toBe(offset)

    // The rest only: what goes over the wire is the remaining bytes and the request's head.
    const started = process.hrtime.bigint()
    const resumed = await new Promise<{ status: number, body: string, wire: number }>((resolve, reject) => {
      const req = httpRequest(`${url}${created.path}`, {
        method: 'PATCH',
        agent: false,
        headers: tusHeaders(alice.token, { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(SIZE - offset), Accept: 'application/json' })
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), wire: req.socket?.bytesWritten ?? -1 }) })
      })
      req.on('error', reject)
      bytesFrom(offset).pipe(req)
    })
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    console.log(`resumed PATCH of ${((SIZE - offset) / MB).toFixed(0)} MB (write, fsync, import): ${seconds.toFixed(1)} s`)
    expect(resumed.status).toBe(200)
    expect(resumed.wire).toBeGreaterThanOrEqual(SIZE - offset)
    expect(resumed.wire).toBeLessThan(SIZE - offset + 4096)
    const items = JSON.parse(resumed.body) as Array<{ Name: string, Hash: string }>
    expect(items.at(-1)?.Name).toBe('large')

    // The same bytes sent in one plain POST /upload (by another identity): the same root.
    const plain = await uploadStream(url, bob.token, { size: SIZE, stream: () => bytesFrom(0) }, 'large.bin')
    expect(plain.status).toBe(200)
    expect((plain.body as Array<{ Hash: string }>).at(-1)?.Hash).toBe(items.at(-1)?.Hash)
    expect(await resumableFiles()).toEqual([])
    // The stored file is the stream's bytes, in order.
    const hash = createHash('sha256')
    for await (const chunk of bytesFrom(0)) hash.update(chunk as Buffer)
    const served = createHash('sha256')
    const read = await fetch(`${url}/ipfs/${items.at(-1)?.Hash}/large.bin`)
    for await (const chunk of read.body ?? []) served.update(chunk)
    expect(served.digest('hex')).toBe(hash.digest('hex'))
  }, 600_000)
})
