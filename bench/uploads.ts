/**
 * The upload part of `npm run bench` (alone: `npm run bench -- --only uploads`):
 * the same bytes uploaded to Heimdall on its embedded node (the default
 * configuration, as `npm start` runs it), to Heimdall over Kubo (as compose
 * runs it: Kubo's RPC API, its private gateway and flatfs folder, an external
 * PostgreSQL), and added to Kubo itself (`ipfs add` through its running
 * daemon, `ipfs add -r` of the zip's extracted folder, `/api/v0/add` at the
 * same concurrency), in one run. Each measurement starts its target afresh on
 * an empty repository or data folder, so no side finds blocks another wrote.
 * The workloads are repeated in `rounds` rounds, the order of the targets
 * rotated each round, and every ratio is taken within a round (a machine that
 * gets busier meanwhile moves both sides alike): medians and ranges of those.
 *
 * The reference Kubo is v0.42 with `ipfs init --profile=test,unixfs-v1-2025`:
 * the test profile only touches addresses, bootstrap, discovery and autoconf,
 * so the datastore is the one a plain `ipfs init` writes (flatfs
 * next-to-last/2 for blocks, leveldb for the rest; flatfs `sync: false` since
 * Kubo 0.33). That is checked against a plain init's config before anything is
 * measured. The daemon runs `--offline` with Routing.Type none on loopback.
 */
import { execFile, spawnSync } from 'node:child_process'
import { isDeepStrictEqual, promisify } from 'node:util'
import { createWriteStream, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { request } from 'node:http'
import { dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import yauzl, { type Entry, type ZipFile } from 'yauzl'
import { writeRandomFile, writeTextureBundle } from '../test/support/big-inputs.ts'
import { newToken, startHeimdallProcess, uploadStream, type HeimdallProcess, type SizedStream, type UploadResult } from '../test/support/heimdall-process.ts'
import { kuboDeterministicStream } from '../test/support/kubo-vectors.ts'
import { ensureKuboBinary, startKubo, type KuboNode } from '../test/support/kubo.ts'
import { descendants, peakRss, TreeRssSampler } from './workers/peak-rss.ts'
import { cpuSeconds, treeCpuSeconds } from './cpu-time.ts'
import { fileURLToPath } from 'node:url'

const run = promisify(execFile)
const MiB = 1024 * 1024
const SECRET_KEY = 'bench-secret-key-bench-secret-key-0123'
/** The unixfs-v1-2025 parameters `ipfs add` is given explicitly (the repo's Import config, set by the profile, holds the rest). */
const ADD_FLAGS = ['--cid-version=1', '--raw-leaves', '--chunker=size-1048576']
const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url))

/** Makes a scratch database on the bench's PostgreSQL server (Heimdall over Kubo uses it, as compose does). */
export type DatabaseFactory = () => Promise<{ url: string, drop: () => Promise<void> }>

export interface UploadsOptions {
  fileSize: number
  textures: number
  /** The upload whose memory is compared with the 300 MB goal (2 GiB at full scale), embedded, once. */
  memoryFileSize: number
  concurrent: number
  modelSize: number
  rounds: number
  database: DatabaseFactory | undefined
}

/** A figure measured once per round: its median and its spread. */
export interface Spread { median: number, min: number, max: number }

function spread (values: readonly number[]): Spread {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b)
  const mid = sorted.length / 2
  const median = sorted.length % 2 === 1 ? sorted[Math.floor(mid)] ?? Number.NaN : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2
  return { median, min: sorted[0] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN }
}

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
const seconds = (since: bigint): number => Number(process.hrtime.bigint() - since) / 1e9

/** One timed import of the file or the bundle: how long, the CID to compare, and memory where there is a server. */
interface Timed {
  seconds: number
  /** The file's CID (the file), or the CID of the bundle's contents (what `ipfs add -r` of its folder gives); '' when the answer lacked it; none for sha256. */
  cid?: string
  /** Heimdall's process tree (the server and its embedded PostgreSQL), each process's VmHWM summed. */
  treePeakRss?: number
  /** The largest sum of that tree's resident sets at one moment (sampled every 100 ms). */
  treeAtOnceRss?: number
  /** The Kubo daemon's VmHWM (Heimdall over Kubo, and the reference). */
  kuboPeakRss?: number
  /** CPU seconds the measurement took: Heimdall's process tree, and the Kubo daemon (not the `ipfs add` client). */
  cpu?: { heimdall?: number, kubo?: number }
}

/** One concurrent burst: each request's latency, the errors, and each model's CID by name. */
interface Burst { latenciesMs: number[], errors: number, wallSeconds: number, cids: Map<string, string>, treePeakRss?: number, kuboPeakRss?: number }

/** A side of the comparison: how it imports a file, a bundle, and a burst of small models. */
interface Target {
  name: string
  file: (file: string) => Promise<Timed>
  bundle: (zip: string, folder: string) => Promise<Timed>
  burst: (models: readonly Model[]) => Promise<Burst>
}

interface Model { name: string, bytes: Buffer }

// ---------------------------------------------------------------- Kubo

