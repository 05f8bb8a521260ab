import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { RateLimitRepository } from '../../src/db/rate-limit-repository.ts'
import { loadConfig, type ConfigError } from '../../src/config.ts'
import { RateLimiter } from '../../src/services/rate-limiter.ts'
import { TooManyRequestsError } from '../../src/errors.ts'
import { createIdentity, expectNothingLeftBehind, leftovers, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { createScratchDatabase } from '../support/postgres-server.ts'

// X-Forwarded-For from loopback is believed, as behind nginx: each test plays several client addresses.
const LIMITS = { TRUST_PROXY: 'loopback', AUTH_FAILURES_ALLOWED: '3', AUTH_BACKOFF_BASE_SECONDS: '30', IDENTITIES_PER_HOUR: '2', UPLOADS_PER_HOUR: '3' }
const wrongToken = (): string => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')
const script = (): [Buffer, string] => [Buffer.from(`// ${Math.random()}\n`), 'a.js']

/** A new identity made from `address` (each address may make only IDENTITIES_PER_HOUR). */
async function personFrom (t: TestHeimdall, address: string): Promise<{ username: string, token: string }> {
  const res = await t.request.post('/new').set('X-Forwarded-For', address).send({ username: `p${Math.random().toString(36).slice(2, 10)}` }).expect(201)
  return { username: (res.body as { username: string }).username, token: (res.body as { token: string }).token }
}

describe('rate limits (429 + Retry-After), in PostgreSQL', () => {
  let t: TestHeimdall
  beforeAll(async () => { t = await startTestHeimdall(LIMITS) })
  afterAll(async () => { await t.close() })

  it('failed authentications per client address: back-off after the allowance, whatever the token; other addresses unaffected', async () => {
    const person = await personFrom(t, '198.51.100.1')
    const from = (address: string) => ({ 'X-Forwarded-For': address })
    for (let i = 0; i < 3; i++) await t.request.get('/uploads').set(from('203.0.113.7')).set('Authorization', `Bearer ${wrongToken()}`).expect(401)
    // The fourth failure earns the first back-off: AUTH_BACKOFF_BASE_SECONDS.
    await t.request.get('/uploads').set(from('203.0.113.7')).set('Authorization', `Bearer ${wrongToken()}`).expect(401)
    const limited = await t.request.get('/uploads').set(from('203.0.113.7')).set('Authorization', `Bearer ${wrongToken()}`).expect(429)
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(25)
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(30)
    expect(limited.body).toMatchObject({ code: 'ERR_TOO_MANY_REQUESTS' })
    // Even the right token waits at that address (its answer says nothing about the token), on every route that authenticates.
    await t.request.get('/uploads').set(from('203.0.113.7')).set('Authorization', `Bearer ${person.token}`).expect(429)
    const psa = await t.request.get('/psa/pins').set(from('203.0.113.7')).set('Authorization', `Bearer ${person.token}`).expect(429)
    expect(psa.body).toMatchObject({ error: { reason: 'TOO_MANY_REQUESTS' } })
    expect(psa.headers['retry-after']).toBeDefined()
    await t.request.post('/upload').set(from('203.0.113.7')).field('username', person.username).field('token', person.token).attach('file', ...script()).expect(429)
    // A browser signing in is told when too (the sign-in page, with Retry-After), by the query string or the form.
    for (const signIn of [
      t.request.get(`/uploads?username=${person.username}&token=${person.token}`),
      t.request.post('/uploads').type('form').send({ username: person.username, token: person.token })
    ]) {
      const page = await signIn.set(from('203.0.113.7')).set('Accept', 'text/html').expect(429)
      expect(Number(page.headers['retry-after'])).toBeGreaterThan(0)
      expect(page.text).toContain('name="token"')
    }
    // Another address, and the same address without credentials, are not held up.
    await t.request.get('/uploads').set(from('203.0.113.8')).set('Authorization', `Bearer ${person.token}`).expect(200)
    await t.request.get('/healthz').set(from('203.0.113.7')).expect(200)
  })

  it('failures for a username from other addresses never lock its owner out: the sign-in and the add-on\'s upload go on', async () => {
    const victim = await personFrom(t, '198.51.100.2')
    // Someone else sending wrong tokens for the victim's name, past the back-off's threshold, from addresses of their own.
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) await t.request.post('/uploads').set('X-Forwarded-For', `192.0.2.${10 + i}`).type('form').send({ username: victim.username, token: wrongToken() }).expect(401)
    }
    await t.request.post('/uploads').set('X-Forwarded-For', '192.0.2.10').type('form').send({ username: victim.username, token: victim.token }).expect(429)
    await t.request.post('/uploads').set('X-Forwarded-For', '192.0.2.99').type('form').send({ username: victim.username, token: victim.token }).expect(200)
    await t.request.post('/upload').set('X-Forwarded-For', '192.0.2.99').field('username', victim.username).field('token', victim.token).attach('file', ...script()).expect(200)
  })

  it('new identities per client address', async () => {
    // Malformed names are refused before the allowance is counted: typing mistakes cost nothing.
    await t.request.post('/new').set('X-Forwarded-For', '198.51.100.50').send({ username: 'x' }).expect(400)
    await t.request.post('/new').set('X-Forwarded-For', '198.51.100.50').send({ username: 'bad name!' }).expect(400)
    await t.request.post('/new').set('X-Forwarded-For', '198.51.100.50').send({ username: 'first-of-two' }).expect(201)
    await t.request.post('/new').set('X-Forwarded-For', '198.51.100.50').send({ username: 'second-of-two' }).expect(201)
    const limited = await t.request.post('/new').set('X-Forwarded-For', '198.51.100.50').send({ username: 'third-of-two' }).expect(429)
    // A bucket of 2 refilled at 2 an hour: the next one in half an hour.
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(1790)
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(1800)
    await t.request.post('/new').set('X-Forwarded-For', '198.51.100.51').send({ username: 'third-of-two' }).expect(201)
    // IPv6 clients count by their /64.
    await t.request.post('/new').set('X-Forwarded-For', '2001:db8:1:2::1').send({ username: 'six-one' }).expect(201)
    await t.request.post('/new').set('X-Forwarded-For', '2001:db8:1:2:ffff::9').send({ username: 'six-two' }).expect(201)
    await t.request.post('/new').set('X-Forwarded-For', '2001:db8:1:2:abcd::5').send({ username: 'six-three' }).expect(429)
  })

  it('uploads per identity, refused before the file is read, nothing left behind', async () => {
    const person = await personFrom(t, '198.51.100.60')
    for (let i = 0; i < 3; i++) await t.request.post('/upload').set('Authorization', `Bearer ${person.token}`).attach('file', ...script()).expect(200)
    const before = await leftovers(t)
    const limited = await t.request.post('/upload').set('Authorization', `Bearer ${person.token}`).attach('file', ...script()).expect(429)
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(1100)
    await expectNothingLeftBehind(t, before)
    // Someone else uploads on.
    const other = await personFrom(t, '198.51.100.61')
    await t.request.post('/upload').set('Authorization', `Bearer ${other.token}`).attach('file', ...script()).expect(200)
  })

  it('never refuse a person uploading at a normal pace (default limits, a clock run forward, real PostgreSQL)', async () => {
    {
      let now = Date.parse('2026-11-25T08:00:00Z')
      const limiter = new RateLimiter(new RateLimitRepository(t.heimdall.database.knex), loadConfig({}).rateLimits, { now: () => now })
      try {
        // A batch of 100 files at once, then one every 10 seconds for half an hour, then another batch of 100.
        for (let i = 0; i < 100; i++) await limiter.upload(900_001)
        for (let i = 0; i < 180; i++) { now += 10_000; await limiter.upload(900_001) }
        for (let i = 0; i < 100; i++) await limiter.upload(900_001)
        // With no pause at all, the 601st within the hour is held back, told to come back in 6 s (3600 s / 600).
        const refused = await (async () => { for (let i = 0; i < 1000; i++) await limiter.upload(900_001); return undefined })().catch((err: unknown) => err)
        expect(refused).toBeInstanceOf(TooManyRequestsError)
        expect((refused as TooManyRequestsError).retryAfterSeconds).toBe(6)
        // Back-off: failures 11, 12, 13… wait 1, 2, 4… seconds, then the hour.
        const waits: number[] = []
        for (let i = 0; i < 24; i++) { now += 1; waits.push(await limiter.authenticationFailed('203.0.113.1')) }
        expect(waits.slice(0, 10)).toEqual(Array(10).fill(0))
        expect(waits.slice(10, 15)).toEqual([1000, 2000, 4000, 8000, 16_000])
        expect(waits.at(-1)).toBe(3_600_000)
        // Forgotten after a quiet day; rows that say nothing any more are purged.
        now += 86_400_000 + 3_600_000
        const repo = new RateLimitRepository(t.heimdall.database.knex)
        expect(await repo.purge(now - 86_400_000, now)).toBeGreaterThan(0)
        expect(await t.heimdall.database.knex('rate_limits').where({ kind: 'auth-address', key: '203.0.113.1' })).toEqual([])
        expect(await limiter.authenticationFailed('203.0.113.1')).toBe(0)
      } finally {
        limiter.close()
      }
    }
  }, 60_000)

  it('counts without waiting for a WAL flush, in its own statement\'s transaction only', async () => {
    const knex = t.heimdall.database.knex
    const setting = async (db: typeof knex): Promise<string> => ((await db.raw<{ rows: Array<{ setting: string }> }>("select current_setting('synchronous_commit') as setting")).rows[0]?.setting ?? '')
    for (const write of [
      async (repo: RateLimitRepository) => repo.take({ kind: 'upload', key: '900002' }, Date.now(), 1000, 10),
      async (repo: RateLimitRepository) => repo.fail({ kind: 'auth-address', key: '203.0.113.99' }, Date.now(), 60_000, () => 0)
    ]) {
      await knex.transaction(async (trx) => {
        expect(await setting(trx)).toBe('on')
        await write(new RateLimitRepository(trx))
        expect(await setting(trx)).toBe('off')
      })
    }
    // Every connection of the pool is back to synchronous commits: an upload's record waits for its flush.
    const settings = await Promise.all(Array.from({ length: 3 }, async () => knex.transaction(async (trx) => setting(trx))))
    expect(settings).toEqual(['on', 'on', 'on'])
  })

  it('a bounded brute force: a few thousand wrong tokens from one address meet the back-off; the right token from another address works', async () => {
    const b = await startTestHeimdall({ TRUST_PROXY: 'loopback', AUTH_FAILURES_ALLOWED: '10', AUTH_BACKOFF_BASE_SECONDS: '1', AUTH_BACKOFF_MAX_SECONDS: '3600' })
    try {
      const person = await createIdentity(b.request)
      const { url } = await b.listen()
      const attempts = 2000
      const statuses = new Map<number, number>()
      let next = 0
      const started = Date.now()
      const worker = async (): Promise<void> => {
        while (next < attempts) {
          next++
          const res = await fetch(`${url}/uploads`, { headers: { Authorization: `Bearer ${wrongToken()}`, 'X-Forwarded-For': '203.0.113.66' } })
          await res.arrayBuffer()
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
        }
      }
      await Promise.all(Array.from({ length: 8 }, worker))
      const seconds = (Date.now() - started) / 1000
      // Guesses that were checked at all: the allowance, those already in flight when the back-off began, and one per back-off that ran out meanwhile (1 + 2 + 4 + … s).
      const checked = statuses.get(401) ?? 0
      console.log(`brute force: ${attempts} wrong tokens in ${seconds.toFixed(1)} s: ${checked} checked (401), ${statuses.get(429) ?? 0} refused unchecked (429)`)
      expect(checked).toBeGreaterThanOrEqual(10)
      expect(checked).toBeLessThanOrEqual(10 + 8 + 8 * Math.ceil(Math.log2(seconds + 2)))
      expect((statuses.get(429) ?? 0) + checked).toBe(attempts)
      const [row] = await b.heimdall.database.knex('rate_limits').where({ kind: 'auth-address', key: '203.0.113.66' })
      expect(Number(row.until) - Date.now()).toBeGreaterThan(0)
      // The owner, from elsewhere, is not locked out.
      const mine = await fetch(`${url}/uploads`, { headers: { Authorization: `Bearer ${person.token}`, 'X-Forwarded-For': '198.51.100.77' } })
      expect(mine.status).toBe(200)
      await mine.arrayBuffer()
    } finally {
      await b.close()
    }
  }, 60_000)
})

