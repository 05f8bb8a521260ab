import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createIdentity, csrfField, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

let t: TestHeimdall
beforeAll(async () => { t = await startTestHeimdall() })
afterAll(async () => { await t.close() })

const bearer = (secret: string): string => `Bearer ${secret}`
const script = (name: string): [Buffer, string] => [Buffer.from(`// ${name} ${Math.random()}\n`), `${name}.js`]

const sessionCookie = (setCookie: unknown): string => {
  const cookie = ([] as string[]).concat(setCookie as string[]).find((c) => c.startsWith('heimdall_session=') && !c.startsWith('heimdall_session=;'))
  if (cookie === undefined) throw new Error('no session cookie was set')
  return cookie.split(';')[0] ?? ''
}

/** A browser signed in with the add-on's link; returns its session cookie. */
async function signIn (person: { username: string, token: string }): Promise<string> {
  const res = await t.request.get(`/uploads?username=${person.username}&token=${encodeURIComponent(person.token)}`).set('Accept', 'text/html').expect(303)
  return sessionCookie(res.headers['set-cookie'])
}

async function createKey (token: string, body: Record<string, unknown>): Promise<{ id: number, key: string, prefix: string }> {
  const res = await t.request.post('/account/keys').set('Authorization', bearer(token)).send(body).expect(201)
  return res.body as { id: number, key: string, prefix: string }
}

describe('token rotation', () => {
  it('from the API: the old token is refused at once, the new one works, every browser session ends', async () => {
    const person = await createIdentity(t.request)
    const cookie = await signIn(person)
    await t.request.get('/uploads').set('Cookie', cookie).expect(200)

    const res = await t.request.post('/account/token').set('Authorization', bearer(person.token)).expect(200)
    const { token } = res.body as { token: string }
    expect(token).toMatch(/^[\w-]{43}$/)
    expect(token).not.toBe(person.token)
    expect(res.headers['cache-control']).toBe('no-store')

    // The very next request with the old token: 401, as a bearer, as form fields (the add-on) and on the PSA.
    await t.request.get('/uploads').set('Authorization', bearer(person.token)).expect(401)
    await t.request.post('/uploads').type('form').send({ username: person.username, token: person.token }).expect(401)
    await t.request.get('/psa/pins').set('Authorization', bearer(person.token)).expect(401)
    await t.request.post('/upload').field('username', person.username).field('token', person.token).attach('file', ...script('old')).expect(401)
    await t.request.get('/uploads').set('Cookie', cookie).expect(401)

    await t.request.get('/uploads').set('Authorization', bearer(token)).expect(200)
    await t.request.post('/upload').field('username', person.username).field('token', token).attach('file', ...script('new')).expect(200)
    // Only the hash is stored.
    expect(JSON.stringify(await t.heimdall.database.knex('identities').where({ username: person.username }))).not.toContain(token)
  })

  it('from the browser: a CSRF-protected form, the new token shown once, other sessions ended, this one renewed', async () => {
    const person = await createIdentity(t.request)
    const other = await signIn(person)
    const browser = t.browser()
    await browser.get(`/uploads?username=${person.username}&token=${encodeURIComponent(person.token)}`).set('Accept', 'text/html').expect(303)
    const account = await browser.get('/account').set('Accept', 'text/html').expect(200)
    expect(account.text).toContain('Replace my token')

    // Without the form's CSRF token: refused, nothing changed.
    await browser.post('/account/token').type('form').set('Accept', 'text/html').send({}).expect(403)
    await t.request.get('/uploads').set('Authorization', bearer(person.token)).expect(200)

    const res = await browser.post('/account/token').type('form').set('Accept', 'text/html').send({ _csrf: csrfField(account.text) }).expect(200)
    const token = /id="token" value="([\w-]{43})"/.exec(res.text)?.[1]
    expect(token).toBeDefined()
    await t.request.get('/uploads').set('Authorization', bearer(person.token)).expect(401)
    await t.request.get('/uploads').set('Authorization', bearer(token ?? '')).expect(200)
    await t.request.get('/uploads').set('Cookie', other).expect(401)
    // This browser was signed in again; the token is not on its pages any more.
    const again = await browser.get('/account').set('Accept', 'text/html').expect(200)
    expect(again.text).not.toContain(token)
  })

  it('revokes every session of the identity (API and form), keeping the token', async () => {
    const person = await createIdentity(t.request)
    const first = await signIn(person)
    const second = await signIn(person)
    const res = await t.request.delete('/account/sessions').set('Authorization', bearer(person.token)).expect(200)
    expect(res.body).toEqual({ revoked: 2 })
    await t.request.get('/uploads').set('Cookie', first).expect(401)
    await t.request.get('/uploads').set('Cookie', second).expect(401)
    await t.request.get('/uploads').set('Authorization', bearer(person.token)).expect(200)

    const browser = t.browser()
    await browser.get(`/uploads?username=${person.username}&token=${encodeURIComponent(person.token)}`).set('Accept', 'text/html').expect(303)
    const third = await signIn(person)
    const page = await browser.get('/account').set('Accept', 'text/html').expect(200)
    await browser.post('/account/sessions/revoke').type('form').set('Accept', 'text/html').send({ _csrf: csrfField(page.text) }).expect(303)
    await t.request.get('/uploads').set('Cookie', third).expect(401)
    await browser.get('/account').set('Accept', 'text/html').expect(303)
  })
})