/** The Kubo daemon among the bench's descendants (one runs at a time while measuring), or undefined. */
function kuboDaemonPid (): number | undefined {
  return descendants(process.pid).find((pid) => {
    try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('daemon') && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'ipfs' } catch { return false }
  })
}

/**
 * The reference's settings, checked: the datastore exactly as a plain `ipfs
 * init` writes it (the default flatfs), and no way onto the network.
 */
async function checkReferenceKubo (bin: string, kubo: KuboNode): Promise<string> {
  const plain = await mkdtemp(join(dirname(kubo.repo), 'heimdall-kubo-plain-'))
  try {
    // `init` alone writes a config and a key; it dials nothing.
    await run(bin, ['init', '--empty-repo'], { env: { ...process.env, IPFS_PATH: plain } })
    const defaults = JSON.parse(await readFile(join(plain, 'config'), 'utf8')) as { Datastore: { Spec: unknown } }
    const ours = JSON.parse(await readFile(join(kubo.repo, 'config'), 'utf8')) as { Datastore: { Spec: unknown }, Bootstrap: unknown[], Routing: { Type?: string } }
    if (!isDeepStrictEqual(ours.Datastore.Spec, defaults.Datastore.Spec)) throw new Error(`the reference Kubo's datastore is not the default: ${JSON.stringify(ours.Datastore.Spec)} vs ${JSON.stringify(defaults.Datastore.Spec)}`)
    if (ours.Bootstrap.length !== 0 || ours.Routing.Type !== 'none') throw new Error('the reference Kubo could reach the network (Bootstrap or Routing set)')
    const blocks = (ours.Datastore.Spec as { mounts: Array<{ type: string, shardFunc?: string, sync?: boolean }> }).mounts.find((m) => m.type === 'flatfs')
    return `default datastore (as a plain \`ipfs init\`): flatfs ${blocks?.shardFunc ?? '?'} sync=${String(blocks?.sync)} + leveldb; offline, Routing.Type none, no bootstrap peers`
  } finally {
    await rm(plain, { recursive: true, force: true })
  }
}

async function withKubo<T> (bin: string, use: (kubo: KuboNode) => Promise<T>): Promise<T> {
  const kubo = await startKubo(bin)
  try {
    return await use(kubo)
  } finally {
    await kubo.stop()
  }
}

/** POST /api/v0/add of one model, as a client would send it; the latency from the request to the end of the answer. */
async function rpcAdd (apiUrl: string, model: Model): Promise<{ status: number, cid: string, ms: number }> {
  const boundary = `bench${Math.random().toString(16).slice(2)}`
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${model.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`)
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  const body = Buffer.concat([head, model.bytes, tail])
  const query = 'cid-version=1&raw-leaves=true&chunker=size-1048576&pin=true&quieter=true'
  const started = process.hrtime.bigint()
  return new Promise((resolve, reject) => {
    const req = request(`${apiUrl}/api/v0/add?${query}`, { method: 'POST', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      res.on('error', reject)
      res.on('end', () => {
        const ms = seconds(started) * 1000
        let cid = ''
        try { cid = (JSON.parse(Buffer.concat(chunks).toString().trim().split('\n').at(-1) ?? '{}') as { Hash?: string }).Hash ?? '' } catch { /* not JSON: an error answer */ }
        resolve({ status: res.statusCode ?? 0, cid, ms })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

function kuboReference (bin: string): Target {
  return {
    name: 'Kubo',
    file: async (file) => withKubo(bin, async (kubo) => {
      const daemon = kuboDaemonPid() ?? 0
      const cpuBefore = cpuSeconds(daemon)
      const started = process.hrtime.bigint()
      const cid = (await kubo.cli('add', '--quieter', ...ADD_FLAGS, file)).trim()
      return { seconds: seconds(started), cid, kuboPeakRss: peakRss(daemon), cpu: { kubo: cpuSeconds(daemon) - cpuBefore } }
    }),
    bundle: async (_zip, folder) => withKubo(bin, async (kubo) => {
      const started = process.hrtime.bigint()
      const cid = (await kubo.cli('add', '-r', '--quieter', ...ADD_FLAGS, folder)).trim()
      return { seconds: seconds(started), cid, kuboPeakRss: peakRss(kuboDaemonPid() ?? 0) }
    }),
    burst: async (models) => withKubo(bin, async (kubo) => {
      const started = process.hrtime.bigint()
      const results = await Promise.all(models.map(async (model) => rpcAdd(kubo.apiUrl, model).catch(() => ({ status: 0, cid: '', ms: Number.NaN }))))
      const wallSeconds = seconds(started)
      return {
        latenciesMs: results.map((r) => r.ms),
        errors: results.filter((r) => r.status !== 200 || r.cid === '').length,
        wallSeconds,
        cids: new Map(models.map((model, i) => [model.name, results[i]?.cid ?? ''])),
        kuboPeakRss: peakRss(kuboDaemonPid() ?? 0)
      }
    })
  }
}

// ---------------------------------------------------------------- Heimdall

/**
 * Who sends the file and the bundle to Heimdall: curl by default, as
 * `ipfs add` sends them to Kubo's daemon with Kubo's own client in Go;
 * `BENCH_UPLOAD_CLIENT=node` uses Node's HTTP client (test/support's
 * uploadStream), which on these two cores costs the server about 1.3 s
 * more CPU per GiB than curl (1.9 against 0.6 s, measured from /proc), the
 * time the server under test then waits for a core. Without curl on the
 * PATH, Node's.
 */
export const UPLOAD_CLIENT = process.env.BENCH_UPLOAD_CLIENT === 'node' || spawnSync('curl', ['--version']).status !== 0 ? 'node' : 'curl'

/** A multipart POST /upload of the file at `path` as the field `file`, by curl: the answer and the seconds from start to end. */
async function curlUpload (url: string, token: string, path: string, fileName: string): Promise<UploadResult> {
  const started = process.hrtime.bigint()
  const { stdout } = await run('curl', ['--silent', '--show-error', '--header', `Authorization: Bearer ${token}`,
    '--form', `file=@${curlQuoted(path)};filename=${curlQuoted(fileName)};type=application/octet-stream`, '--write-out', '\n%{http_code}', `${url}/upload`], { maxBuffer: 64 * MiB })
  const took = seconds(started)
  const cut = stdout.lastIndexOf('\n')
  const text = stdout.slice(0, cut)
  let body: unknown = text
  try { body = JSON.parse(text) } catch { /* not JSON: kept as text */ }
  return { status: Number(stdout.slice(cut + 1)), body, seconds: took }
}

/** A value for curl's --form, quoted: a path or name with ; or , in it is not cut there. */
const curlQuoted = (value: string): string => `"${value.replace(/["\\]/g, '\\$&')}"`

