/**
 * `node bench/resumable-upload.ts [rounds]`: throughput of a tus PATCH of
 * 300 MB against the real app (embedded node, embedded PostgreSQL) on
 * 127.0.0.1, beside a plain POST /upload of the same size and, as the
 * machine's floor, a bare Node HTTP server writing the same bytes to a file
 * (createWriteStream, one fsync). Rounds alternate the four, so a loaded
 * machine weighs on all of them alike. Not a test: it prints one JSON line
 * a round (seconds, MB/s; MB = 10^6 bytes).
 */
import { createWriteStream } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { once } from 'node:events'
import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createIdentity, startTestHeimdall } from '../test/support/heimdall-harness.ts'
import { uploadStream } from '../test/support/heimdall-process.ts'
import { kuboDeterministicStream } from '../test/support/kubo-vectors.ts'

const MB = 1e6
const SIZE = 300 * MB
const ROUNDS = Number(process.argv[2] ?? 2)

const bytes = (seed: string): Readable => {
  const next = kuboDeterministicStream(seed)
  return Readable.from((function * () { for (let left = SIZE; left > 0; left -= MB) yield next(Math.min(left, MB)) })())
}

async function send (base: string, method: string, path: string, headers: Record<string, string>, body?: Readable): Promise<{ status: number, location: string, seconds: number }> {
  const started = process.hrtime.bigint()
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers, agent: false }, (res) => {
      res.resume()
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, location: String(res.headers.location), seconds: Number(process.hrtime.bigint() - started) / 1e9 }) })
    })
    req.on('error', reject)
    if (body === undefined) req.end()
    else body.pipe(req)
  })
}

const rate = (r: { status: number, seconds: number }): { status: number, s: number, MBps: number } => ({ status: r.status, s: +r.seconds.toFixed(2), MBps: +(SIZE / MB / r.seconds).toFixed(0) })

const t = await startTestHeimdall({ LOG_LEVEL: 'warn' })
const bare = createServer((req, res) => {
  void (async () => {
    const file = join(tmpdir(), `bench-resumable-${process.pid}`)
    await pipeline(req, createWriteStream(file))
    const handle = await open(file, 'r+')
    await handle.datasync()
    await handle.close()
    await rm(file, { force: true })
    res.writeHead(204).end()
  })()
})
try {
  const { url } = await t.listen()
  bare.listen(0, '127.0.0.1')
  await once(bare, 'listening')
  const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}`
  const who = await createIdentity(t.request, 'bench')
  const tus = { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${who.token}` }
  const patch = { ...tus, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(SIZE) }
  const meta = (name: string): string => `filename ${Buffer.from(name).toString('base64')}`
  for (let round = 1; round <= ROUNDS; round++) {
    const floor = await send(bareUrl, 'PUT', '/', { 'Content-Length': String(SIZE) }, bytes(`f${round}`))
    // Written and fsynced only: the upload is one byte longer, so no import follows.
    const a = await send(url, 'POST', '/upload/resumable', { ...tus, 'Upload-Length': String(SIZE + 1), 'Upload-Metadata': meta(`a${round}.bin`) })
    const write = await send(url, 'PATCH', a.location, patch, bytes(`w${round}`))
    await send(url, 'DELETE', a.location, tus)
    // The whole file in one PATCH: written, fsynced, then imported and recorded.
    const b = await send(url, 'POST', '/upload/resumable', { ...tus, 'Upload-Length': String(SIZE), 'Upload-Metadata': meta(`b${round}.bin`) })
    const whole = await send(url, 'PATCH', b.location, patch, bytes(`b${round}`))
    const plain = await uploadStream(url, who.token, { size: SIZE, stream: () => bytes(`p${round}`) }, `p${round}.bin`)
    console.log(JSON.stringify({ round, bareHttpToFile: rate(floor), patchWriteFsync: rate(write), patchWithImport: rate(whole), plainPostUpload: rate(plain) }))
  }
} finally {
  bare.close()
  await t.close()
}