describe('the limits are shared by two instances on one database', () => {
  const postgresUrl = inject('postgresUrl')
  let a: TestHeimdall
  let b: TestHeimdall
  let drop: () => Promise<void>
  beforeAll(async () => {
    if (postgresUrl === '') return
    const scratch = await createScratchDatabase(postgresUrl)
    drop = scratch.drop
    a = await startTestHeimdall({ ...LIMITS, DATABASE_URL: scratch.url })
    b = await startTestHeimdall({ ...LIMITS, DATABASE_URL: scratch.url })
  })
  afterAll(async () => {
    if (postgresUrl === '') return
    await a.close()
    await b.close()
    await drop()
  })

  it.skipIf(postgresUrl === '')('failures on one instance hold back the address on the other; uploads count on both', async () => {
    const person = await personFrom(a, '198.51.100.3')
    for (let i = 0; i < 2; i++) await a.request.get('/uploads').set('X-Forwarded-For', '203.0.113.20').set('Authorization', `Bearer ${wrongToken()}`).expect(401)
    for (let i = 0; i < 2; i++) await b.request.get('/uploads').set('X-Forwarded-For', '203.0.113.20').set('Authorization', `Bearer ${wrongToken()}`).expect(401)
    await a.request.get('/uploads').set('X-Forwarded-For', '203.0.113.20').set('Authorization', `Bearer ${person.token}`).expect(429)
    await b.request.get('/uploads').set('X-Forwarded-For', '203.0.113.20').set('Authorization', `Bearer ${person.token}`).expect(429)

    await a.request.post('/upload').set('Authorization', `Bearer ${person.token}`).attach('file', ...script()).expect(200)
    await b.request.post('/upload').set('Authorization', `Bearer ${person.token}`).attach('file', ...script()).expect(200)
    await a.request.post('/upload').set('Authorization', `Bearer ${person.token}`).attach('file', ...script()).expect(200)
    await b.request.post('/upload').set('Authorization', `Bearer ${person.token}`).attach('file', ...script()).expect(429)
    await a.request.post('/upload').set('Authorization', `Bearer ${person.token}`).attach('file', ...script()).expect(429)

    await a.request.post('/new').set('X-Forwarded-For', '198.51.100.30').send({ username: 'shared-one' }).expect(201)
    await b.request.post('/new').set('X-Forwarded-For', '198.51.100.30').send({ username: 'shared-two' }).expect(201)
    await a.request.post('/new').set('X-Forwarded-For', '198.51.100.30').send({ username: 'shared-three' }).expect(429)
  })

  it.skipIf(postgresUrl === '')('concurrent uploads across both instances: exactly the bucket\'s worth get through', async () => {
    const person = await personFrom(b, '198.51.100.4')
    const results = await Promise.all(Array.from({ length: 8 }, async (_, i) => (i % 2 === 0 ? a : b).request.post('/upload').set('Authorization', `Bearer ${person.token}`).attach('file', ...script())))
    expect(results.filter((r) => r.status === 200)).toHaveLength(3)
    expect(results.filter((r) => r.status === 429)).toHaveLength(5)
  })
})