const sendFile = async (url: string, token: string, path: string, fileName: string): Promise<UploadResult> =>
  UPLOAD_CLIENT === 'curl' ? curlUpload(url, token, path, fileName) : uploadStream(url, token, path, fileName)

type Added = Array<{ Name: string, Hash: string }>

function added (result: UploadResult, what: string): Added {
  if (result.status !== 200) throw new Error(`upload of ${what} answered ${result.status}: ${JSON.stringify(result.body)}`)
  return result.body as Added
}

/** The CID Heimdall gave the entry named `name` (the file inside its wrapping directory), or the root's for a bundle. */
function cidOf (items: Added, name: string): string {
  return items.find((item) => item.Name === name)?.Hash ?? ''
}

/**
 * Heimdall on a fresh data folder, embedded (the default configuration) or
 * over a fresh Kubo with a scratch database; `use` runs against it and the
 * whole stack is removed afterwards.
 */
async function withHeimdall<T> (mode: 'embedded' | 'kubo', work: string, bin: string, database: DatabaseFactory | undefined, use: (server: HeimdallProcess, token: string, kubo: KuboNode | undefined) => Promise<T>): Promise<T> {
  const dataDir = await mkdtemp(join(work, `data-${mode}-`))
  const env: Record<string, string> = { DATA_DIR: dataDir, SECRET_KEY, MAX_UPLOAD_BYTES: String(8 * 1024 * MiB) }
  let kubo: KuboNode | undefined
  let db: Awaited<ReturnType<DatabaseFactory>> | undefined
  let server: HeimdallProcess | undefined
  try {
    if (mode === 'kubo') {
      kubo = await startKubo(bin)
      db = await database?.()
      // As compose runs it: the RPC API, Kubo's private gateway, its flatfs folder read-only, PostgreSQL apart.
      Object.assign(env, { IPFS_API_URL: kubo.apiUrl, IPFS_GATEWAY_URL: kubo.gatewayUrl, IPFS_BLOCKS_DIR: join(kubo.repo, 'blocks') }, db === undefined ? {} : { DATABASE_URL: db.url })
    }
    server = await startHeimdallProcess(env)
    const token = await newToken(server.url, 'bench')
    return await use(server, token, kubo)
  } finally {
    await server?.stop()
    await kubo?.stop()
    await db?.drop()
    await rm(dataDir, { recursive: true, force: true })
  }
}

