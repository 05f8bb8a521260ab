/**
 * How much the embedded node's blocks outgrow its uploads after crashes:
 * rounds of 50 concurrent uploads, the server killed with SIGKILL in the
 * middle of each round, then one clean start (which collects garbage) and a
 * comparison of block bytes on disk with the bytes of the listed uploads.
 * `node bench/crash-gc.ts [rounds]` — loopback only, stops by itself.
 */
import { randomBytes } from 'node:crypto'
import { readdir, stat, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { makeDataDir } from '../test/support/heimdall-harness.ts'
import { newToken, startHeimdallProcess, uploadStream } from '../test/support/heimdall-process.ts'

async function blockBytes (dir: string): Promise<number> {
  let total = 0
  for (const shard of await readdir(dir, { withFileTypes: true })) {
    if (!shard.isDirectory()) continue
    for (const name of await readdir(join(dir, shard.name))) total += (await stat(join(dir, shard.name, name))).size
  }
  return total
}

const rounds = Number(process.argv[2] ?? 3)
const dataDir = await makeDataDir()
const env = { DATA_DIR: dataDir, SECRET_KEY: 'k'.repeat(40), GC_INTERVAL_SECONDS: '0', LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' }
let token = ''
try {
  for (let round = 0; round < rounds; round++) {
    const server = await startHeimdallProcess(env)
    if (token === '') token = await newToken(server.url, 'crasher')
    let done = 0
    const uploads = Array.from({ length: 50 }, async (_, i) => {
      const result = await uploadStream(server.url, token, randomBytes(6 * 1024 * 1024 + i), `r${round}-${i}.bin`).catch(() => undefined)
      done++
      return result
    })
    // Killed in the middle: once the first few of the round have been answered.
    while (done < 5) await new Promise((resolve) => setTimeout(resolve, 20))
    server.child.kill('SIGKILL')
    const results = await Promise.all(uploads)
    console.log(`round ${round + 1}: ${results.filter((r) => r?.status === 200).length} of 50 acknowledged before the kill`)
    await new Promise((resolve) => server.child.once('exit', resolve)).catch(() => {})
  }
  const before = await blockBytes(join(dataDir, 'ipfs', 'blocks'))
  const server = await startHeimdallProcess(env)
  // The start-up collection runs in the background: wait for the store to settle.
  let after = before
  for (let i = 0; i < 60; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    const now = await blockBytes(join(dataDir, 'ipfs', 'blocks'))
    if (now === after && now !== before) break
    after = now
  }
  const list = await (await fetch(`${server.url}/uploads`, { headers: { Authorization: `Bearer ${token}` } })).json() as { total: number, uploads: Array<{ size: number }> }
  const listed = list.uploads.reduce((sum, u) => sum + u.size, 0)
  console.log(`listed uploads: ${list.total}, ${(listed / 1e6).toFixed(1)} MB`)
  console.log(`blocks on disk after the crashes: ${(before / 1e6).toFixed(1)} MB; after a clean start: ${(after / 1e6).toFixed(1)} MB (${(after / listed).toFixed(3)}x the listed bytes)`)
  await server.stop()
} finally {
  if (process.env.KEEP === undefined) await rm(dataDir, { recursive: true, force: true })
  else console.log(`kept ${dataDir}`)
}
