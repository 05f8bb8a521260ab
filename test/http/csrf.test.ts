import supertest from 'supertest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixture } from '../support/fixtures.ts'
import { createIdentity, csrfField, leftovers, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

let t: TestHeimdall
/** A cookie-keeping client of one listening server, so that every request has the same origin. */
let newBrowser: () => supertest.Agent
beforeAll(async () => {
  t = await startTestHeimdall({ PUBLIC_URL: 'https://assets.example.org' })
  const { server } = await t.listen()
  newBrowser = () => supertest.agent(server)
})
afterAll(async () => { await t.close() })

/** A browser signed in through the sign-in form, and a page of its with a form token. */
async function signedIn (): Promise<{ browser: supertest.Agent, person: { username: string, token: string }, csrf: string, origin: string }> {
  const person = await createIdentity(t.request)
  const browser = newBrowser()
  const signIn = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
  await browser.post('/uploads').type('form').set('Accept', 'text/html').send({ ...person, _csrf: csrfField(signIn.text) }).expect(303)
  const list = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
  const origin = new URL(list.request.url).origin
  return { browser, person, csrf: csrfField(list.text), origin }
}

async function uploadOne (token: string, name: string): Promise<number> {
  await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', fixture('obj/cube_usemtl.mtl'), name).expect(200)
  const list = await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)
  return (list.body.uploads as Array<{ id: number }>)[0]?.id ?? -1
}

const stillListed = async (token: string, id: number): Promise<boolean> => {
  const list = await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)
  return (list.body.uploads as Array<{ id: number }>).some((u) => u.id === id)
}

const stillSignedIn = async (browser: supertest.Agent): Promise<boolean> => {
  const page = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
  return !page.text.includes('name="token"')
}

describe('CSRF: forms posted as multipart/form-data', () => {
  it('refuses a multipart delete without the token: nothing is deleted', async () => {
    const { browser, person } = await signedIn()
    const id = await uploadOne(person.token, 'kept.mtl')
    // What an auto-submitting <form enctype="multipart/form-data"> on a same-site page sends.
    const res = await browser.post(`/uploads/${id}/delete`).set('Accept', 'text/html').field('anything', 'x').expect(403)
    expect(res.text).toContain('reload the page')
    expect(await stillListed(person.token, id)).toBe(true)
  })

  it('refuses a multipart sign-out without the token: the session goes on', async () => {
    const { browser } = await signedIn()
    await browser.post('/signout').field('anything', 'x').expect(403)
    expect(await stillSignedIn(browser)).toBe(true)
  })

  it('accepts a multipart post whose token comes in the X-CSRF-Token header', async () => {
    const { browser, person, csrf } = await signedIn()
    const id = await uploadOne(person.token, 'header.mtl')
    await browser.post(`/uploads/${id}/delete`).set('X-CSRF-Token', csrf).field('anything', 'x').expect(303)
    expect(await stillListed(person.token, id)).toBe(false)
  })
})

