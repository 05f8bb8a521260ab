import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashToken, newToken } from '../../src/services/identity-service.ts'
import { csrfField, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

let t: TestHeimdall
beforeAll(async () => { t = await startTestHeimdall() })
afterAll(async () => { await t.close() })

describe('GET /plugin_routes', () => {
  it('answers the exact route map the add-on reads, with no headers sent', async () => {
    const res = await t.request.get('/plugin_routes').unset('User-Agent').expect(200)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expect(res.body).toEqual({ new_user: '/new', asset_upload: '/upload', uploads: '/uploads', oauth: false, resumable_upload: '/upload/resumable' })
  })
})

describe('tokens', () => {
  it('are 43 characters of base64url that never start with "-" (a command line would read it as an option)', () => {
    // One in 64 random ones would: 5000 miss it with odds of e^-78 if the rule were gone.
    const tokens = Array.from({ length: 5000 }, newToken)
    for (const token of tokens) expect(token).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{42}$/)
    expect(new Set(tokens).size).toBe(tokens.length)
  })
})

describe('/new', () => {
  it('GET shows a username field and the terms', async () => {
    const res = await t.request.get('/new').set('Accept', 'text/html').expect(200)
    expect(res.text).toContain('name="username"')
    expect(res.text).toMatch(/public/i)
    expect(res.text).toMatch(/right to publish/i)
  })

  it('POST as the add-on sends it creates an identity with a 32-byte token, stored only as a hash', async () => {
    const res = await t.request.post('/new').set('Content-Type', 'application/x-www-form-urlencoded').send('username=Alice_01').expect(201)
    const body = res.body as Record<string, string>
    expect(Object.keys(body).sort()).toEqual(['notes', 'secret', 'token', 'username'])
    expect(body.username).toBe('alice_01')
    expect(body.secret).toBe(body.token)
    expect(Buffer.from(body.secret ?? '', 'base64url')).toHaveLength(32)
    const rows = await t.heimdall.database.knex('identities').where({ username: 'alice_01' })
    expect(rows).toHaveLength(1)
    expect(rows[0].token_hash).toBe(hashToken(body.secret ?? ''))
    expect(JSON.stringify(rows[0])).not.toContain(body.secret)
  })

  it('accepts JSON too', async () => {
    const res = await t.request.post('/new').send({ username: 'json.user' }).expect(201)
    expect(res.body.username).toBe('json.user')
  })

  it('refuses a taken username, whatever its case, with 409', async () => {
    await t.request.post('/new').type('form').send({ username: 'bob' }).expect(201)
    const res = await t.request.post('/new').type('form').send({ username: 'BOB' }).expect(409)
    expect(res.body.error).toMatch(/taken/)
  })

  it.each([
    ['too short', 'ab'],
    ['too long', 'a'.repeat(33)],
    ['bad characters', 'a b/c'],
    ['missing', undefined]
  ])('refuses an invalid username (%s) with 400', async (_why, username) => {
    const res = await t.request.post('/new').type('form').send(username === undefined ? {} : { username }).expect(400)
    expect(typeof res.body.error).toBe('string')
  })

  it('shows a browser the token once, with a copy button, and signs it in', async () => {
    const res = await t.request.post('/new').type('form').set('Accept', 'text/html').send({ username: 'browser-user' }).expect(201)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(res.headers['cache-control']).toBe('no-store')
    expect(res.text).toMatch(/cannot be shown again/)
    expect(res.text).toContain('data-copy')
    const cookie = String(res.headers['set-cookie'])
    expect(cookie).toMatch(/heimdall_session=.*HttpOnly.*SameSite=Strict/)
  })

  it('tells a browser that sends the same form again (a reload of the token page) that the name is its own identity, not someone\'s', async () => {
    const browser = t.browser()
    const form = await browser.get('/new').set('Accept', 'text/html').expect(200)
    const fields = { username: 'reloader', _csrf: csrfField(form.text) }
    await browser.post('/new').type('form').set('Accept', 'text/html').send(fields).expect(201)
    const again = await browser.post('/new').type('form').set('Accept', 'text/html').send(fields).expect(409)
    expect(again.text).toContain('You created &#34;reloader&#34; and are signed in as it; its token was shown once')
    // Anyone else asking for that name is told it is taken, as before.
    expect((await t.browser().post('/new').type('form').set('Accept', 'text/html').send({ username: 'reloader' }).expect(409)).text).toContain('is taken')
  })

  it('shows a browser a readable error for a taken name', async () => {
    const res = await t.request.post('/new').type('form').set('Accept', 'text/html').send({ username: 'bob' }).expect(409)
    expect(res.text).toContain('is taken')
    expect(res.text).not.toMatch(/at .*\.ts:\d+/)
  })
})

describe('logs', () => {
  it('never contain a token', async () => {
    const res = await t.request.post('/new').type('form').send({ username: 'logged' }).expect(201)
    const token = (res.body as { secret: string }).secret
    await t.request.get(`/uploads?username=logged&token=${token}`).expect(303)
    await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)
    const logs = t.logs.join('\n')
    expect(logs).toContain('/uploads?username=logged&token=%5BRedacted%5D')
    expect(logs).not.toContain(token)
  })
})
