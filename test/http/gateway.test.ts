import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { avatarBundle, fixture } from '../support/fixtures.ts'
import { appBackends } from '../support/backends.ts'
import { asBytes, createIdentity, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

const glb = fixture('glb/BoxTextured.glb')

/** The same gateway answers whichever node holds the content. */
const backends = appBackends()

for (const backend of backends) describe.skipIf(!backend.available)(`gateway over ${backend.name}`, () => {
let t: TestHeimdall
let root: string
let stopBackend: () => Promise<void>

beforeAll(async () => {
  const started = await backend.start()
  stopBackend = started.stop
  t = await startTestHeimdall(started.env)
  const { token } = await createIdentity(t.request)
  const bundle = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', await avatarBundle(), 'hero.zip').expect(200)
  root = (bundle.body as Array<{ Name: string, Hash: string }>).find((i) => i.Name === 'hero')?.Hash ?? ''
  await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', glb, 'box.glb').expect(200)
})
afterAll(async () => { await t.close(); await stopBackend() })

describe('GET /ipfs/<cid>/<path>', () => {
  it('serves a file with its type, length and the immutable, sandboxed headers', async () => {
    const res = await t.request.get(`/ipfs/${root}/textures/skin.png`).buffer(true).parse(asBytes).expect(200)
    expect(Buffer.compare(res.body as Buffer, fixture('gltf/BoxTextured/CesiumLogoFlat.png'))).toBe(0)
    expect(res.headers).toMatchObject({
      'content-type': 'image/png',
      'content-length': String(fixture('gltf/BoxTextured/CesiumLogoFlat.png').length),
      etag: `"/ipfs/${root}/textures/skin.png"`,
      'cache-control': 'public, max-age=29030400, immutable',
      'access-control-allow-origin': '*',
      'x-content-type-options': 'nosniff',
      'accept-ranges': 'bytes'
    })
    expect(res.headers['content-security-policy']).toMatch(/^sandbox;/)
    expect(res.headers['content-security-policy']).toContain("default-src 'none'")
  })

  it.each([
    ['avatar.fst', 'text/plain; charset=utf-8'],
    ['box.fbx', 'application/octet-stream']
  ])('types %s as %s', async (path, type) => {
    const res = await t.request.head(`/ipfs/${root}/${path}`).expect(200)
    expect(res.headers['content-type']).toBe(type)
  })

  it('answers HEAD with the headers and no body', async () => {
    const res = await t.request.head(`/ipfs/${root}/box.fbx`).expect(200)
    expect(res.headers['content-length']).toBe(String(fixture('fbx/box-binary.fbx').length))
    expect(res.text).toBeUndefined()
  })

  it('answers byte ranges with 206', async () => {
    const boxRoot = (await t.heimdall.database.knex('uploads').where({ name: 'box' }).first()).root_cid as string
    const res = await t.request.get(`/ipfs/${boxRoot}/box.glb`).set('Range', 'bytes=4-11').buffer(true).parse(asBytes).expect(206)
    expect(res.headers['content-range']).toBe(`bytes 4-11/${glb.length}`)
    expect(res.headers['content-length']).toBe('8')
    expect(res.headers['content-type']).toBe('model/gltf-binary')
    expect(Buffer.compare(res.body as Buffer, glb.subarray(4, 12))).toBe(0)
    const suffix = await t.request.get(`/ipfs/${boxRoot}/box.glb`).set('Range', 'bytes=-4').buffer(true).parse(asBytes).expect(206)
    expect(Buffer.compare(suffix.body as Buffer, glb.subarray(glb.length - 4))).toBe(0)
    const unsatisfiable = await t.request.get(`/ipfs/${boxRoot}/box.glb`).set('Range', `bytes=${glb.length + 10}-`).expect(416)
    expect(unsatisfiable.headers['content-range']).toBe(`bytes */${glb.length}`)
  })

  it('answers If-None-Match with 304', async () => {
    await t.request.get(`/ipfs/${root}/avatar.fst`).set('If-None-Match', `"/ipfs/${root}/avatar.fst"`).expect(304)
  })

  it('redirects a directory to its slash form and lists it', async () => {
    const redirect = await t.request.get(`/ipfs/${root}`).expect(301)
    expect(redirect.headers.location).toBe(`/ipfs/${root}/`)
    const listing = await t.request.get(`/ipfs/${root}/`).expect(200)
    expect(listing.headers['content-type']).toMatch(/^text\/html/)
    expect(listing.headers['content-security-policy']).toMatch(/^sandbox;/)
    expect(listing.text).toContain('href="avatar.fst"')
    expect(listing.text).toContain('href="textures/"')
    const sub = await t.request.get(`/ipfs/${root}/textures/`).expect(200)
    expect(sub.text).toContain('href="skin.png"')
    expect(sub.text).toContain('href="../"')
  })

  it('404 for an unknown path or an unknown CID, 400 for a malformed CID', async () => {
    await t.request.get(`/ipfs/${root}/missing.png`).expect(404)
    const unknown = await t.request.get('/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy').expect(404)
    expect(unknown.body.error).toMatch(/not found/)
    const bad = await t.request.get('/ipfs/not-a-cid/x.png').expect(400)
    expect(bad.body.error).toMatch(/not a valid CID/)
  })

  it('answers CORS preflight', async () => {
    const res = await t.request.options(`/ipfs/${root}/box.fbx`).set('Origin', 'https://viewer.example').set('Access-Control-Request-Method', 'GET').expect(204)
    expect(res.headers['access-control-allow-origin']).toBe('*')
    expect(res.headers['access-control-allow-headers']).toContain('Range')
  })
})

describe('probes', () => {
  it('/healthz and /readyz answer ok while everything is up', async () => {
    expect((await t.request.get('/healthz').expect(200)).body).toEqual({ status: 'ok' })
    expect((await t.request.get('/readyz').expect(200)).body).toEqual({ status: 'ready', checks: { database: 'ok', ipfs: 'ok' } })
  })
})
})