describe('CSRF: where a request comes from', () => {
  it('refuses a post from another origin of the same site (another port), even with a valid token', async () => {
    const { browser, person, csrf, origin } = await signedIn()
    const id = await uploadOne(person.token, 'port.mtl')
    const otherPort = new URL(origin)
    otherPort.port = String(Number(otherPort.port) === 1 ? 2 : 1)
    await browser.post(`/uploads/${id}/delete`).type('form').set('Origin', otherPort.origin).send({ _csrf: csrf }).expect(403)
    await browser.post(`/uploads/${id}/delete`).type('form').set('Origin', 'null').send({ _csrf: csrf }).expect(403)
    expect(await stillListed(person.token, id)).toBe(true)
  })

  it.each(['same-site', 'cross-site'])('refuses Sec-Fetch-Site: %s, even with a valid token', async (site) => {
    const { browser, person, csrf } = await signedIn()
    const id = await uploadOne(person.token, `${site}.mtl`)
    await browser.post(`/uploads/${id}/delete`).type('form').set('Sec-Fetch-Site', site).send({ _csrf: csrf }).expect(403)
    await browser.post('/signout').type('form').set('Sec-Fetch-Site', site).send({ _csrf: csrf }).expect(403)
    expect(await stillListed(person.token, id)).toBe(true)
    expect(await stillSignedIn(browser)).toBe(true)
  })

  it('refuses an upload from another origin before reading the file', async () => {
    const { browser, csrf } = await signedIn()
    const before = await leftovers(t)
    await browser.post('/upload').set('Origin', 'https://evil.example.org').set('Accept', 'text/html').field('_csrf', csrf).attach('file', fixture('obj/cube_usemtl.mtl'), 'evil.mtl').expect(403)
    const after = await leftovers(t)
    expect(after.uploads).toBe(before.uploads)
    expect(after.tmpFiles).toEqual([])
  })

  it('accepts the forms as a browser sends them: own origin, or PUBLIC_URL\'s, and Sec-Fetch-Site: same-origin', async () => {
    const { browser, person, csrf, origin } = await signedIn()
    const first = await uploadOne(person.token, 'first.mtl')
    await browser.post(`/uploads/${first}/delete`).type('form').set('Origin', origin).set('Sec-Fetch-Site', 'same-origin').send({ _csrf: csrf }).expect(303)
    expect(await stillListed(person.token, first)).toBe(false)
    // Behind a proxy that rewrites Host, the browser's Origin is still PUBLIC_URL's.
    const second = await uploadOne(person.token, 'second.mtl')
    await browser.post(`/uploads/${second}/delete`).type('form').set('Origin', 'https://assets.example.org').send({ _csrf: csrf }).expect(303)
    expect(await stillListed(person.token, second)).toBe(false)
    // The browser upload (progress bar: header) and the no-JavaScript form (field).
    await browser.post('/upload').set('Origin', origin).set('X-CSRF-Token', csrf).attach('file', fixture('obj/cube_usemtl.mtl'), 'script.mtl').expect(200)
    await browser.post('/upload').set('Origin', origin).set('Sec-Fetch-Site', 'same-origin').field('_csrf', csrf).attach('file', fixture('obj/cube_usemtl.obj'), 'form.obj').expect(200)
    await browser.post('/signout').type('form').set('Origin', origin).send({ _csrf: csrf }).expect(303)
    expect(await stillSignedIn(browser)).toBe(false)
  })

  it('honours X-Forwarded-Proto and X-Forwarded-Host only from a trusted proxy', async () => {
    const proxied = await startTestHeimdall({ PUBLIC_URL: 'https://assets.example.org', TRUST_PROXY: 'loopback' })
    try {
      const browser = proxied.browser()
      const page = await browser.get('/new').set('Accept', 'text/html').expect(200)
      const post = (origin: string, host: string): supertest.Test => browser.post('/new').type('form')
        .set('X-Forwarded-Proto', 'https').set('X-Forwarded-Host', host).set('Origin', origin)
        .send({ username: `proxied${Math.random().toString(36).slice(2, 8)}`, _csrf: csrfField(page.text) })
      await post('https://other.example.org', 'other.example.org').expect(201)
      await post('http://other.example.org', 'other.example.org').expect(403)
    } finally {
      await proxied.close()
    }
    // Not trusted: the forwarded headers are the client's word and change nothing.
    const browser = t.browser()
    const page = await browser.get('/new').set('Accept', 'text/html').expect(200)
    await browser.post('/new').type('form').set('X-Forwarded-Proto', 'https').set('X-Forwarded-Host', 'other.example.org').set('Origin', 'https://other.example.org')
      .send({ username: 'forwarded', _csrf: csrfField(page.text) }).expect(403)
  })

  it('leaves clients that authenticate with their token alone: bearer, or no cookies', async () => {
    const person = await createIdentity(t.request)
    const id = await uploadOne(person.token, 'bearer.mtl')
    await t.request.post(`/uploads/${id}/delete`).set('Authorization', `Bearer ${person.token}`).set('Origin', 'https://elsewhere.example').set('Sec-Fetch-Site', 'cross-site').field('x', 'y').expect(303)
    expect(await stillListed(person.token, id)).toBe(false)
    // The add-on: multipart with the credentials as form fields, no cookies, no Origin.
    await t.request.post('/upload').field('username', person.username).field('token', person.token).attach('file', fixture('obj/cube_usemtl.mtl'), 'addon.mtl').expect(200)
    await t.request.post('/new').type('form').set('Sec-Fetch-Site', 'cross-site').send({ username: 'scripted' }).expect(201)
  })
})