describe('the default limits', () => {
  const config = loadConfig({})
  it('are configuration, checked at start', () => {
    expect(() => loadConfig({ AUTH_BACKOFF_BASE_SECONDS: '10', AUTH_BACKOFF_MAX_SECONDS: '5' })).toThrow('AUTH_BACKOFF_MAX_SECONDS: must be at least AUTH_BACKOFF_BASE_SECONDS')
    const invalid = (() => { try { loadConfig({ UPLOADS_PER_HOUR: '0', QUOTA_BYTES: '-1', AUTH_FAILURES_ALLOWED: 'many' }) } catch (err) { return err as ConfigError } })()
    expect(invalid?.issues.map((i) => i.split(':')[0]).sort()).toEqual(['AUTH_FAILURES_ALLOWED', 'QUOTA_BYTES', 'UPLOADS_PER_HOUR'])
    expect(loadConfig({ UPLOADS_PER_HOUR: '60', QUOTA_BYTES: '1000', QUOTA_UPLOADS: '0' })).toMatchObject({ rateLimits: { uploadsPerHour: 60 }, defaultQuota: { bytes: 1000, uploads: 0 } })
  })

  it('are a back-off after 10 failures that doubles from 1 s to an hour; buckets of 20 identities and 600 uploads an hour', () => {
    expect(config.rateLimits).toEqual({
      authFailuresAllowed: 10, authBackoffBaseSeconds: 1, authBackoffMaxSeconds: 3600, authFailureMemorySeconds: 86_400, identitiesPerHour: 20, uploadsPerHour: 600
    })
  })

})
