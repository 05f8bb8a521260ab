import { request as httpRequest } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { avatarBundle } from '../support/fixtures.ts'
import { createIdentity, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

/**
 * Every route × malformed paths, methods, Accept values and headers: the
 * answer may be any 4xx, never a 5xx. Sent over a real socket with raw
 * request lines, so nothing on the client side "fixes" the input first.
 */
let t: TestHeimdall
let port: number
let token: string
let sessionCookie: string
let root: string

beforeAll(async () => {
  t = await startTestHeimdall()
  const alice = await createIdentity(t.request)
  token = alice.token
  const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', await avatarBundle(), 'hero.zip').expect(200)
  root = (res.body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
  const signIn = await t.request.post('/uploads').type('form').set('Accept', 'text/html').send({ username: alice.username, token }).expect(303)
  sessionCookie = (signIn.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; ')
  ;({ port } = await t.listen())
})
afterAll(async () => { await t.close() })

/** One raw request; resolves with the status (0 when the server closed the connection without answering). */
async function send (method: string, path: string, headers: Record<string, string>, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: { ...headers, ...(body === undefined ? {} : { 'Content-Length': String(Buffer.byteLength(body)) }) } }, (res) => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode ?? 0) })
    })
    req.on('error', reject)
    req.end(body)
  })
}

const ROUTES = () => [
  '/', '/new', '/upload', '/uploads', '/uploads/1', '/uploads/1/delete', '/signout', '/plugin_routes',
  // Not /account/token: a POST there with the test's token would replace it.
  '/account', '/account/keys', '/account/keys/1', '/account/keys/1/revoke', '/account/sessions',
  `/ipfs/${root}`, `/ipfs/${root}/`, `/ipfs/${root}/avatar.fst`, `/ipfs/${root}/textures/`, `/preview/${root}/box.fbx`,
  '/healthz', '/readyz', '/static/app.js', '/favicon.ico', '/nowhere',
  '/upload/resumable', `/upload/resumable/${'0'.repeat(32)}`
]
const PATH_SUFFIXES = ['', '/%zz', '/%E0%A4%A', '%', '/%00', '/..%2f..%2fetc', `/${'a'.repeat(3000)}`, '/%F0%9F%98%80.png', encodeURI('/テクスチャ.png'), '?q=%zz&page=%', '/;x=1']
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']
const ACCEPTS = [undefined, '*/*', 'text/html', 'application/json', 'garbage/;;;', 'text/html;q=abc, */*;q=']
const HEADER_SETS: Array<() => Record<string, string>> = [
  () => ({}),
  () => ({ Authorization: `Bearer ${token}` }),
  () => ({ Authorization: 'Bearer' }),
  () => ({ Authorization: 'Basic %%%' }),
  () => ({ Cookie: sessionCookie }),
  () => ({ Cookie: 'heimdall_session=%zz; heimdall_csrf=%E0%A4' }),
  () => ({ Range: 'bytes=5-1' }),
  () => ({ Range: 'bytes=-0', 'If-Range': 'W/"nope"' }),
  () => ({ 'If-None-Match': '*', 'If-Modified-Since': 'not a date' }),
  () => ({ 'Content-Type': 'multipart/form-data' }),
  () => ({ 'Content-Type': 'application/json' }),
  () => ({ 'Content-Type': 'application/x-www-form-urlencoded; charset=koi8-r' }),
  // tus: past the version check, with malformed lengths, metadata and offsets.
  () => ({ 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}`, 'Upload-Length': '-1', 'Upload-Metadata': 'filename %%%,filename', 'Upload-Offset': '1e3', 'Content-Type': 'application/offset+octet-stream' }),
  () => ({ 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}`, 'Upload-Length': '99999999999999999999', 'Upload-Metadata': `filename ${Buffer.from('../../etc/x.glb').toString('base64')}`, 'X-HTTP-Method-Override': 'PATCH' })
]
const BODIES = [undefined, '{"username":', 'username=%zz&token=%E0', '--x\r\nContent-Disposition: form-data; name="file"; filename="a.fbx"\r\n\r\nabc']

describe('route fuzz', () => {
  it('answers no 5xx to any route × malformed path × method × Accept × headers', async () => {
    const failures: string[] = []
    let i = 0
    for (const route of ROUTES()) {
      for (const suffix of PATH_SUFFIXES) {
        for (const method of METHODS) {
          i++
          const accept = ACCEPTS[i % ACCEPTS.length]
          const headers = { ...HEADER_SETS[i % HEADER_SETS.length]?.(), ...(accept === undefined ? {} : { Accept: accept }) }
          const body = method === 'GET' || method === 'HEAD' ? undefined : BODIES[i % BODIES.length]
          const status = await send(method, `${route}${suffix}`, headers, body)
          if (status >= 500 || status === 0) failures.push(`${method} ${route}${suffix} ${JSON.stringify(headers)} → ${status}`)
        }
      }
    }
    expect(failures).toEqual([])
    expect(i).toBeGreaterThan(1000)
    // None of it is a server error in the log either.
    expect(t.logs.filter((line) => line.includes('"unhandled error"'))).toEqual([])
  })

  it('answers 400 with JSON to malformed percent-encoding in a path parameter', async () => {
    for (const path of [`/ipfs/${root}/%zz`, '/ipfs/%E0%A4%A', '/uploads/%zz', '/preview/%zz/x.fbx']) {
      const res = await t.request.get(path).set('Authorization', `Bearer ${token}`)
      expect(res.status, path).toBe(400)
      expect(res.body.error, path).toMatch(/percent-encoding/)
    }
    const res = await t.request.delete('/uploads/%zz').set('Authorization', `Bearer ${token}`)
    expect(res.status).toBe(400)
  })

  it('answers 400, not 500, to text PostgreSQL cannot store (a NUL character) in a search, a username or a pin name', async () => {
    const bearer = { Authorization: `Bearer ${token}` }
    // Found by schemathesis: these reached the database and came back as 500s.
    for (const res of [
      await t.request.get('/uploads?q=a%00b').set(bearer),
      await t.request.post('/new').send({ username: 'nul\u0000name' })
    ]) {
      expect(res.status, res.text).toBe(400)
    }
    // A sign-in names no one with it: the token is another's, so the credentials are refused (the username is not looked up).
    for (const res of [
      await t.request.get(`/uploads?username=a%00b&token=${token}`),
      await t.request.post('/uploads').type('form').send({ username: 'a\u0000b', token })
    ]) {
      expect(res.status, res.text).toBe(401)
    }
    const pin = await t.request.post('/psa/pins').set(bearer).send({ cid: root, name: 'a\u0000b' })
    expect(pin.status).toBe(400)
    expect((pin.body as { error: { reason: string } }).error.reason).toBe('BAD_REQUEST')
  })

  it('renders the form pages for clients that accept anything', async () => {
    for (const path of ['/new', '/upload']) {
      for (const accept of [undefined, '*/*']) {
        const req = t.request.get(path)
        if (accept !== undefined) void req.set('Accept', accept)
        const res = await req
        expect(res.status, `${path} ${accept ?? '(no Accept)'}`).toBe(200)
        expect(res.text).toContain('name="_csrf"')
      }
    }
  })

  it('serves an icon at /favicon.ico', async () => {
    const res = await t.request.get('/favicon.ico').expect(200)
    expect(res.headers['content-type']).toMatch(/^image\/svg\+xml/)
  })
})
