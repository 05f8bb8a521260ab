import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { stat } from 'node:fs/promises'
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import multer from 'multer'
import { cpuSeconds } from '../cpu-time.ts'

/**
 * The floor under Heimdall's CPU over Kubo: what one Node process pays to
 * pass the same file from an HTTP request into another HTTP request, with
 * nothing else done: `pipe` hands the request's body on as it comes;
 * `multer` first takes the file out of its multipart form with multer (and
 * so busboy), as Heimdall and any server receiving a browser's upload must.
 * curl sends the file, as the bench sends it to Heimdall; a sink in a third
 * process reads what is relayed. Prints {pipe, multer}: the relay process's
 * CPU seconds per GiB, the least of `rounds` (the floor, on a shared
 * machine).
 *
 *   node bench/workers/relay-floor.ts <file> [rounds]
 */
const MODES = ['pipe', 'multer'] as const
type Mode = (typeof MODES)[number]

const [role, ...rest] = process.argv.slice(2)
if (role === 'sink') await sink()
else if (role === 'relay') await relay(rest[0] as Mode, Number(rest[1]))
else await measure(role, Number(rest[0] ?? 3))

/** Reads every byte, answers once they are all in. */
async function sink (): Promise<void> {
  const server = createServer((req, res) => { req.resume(); req.once('end', () => { res.end('{}') }) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  console.log((server.address() as AddressInfo).port)
}

async function relay (mode: Mode, sinkPort: number): Promise<void> {
  const server = createServer((req, res) => {
    const onward = (): ReturnType<typeof request> => {
      const up = request({ host: '127.0.0.1', port: sinkPort, method: 'POST', headers: { 'Content-Type': 'application/octet-stream' } }, (answer) => {
        answer.resume()
        answer.once('end', () => { res.end('{}') })
      })
      up.once('error', (err) => { res.destroy(err) })
      return up
    }
    if (mode === 'pipe') { req.pipe(onward()); return }
    relayFile(req, res, onward)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  console.log((server.address() as AddressInfo).port)
}

function relayFile (req: IncomingMessage, res: ServerResponse, onward: () => ReturnType<typeof request>): void {
  // A storage engine that streams the file part on, as Heimdall's does into Kubo's /api/v0/add.
  const storage: multer.StorageEngine = {
    _handleFile: (_req, file, cb) => {
      const up = onward()
      file.stream.pipe(up)
      up.once('finish', () => { cb(null, {}) })
    },
    _removeFile: (_req, _file, cb) => { cb(null) }
  }
  multer({ storage, limits: { fileSize: Number.MAX_SAFE_INTEGER } }).single('file')(req as never, res as never, (err?: unknown) => { if (err !== undefined) res.destroy(err as Error) })
}

/** A child running this file as `args`, and the first line it prints (its port). */
async function child (args: string[]): Promise<{ process: ChildProcess, port: number }> {
  const started = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  const [line] = await once(started.stdout, 'data') as [Buffer]
  return { process: started, port: Number(line.toString().trim()) }
}

async function measure (file: string | undefined, rounds: number): Promise<void> {
  if (file === undefined) throw new Error('usage: relay-floor.ts <file> [rounds]')
  const GiB = (await stat(file)).size / 1024 ** 3
  const sinkProcess = await child(['sink'])
  const floor: Record<Mode, number> = { pipe: Number.POSITIVE_INFINITY, multer: Number.POSITIVE_INFINITY }
  try {
    for (let round = 0; round < rounds; round++) {
      for (const mode of MODES) {
        const relayProcess = await child(['relay', mode, String(sinkProcess.port)])
        try {
          const pid = relayProcess.process.pid ?? 0
          const before = cpuSeconds(pid)
          await promisify(execFile)('curl', ['--silent', '--show-error', '--fail', '--form', `file=@${file};type=application/octet-stream`, `http://127.0.0.1:${relayProcess.port}/`])
          floor[mode] = Math.min(floor[mode], (cpuSeconds(pid) - before) / GiB)
        } finally {
          relayProcess.process.kill()
        }
      }
    }
  } finally {
    sinkProcess.process.kill()
  }
  console.log(JSON.stringify(floor))
}