describe('API keys', () => {
  it('are created with a secret shown once, stored only as a hash, listed without it', async () => {
    const person = await createIdentity(t.request)
    const created = await t.request.post('/account/keys').set('Authorization', bearer(person.token))
      .send({ name: 'build server', scopes: ['upload', 'list'], expiresInDays: 30 }).expect(201)
    const body = created.body as { key: string, prefix: string, scopes: string[], expiresAt: string, lastUsedAt: null }
    expect(body.key).toMatch(/^hk_[0-9a-f]{16}_[\w-]{43}$/)
    expect(body.key.startsWith(body.prefix)).toBe(true)
    expect(body).toMatchObject({ name: 'build server', scopes: ['upload', 'list'], lastUsedAt: null })
    expect(Date.parse(body.expiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000)
    const secretPart = body.key.slice(body.prefix.length)

    await t.request.get('/uploads').set('Authorization', bearer(body.key)).expect(200)
    // When it was last used is written beside the request, not before its answer.
    await vi.waitFor(async () => { expect((await t.heimdall.database.knex('api_keys').first('last_used_at')).last_used_at).not.toBeNull() })
    const listed = await t.request.get('/account/keys').set('Authorization', bearer(person.token)).expect(200)
    const keys = (listed.body as { keys: Array<Record<string, unknown>> }).keys
    expect(keys).toHaveLength(1)
    expect(Object.keys(keys[0] ?? {}).sort()).toEqual(['createdAt', 'expiresAt', 'id', 'lastUsedAt', 'name', 'prefix', 'scopes'])
    expect(keys[0]?.lastUsedAt).not.toBeNull()
    expect(listed.text).not.toContain(secretPart)
    const rows = await t.heimdall.database.knex('api_keys')
    expect(JSON.stringify(rows)).not.toContain(secretPart)

    // The account page lists it, never with its secret.
    const page = await t.request.get('/account').set('Accept', 'text/html').set('Cookie', await signIn(person)).expect(200)
    expect(page.text).toContain('build server')
    expect(page.text).not.toContain(secretPart)
    // Names are unique per identity.
    await t.request.post('/account/keys').set('Authorization', bearer(person.token)).send({ name: 'build server', scopes: ['list'] }).expect(409)
    // No scope at all (the page's form with none ticked sends no field): said as such, not as a schema's message.
    const none = await t.request.post('/account/keys').set('Authorization', bearer(person.token)).type('form').send({ name: 'no scope' }).expect(400)
    expect(none.body.error).toBe('give the key at least one scope among upload, list, pin, delete')
  })

  it('each scope allows its routes and nothing else (403 naming the scope)', async () => {
    const person = await createIdentity(t.request)
    const keys = {
      upload: (await createKey(person.token, { name: 'u', scopes: ['upload'] })).key,
      list: (await createKey(person.token, { name: 'l', scopes: 'list' })).key,
      pin: (await createKey(person.token, { name: 'p', scopes: ['pin'] })).key,
      delete: (await createKey(person.token, { name: 'd', scopes: ['delete'] })).key
    }
    const upload = async (key: string) => t.request.post('/upload').set('Authorization', bearer(key)).attach('file', ...script('s'))
    const list = async (key: string) => t.request.get('/uploads').set('Authorization', bearer(key))
    const pin = async (key: string) => t.request.get('/psa/pins').set('Authorization', bearer(key))
    const del = async (key: string) => {
      const [row] = await t.heimdall.database.knex('uploads').join('identities', 'identities.id', 'uploads.identity_id').where('identities.username', person.username).select('uploads.id')
      return t.request.delete(`/uploads/${(row as { id: number }).id}`).set('Authorization', bearer(key))
    }
    const checks = { upload, list, pin, delete: del }
    for (const [scope, key] of Object.entries(keys)) {
      for (const [route, check] of Object.entries(checks)) {
        const res = await check(key)
        if (route === scope) {
          expect(res.status, `${scope} key on ${route}`).toBeLessThan(300)
        } else {
          expect(res.status, `${scope} key on ${route}`).toBe(403)
          if (route === 'pin') expect(res.body).toEqual({ error: { reason: 'INSUFFICIENT_SCOPE', details: 'this API key lacks the "pin" scope' } })
          else expect(res.body).toMatchObject({ code: 'ERR_INSUFFICIENT_SCOPE', error: `this API key lacks the "${route}" scope` })
        }
      }
      // No key can manage the account: make keys, replace the token, end sessions.
      await t.request.post('/account/keys').set('Authorization', bearer(key)).send({ name: 'x', scopes: ['upload'] }).expect(403)
      await t.request.post('/account/token').set('Authorization', bearer(key)).expect(403)
      await t.request.delete('/account/sessions').set('Authorization', bearer(key)).expect(403)
    }
    // The token itself has every scope, as before.
    await upload(person.token).then((r) => { expect(r.status).toBe(200) })
    await pin(person.token).then((r) => { expect(r.status).toBe(200) })
  })

  it('work as the add-on\'s form fields (username + key in "token"), and only for their own username', async () => {
    const person = await createIdentity(t.request)
    const other = await createIdentity(t.request)
    const { key } = await createKey(person.token, { name: 'blender', scopes: ['upload'] })
    await t.request.post('/upload').field('username', person.username).field('token', key).attach('file', ...script('form')).expect(200)
    await t.request.post('/upload').field('username', other.username).field('token', key).attach('file', ...script('form')).expect(401)
  })

  it('stop working once expired or revoked', async () => {
    const person = await createIdentity(t.request)
    const soon = await createKey(person.token, { name: 'soon', scopes: ['list'], expiresAt: new Date(Date.now() + 3_600_000).toISOString() })
    await t.request.get('/uploads').set('Authorization', bearer(soon.key)).expect(200)
    // An hour later, as far as the key knows.
    await t.heimdall.database.knex('api_keys').where({ id: soon.id }).update({ expires_at: new Date(Date.now() - 1000) })
    const expired = await t.request.get('/uploads').set('Authorization', bearer(soon.key)).expect(401)
    expect((expired.body as { error: string }).error).toMatch(/^this API key expired at /)
    await t.request.post('/account/keys').set('Authorization', bearer(person.token)).send({ name: 'past', scopes: ['list'], expiresAt: '2001-01-01T00:00:00Z' }).expect(400)

    const revoked = await createKey(person.token, { name: 'revoked', scopes: ['list', 'pin'] })
    await t.request.get('/psa/pins').set('Authorization', bearer(revoked.key)).expect(200)
    await t.request.delete(`/account/keys/${revoked.id}`).set('Authorization', bearer(person.token)).expect(204)
    await t.request.get('/uploads').set('Authorization', bearer(revoked.key)).expect(401)
    await t.request.get('/psa/pins').set('Authorization', bearer(revoked.key)).expect(401)
    // Only one's own keys: another identity's id is not found.
    const other = await createIdentity(t.request)
    await t.request.delete(`/account/keys/${soon.id}`).set('Authorization', bearer(other.token)).expect(404)
  })

  it('are made and revoked from the account page (CSRF forms), the secret shown once', async () => {
    const person = await createIdentity(t.request)
    const browser = t.browser()
    await browser.get(`/uploads?username=${person.username}&token=${encodeURIComponent(person.token)}`).set('Accept', 'text/html').expect(303)
    const page = await browser.get('/account').set('Accept', 'text/html').expect(200)
    await browser.post('/account/keys').type('form').set('Accept', 'text/html').send({ name: 'no csrf', scopes: 'upload' }).expect(403)
    const made = await browser.post('/account/keys').type('form').set('Accept', 'text/html')
      .send(`_csrf=${encodeURIComponent(csrfField(page.text))}&name=laptop&scopes=upload&scopes=pin&expiresInDays=`).expect(201)
    const key = /id="api-key" value="(hk_[^"]+)"/.exec(made.text)?.[1] ?? ''
    expect(key).toMatch(/^hk_/)
    await t.request.get('/psa/pins').set('Authorization', bearer(key)).expect(200)
    const listed = await browser.get('/account').set('Accept', 'text/html').expect(200)
    expect(listed.text).toContain('laptop')
    expect(listed.text).toContain('upload, pin')
    expect(listed.text).not.toContain(key.slice(20))
    const id = /action="\/account\/keys\/(\d+)\/revoke"/.exec(listed.text)?.[1]
    await browser.post(`/account/keys/${id ?? ''}/revoke`).type('form').set('Accept', 'text/html').send({ _csrf: csrfField(listed.text) }).expect(303)
    await t.request.get('/psa/pins').set('Authorization', bearer(key)).expect(401)
  })
})