function heimdall (mode: 'embedded' | 'kubo', work: string, bin: string, database: DatabaseFactory | undefined): Target {
  const stack = async <T>(use: (server: HeimdallProcess, token: string, kubo: KuboNode | undefined) => Promise<T>): Promise<T> => withHeimdall(mode, work, bin, database, use)
  const memory = (server: HeimdallProcess, sampler: TreeRssSampler): Pick<Timed, 'treePeakRss' | 'treeAtOnceRss' | 'kuboPeakRss'> => ({
    treePeakRss: server.treePeakRss(),
    treeAtOnceRss: sampler.stop(),
    ...(mode === 'kubo' ? { kuboPeakRss: peakRss(kuboDaemonPid() ?? 0) } : {})
  })
  return {
    name: mode === 'embedded' ? 'Heimdall embedded' : 'Heimdall over Kubo',
    file: async (file) => stack(async (server, token) => {
      const sampler = new TreeRssSampler(server.child.pid ?? 0)
      const daemon = mode === 'kubo' ? kuboDaemonPid() ?? 0 : 0
      const cpuBefore = { heimdall: treeCpuSeconds(server.child.pid ?? 0), kubo: cpuSeconds(daemon) }
      const result = await sendFile(server.url, token, file, 'random.bin')
      const cpu = { heimdall: treeCpuSeconds(server.child.pid ?? 0) - cpuBefore.heimdall, ...(mode === 'kubo' ? { kubo: cpuSeconds(daemon) - cpuBefore.kubo } : {}) }
      return { seconds: result.seconds, cid: cidOf(added(result, 'the file'), 'random/random.bin'), ...memory(server, sampler), cpu }
    }),
    bundle: async (zip) => stack(async (server, token) => {
      const sampler = new TreeRssSampler(server.child.pid ?? 0)
      const result = await sendFile(server.url, token, zip, 'textures.zip')
      // The root wraps the zip's contents, as `ipfs add -r` of the extracted folder wraps the folder's.
      return { seconds: result.seconds, cid: cidOf(added(result, 'the bundle'), 'textures'), ...memory(server, sampler) }
    }),
    burst: async (models) => stack(async (server, token) => {
      const started = process.hrtime.bigint()
      const results = await Promise.all(models.map(async (model) => uploadStream(server.url, token, model.bytes, model.name).catch((): UploadResult => ({ status: 0, body: null, seconds: Number.NaN }))))
      const wallSeconds = seconds(started)
      const cids = new Map(models.map((model, i) => {
        const result = results[i]
        const stem = model.name.replace(/\.glb$/, '')
        // A model accepted without its entry in the answer is a mismatch, not a model to skip.
        return [model.name, result?.status === 200 ? cidOf(result.body as Added, `${stem}/${model.name}`) || 'MISSING' : '']
      }))
      return {
        latenciesMs: results.map((r) => r.seconds * 1000),
        errors: results.filter((r) => r.status !== 200).length,
        wallSeconds,
        cids,
        treePeakRss: server.treePeakRss(),
        ...(mode === 'kubo' ? { kuboPeakRss: peakRss(kuboDaemonPid() ?? 0) } : {})
      }
    })
  }
}

// ---------------------------------------------------------------- floors and ceilings

interface WorkerMeasure { seconds: number, peakRss: number, cid?: string }

async function worker (script: string, ...args: string[]): Promise<WorkerMeasure> {
  const { stdout } = await run(process.execPath, [here(`./workers/${script}`), ...args], { maxBuffer: 1024 * 1024 })
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as WorkerMeasure
}

// ---------------------------------------------------------------- inputs

/** The zip's entries written into `folder`, independently of Heimdall's own zip reader. */
async function extractZip (zip: string, folder: string): Promise<void> {
  const file = await promisify<string, yauzl.Options, ZipFile>(yauzl.open)(zip, { lazyEntries: true })
  const openEntry = promisify<Entry, NodeJS.ReadableStream>(file.openReadStream.bind(file))
  await new Promise<void>((resolve, reject) => {
    file.on('error', reject)
    file.on('end', resolve)
    file.on('entry', (entry: Entry) => {
      const target = join(folder, entry.fileName)
      const done = entry.fileName.endsWith('/')
        ? mkdir(target, { recursive: true })
        : mkdir(dirname(target), { recursive: true }).then(async () => pipeline(await openEntry(entry), createWriteStream(target)))
      done.then(() => { file.readEntry() }, reject)
    })
    file.readEntry()
  })
}

/** Distinct GLB-shaped models, so each is a real import and a real record. */
function makeModels (count: number, size: number): Model[] {
  const next = kuboDeterministicStream('concurrent')
  return Array.from({ length: count }, (_, i) => {
    const header = Buffer.alloc(12)
    header.write('glTF', 0, 'latin1')
    header.writeUInt32LE(2, 4)
    header.writeUInt32LE(size, 8)
    return { name: `model${i}.glb`, bytes: Buffer.concat([header, next(size - 12)]) }
  })
}

/** `size` deterministic bytes made as they are sent: a large upload with nothing on disk. */
function generated (size: number, seed: string): SizedStream {
  return {
    size,
    stream: () => {
      const next = kuboDeterministicStream(seed)
      return Readable.from((function * () { for (let left = size; left > 0; left -= MiB) yield next(Math.min(left, MiB)) })())
    }
  }
}

// ---------------------------------------------------------------- the bench

export interface ThroughputRow {
  workload: string
  bytes: number
  /** MB/s per round of each target (sha256 and direct import are floors and ceilings, not targets of the goals). */
  mbps: Record<string, number[]>
  /** Per round, each Heimdall mode's MB/s over Kubo's in the same round. */
  vsKubo: Record<string, Spread>
  vsKuboRounds: Record<string, number[]>
  /** Peak memory per target, the largest of the rounds, MB. */
  treePeakRssMB: Record<string, number>
  treeAtOnceRssMB: Record<string, number>
  kuboPeakRssMB: Record<string, number>
  /** Per target, the CPU seconds per GiB of each round: Heimdall's process tree and the Kubo daemon. */
  cpuPerGiB: Record<string, { heimdall: number[], kubo: number[] }>
  cids: Record<string, string>
  cidsMatch: boolean
}

