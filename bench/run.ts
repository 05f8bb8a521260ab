/**
 * `npm run bench`: uploads side by side with Kubo on the same bytes in the
 * same run (bench/uploads.ts), the idle footprint and start-up, then the
 * gateway (bench/gateway.ts). Not a test: it prints tables with ratios and
 * writes bench/results/latest.json.
 *
 * Uploads: one large file over HTTP, a zip bundle of 64 KiB textures and 200
 * concurrent 200 KB models, each to Heimdall embedded (the default
 * configuration), Heimdall over Kubo (as compose runs it) and Kubo itself
 * (`ipfs add`, `ipfs add -r` of the extracted folder, `/api/v0/add`), with
 * sha256 of the same bytes (the floor every upload pays) and a direct import
 * into the embedded node through the library (the ceiling without HTTP).
 *
 * Gateway: Heimdall embedded, Heimdall over Kubo and Kubo's own gateway on
 * the same content, under autocannon.
 *
 * S3 (bench/scale-out.ts): uploads and the gateway with BLOCKSTORE=s3 on a
 * SeaweedFS the bench starts against BLOCKSTORE=fs, both on the bench's
 * PostgreSQL, as ratios (issue #14's goals).
 *
 * BENCH_SCALE (default 1) scales the sizes down for a quick run (1 GiB file,
 * 2 GiB memory upload, 2,000 textures at 1; for S3 a 256 MiB file and 500
 * textures); `--only uploads`, `--only gateway` or `--only s3` runs one
 * part, `--only startup` the start-up and idle figures alone (BENCH_ROUNDS
 * times, default 5); BENCH_UPLOAD_ROUNDS (default 3) how many rounds of the upload
 * workloads (S3's included) the figures are the median of (targets rotated
 * each round, ratios taken within a round); BENCH_SECONDS (default 10) is
 * how long each gateway load runs (0: the large file alone); BENCH_ROUNDS
 * (default 7) how many interleaved rounds of downloads of the large file the
 * gateway figures are the median of; BENCH_CLIENT=curl downloads it with curl
 * instead of the bench's own client.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startHeimdallProcess } from '../test/support/heimdall-process.ts'
import { createScratchDatabase, startPostgresServer } from '../test/support/postgres-server.ts'
import { ensureSeaweedBinary } from '../test/support/seaweedfs.ts'
import { gatewayBench } from './gateway.ts'
import { printScaleOutTable, scaleOutBench, type ScaleOutResult } from './scale-out.ts'
import { printUploadsTable, uploadsBench, type DatabaseFactory } from './uploads.ts'
import { descendants, peakRss, TreeRssSampler } from './workers/peak-rss.ts'

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url))
const MiB = 1024 * 1024
const scale = Number(process.env.BENCH_SCALE ?? '1')
const onlyAt = process.argv.indexOf('--only')
const only = onlyAt === -1 ? undefined : process.argv[onlyAt + 1]
if (only !== undefined && only !== 'uploads' && only !== 'gateway' && only !== 's3' && only !== 'startup') throw new Error('--only takes uploads, gateway, s3 or startup')
const uploadRounds = Number(process.env.BENCH_UPLOAD_ROUNDS ?? '3')
if (!Number.isInteger(uploadRounds) || uploadRounds < 1) throw new Error('BENCH_UPLOAD_ROUNDS is a whole number ≥ 1')

interface Baseline {
  /** Start-up to /readyz 200 on an empty DATA_DIR (the embedded PostgreSQL cluster made: the template copied, or initdb without one), and on a restart. */
  firstStartSeconds: number
  restartSeconds: number
  serverIdlePeakMB: number
  /** The server and the embedded PostgreSQL's processes, each one's VmHWM, summed. */
  treeIdlePeakMB: number
  /** What the tree holds resident, summed, 2 s after its first start: the idle footprint. */
  treeIdleNowMB: number
  /** The same moment, the largest one process of the tree holds (VmHWM): the per-process reading. */
  largestIdlePeakMB: number
  treeRestartIdlePeakMB: number
  postgresIdlePeakMB: number | null
}

