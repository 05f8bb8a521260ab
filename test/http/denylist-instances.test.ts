import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { avatarBundle } from '../support/fixtures.ts'
import { createIdentity, makeDataDir, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { createScratchDatabase } from '../support/postgres-server.ts'

const postgresUrl = inject('postgresUrl')
if (postgresUrl === '' && process.env.CI === 'true') throw new Error('the shared-database denylist test needs the suite\'s PostgreSQL under CI=true')

/**
 * Two instances on one database, reading one denylist folder (as replicas
 * mounting the same volume): a list written once is in force on both, and
 * the take-down recorded by either holds on both.
 */
describe.skipIf(postgresUrl === '')('denylists across two instances sharing PostgreSQL', () => {
  let first: TestHeimdall
  let second: TestHeimdall
  let denyDir: string
  let shared: string
  let drop = async (): Promise<void> => {}
  beforeAll(async () => {
    const scratch = await createScratchDatabase(postgresUrl)
    drop = scratch.drop
    shared = await makeDataDir()
    denyDir = join(shared, 'shared-denylists')
    await mkdir(denyDir, { recursive: true })
    const env = { DATABASE_URL: scratch.url, DENYLIST_DIR: denyDir, DENYLIST_POLL_SECONDS: '1' }
    first = await startTestHeimdall(env)
    second = await startTestHeimdall(env)
  })
  afterAll(async () => { await first.close(); await second.close(); await drop(); await rm(shared, { recursive: true, force: true }) })

  it('blocks on both, refuses the upload on the other, and both list the upload as taken down', async () => {
    const { token } = await createIdentity(first.request, 'shared-deny')
    const bundle = await avatarBundle()
    const items = (await first.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', bundle, 'shared.zip').expect(200)).body as Array<{ Name: string, Hash: string }>
    const root = items.at(-1)?.Hash ?? ''
    const skin = items.find((item) => item.Name.endsWith('textures/skin.png'))?.Hash ?? ''
    await first.request.get(`/ipfs/${root}/textures/skin.png`).expect(200)

    await writeFile(join(denyDir, 'shared.deny'), `/ipfs/${skin}\n`)
    for (const instance of [first, second]) {
      await expect.poll(async () => (await instance.request.get(`/ipfs/${skin}`)).status, { timeout: 8000, interval: 200 }).toBe(410)
    }
    // The other instance refuses the same content (the token works there too: one database).
    await second.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', bundle, 'again.zip').expect(403)
    await expect.poll(async () => first.heimdall.backend.isPinned(CID.parse(root)), { timeout: 8000 }).toBe(false)
    for (const instance of [first, second]) {
      const list = await instance.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)
      expect((list.body as { uploads: Array<{ rootCid: string, blocked: boolean }> }).uploads.find((u) => u.rootCid === root)?.blocked).toBe(true)
    }
  })
})
