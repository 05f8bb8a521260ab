/**
 * `npm run bench`: throughput and peak memory of uploads, as ratios against
 * reference runs on the same bytes on this machine. Not a test: it prints a
 * table and writes bench/results/latest.json.
 *
 *   sha256  — read the file and hash it once: the floor every upload pays.
 *   direct  — import the same bytes straight into the embedded node through
 *             the library: the ceiling without HTTP.
 *   http    — POST /upload to a real `node src/main.ts` over loopback.
 *
 * Then the gateway (bench/gateway.ts): Heimdall embedded, Heimdall over
 * Kubo and Kubo's own gateway on the same content, under autocannon.
 *
 * BENCH_SCALE (default 1) scales the sizes down for a quick run;
 * `--only uploads` or `--only gateway` runs one part; BENCH_SECONDS (default
 * 10) is how long each gateway load runs (0: the large file alone);
 * BENCH_ROUNDS (default 7) how many interleaved rounds of downloads of the
 * large file the gateway figures are the median of; BENCH_CLIENT=curl
 * downloads it with curl instead of the bench's own client.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { writeRandomFile, writeTextureBundle } from '../test/support/big-inputs.ts'
import { newToken, startHeimdallProcess, uploadStream } from '../test/support/heimdall-process.ts'
import { kuboDeterministicStream } from '../test/support/kubo-vectors.ts'
import { gatewayBench } from './gateway.ts'
import { createScratchDatabase, startPostgresServer } from '../test/support/postgres-server.ts'

const run = promisify(execFile)
const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url))
const MiB = 1024 * 1024
const scale = Number(process.env.BENCH_SCALE ?? '1')
const onlyAt = process.argv.indexOf('--only')
const only = onlyAt === -1 ? undefined : process.argv[onlyAt + 1]
if (only !== undefined && only !== 'uploads' && only !== 'gateway') throw new Error('--only takes uploads or gateway')

interface Measure { seconds: number, peakRss: number, treePeakRss?: number }

async function worker (script: string, ...args: string[]): Promise<Measure> {
  const { stdout } = await run(process.execPath, [here(`./workers/${script}`), ...args], { maxBuffer: 1024 * 1024 })
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Measure
}

/** A PostgreSQL server of this machine, when it has one: the idle footprint is compared against it. */
let databaseUrl: (() => Promise<{ url: string, drop: () => Promise<void> }>) | undefined

/** The HTTP scenarios run the default configuration, as `npm start` does: the embedded PostgreSQL in DATA_DIR. */
async function httpUpload (file: string, name: string, dataDir: string): Promise<Measure> {
  const server = await startHeimdallProcess({ DATA_DIR: dataDir, MAX_UPLOAD_BYTES: String(8 * 1024 * MiB), SECRET_KEY: 'bench-secret-key-bench-secret-key-0123' })
  try {
    const token = await newToken(server.url, 'bench')
    const result = await uploadStream(server.url, token, file, name)
    if (result.status !== 200) throw new Error(`upload of ${name} answered ${result.status}: ${JSON.stringify(result.body)}`)
    return { seconds: result.seconds, peakRss: server.peakRss(), treePeakRss: server.treePeakRss() }
  } finally {
    await server.stop()
  }
}

interface Baseline {
  /** Start-up to /readyz 200 on an empty DATA_DIR (initdb included), and on a restart. */
  firstStartSeconds: number
  restartSeconds: number
  serverIdlePeakMB: number
  /** The server and the embedded PostgreSQL's processes, each one's VmHWM, summed. */
  treeIdlePeakMB: number
  treeRestartIdlePeakMB: number
  postgresIdlePeakMB: number | null
}

/** The idle footprint, in the default configuration: after a first start on an empty data folder, and after a restart. */
async function embeddedBaseline (work: string): Promise<Baseline> {
  const dataDir = join(work, 'data-idle')
  const env = { DATA_DIR: dataDir, SECRET_KEY: 'bench-secret-key-bench-secret-key-0123' }
  let started = process.hrtime.bigint()
  const first = await startHeimdallProcess(env)
  const firstStartSeconds = Number(process.hrtime.bigint() - started) / 1e9
  const serverIdlePeakMB = first.peakRss() / MiB
  const treeIdlePeakMB = first.treePeakRss() / MiB
  await first.stop()
  started = process.hrtime.bigint()
  const again = await startHeimdallProcess(env)
  const restartSeconds = Number(process.hrtime.bigint() - started) / 1e9
  const treeRestartIdlePeakMB = again.treePeakRss() / MiB
  await again.stop()
  let postgresIdlePeakMB: number | null = null
  const db = await databaseUrl?.()
  if (db !== undefined) {
    const idle = await startHeimdallProcess({ ...env, DATA_DIR: join(work, 'data-idle-pg'), DATABASE_URL: db.url })
    postgresIdlePeakMB = idle.peakRss() / MiB
    await idle.stop()
    await db.drop()
  }
  return { firstStartSeconds, restartSeconds, serverIdlePeakMB, treeIdlePeakMB, treeRestartIdlePeakMB, postgresIdlePeakMB }
}