/** The idle footprint, in the default configuration: after a first start on an empty data folder, and after a restart. */
async function embeddedBaseline (work: string, database: DatabaseFactory | undefined): Promise<Baseline> {
  const dataDir = join(work, 'data-idle')
  const env = { DATA_DIR: dataDir, SECRET_KEY: 'bench-secret-key-bench-secret-key-0123' }
  let started = process.hrtime.bigint()
  const first = await startHeimdallProcess(env)
  const firstStartSeconds = Number(process.hrtime.bigint() - started) / 1e9
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const treeIdleNowMB = new TreeRssSampler(first.child.pid ?? 0).stop() / MiB
  const largestIdlePeakMB = Math.max(...[first.child.pid ?? 0, ...descendants(first.child.pid ?? 0)].map((pid) => peakRss(pid))) / MiB
  const serverIdlePeakMB = first.peakRss() / MiB
  const treeIdlePeakMB = first.treePeakRss() / MiB
  await first.stop()
  started = process.hrtime.bigint()
  const again = await startHeimdallProcess(env)
  const restartSeconds = Number(process.hrtime.bigint() - started) / 1e9
  const treeRestartIdlePeakMB = again.treePeakRss() / MiB
  await again.stop()
  let postgresIdlePeakMB: number | null = null
  const db = await database?.()
  if (db !== undefined) {
    const idle = await startHeimdallProcess({ ...env, DATA_DIR: join(work, 'data-idle-pg'), DATABASE_URL: db.url })
    postgresIdlePeakMB = idle.peakRss() / MiB
    await idle.stop()
    await db.drop()
  }
  await rm(dataDir, { recursive: true, force: true })
  return { firstStartSeconds, restartSeconds, serverIdlePeakMB, treeIdlePeakMB, treeIdleNowMB, largestIdlePeakMB, treeRestartIdlePeakMB, postgresIdlePeakMB }
}

/**
 * The S3 part, or null when it cannot run here: it needs the bench's
 * PostgreSQL and SeaweedFS (built with Go on first use). Under CI a missing
 * one is a failure; locally the part is skipped, loudly.
 */
async function s3Part (work: string, database: DatabaseFactory | undefined): Promise<ScaleOutResult | null> {
  const missing = (why: string): null => {
    if (process.env.CI === 'true') throw new Error(`the S3 benchmark cannot run: ${why}`)
    console.log(`\n!!!!!!!! SKIPPING the S3 benchmark: ${why} !!!!!!!!\n`)
    return null
  }
  if (database === undefined) return missing('no PostgreSQL server')
  const fileSize = Math.round(256 * MiB * scale)
  const textures = Math.max(10, Math.round(500 * scale))
  console.log(`\nS3 benchmark: BLOCKSTORE=s3 on SeaweedFS against BLOCKSTORE=fs, ${(fileSize / MiB).toFixed(0)} MiB file, ${textures} × 64 KiB bundle, ${uploadRounds} upload round(s)`)
  try {
    await ensureSeaweedBinary()
  } catch (err) {
    return missing(`no SeaweedFS binary and it could not be built (${String(err).split('\n')[0] ?? ''})`)
  }
  const result = await scaleOutBench(work, { fileSize, textures, rounds: uploadRounds, seconds: Number(process.env.BENCH_SECONDS ?? '10'), database })
  printScaleOutTable(result)
  return result
}

