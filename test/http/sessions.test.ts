import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIdentity, csrfField, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

let t: TestHeimdall
beforeAll(async () => { t = await startTestHeimdall() })
afterAll(async () => { await t.close() })

const sessionCookie = (setCookie: unknown): string => {
  const cookie = ([] as string[]).concat(setCookie as string[]).find((c) => c.startsWith('heimdall_session='))
  if (cookie === undefined) throw new Error('no session cookie was set')
  return cookie.split(';')[0] ?? ''
}

describe('browser sessions', () => {
  it('end on sign-out: a copy of the cookie signs nobody in afterwards', async () => {
    const person = await createIdentity(t.request)
    const browser = t.browser()
    const signIn = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
    const res = await browser.post('/uploads').type('form').set('Accept', 'text/html').send({ ...person, _csrf: csrfField(signIn.text) }).expect(303)
    const copied = sessionCookie(res.headers['set-cookie'])
    // The cookie carries a random id, not the identity, and the table only its hash.
    expect(copied).toMatch(/^heimdall_session=[\w-]{43}$/)
    expect(JSON.stringify(await t.heimdall.database.knex('sessions'))).not.toContain(copied.split('=')[1])

    await t.request.get('/uploads').set('Cookie', copied).expect(200)
    const list = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
    await browser.post('/signout').type('form').send({ _csrf: csrfField(list.text) }).expect(303)

    const page = await t.request.get('/uploads').set('Accept', 'text/html').set('Cookie', copied).expect(200)
    expect(page.text).toContain('name="token"')
    expect(String(page.headers['set-cookie'])).toMatch(/heimdall_session=;/)
    await t.request.get('/uploads').set('Cookie', copied).expect(401)
    const [identity] = await t.heimdall.database.knex('identities').where({ username: person.username })
    expect(await t.heimdall.database.knex('sessions').where({ identity_id: identity.id })).toEqual([])
  })

  it('a new identity created in the browser is signed in by a stored session', async () => {
    const browser = t.browser()
    const page = await browser.get('/new').set('Accept', 'text/html').expect(200)
    const res = await browser.post('/new').type('form').set('Accept', 'text/html').send({ username: 'fresh', _csrf: csrfField(page.text) }).expect(201)
    const cookie = sessionCookie(res.headers['set-cookie'])
    const list = await t.request.get('/uploads').set('Cookie', cookie).expect(200)
    expect(list.body.username).toBe('fresh')
  })

  it('signing in again ends the browser\'s previous session', async () => {
    const person = await createIdentity(t.request)
    const browser = t.browser()
    const first = sessionCookie((await browser.get(`/uploads?username=${person.username}&token=${person.token}`).set('Accept', 'text/html').expect(303)).headers['set-cookie'])
    const second = sessionCookie((await browser.get(`/uploads?username=${person.username}&token=${person.token}`).set('Accept', 'text/html').expect(303)).headers['set-cookie'])
    expect(second).not.toBe(first)
    await t.request.get('/uploads').set('Cookie', first).expect(401)
    await t.request.get('/uploads').set('Cookie', second).expect(200)
  })
})

/** A session cookie with a value among the answer's cookies (a cleared one, `heimdall_session=;`, is not). */
const startsSession = (setCookie: unknown): boolean => ([] as string[]).concat((setCookie ?? []) as string[]).some((c) => /^heimdall_session=[^;]/.test(c))
/** Whether the answer drops a session cookie. */
const dropsSession = (setCookie: unknown): boolean => ([] as string[]).concat((setCookie ?? []) as string[]).some((c) => c.startsWith('heimdall_session=;'))

describe('what may start or end a browser session', () => {
  it('only the identity\'s token signs a browser in: an API key of any scope does not (a session has the account scope, and would outlive the key)', async () => {
    const person = await createIdentity(t.request)
    const key = ((await t.request.post('/account/keys').set('Authorization', `Bearer ${person.token}`).send({ name: 'lister', scopes: ['list', 'upload'] }).expect(201)).body as { key: string }).key
    const viaQuery = await t.request.get(`/uploads?token=${key}`).set('Accept', 'text/html').expect(403)
    expect(startsSession(viaQuery.headers['set-cookie'])).toBe(false)
    expect(viaQuery.text).toContain('an API key cannot sign a browser in')
    const browser = t.browser()
    const page = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
    const viaForm = await browser.post('/uploads').type('form').set('Accept', 'text/html').send({ username: person.username, token: key, _csrf: csrfField(page.text) }).expect(403)
    expect(startsSession(viaForm.headers['set-cookie'])).toBe(false)
    // The key still does what its scopes allow, as an API client.
    await t.request.get('/uploads').set('Authorization', `Bearer ${key}`).expect(200)
  })

  it('a form posted from another site signs no browser in through /account/token (login CSRF), and a sign-out from another site drops no cookie', async () => {
    const mallory = await createIdentity(t.request)
    const crossSite = await t.request.post('/account/token').type('form').set('Accept', 'text/html').set('Sec-Fetch-Site', 'cross-site').set('Origin', 'http://evil.example')
      .send({ username: mallory.username, token: mallory.token }).expect(200)
    expect(startsSession(crossSite.headers['set-cookie'])).toBe(false)
    const out = await t.request.post('/signout').set('Sec-Fetch-Site', 'cross-site').set('Origin', 'http://evil.example').expect(303)
    expect(dropsSession(out.headers['set-cookie'])).toBe(false)
  })

  it('sessions of the version before are ended by its migration: any of them may have been started by an API key', async () => {
    const person = await createIdentity(t.request)
    const cookie = sessionCookie((await t.request.get(`/uploads?username=${person.username}&token=${person.token}`).set('Accept', 'text/html').expect(303)).headers['set-cookie'])
    await t.request.get('/uploads').set('Cookie', cookie).expect(200)
    const { up } = await import('../../migrations/20261127000000_end_sessions_of_api_keys.ts')
    await up(t.heimdall.database.knex)
    await t.request.get('/uploads').set('Cookie', cookie).expect(401)
  })

  it('a disabled identity signs no browser in', async () => {
    const person = await createIdentity(t.request)
    await t.heimdall.database.knex('identities').where({ username: person.username }).update({ disabled_at: new Date() })
    const res = await t.request.get(`/uploads?username=${person.username}&token=${person.token}`).set('Accept', 'text/html').expect(403)
    expect(startsSession(res.headers['set-cookie'])).toBe(false)
    expect(res.text).toContain('disabled')
  })
})