export interface ConcurrentRow {
  uploads: number
  size: number
  p50ms: Record<string, Spread>
  p99ms: Record<string, Spread>
  errors: Record<string, number>
  uploadsPerSecond: Record<string, Spread>
  /** Per round, each Heimdall mode's p99 over Kubo's /api/v0/add p99 in the same round. */
  p99VsKubo: Record<string, Spread>
  treePeakRssMB: Record<string, number>
  kuboPeakRssMB: Record<string, number>
  cidsMatch: boolean
}

export interface UploadsResult {
  kubo: string
  /** What sent Heimdall the file and the bundle: curl, or Node's HTTP client (BENCH_UPLOAD_CLIENT=node). */
  uploadClient: 'curl' | 'node'
  rounds: number
  file: ThroughputRow
  bundle: ThroughputRow
  concurrent: ConcurrentRow
  /** CPU seconds per GiB of one Node process relaying the file from a request into another (bench/workers/relay-floor.ts): the floor under Heimdall's over Kubo. */
  relayFloor: { pipe: number, multer: number }
  /** The embedded default configuration under one upload of memoryFileSize bytes. */
  largeUpload: { bytes: number, mbps: number, treePeakRssMB: number, treeAtOnceRssMB: number, serverPeakRssMB: number }
}

const EMBEDDED = 'Heimdall embedded'
const OVER_KUBO = 'Heimdall over Kubo'
const KUBO = 'Kubo'

function loud (message: string): void {
  console.log(`\n!!!!!!!! ${message} !!!!!!!!\n`)
}

async function throughput (workload: string, input: string, targets: readonly Target[], run: (target: Target) => Promise<Timed>, floors: Record<string, () => Promise<WorkerMeasure>>, rounds: number): Promise<ThroughputRow> {
  const bytes = (await stat(input)).size
  const names = [...Object.keys(floors), ...targets.map((t) => t.name)]
  const timed: Array<{ name: string, go: () => Promise<Timed> }> = [
    ...Object.entries(floors).map(([name, go]) => ({ name, go: async (): Promise<Timed> => { const m = await go(); return { seconds: m.seconds, cid: m.cid } } })),
    ...targets.map((target) => ({ name: target.name, go: async () => run(target) }))
  ]
  const row: ThroughputRow = { workload, bytes, mbps: Object.fromEntries(names.map((n) => [n, []])), vsKubo: {}, vsKuboRounds: {}, treePeakRssMB: {}, treeAtOnceRssMB: {}, kuboPeakRssMB: {}, cpuPerGiB: {}, cids: {}, cidsMatch: true }
  for (let round = 0; round < rounds; round++) {
    const line: string[] = []
    for (let k = 0; k < timed.length; k++) {
      const { name, go } = timed[(round + k) % timed.length] as (typeof timed)[number]
      const m = await go()
      row.mbps[name]?.push(bytes / MiB / m.seconds)
      line.push(`${name} ${(bytes / MiB / m.seconds).toFixed(0)}`)
      const max = (into: Record<string, number>, value: number | undefined): void => { if (value !== undefined) into[name] = Math.max(into[name] ?? 0, value / MiB) }
      max(row.treePeakRssMB, m.treePeakRss)
      max(row.treeAtOnceRssMB, m.treeAtOnceRss)
      max(row.kuboPeakRssMB, m.kuboPeakRss)
      if (m.cpu !== undefined) {
        const cpu = row.cpuPerGiB[name] ??= { heimdall: [], kubo: [] }
        if (m.cpu.heimdall !== undefined) cpu.heimdall.push(m.cpu.heimdall / (bytes / 1024 ** 3))
        if (m.cpu.kubo !== undefined) cpu.kubo.push(m.cpu.kubo / (bytes / 1024 ** 3))
      }
      // A floor without a CID of its own (sha256) has none; a target's missing CID ('') is a mismatch.
      if (m.cid !== undefined) {
        if (row.cids[name] !== undefined && row.cids[name] !== m.cid) row.cidsMatch = false
        row.cids[name] = m.cid
      }
    }
    console.log(`  ${workload}, round ${round + 1}: ${line.join(', ')} MB/s`)
  }
  const kubo = row.mbps[KUBO] ?? []
  for (const name of names.filter((n) => n !== KUBO)) {
    const ratios = (row.mbps[name] ?? []).map((value, round) => value / (kubo[round] ?? Number.NaN))
    row.vsKuboRounds[name] = ratios
    row.vsKubo[name] = spread(ratios)
  }
  const distinct = new Set(Object.values(row.cids))
  if (distinct.size !== 1 || !row.cidsMatch) {
    row.cidsMatch = false
    loud(`CID MISMATCH on ${workload}: ${JSON.stringify(row.cids)}`)
  }
  return row
}

