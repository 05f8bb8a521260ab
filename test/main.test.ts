import { spawn } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { makeDataDir } from './support/heimdall-harness.ts'
import { startArguments } from './support/heimdall-process.ts'
import { freePort } from './support/free-port.ts'

function start (env: Record<string, string>) {
  const child = spawn(process.execPath, startArguments(), { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  return { child, exited, output: () => ({ stdout, stderr }) }
}

describe('src/main.ts', () => {
  it('refuses to start on invalid configuration, one line per key', async () => {
    const run = start({ PORT: 'x', MAX_UPLOAD_BYTES: '0' })
    expect(await run.exited).toBe(1)
    const lines = run.output().stderr.trim().split('\n')
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^configuration error: (PORT|MAX_UPLOAD_BYTES): /)
    expect(lines[1]).toMatch(/^configuration error: (PORT|MAX_UPLOAD_BYTES): /)
  })

  it('starts with embedded defaults, answers, and stops cleanly on SIGTERM', async () => {
    const dataDir = await makeDataDir()
    const port = await freePort()
    const run = start({ DATA_DIR: dataDir, PORT: String(port) })
    try {
      const deadline = Date.now() + 60_000
      let ready = false
      while (!ready && Date.now() < deadline) {
        ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false)
        if (!ready) await new Promise((resolve) => setTimeout(resolve, 200))
      }
      expect(ready).toBe(true)
      const routes = await (await fetch(`http://127.0.0.1:${port}/plugin_routes`)).json()
      expect(routes).toMatchObject({ new_user: '/new' })
      run.child.kill('SIGTERM')
      expect(await run.exited).toBe(0)
      const lines = run.output().stdout.trim().split('\n').map((line) => JSON.parse(line) as { msg: string })
      expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['Heimdall is listening', 'shutting down', 'stopped']))
    } finally {
      run.child.kill('SIGKILL')
      await rm(dataDir, { recursive: true, force: true })
    }
  })
})
