import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { fixture } from '../support/fixtures.ts'
import { createIdentity, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { createScratchDatabase } from '../support/postgres-server.ts'

// The suite's PostgreSQL, so `npm run admin` (another process) reaches the service's database.
const postgresUrl = inject('postgresUrl')
if (postgresUrl === '' && process.env.CI === 'true') throw new Error('the operator command tests need the suite\'s PostgreSQL under CI=true')

describe.skipIf(postgresUrl === '')('npm run admin', () => {
  let t: TestHeimdall
  let databaseUrl = ''
  let dropDatabase = async (): Promise<void> => {}
  beforeAll(async () => {
    const scratch = await createScratchDatabase(postgresUrl)
    databaseUrl = scratch.url
    dropDatabase = scratch.drop
    t = await startTestHeimdall({ DATABASE_URL: databaseUrl, DENYLIST_POLL_SECONDS: '1' })
  })
  afterAll(async () => { await t.close(); await dropDatabase() })

  /** The command as an operator runs it with sudo: its own process, configured by the environment. */
  const admin = async (...args: string[]): Promise<{ code: number | null, out: string }> => new Promise((resolve) => {
    const child = spawn(process.execPath, ['src/cli/admin.ts', ...args], { env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl, DATA_DIR: t.dataDir, SUDO_USER: 'operator-test' } })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
    child.on('close', (code) => { resolve({ code, out }) })
  })
  const status = async (path: string): Promise<number> => (await t.request.get(path)).status

  it('disables an identity (no sign-in, what only it holds not served) and enables it again, each recorded', async () => {
    const spammer = await createIdentity(t.request, 'admin-spammer')
    const other = await createIdentity(t.request, 'admin-other')
    const upload = async (who: { token: string }, data: Buffer, name: string): Promise<string> =>
      ((await t.request.post('/upload').set('Authorization', `Bearer ${who.token}`).attach('file', data, name).expect(200)).body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
    const own = await upload(spammer, fixture('glb/BoxTextured.glb'), 'own.glb')
    // A root it holds only as what its pending pin-request replacement replaced (found by review: never suspended).
    const replaced = await upload(spammer, Buffer.from('// kept by a replaced request\n'), 'replaced.js')
    const request = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${spammer.token}`).send({ cid: replaced }).expect(202)).body as { requestid: string }
    const replacedId = (await t.request.get('/uploads').set('Authorization', `Bearer ${spammer.token}`).expect(200)).body.uploads.find((u: { rootCid: string }) => u.rootCid === replaced).id as number
    await t.request.delete(`/uploads/${replacedId}`).set('Authorization', `Bearer ${spammer.token}`).expect(204)
    await t.request.post(`/psa/pins/${request.requestid}`).set('Authorization', `Bearer ${spammer.token}`).send({ cid: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy' }).expect(202)
    expect(await status(`/ipfs/${replaced}/replaced.js`)).toBe(200)
    const shared = await upload(spammer, Buffer.from('// shared script\n'), 'shared.js')
    expect(await upload(other, Buffer.from('// shared script\n'), 'shared.js')).toBe(shared)

    const listed = await admin('identities', 'admin-')
    expect(listed.code).toBe(0)
    expect(listed.out).toMatch(/admin-spammer\s+created \d{4}-\d\d-\d\d\s+2 uploads/)

    const disabled = await admin('disable', 'admin-spammer', 'posting', 'spam')
    expect(disabled.code).toBe(0)
    expect(disabled.out).toMatch(/operator-test: disable admin-spammer \{"reason":"posting spam"\}/)
    const refused = await t.request.get('/uploads').set('Authorization', `Bearer ${spammer.token}`).expect(403)
    expect((refused.body as { error: string }).error).toMatch(/disabled by the operator/)
    await t.request.post('/upload').set('Authorization', `Bearer ${spammer.token}`).attach('file', Buffer.from('// more\n'), 'more.js').expect(403)
    await expect.poll(async () => status(`/ipfs/${own}/own.glb`), { timeout: 8000, interval: 200 }).toBe(410)
    expect(await status(`/ipfs/${replaced}/replaced.js`)).toBe(410)
    // Another identity holds the shared content: still served. The other identity is untouched.
    expect(await status(`/ipfs/${shared}/shared.js`)).toBe(200)
    await t.request.get('/uploads').set('Authorization', `Bearer ${other.token}`).expect(200)

    expect((await admin('enable', 'admin-spammer')).code).toBe(0)
    await t.request.get('/uploads').set('Authorization', `Bearer ${spammer.token}`).expect(200)
    await expect.poll(async () => status(`/ipfs/${own}/own.glb`), { timeout: 8000, interval: 200 }).toBe(200)

    expect((await admin('disable', 'nobody-here')).out).toContain('no identity named "nobody-here"')
    const log = await admin('log', '5')
    expect(log.out).toMatch(/operator-test: disable admin-spammer[^\n]*\n.*operator-test: enable admin-spammer/)
  })

  it('blocks content, reports storage, and says plainly when there is no running service to collect', async () => {
    const person = await createIdentity(t.request, 'admin-blocked')
    const root = ((await t.request.post('/upload').set('Authorization', `Bearer ${person.token}`).attach('file', Buffer.from('// to be blocked\n'), 'blocked.js').expect(200)).body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
    const blocked = await admin('block', root, 'court order 42')
    expect(blocked.code).toBe(0)
    await expect.poll(async () => status(`/ipfs/${root}/blocked.js`), { timeout: 8000, interval: 200 }).toBe(410)
    expect((await admin('log', '1')).out).toMatch(new RegExp(`operator-test: block /ipfs/${root} .*"reason":"court order 42"`))

    const usage = await admin('usage')
    expect(usage.code).toBe(0)
    expect(usage.out).toMatch(/\d+ identities \(0 disabled\); \d+ uploads of \d+ distinct contents/)
    expect(usage.out).toMatch(/embedded IPFS node: \d+ block files/)
    // The in-process test service has no control socket: the command says what to do instead.
    const gc = await admin('gc')
    expect(gc.code).toBe(1)
    expect(gc.out).toContain('npm run gc')
    expect((await admin('frobnicate')).out).toContain('unknown command frobnicate')
    // `admin gc` takes nothing: a dry run asked of it must not collect for real.
    const dry = await admin('gc', '--dry-run')
    expect(dry.code).toBe(1)
    expect(dry.out).toContain('npm run gc -- --dry-run')
  })

  it('a disabled identity\'s file is not refused where its bytes are a chunk of someone else\'s file', async () => {
    // Found by review: suspension gated every block, so 1 MiB of zeros uploaded by a disabled identity took down the
    // first chunk of everyone's file of zeros.
    const dora = await createIdentity(t.request, 'admin-dora')
    const eric = await createIdentity(t.request, 'admin-eric')
    const upload = async (who: { token: string }, data: Buffer, name: string): Promise<string> =>
      ((await t.request.post('/upload').set('Authorization', `Bearer ${who.token}`).attach('file', data, name).expect(200)).body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
    const small = await upload(dora, Buffer.alloc(1024 * 1024), 'zeros1m.bin')
    const large = await upload(eric, Buffer.alloc(3 * 1024 * 1024), 'zeros3m.bin')
    expect((await admin('disable', 'admin-dora')).code).toBe(0)
    await expect.poll(async () => status(`/ipfs/${small}/zeros1m.bin`), { timeout: 8000, interval: 200 }).toBe(410)
    expect(await status(`/ipfs/${large}/zeros3m.bin`)).toBe(200)
    expect(await status(`/ipfs/${large}?format=tar`)).toBe(200)
    expect((await admin('enable', 'admin-dora')).code).toBe(0)
  })

  it('writes no block it cannot record: with the database unreachable the list is left as it was', async () => {
    const list = join(t.dataDir, 'denylists', 'heimdall-operator.deny')
    const before = existsSync(list) ? readFileSync(list, 'utf8') : undefined
    const child = spawn(process.execPath, ['src/cli/admin.ts', 'block', 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', 'court order'], { env: { PATH: process.env.PATH, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/heimdall', DATA_DIR: t.dataDir } })
    const code = await new Promise<number | null>((resolve) => { child.on('close', resolve) })
    expect(code).toBe(1)
    expect(existsSync(list) ? readFileSync(list, 'utf8') : undefined).toBe(before)
  })
})