async function concurrentRounds (models: readonly Model[], targets: readonly Target[], rounds: number): Promise<ConcurrentRow> {
  const names = targets.map((t) => t.name)
  const perRound: Record<string, Burst[]> = Object.fromEntries(names.map((n) => [n, []]))
  let cidsMatch = true
  for (let round = 0; round < rounds; round++) {
    const line: string[] = []
    for (let k = 0; k < targets.length; k++) {
      const target = targets[(round + k) % targets.length] as Target
      const burst = await target.burst(models)
      perRound[target.name]?.push(burst)
      const sorted = burst.latenciesMs.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b)
      line.push(`${target.name} p50 ${percentile(sorted, 50).toFixed(0)} / p99 ${percentile(sorted, 99).toFixed(0)} ms, ${burst.errors} errors`)
    }
    console.log(`  ${models.length} concurrent, round ${round + 1}: ${line.join('; ')}`)
  }
  // Every model's CID from every side and round: one per model.
  const mismatched: string[] = []
  for (const model of models) {
    const seen = new Set(names.flatMap((n) => (perRound[n] ?? []).map((b) => b.cids.get(model.name) ?? '')).filter((cid) => cid !== ''))
    if (seen.size > 1) mismatched.push(`${model.name}: ${[...seen].join(' ')}`)
  }
  if (mismatched.length > 0) {
    cidsMatch = false
    loud(`CID MISMATCH on ${mismatched.length} of the concurrent models: ${mismatched.slice(0, 3).join('; ')}`)
  }
  const pct = (burst: Burst, p: number): number => percentile(burst.latenciesMs.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b), p)
  const kubo = perRound[KUBO] ?? []
  const row: ConcurrentRow = { uploads: models.length, size: models[0]?.bytes.length ?? 0, p50ms: {}, p99ms: {}, errors: {}, uploadsPerSecond: {}, p99VsKubo: {}, treePeakRssMB: {}, kuboPeakRssMB: {}, cidsMatch }
  for (const name of names) {
    const bursts = perRound[name] ?? []
    row.p50ms[name] = spread(bursts.map((b) => pct(b, 50)))
    row.p99ms[name] = spread(bursts.map((b) => pct(b, 99)))
    row.errors[name] = bursts.reduce((sum, b) => sum + b.errors, 0)
    row.uploadsPerSecond[name] = spread(bursts.map((b) => models.length / b.wallSeconds))
    if (name !== KUBO) row.p99VsKubo[name] = spread(bursts.map((b, round) => pct(b, 99) / pct(kubo[round] as Burst, 99)))
    const peaks = bursts.map((b) => b.treePeakRss ?? 0)
    if (peaks.some((p) => p > 0)) row.treePeakRssMB[name] = Math.max(...peaks) / MiB
    const kuboPeaks = bursts.map((b) => b.kuboPeakRss ?? 0)
    if (kuboPeaks.some((p) => p > 0)) row.kuboPeakRssMB[name] = Math.max(...kuboPeaks) / MiB
  }
  return row
}

/** The embedded default configuration under one large upload generated as it is sent: its memory (and its speed, for the record). */
async function largeUpload (work: string, bin: string, size: number): Promise<UploadsResult['largeUpload']> {
  return withHeimdall('embedded', work, bin, undefined, async (server, token) => {
    const sampler = new TreeRssSampler(server.child.pid ?? 0)
    const result = await uploadStream(server.url, token, generated(size, 'large-upload'), 'large.bin')
    added(result, 'the large upload')
    return { bytes: size, mbps: size / MiB / result.seconds, treePeakRssMB: server.treePeakRss() / MiB, treeAtOnceRssMB: sampler.stop() / MiB, serverPeakRssMB: server.peakRss() / MiB }
  })
}