describe('CSRF: signing in', () => {
  it('refuses a sign-in sent from another site, with no cookies of ours: the form, the add-on\'s link, a new identity', async () => {
    const person = await createIdentity(t.request)
    // A page elsewhere auto-posting the author's credentials, or linking to them: the visitor would be signed in as the author.
    const browser = newBrowser()
    const posted = await browser.post('/uploads').type('form').set('Accept', 'text/html').set('Sec-Fetch-Site', 'cross-site').set('Origin', 'https://elsewhere.example').send(person).expect(403)
    expect(posted.text).toContain('sent from another site')
    expect(posted.headers['set-cookie']?.toString() ?? '').not.toContain('heimdall_session')
    await browser.get(`/uploads?username=${person.username}&token=${person.token}`).set('Accept', 'text/html').set('Sec-Fetch-Site', 'cross-site').expect(403)
    await browser.get(`/uploads?username=${person.username}&token=${person.token}`).set('Accept', 'text/html').set('Sec-Fetch-Site', 'same-site').expect(403)
    expect(await stillSignedIn(browser)).toBe(false)
    const before = (await t.request.get('/uploads').set('Authorization', `Bearer ${person.token}`).expect(200)).body
    const made = await browser.post('/new').type('form').set('Accept', 'text/html').set('Origin', 'https://elsewhere.example').send({ username: 'lured' }).expect(403)
    expect(made.text).toContain('another site')
    // Nothing made: the name is still free.
    await t.request.post('/new').type('form').send({ username: 'lured' }).expect(201)
    expect((await t.request.get('/uploads').set('Authorization', `Bearer ${person.token}`).expect(200)).body).toEqual(before)
    // The add-on's link opened by the desktop (Sec-Fetch-Site: none) and a sign-in from our own page still work.
    await browser.get(`/uploads?username=${person.username}&token=${person.token}`).set('Accept', 'text/html').set('Sec-Fetch-Site', 'none').expect(303)
    expect(await stillSignedIn(browser)).toBe(true)
  })

  it('a session with an Authorization header that is not a bearer token (Basic, from a proxy) still needs the form token', async () => {
    const { browser, person } = await signedIn()
    const id = await uploadOne(person.token, 'basic.mtl')
    await browser.post(`/uploads/${id}/delete`).set('Authorization', 'Basic dXNlcjpwYXNz').type('form').send({ anything: 'x' }).expect(403)
    expect(await stillListed(person.token, id)).toBe(true)
  })
})

describe('every page has its form token, whatever it asked for', () => {
  it.each([
    ['/new', undefined],
    ['/new', '*/*'],
    ['/upload', undefined],
    ['/upload', '*/*']
  ])('GET %s with Accept: %s renders the form with a token and sets its cookie', async (path, accept) => {
    const browser = t.browser()
    const get = browser.get(path)
    const res = await (accept === undefined ? get.unset('Accept') : get.set('Accept', accept)).expect(200)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(String(res.headers['set-cookie'])).toMatch(/heimdall_csrf=[\w-]{43}; Path=\/; HttpOnly; SameSite=Strict/)
    const csrf = csrfField(res.text)
    if (path === '/new') {
      await browser.post('/new').type('form').send({ username: `page${Math.random().toString(36).slice(2, 8)}`, _csrf: csrf }).expect(201)
    } else {
      const person = await createIdentity(t.request)
      await browser.post('/upload').field('_csrf', csrf).field('username', person.username).field('token', person.token).attach('file', fixture('obj/cube_usemtl.mtl'), 'page.mtl').expect(200)
    }
  })

  it('keeps one token per browser across pages', async () => {
    const browser = t.browser()
    const first = csrfField((await browser.get('/new').expect(200)).text)
    const second = await browser.get('/upload').set('Accept', 'text/html').expect(200)
    expect(csrfField(second.text)).toBe(first)
    expect(second.headers['set-cookie']).toBeUndefined()
  })

  it('sets no CSRF cookie on JSON answers, redirects, health checks or the gateway, even for a browser', async () => {
    const person = await createIdentity(t.request)
    await uploadOne(person.token, 'served.mtl')
    const { rootCid } = (await t.request.get('/uploads').set('Authorization', `Bearer ${person.token}`).expect(200)).body.uploads[0] as { rootCid: string }
    const answers = [
      await t.request.get(`/ipfs/${rootCid}/`).set('Accept', 'text/html').expect(200),
      await t.request.get(`/ipfs/${rootCid}/served.mtl`).set('Accept', 'text/html').expect(200),
      await t.request.get('/plugin_routes').set('Accept', 'text/html').expect(200),
      await t.request.get('/uploads').set('Authorization', `Bearer ${person.token}`).expect(200),
      await t.request.get('/healthz').set('Accept', 'text/html'),
      await t.request.get(`/uploads?username=${person.username}&token=${person.token}`).set('Accept', 'text/html').expect(303)
    ]
    for (const res of answers) expect(String(res.headers['set-cookie'] ?? '')).not.toContain('heimdall_csrf')
  })
})
