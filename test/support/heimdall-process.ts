import { spawn, type ChildProcess } from 'node:child_process'
import { createReadStream, readFileSync, writeFileSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { request, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { descendants, peakRss } from '../../bench/workers/peak-rss.ts'
import { freePort } from './free-port.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/**
 * The arguments `npm start` gives node (V8 flags, then bin/start.js), read
 * from package.json so that tests measure the program as it is started.
 */
export function startArguments (): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }
  const [command, ...args] = pkg.scripts.start.split(/\s+/)
  if (command !== 'node') throw new Error(`npm start runs "${command ?? ''}", not node`)
  return args.map((arg) => (/\.[jt]s$/.test(arg) ? join(ROOT, arg) : arg))
}

export interface HeimdallProcess {
  url: string
  child: ChildProcess
  /** Peak RSS of the server process so far (VmHWM). */
  peakRss: () => number
  /** Peak RSS of its descendants (the embedded PostgreSQL's processes), each process's VmHWM, summed. */
  childrenPeakRss: () => number
  /** Peak RSS of the whole process tree: the server's and every descendant's VmHWM, summed. */
  treePeakRss: () => number
  /** The tree's proportional set size now (Σ Pss): pages shared by n processes count 1/n in each, so nothing twice. */
  treePss: () => number
  /** Starts every peak of the tree over. */
  resetPeaks: () => void
  stop: () => Promise<void>
}

/** A process's proportional set size (Pss, from smaps_rollup) in bytes; 0 for a process gone meanwhile. */
function proportionalSetSize (pid: number): number {
  try {
    const kib = /^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1]
    return kib === undefined ? 0 : Number(kib) * 1024
  } catch {
    return 0
  }
}

/**
 * The peak RSS of a process tree, summed: every process seen below the
 * server (sampled every 100 ms, so a database session that ended still
 * counts) with its own peak (VmHWM), plus the server's. An upper bound:
 * processes' peaks need not coincide, and pages they share count once each.
 */
class TreePeak {
  readonly #root: number
  readonly #peaks = new Map<number, number>()
  readonly #timer: NodeJS.Timeout

  constructor (root: number) {
    this.#root = root
    this.#timer = setInterval(() => { this.sample() }, 100)
    this.#timer.unref()
  }

  sample (): void {
    for (const pid of [this.#root, ...descendants(this.#root)]) {
      const peak = peakRss(pid)
      if (peak > (this.#peaks.get(pid) ?? 0)) this.#peaks.set(pid, peak)
    }
  }

  peak (): number {
    let sum = 0
    for (const value of this.#peaks.values()) sum += value
    return sum
  }

  /** Starts the peaks over (Linux clear_refs 5 resets VmHWM): what came before is not counted. */
  reset (): void {
    for (const pid of [this.#root, ...descendants(this.#root)]) {
      try { writeFileSync(`/proc/${pid}/clear_refs`, '5') } catch { /* gone, or not ours to reset */ }
    }
    this.#peaks.clear()
    this.sample()
  }

  close (): void { clearInterval(this.#timer) }
}

/** `node src/main.ts` as its own process on 127.0.0.1, ready when /readyz answers 200. */
export async function startHeimdallProcess (env: Record<string, string>): Promise<HeimdallProcess> {
  // A given PORT is kept (a restart behind nginx must come back on the same one).
  const port = env.PORT === undefined ? await freePort() : Number(env.PORT)
  const child = spawn(process.execPath, startArguments(), {
    env: { PATH: process.env.PATH, LOG_LEVEL: 'warn', HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'inherit', 'inherit']
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`heimdall exited with ${child.exitCode}`)
    if (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) break
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error('heimdall did not become ready') }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const pid = child.pid ?? 0
  const tree = new TreePeak(pid)
  child.once('exit', () => { tree.close() })
  return {
    url,
    child,
    peakRss: () => peakRss(pid),
    childrenPeakRss: () => { tree.sample(); return tree.peak() - peakRss(pid) },
    treePeakRss: () => { tree.sample(); return tree.peak() },
    treePss: () => [pid, ...descendants(pid)].reduce((sum, id) => sum + proportionalSetSize(id), 0),
    resetPeaks: () => { tree.reset() },
    stop: async () => {
      tree.close()
      if (child.exitCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
  }
}

export async function newToken (url: string, username: string): Promise<string> {
  const res = await fetch(`${url}/new`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `username=${username}` })
  if (res.status !== 201) throw new Error(`POST /new answered ${res.status}`)
  return ((await res.json()) as { secret: string }).secret
}

export interface UploadResult { status: number, body: unknown, seconds: number }

/** An answer's whole body: parsed when it is JSON, else the text. */
export async function answerBody (res: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const chunk of res) chunks.push(chunk as Buffer)
  const text = Buffer.concat(chunks).toString()
  try { return JSON.parse(text) } catch { return text }
}

/** A stream of `size` bytes, made as it is sent. */
export interface SizedStream { size: number, stream: () => NodeJS.ReadableStream }

/** Streams `source` (a file path, bytes, or a sized stream) as the `file` field of a multipart POST /upload; over https, trusting `ca`. */
export async function uploadStream (url: string, token: string, source: string | Buffer | SizedStream, fileName: string, ca?: Buffer): Promise<UploadResult> {
  const boundary = `heimdall${Math.random().toString(16).slice(2)}`
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${fileName}"\r\nContent-Type: application/octet-stream\r\n\r\n`)
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  const size = typeof source === 'string' ? (await stat(source)).size : Buffer.isBuffer(source) ? source.length : source.size
  const started = process.hrtime.bigint()
  return new Promise((resolve, reject) => {
    const send = url.startsWith('https:') ? httpsRequest : request
    const req = send(`${url}/upload`, {
      method: 'POST',
      ...(ca === undefined ? {} : { ca }),
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': String(head.length + size + tail.length) }
    }, (res) => {
      answerBody(res).then((body) => { resolve({ status: res.statusCode ?? 0, body, seconds: Number(process.hrtime.bigint() - started) / 1e9 }) }, reject)
    })
    req.on('error', reject)
    req.write(head)
    if (Buffer.isBuffer(source)) {
      req.end(Buffer.concat([source, tail]))
    } else {
      const body: NodeJS.ReadableStream = typeof source === 'string' ? createReadStream(source, { highWaterMark: 1024 * 1024 }) : source.stream()
      body.on('error', reject)
      body.pipe(req, { end: false })
      body.on('end', () => { req.end(tail) })
    }
  })
}
