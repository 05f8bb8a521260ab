import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { createScratchDatabase } from '../support/postgres-server.ts'

const KiB = 1024
const postgresUrl = inject('postgresUrl')
if (postgresUrl === '' && process.env.CI === 'true') throw new Error('the shared-database quota test needs the suite\'s PostgreSQL under CI=true')

/** A script of exactly `bytes` bytes, different every time. */
const script = (bytes: number): Buffer => Buffer.concat([Buffer.from(`// ${Math.random()}\n`), Buffer.alloc(bytes, 'x')]).subarray(0, bytes)

/**
 * The quota is checked under the identity's row lock in PostgreSQL, not in a
 * process: uploads of one identity through two instances at once cannot pass
 * it together either.
 */
describe.skipIf(postgresUrl === '')('quotas across two instances sharing PostgreSQL', () => {
  let first: TestHeimdall
  let second: TestHeimdall
  let drop = async (): Promise<void> => {}
  beforeAll(async () => {
    const scratch = await createScratchDatabase(postgresUrl)
    drop = scratch.drop
    const env = { DATABASE_URL: scratch.url, QUOTA_BYTES: String(256 * KiB), QUOTA_UPLOADS: '100' }
    first = await startTestHeimdall(env)
    second = await startTestHeimdall(env)
  })
  afterAll(async () => { await first.close(); await second.close(); await drop() })

  it('concurrent uploads of one identity through both: exactly what fits is recorded', async () => {
    const token = ((await first.request.post('/new').send({ username: 'two-instance-racer' }).expect(201)).body as { token: string }).token
    const results = await Promise.all(Array.from({ length: 10 }, async (_, i) =>
      (i % 2 === 0 ? first : second).request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', script(100 * KiB), `race-${i}.js`)))
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, ...Array<number>(8).fill(413)])
    const usage = (await second.request.get('/account').set('Authorization', `Bearer ${token}`).expect(200)).body as { usage: { bytes: number, uploads: number } }
    expect(usage.usage).toEqual({ bytes: 200 * KiB, uploads: 2 })
  })
})
