import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { avatarBundle, fixture } from '../support/fixtures.ts'
import { createIdentity, csrfField, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

let t: TestHeimdall
let alice: { username: string, token: string }
let avatarRoot: string

beforeAll(async () => {
  t = await startTestHeimdall({ PUBLIC_URL: 'https://assets.example.org' })
  alice = await createIdentity(t.request, 'alice')
  const bob = await createIdentity(t.request, 'bob')
  const res = await t.request.post('/upload').set('Authorization', `Bearer ${alice.token}`).attach('file', await avatarBundle(), 'Hero.zip').expect(200)
  avatarRoot = (res.body as Array<{ Name: string, Hash: string }>).find((i) => i.Name === 'Hero')?.Hash ?? ''
  await t.request.post('/upload').set('Authorization', `Bearer ${alice.token}`).attach('file', fixture('glb/BoxTextured.glb'), 'Box.glb').expect(200)
  await t.request.post('/upload').set('Authorization', `Bearer ${bob.token}`).attach('file', fixture('obj/cube_usemtl.obj'), 'bobs.obj').expect(200)
})
afterAll(async () => { await t.close() })

describe('/uploads', () => {
  it('GET shows a browser the sign-in page', async () => {
    const res = await t.request.get('/uploads').set('Accept', 'text/html').expect(200)
    expect(res.text).toContain('name="token"')
  })

  it('GET without credentials answers an API client 401 JSON', async () => {
    const res = await t.request.get('/uploads').expect(401)
    expect(res.body.error).toMatch(/sign in/)
    // RFC 9110: a 401 names its scheme.
    expect(res.headers['www-authenticate']).toBe('Bearer realm="heimdall"')
  })

  it('POST with credentials and Accept: application/json lists the person\'s uploads only, with gateway links', async () => {
    const res = await t.request.post('/uploads').type('form').set('Accept', 'application/json').send(alice).expect(200)
    const body = res.body as { username: string, total: number, uploads: Array<Record<string, unknown>> }
    expect(body.username).toBe('alice')
    expect(body.total).toBe(2)
    expect(body.uploads.map((u) => u.name)).toEqual(['Box', 'Hero'])
    const hero = body.uploads[1] as Record<string, unknown>
    expect(hero).toMatchObject({
      kind: 'avatar',
      avatar: true,
      rootCid: avatarRoot,
      url: `https://assets.example.org/ipfs/${avatarRoot}/`,
      primaryUrl: `https://assets.example.org/ipfs/${avatarRoot}/avatar.fst`
    })
    expect(typeof hero.createdAt).toBe('string')
    expect(hero.size).toBeGreaterThan(0)
    expect((hero.files as Array<{ path: string }>).map((f) => f.path)).toEqual(['avatar.fst', 'box.fbx', 'textures/skin.png'])
    expect((hero.files as Array<{ url: string, cid: string }>)[2]?.url).toBe(`https://assets.example.org/ipfs/${avatarRoot}/textures/skin.png`)
  })

  it('a page past the last one shows the last page, not "Nothing yet" (a stale Next link, a narrower search)', async () => {
    for (const query of ['page=999', 'page=2&q=Box']) {
      const res = await t.request.get(`/uploads?${query}`).set('Accept', 'text/html').set('Authorization', `Bearer ${alice.token}`).expect(200)
      expect(res.text, query).not.toMatch(/Nothing yet|No upload matches/)
      expect(res.text, query).toContain('Box')
    }
  })

  it('POST with a wrong token: 401 JSON, or the sign-in page again for a browser', async () => {
    await t.request.post('/uploads').type('form').send({ username: 'alice', token: 'nope' }).expect(401)
    const page = await t.request.post('/uploads').type('form').set('Accept', 'text/html').send({ username: 'alice', token: 'nope' }).expect(401)
    expect(page.headers['www-authenticate']).toBe('Bearer realm="heimdall"')
    expect(page.text).toContain('wrong token')
  })

  it('a browser POST signs in and redirects to the list, which then shows with the cookie', async () => {
    const browser = t.browser()
    const signIn = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
    const res = await browser.post('/uploads').type('form').set('Accept', 'text/html').send({ ...alice, _csrf: csrfField(signIn.text) }).expect(303)
    expect(res.headers.location).toBe('/uploads')
    const list = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
    expect(list.text).toContain('Hero')
    expect(list.text).toContain('avatar')
    expect(list.text).toContain(`${avatarRoot}/avatar.fst`)
    await browser.post('/signout').type('form').send({ _csrf: csrfField(list.text) }).expect(303)
    const after = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
    expect(after.text).toContain('name="token"')
  })

  it('refuses a browser post without the form\'s CSRF token, or with a forged one', async () => {
    const browser = t.browser()
    const signIn = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
    const missing = await browser.post('/uploads').type('form').set('Accept', 'text/html').send(alice).expect(403)
    expect(missing.text).toContain('reload the page')
    await browser.post('/uploads').type('form').send({ ...alice, _csrf: 'forged' }).expect(403)
    const other = t.browser()
    const otherPage = await other.get('/uploads').set('Accept', 'text/html').expect(200)
    // A token is bound to its own browser's cookie.
    await browser.post('/uploads').type('form').send({ ...alice, _csrf: csrfField(otherPage.text) }).expect(403)
    await browser.post('/uploads').type('form').send({ ...alice, _csrf: csrfField(signIn.text) }).set('Accept', 'application/json').expect(200)
  })

  it('refuses a cookie-authenticated upload without the token before reading the file', async () => {
    const carol = await createIdentity(t.request, 'carol')
    const browser = t.browser()
    const signIn = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
    await browser.post('/uploads').type('form').set('Accept', 'text/html').send({ ...carol, _csrf: csrfField(signIn.text) }).expect(303)
    const uploadPage = await browser.get('/upload').set('Accept', 'text/html').expect(200)
    await browser.post('/upload').attach('file', fixture('obj/cube_usemtl.mtl'), 'forged.mtl').expect(403)
    await browser.post('/upload').field('_csrf', csrfField(uploadPage.text)).attach('file', fixture('obj/cube_usemtl.mtl'), 'ok.mtl').expect(200)
  })

  it('GET ?username&token as the add-on opens it: signs in, then redirects to a URL without the token', async () => {
    const browser = t.browser()
    const res = await browser.get(`/uploads?username=${alice.username}&token=${alice.token}`).set('Accept', 'text/html').expect(303)
    expect(res.headers.location).toBe('/uploads')
    expect(String(res.headers['set-cookie'])).toMatch(/heimdall_session=[^;]+; Max-Age=\d+; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Strict/)
    const list = await browser.get(res.headers.location as string).set('Accept', 'text/html').expect(200)
    expect(list.text).toContain('Uploads of alice')
  })

  it('GET with a bad token in the query is refused', async () => {
    await t.request.get('/uploads?username=alice&token=bad').set('Accept', 'text/html').expect(401)
  })

  it('a tampered session cookie is not a session', async () => {
    const res = await t.request.get('/uploads').set('Accept', 'text/html').set('Cookie', 'heimdall_session=1.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA').expect(200)
    expect(res.text).toContain('name="token"')
  })

  it('searches by name, any case, with pattern characters taken literally', async () => {
    const byName = await t.request.get('/uploads?q=her').set('Authorization', `Bearer ${alice.token}`).expect(200)
    expect(byName.body.uploads.map((u: { name: string }) => u.name)).toEqual(['Hero'])
    const none = await t.request.get('/uploads?q=%25').set('Authorization', `Bearer ${alice.token}`).expect(200)
    expect(none.body.total).toBe(0)
  })

  it('shows one upload in detail, with every file and a preview link, to its owner only', async () => {
    const list = await t.request.get('/uploads').set('Authorization', `Bearer ${alice.token}`).expect(200)
    const hero = list.body.uploads.find((u: { name: string }) => u.name === 'Hero') as { id: number, previewUrl: string }
    // An avatar is previewed through its .fst, as Overte loads it.
    expect(hero.previewUrl).toBe(`/preview/${avatarRoot}/avatar.fst`)
    const detail = await t.request.get(`/uploads/${hero.id}`).set('Authorization', `Bearer ${alice.token}`).expect(200)
    expect(detail.body.files.map((f: { path: string }) => f.path)).toEqual(['avatar.fst', 'box.fbx', 'textures/skin.png'])
    const bob = await createIdentity(t.request, 'bob2')
    await t.request.get(`/uploads/${hero.id}`).set('Authorization', `Bearer ${bob.token}`).expect(404)
    // One URL per record: the id in decimal digits, not as anything Number() reads.
    for (const spelling of [`0x${Number(hero.id).toString(16)}`, `${hero.id}.0`, `+${hero.id}`, `%20${hero.id}`, `0${hero.id}`]) {
      await t.request.get(`/uploads/${spelling}`).set('Authorization', `Bearer ${alice.token}`).expect(404)
    }
    const browser = t.browser()
    await browser.get(`/uploads?username=alice&token=${alice.token}`).set('Accept', 'text/html').expect(303)
    const page = await browser.get(`/uploads/${hero.id}`).set('Accept', 'text/html').expect(200)
    expect(page.text).toContain('textures/skin.png')
    expect(page.text).toContain(`href="/preview/${avatarRoot}/avatar.fst"`)
    expect(page.text).toContain('Signed in as <strong>alice</strong>')
  })

  it('serves the preview page for models, loading them from the gateway', async () => {
    const page = await t.request.get(`/preview/${avatarRoot}/box.fbx`).set('Accept', 'text/html').expect(200)
    expect(page.text).toContain(`data-model-url="https://assets.example.org/ipfs/${avatarRoot}/box.fbx"`)
    expect(page.text).toMatch(/src="\/static\/preview-[A-Z0-9]+\.js"/)
    expect(page.headers['content-security-policy']).toContain('connect-src \'self\' blob: data: https://assets.example.org')
    const avatar = await t.request.get(`/preview/${avatarRoot}/avatar.fst`).set('Accept', 'text/html').expect(200)
    expect(avatar.text).toMatch(/data-draco-path="\/static\/draco-[\d.]+\/"/)
    expect(avatar.headers['content-security-policy']).toContain('\'wasm-unsafe-eval\'; worker-src blob:')
    await t.request.get(`/preview/${avatarRoot}/textures/skin.png`).set('Accept', 'text/html').expect(400)
    await t.request.get('/preview/nonsense/a.fbx').set('Accept', 'text/html').expect(400)
  })

  it('refuses a preview path that leads out of its content: the browser would load, and take as the thumbnail of the viewer\'s upload, another model', async () => {
    for (const path of ['..%2F..%2Fipfs%2Fbafkqaaa%2Fx.glb', '../../ipfs/bafkqaaa/x.glb', 'textures/..%2F..%2Fx.glb', '.%2Fbox.fbx', 'a/%2E%2E/box.fbx']) {
      const refused = await t.request.get(`/preview/${avatarRoot}/${path}`).set('Accept', 'application/json').expect(400)
      expect(refused.body.error).toMatch(/"\.\."/)
    }
    await t.request.get(`/preview/${avatarRoot}/./box.fbx`).set('Accept', 'text/html').expect(400)
  })

  it('GET with a bearer token answers JSON', async () => {
    const res = await t.request.get('/uploads?limit=1').set('Authorization', `Bearer ${alice.token}`).expect(200)
    expect(res.body.total).toBe(2)
    expect(res.body.uploads).toHaveLength(1)
  })
})