export async function uploadsBench (work: string, options: UploadsOptions): Promise<UploadsResult> {
  const bin = await ensureKuboBinary()
  const version = (await run(bin, ['version'])).stdout.trim()
  const kuboSettings = await withKubo(bin, async (kubo) => checkReferenceKubo(bin, kubo))
  console.log(`  reference: ${version}, ${kuboSettings}; \`ipfs add\` through its running daemon (${ADD_FLAGS.join(' ')}, the repo's Import config from --profile=unixfs-v1-2025)`)
  console.log(`  Heimdall's file and bundle are sent by ${UPLOAD_CLIENT === 'curl' ? 'curl' : 'Node\'s HTTP client'} (BENCH_UPLOAD_CLIENT=${UPLOAD_CLIENT === 'curl' ? 'node' : 'curl'} for the other); the 200 small uploads by Node's, as to Kubo's /api/v0/add`)
  if (options.database === undefined) console.log('  (no PostgreSQL server: Heimdall over Kubo runs its embedded PostgreSQL instead of an external one)')

  const bigFile = join(work, 'random.bin')
  await writeRandomFile(bigFile, options.fileSize)
  const zip = join(work, 'textures.zip')
  await writeTextureBundle(zip, options.textures, 64 * 1024)
  const folder = join(work, 'textures-extracted')
  await extractZip(zip, folder)
  const models = makeModels(options.concurrent, options.modelSize)
  const targets = [heimdall('embedded', work, bin, undefined), heimdall('kubo', work, bin, options.database), kuboReference(bin)]

  const file = await throughput(`${(options.fileSize / MiB).toFixed(0)} MiB file`, bigFile, targets, async (t) => t.file(bigFile), {
    sha256: async () => worker('sha256.ts', bigFile),
    // import-direct prints the root of its wrapping directory, not the file's CID: not compared here.
    'direct import': async () => ({ ...(await worker('import-direct.ts', bigFile)), cid: undefined })
  }, options.rounds)
  // The worker sends with curl: without it, no floor (the bench's uploads then go by Node's client too).
  const relayFloor = UPLOAD_CLIENT !== 'curl'
    ? { pipe: Number.NaN, multer: Number.NaN }
    : JSON.parse((await run(process.execPath, [here('./workers/relay-floor.ts'), bigFile, String(options.rounds)])).stdout.trim().split('\n').at(-1) ?? '{}') as UploadsResult['relayFloor']
  console.log(`  a bare Node relay of the file: ${relayFloor.pipe.toFixed(2)} s of CPU per GiB piped, ${relayFloor.multer.toFixed(2)} s through multer`)
  await rm(bigFile)
  const bundle = await throughput(`bundle of ${options.textures} × 64 KiB`, zip, targets, async (t) => t.bundle(zip, folder), {
    'direct import': async () => worker('import-direct.ts', zip)
  }, options.rounds)
  const concurrent = await concurrentRounds(models, targets, options.rounds)
  const large = await largeUpload(work, bin, options.memoryFileSize)
  console.log(`  ${(options.memoryFileSize / MiB).toFixed(0)} MiB upload (embedded): ${large.mbps.toFixed(0)} MB/s, tree peak ${large.treePeakRssMB.toFixed(0)} MB summed, ${large.treeAtOnceRssMB.toFixed(0)} MB at once`)
  return { kubo: `${version}; ${kuboSettings}`, uploadClient: UPLOAD_CLIENT, rounds: options.rounds, file, bundle, concurrent, relayFloor, largeUpload: large }
}

// ---------------------------------------------------------------- the table

const fmt = (s: Spread | undefined, digits = 0): string => (s === undefined || Number.isNaN(s.median) ? '—' : `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`)
const times = (s: Spread | undefined): string => (s === undefined || Number.isNaN(s.median) ? '—' : `${s.median.toFixed(2)}× (${s.min.toFixed(2)}–${s.max.toFixed(2)})`)
const ratio = (s: Spread | undefined, goal: number, atLeast = true): string => {
  if (s === undefined || Number.isNaN(s.median)) return '—'
  const met = atLeast ? s.median >= goal : s.median <= goal
  return `**${s.median.toFixed(2)}×** (${s.min.toFixed(2)}–${s.max.toFixed(2)}) ${met ? 'met' : 'NOT met'} (goal ${atLeast ? '≥' : '≤'} ${goal}×)`
}