const mbps = (bytes: number, seconds: number): number => bytes / MiB / seconds
const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN

async function throughputScenario (label: string, file: string, name: string, work: string): Promise<Record<string, unknown>> {
  const bytes = (await stat(file)).size
  const sha = await worker('sha256.ts', file)
  const direct = await worker('import-direct.ts', file)
  const http = await httpUpload(file, name, join(work, `data-${name}`))
  await rm(join(work, `data-${name}`), { recursive: true, force: true })
  const row = {
    scenario: label,
    bytes,
    sha256MBps: mbps(bytes, sha.seconds),
    directMBps: mbps(bytes, direct.seconds),
    httpMBps: mbps(bytes, http.seconds),
    directVsSha256: sha.seconds / direct.seconds,
    httpVsSha256: sha.seconds / http.seconds,
    httpVsDirect: direct.seconds / http.seconds,
    directPeakRssMB: direct.peakRss / MiB,
    serverPeakRssMB: http.peakRss / MiB,
    treePeakRssMB: (http.treePeakRss ?? Number.NaN) / MiB
  }
  console.log(`  ${label}: sha256 ${row.sha256MBps.toFixed(0)} MB/s, direct ${row.directMBps.toFixed(0)} MB/s, http ${row.httpMBps.toFixed(0)} MB/s, server peak ${row.serverPeakRssMB.toFixed(0)} MB, tree peak ${row.treePeakRssMB.toFixed(0)} MB summed`)
  return row
}

async function concurrentScenario (work: string, count: number, size: number): Promise<Record<string, unknown>> {
  const server = await startHeimdallProcess({ DATA_DIR: join(work, 'data-concurrent'), SECRET_KEY: 'bench-secret-key-bench-secret-key-0123' })
  try {
    const token = await newToken(server.url, 'bench')
    const next = kuboDeterministicStream('concurrent')
    // Distinct GLB-shaped models, so each is a real import and a real record.
    const models = Array.from({ length: count }, () => {
      const header = Buffer.alloc(12)
      header.write('glTF', 0, 'latin1')
      header.writeUInt32LE(2, 4)
      header.writeUInt32LE(size, 8)
      return Buffer.concat([header, next(size - 12)])
    })
    const started = process.hrtime.bigint()
    const results = await Promise.all(models.map(async (model, i) => uploadStream(server.url, token, model, `model${i}.glb`)))
    const wall = Number(process.hrtime.bigint() - started) / 1e9
    const latencies = results.map((r) => r.seconds * 1000).sort((a, b) => a - b)
    const errors = results.filter((r) => r.status !== 200).length
    const row = {
      scenario: `${count} concurrent uploads of a ${Math.round(size / 1000)} KB model`,
      uploads: count,
      errors,
      p50ms: percentile(latencies, 50),
      p99ms: percentile(latencies, 99),
      uploadsPerSecond: count / wall,
      serverPeakRssMB: server.peakRss() / MiB,
      treePeakRssMB: server.treePeakRss() / MiB
    }
    console.log(`  concurrent: ${errors} errors, p50 ${row.p50ms.toFixed(0)} ms, p99 ${row.p99ms.toFixed(0)} ms, ${row.uploadsPerSecond.toFixed(0)} uploads/s`)
    return row
  } finally {
    await server.stop()
  }
}

