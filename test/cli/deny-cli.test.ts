import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixture } from '../support/fixtures.ts'
import { createIdentity, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

const run = promisify(execFile)
const DENY_CLI = fileURLToPath(new URL('../../src/cli/deny.ts', import.meta.url))

/** `npm run deny` as an operator runs it: its own process, configured by the environment. */
async function deny (dataDir: string, ...args: string[]): Promise<{ stdout: string, stderr: string, code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [DENY_CLI, ...args], { env: { PATH: process.env.PATH, DATA_DIR: dataDir, SUDO_USER: 'operator-test' } })
    return { stdout, stderr, code: 0 }
  } catch (err) {
    const failed = err as { stdout: string, stderr: string, code: number }
    return { stdout: failed.stdout, stderr: failed.stderr, code: failed.code }
  }
}

describe('npm run deny', () => {
  let t: TestHeimdall
  beforeAll(async () => { t = await startTestHeimdall({ DENYLIST_POLL_SECONDS: '1' }) })
  afterAll(async () => { await t.close() })

  it('blocks a pasted CID on a running server within seconds, with who, when and why written beside it', async () => {
    const { token } = await createIdentity(t.request)
    const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', fixture('glb/BoxTextured.glb'), 'box.glb').expect(200)
    const items = res.body as Array<{ Name: string, Hash: string }>
    const file = items[0]?.Hash ?? ''
    const root = items.at(-1)?.Hash ?? ''
    await t.request.get(`/ipfs/${root}/box.glb`).expect(200)

    const done = await deny(t.dataDir, file, 'reported', 'as', 'infringing')
    expect(done.code).toBe(0)
    expect(done.stdout).toMatch(/^blocked /)
    await expect.poll(async () => (await t.request.get(`/ipfs/${root}/box.glb`)).status, { timeout: 8000, interval: 200 }).toBe(410)
    const list = await readFile(join(t.dataDir, 'denylists', 'heimdall-operator.deny'), 'utf8')
    expect(list).toMatch(new RegExp(`^# \\d{4}-\\d\\d-\\d\\dT.+ by operator-test: reported as infringing\\n/ipfs/${file}\\n$`))
  })

  it('refuses what is not a denylist item, and writes nothing', async () => {
    const before = await readFile(join(t.dataDir, 'denylists', 'heimdall-operator.deny'), 'utf8')
    for (const item of ['not-a-cid', '/ipfs/nope/x', '/ipns/example.org']) {
      const refused = await deny(t.dataDir, item)
      expect(refused.code).toBe(1)
      expect(refused.stderr).toMatch(/not a denylist item|IPNS/)
    }
    expect((await deny(t.dataDir)).code).toBe(2)
    expect(await readFile(join(t.dataDir, 'denylists', 'heimdall-operator.deny'), 'utf8')).toBe(before)
  })
})