const work = await mkdtemp(join(tmpdir(), 'heimdall-bench-'))
const postgres = only === 'gateway' ? undefined : await startPostgresServer().catch((err: unknown) => {
  console.warn(`no PostgreSQL server (${String(err)}): Heimdall over Kubo runs on its embedded PostgreSQL, and the idle footprint is not compared against one`)
  return undefined
})
const database: DatabaseFactory | undefined = postgres === undefined ? undefined : async () => createScratchDatabase(postgres.url)
try {
  const fileSize = Math.round(1024 * MiB * scale)
  const results = here('./results/')
  await mkdir(results, { recursive: true })
  if (only === 'startup') {
    // Start-up and the idle footprint alone, BENCH_ROUNDS times (default 5): seconds to /readyz on an empty DATA_DIR.
    const rounds = Number(process.env.BENCH_ROUNDS ?? '5')
    const runs: Baseline[] = []
    for (let round = 0; round < rounds; round++) {
      const idle = await embeddedBaseline(work, round === 0 ? database : undefined)
      runs.push(idle)
      console.log(`  start-up, round ${round + 1}: ${idle.firstStartSeconds.toFixed(2)} s on an empty data folder, ${idle.restartSeconds.toFixed(2)} s on a restart; idle tree ${idle.treeIdleNowMB.toFixed(0)} MB (summed VmRSS 2 s after start), largest process ${idle.largestIdlePeakMB.toFixed(0)} MB`)
    }
    const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0
    const first = runs.map((r) => r.firstStartSeconds)
    console.log(`
Start-up to /readyz on an empty DATA_DIR: median ${median(first).toFixed(2)} s (${Math.min(...first).toFixed(2)}–${Math.max(...first).toFixed(2)}) of ${rounds} — goal < 3 s: ${median(first) < 3 ? 'met' : 'NOT met'}; restart median ${median(runs.map((r) => r.restartSeconds)).toFixed(2)} s; idle tree median ${median(runs.map((r) => r.treeIdleNowMB)).toFixed(0)} MB summed VmRSS, largest process ${median(runs.map((r) => r.largestIdlePeakMB)).toFixed(0)} MB (goal < 150, summed or per process). DATA_DIR under ${work}.`)
    await writeFile(join(results, 'startup.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, runs }, null, 2))
  } else if (only === 's3') {
    const s3 = await s3Part(work, database)
    if (s3 !== null) {
      await writeFile(join(results, 's3.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, scale, s3 }, null, 2))
      console.log(`\nwritten: ${join(results, 's3.json')}`)
    }
  } else {
    let gateway: unknown = null
    if (only !== 'uploads') {
      console.log(`Gateway benchmark: ${fileSize / MiB} MiB file, 2,000- and 100-entry directories`)
      gateway = await gatewayBench(work, { fileSize, seconds: Number(process.env.BENCH_SECONDS ?? '10'), rounds: Number(process.env.BENCH_ROUNDS ?? '7') })
    }
    if (only === 'gateway') {
      await writeFile(join(results, 'gateway.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, scale, gateway }, null, 2))
      console.log(`\nwritten: ${join(results, 'gateway.json')}`)
      await rm(work, { recursive: true, force: true })
      process.exit(0) // the upload part below is skipped; nothing else is open
    }
    const textures = Math.max(10, Math.round(2000 * scale))
    const loadBefore = loadavg()
    console.log(`\nUpload benchmark on Node ${process.version}: ${(fileSize / MiB).toFixed(0)} MiB file, ${textures} textures, 200 concurrent uploads, ${uploadRounds} round(s)`)
    const uploads = await uploadsBench(work, { fileSize, textures, memoryFileSize: Math.round(2048 * MiB * scale), concurrent: 200, modelSize: 200_000, rounds: uploadRounds, database })
    const idle = await embeddedBaseline(work, database)
    printUploadsTable(uploads, idle)
    const loadAfter = loadavg()
    const load = (l: number[]): string => l.map((v) => v.toFixed(2)).join(', ')
    console.log(`Load average (1, 5, 15 min) on this ${availableParallelism()}-core machine, shared: ${load(loadBefore)} before the uploads, ${load(loadAfter)} after.`)
    console.log(`Idle peak RSS after start: server ${idle.serverIdlePeakMB.toFixed(0)} MB, the embedded PostgreSQL's processes ${(idle.treeIdlePeakMB - idle.serverIdlePeakMB).toFixed(0)} MB (summed VmHWM), ${idle.treeRestartIdlePeakMB.toFixed(0)} MB after a restart; the server alone over an external PostgreSQL: ${idle.postgresIdlePeakMB?.toFixed(0) ?? 'n/a'} MB.`)
    const s3 = only === 'uploads' ? null : await s3Part(work, database)

    await writeFile(join(results, 'latest.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, scale, loadAverage: { before: loadBefore, after: loadAfter }, uploads, idle, gateway, s3 }, null, 2))
    console.log(`\nwritten: ${join(results, 'latest.json')}`)
  }
} finally {
  await postgres?.stop()
  await rm(work, { recursive: true, force: true })
}