const work = await mkdtemp(join(tmpdir(), 'heimdall-bench-'))
const postgres = only === 'gateway' ? undefined : await startPostgresServer().catch((err: unknown) => {
  console.warn(`no PostgreSQL server (${String(err)}): the idle footprint is not compared against one`)
  return undefined
})
if (postgres !== undefined) databaseUrl = async () => createScratchDatabase(postgres.url)
try {
  const fileSize = Math.round(1024 * MiB * scale)
  let gateway: unknown = null
  if (only !== 'uploads') {
    console.log(`Gateway benchmark: ${fileSize / MiB} MiB file, 2,000- and 100-entry directories`)
    gateway = await gatewayBench(work, { fileSize, seconds: Number(process.env.BENCH_SECONDS ?? '10'), rounds: Number(process.env.BENCH_ROUNDS ?? '7') })
  }
  if (only === 'gateway') {
    const results = here('./results/')
    await mkdir(results, { recursive: true })
    await writeFile(join(results, 'gateway.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, scale, gateway }, null, 2))
    console.log(`\nwritten: ${join(results, 'gateway.json')}`)
    await rm(work, { recursive: true, force: true })
    process.exit(0) // the upload part below is skipped; nothing else is open
  }
  const textures = Math.max(10, Math.round(2000 * scale))
  console.log(`Heimdall benchmark on Node ${process.version}: ${fileSize / MiB} MiB file, ${textures} textures, 200 concurrent uploads`)
  const bigFile = join(work, 'random.bin')
  await writeRandomFile(bigFile, fileSize)
  const bundle = join(work, 'textures.zip')
  await writeTextureBundle(bundle, textures, 64 * 1024)

  const rows = [
    await throughputScenario(`${fileSize / MiB} MiB random file`, bigFile, 'random.bin', work),
    await throughputScenario(`bundle of ${textures} textures (64 KiB each)`, bundle, 'textures.zip', work)
  ]
  await rm(bigFile)
  const concurrent = await concurrentScenario(work, 200, 200_000)
  const baseline = await embeddedBaseline(work)

  console.log('\n| scenario | sha256 MB/s | direct import MB/s | HTTP upload MB/s | direct / sha256 | HTTP / sha256 | HTTP / direct | peak RSS direct | peak RSS server | peak RSS tree (summed) |')
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of rows as Array<Record<string, number | string>>) {
    const n = (key: string, digits = 0): string => Number(r[key]).toFixed(digits)
    console.log(`| ${r.scenario} | ${n('sha256MBps')} | ${n('directMBps')} | ${n('httpMBps')} | ${(Number(r.directVsSha256) * 100).toFixed(0)} % | ${(Number(r.httpVsSha256) * 100).toFixed(0)} % | ${(Number(r.httpVsDirect) * 100).toFixed(0)} % | ${n('directPeakRssMB')} MB | ${n('serverPeakRssMB')} MB | ${n('treePeakRssMB')} MB |`)
  }
  const c = concurrent as Record<string, number | string>
  console.log(`\n| scenario | errors | p50 | p99 | uploads/s | peak RSS server | peak RSS tree (summed) |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n| ${c.scenario} | ${c.errors} | ${Number(c.p50ms).toFixed(0)} ms | ${Number(c.p99ms).toFixed(0)} ms | ${Number(c.uploadsPerSecond).toFixed(1)} | ${Number(c.serverPeakRssMB).toFixed(0)} MB | ${Number(c.treePeakRssMB).toFixed(0)} MB |`)

  const b = baseline
  console.log(`\nStart-up to /readyz: ${b.firstStartSeconds.toFixed(1)} s on an empty DATA_DIR (initdb included), ${b.restartSeconds.toFixed(1)} s on a restart.`)
  console.log(`Idle peak RSS after start: process tree ${b.treeIdlePeakMB.toFixed(0)} MB summed (server ${b.serverIdlePeakMB.toFixed(0)} MB, the embedded PostgreSQL's processes ${(b.treeIdlePeakMB - b.serverIdlePeakMB).toFixed(0)} MB), ${b.treeRestartIdlePeakMB.toFixed(0)} MB after a restart; the server alone over an external PostgreSQL: ${b.postgresIdlePeakMB?.toFixed(0) ?? 'n/a'} MB.`)
  console.log('HTTP scenarios ran the default configuration (the embedded PostgreSQL).')

  const results = here('./results/')
  await mkdir(results, { recursive: true })
  await writeFile(join(results, 'latest.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, scale, database: 'embedded', throughput: rows, concurrent, idle: baseline, gateway }, null, 2))
  console.log(`\nwritten: ${join(results, 'latest.json')}`)
} finally {
  await postgres?.stop()
  await rm(work, { recursive: true, force: true })
}
