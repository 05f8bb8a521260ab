import { execFile } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CID } from 'multiformats/cid'
import { HeliaBackend } from '../../src/ipfs/helia-backend.ts'
import { makeDataDir } from '../support/heimdall-harness.ts'
import { newToken, startHeimdallProcess, uploadStream } from '../support/heimdall-process.ts'

const run = promisify(execFile)
const GC_CLI = fileURLToPath(new URL('../../src/cli/gc.ts', import.meta.url))

/** `npm run gc` as an operator runs it: its own process, configured by the environment. */
async function gc (dataDir: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [GC_CLI, ...args], { env: { PATH: process.env.PATH, DATA_DIR: dataDir, SECRET_KEY: 'x'.repeat(40) } })
  return stdout
}

/** The same with DATA_DIR relative to the working folder, as .env.example has it (`./data`). */
async function gcIn (dataDir: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [GC_CLI, ...args], { cwd: dirname(dataDir), env: { PATH: process.env.PATH, DATA_DIR: `./${basename(dataDir)}`, SECRET_KEY: 'x'.repeat(40) } })
  return stdout
}

describe('npm run gc', () => {
  let dataDir: string
  beforeAll(async () => { dataDir = await makeDataDir() })
  afterAll(async () => { await rm(dataDir, { recursive: true, force: true }) })

  it('reports with --dry-run, then frees the blocks nothing pins, on a repository no server holds', async () => {
    // Garbage as an interrupted upload leaves it: blocks imported and never pinned.
    const backend = await HeliaBackend.open(join(dataDir, 'ipfs'))
    const content = (await import('node:crypto')).randomBytes(3 * 1024 * 1024)
    await backend.importTree([{ path: 'lost.bin', content: (async function * () { yield await Promise.resolve(content) })() }], { profile: 'unixfs-v1-2025' })
    await backend.close()

    expect(await gc(dataDir, '--dry-run')).toMatch(/^dry run \(the embedded repo\): would free [1-9]\d* blocks, 3\d{6} bytes/)
    // A mistyped option is refused (exit 2), and collects nothing.
    await expect(gc(dataDir, '--dryrun')).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/--dryrun[\s\S]*usage: npm run gc \[-- --dry-run\]/) })
    expect(await gc(dataDir, '--dry-run')).toMatch(/^dry run \(the embedded repo\): would free [1-9]\d* blocks/)
    expect(await gc(dataDir)).toMatch(/^garbage collected \(the embedded repo\): freed [1-9]\d* blocks, 3\d{6} bytes/)
    expect(await gc(dataDir, '--dry-run')).toMatch(/would free 0 blocks, 0 bytes/)
  })

  it('asks the running server over its control socket, and the upload it holds survives', async () => {
    const server = await startHeimdallProcess({ DATA_DIR: dataDir, SECRET_KEY: 'x'.repeat(40) })
    try {
      const token = await newToken(server.url, 'gcowner')
      const uploaded = await uploadStream(server.url, token, Buffer.from('kept bytes'), 'kept.bin')
      expect(uploaded.status).toBe(200)
      const root = (uploaded.body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
      expect(await gc(dataDir, '--dry-run')).toMatch(/^dry run \(the running server\): would free 0 blocks/)
      expect(await gc(dataDir)).toMatch(/^garbage collected \(the running server\)/)
      const res = await fetch(`${server.url}/ipfs/${root}/kept.bin`)
      expect(res.status).toBe(200)
      expect(await res.text()).toBe('kept bytes')
    } finally {
      await server.stop()
    }
  })

  it('with the service stopped, first pins again what the database holds with no pin (as a start does), then collects', async () => {
    // The upload above, its pin gone (as uploads of the versions of 2026-11-24 were left): only the database holds it.
    const backend = await HeliaBackend.open(join(dataDir, 'ipfs'))
    const roots: CID[] = []
    for await (const root of backend.listPins()) roots.push(root)
    expect(roots).toHaveLength(1)
    const [root] = roots as [CID]
    await backend.unpin(root)
    await backend.close()

    expect(await gcIn(dataDir)).toMatch(/^garbage collected \(the embedded repo\): freed 0 blocks/)
    const server = await startHeimdallProcess({ DATA_DIR: dataDir, SECRET_KEY: 'x'.repeat(40) })
    try {
      const res = await fetch(`${server.url}/ipfs/${root.toString()}/kept.bin`)
      expect(res.status).toBe(200)
      expect(await res.text()).toBe('kept bytes')
    } finally {
      await server.stop()
    }
  })
})