export function printUploadsTable (r: UploadsResult, idle: { firstStartSeconds: number, restartSeconds: number, treeIdlePeakMB: number, treeIdleNowMB: number, largestIdlePeakMB: number }): void {
  const mbps = (row: ThroughputRow, name: string): Spread => spread(row.mbps[name] ?? [])
  const { file, bundle, concurrent: c, largeUpload: large } = r
  console.log(`\nUploads, side by side, ${r.rounds} round(s), each figure the median (min–max) of the rounds, each ratio taken within a round:`)
  console.log(`\n| workload | ${EMBEDDED} | ${OVER_KUBO} | ${KUBO} |`)
  console.log('| --- | ---: | ---: | ---: |')
  console.log(`| ${file.workload} over HTTP (MB/s) | ${fmt(mbps(file, EMBEDDED))} | ${fmt(mbps(file, OVER_KUBO))} | \`ipfs add\`: ${fmt(mbps(file, KUBO))} (sha256 of the same bytes: ${fmt(mbps(file, 'sha256'))}; direct import into the embedded node: ${fmt(mbps(file, 'direct import'))}) |`)
  console.log(`| × \`ipfs add\` | ${ratio(file.vsKubo[EMBEDDED], 1.0)} | ${ratio(file.vsKubo[OVER_KUBO], 0.8)} | sha256 ${times(file.vsKubo.sha256)}, direct import ${times(file.vsKubo['direct import'])} |`)
  console.log(`| zip ${bundle.workload} (MB/s) | ${fmt(mbps(bundle, EMBEDDED))} | ${fmt(mbps(bundle, OVER_KUBO))} | \`ipfs add -r\` of the folder: ${fmt(mbps(bundle, KUBO))} (direct import of the zip: ${fmt(mbps(bundle, 'direct import'))}) |`)
  console.log(`| × \`ipfs add -r\` | ${ratio(bundle.vsKubo[EMBEDDED], 1.0)} | ${ratio(bundle.vsKubo[OVER_KUBO], 0.8)} | direct import ${times(bundle.vsKubo['direct import'])} |`)
  const lat = (name: string): string => `${fmt(c.p50ms[name])} / ${fmt(c.p99ms[name])}, ${c.errors[name] ?? '?'} errors`
  console.log(`| ${c.uploads} concurrent ${Math.round(c.size / 1000)} KB uploads, p50 / p99 (ms) | ${lat(EMBEDDED)} | ${lat(OVER_KUBO)} | \`/api/v0/add\` direct: ${lat(KUBO)} |`)
  const errorsOk = (name: string): string => ((c.errors[name] ?? 1) === 0 ? '0 errors met' : 'errors: NOT met')
  console.log(`| p99 × \`/api/v0/add\` p99 | ${ratio(c.p99VsKubo[EMBEDDED], 1.5, false)}; ${errorsOk(EMBEDDED)} | ${ratio(c.p99VsKubo[OVER_KUBO], 1.5, false)}; ${errorsOk(OVER_KUBO)} | |`)
  const mb = (v: number | undefined): string => (v === undefined ? '—' : `${v.toFixed(0)} MB`)
  console.log(`| peak RSS during the ${file.workload} upload: Heimdall's tree, summed VmHWM (largest sum at one moment) | ${mb(file.treePeakRssMB[EMBEDDED])} (${mb(file.treeAtOnceRssMB[EMBEDDED])}) | ${mb(file.treePeakRssMB[OVER_KUBO])} (${mb(file.treeAtOnceRssMB[OVER_KUBO])}) + Kubo daemon ${mb(file.kuboPeakRssMB[OVER_KUBO])} | Kubo daemon ${mb(file.kuboPeakRssMB[KUBO])} |`)
  console.log(`| peak RSS during the bundle upload, same | ${mb(bundle.treePeakRssMB[EMBEDDED])} (${mb(bundle.treeAtOnceRssMB[EMBEDDED])}) | ${mb(bundle.treePeakRssMB[OVER_KUBO])} (${mb(bundle.treeAtOnceRssMB[OVER_KUBO])}) + Kubo daemon ${mb(bundle.kuboPeakRssMB[OVER_KUBO])} | Kubo daemon ${mb(bundle.kuboPeakRssMB[KUBO])} |`)
  console.log(`| peak RSS during the concurrent uploads, summed | ${mb(c.treePeakRssMB[EMBEDDED])} | ${mb(c.treePeakRssMB[OVER_KUBO])} + Kubo daemon ${mb(c.kuboPeakRssMB[OVER_KUBO])} | Kubo daemon ${mb(c.kuboPeakRssMB[KUBO])} |`)
  const cpu = (name: string, part: 'heimdall' | 'kubo'): string => fmt(spread(file.cpuPerGiB[name]?.[part] ?? []), 2)
  console.log(`\nCPU seconds per GiB of the ${file.workload}'s upload: Heimdall over Kubo ${cpu(OVER_KUBO, 'heimdall')} (its process tree) + the Kubo daemon ${cpu(OVER_KUBO, 'kubo')}; Heimdall embedded ${cpu(EMBEDDED, 'heimdall')}; Kubo's \`ipfs add\`: the daemon ${cpu(KUBO, 'kubo')} (its client not counted). One Node process relaying the same bytes from a request into another, doing nothing else (bench/workers/relay-floor.ts, the least of ${r.rounds}): ${r.relayFloor.pipe.toFixed(2)} piped, ${r.relayFloor.multer.toFixed(2)} through multer: the floor under Heimdall's over Kubo.`)
  const cidLine = file.cidsMatch && bundle.cidsMatch && c.cidsMatch ? 'the same CIDs on every side (file, bundle root, every model)' : 'CIDs DIFFER (see above)'
  console.log(`\nCIDs: ${cidLine}. File ${file.cids[KUBO] ?? '?'}, bundle ${bundle.cids[KUBO] ?? '?'}.`)
  const goal = (ok: boolean): string => (ok ? 'met' : 'NOT met')
  const largeMiB = (large.bytes / MiB).toFixed(0)
  console.log(`Memory, embedded default configuration: one ${largeMiB} MiB upload: process tree ${large.treePeakRssMB.toFixed(0)} MB summed VmHWM, ${large.treeAtOnceRssMB.toFixed(0)} MB largest at one moment (server ${large.serverPeakRssMB.toFixed(0)} MB), ${large.mbps.toFixed(0)} MB/s — goal < 300 MB: ${goal(large.treePeakRssMB < 300)} summed, ${goal(large.treeAtOnceRssMB < 300)} at once.`)
  console.log(`Idle after a first start: process tree ${idle.treeIdleNowMB.toFixed(0)} MB resident now, ${idle.treeIdlePeakMB.toFixed(0)} MB summed VmHWM; largest process ${idle.largestIdlePeakMB.toFixed(0)} MB VmHWM — goal < 150 MB: ${goal(idle.treeIdleNowMB < 150)} summed now, ${goal(idle.treeIdlePeakMB < 150)} summed peaks, ${goal(idle.largestIdlePeakMB < 150)} per process.`)
  console.log(`Start-up to /readyz: ${idle.firstStartSeconds.toFixed(1)} s on an empty data folder (its database cluster made from the template) — goal < 3 s: ${goal(idle.firstStartSeconds < 3)}; ${idle.restartSeconds.toFixed(1)} s on a restart.`)
}
