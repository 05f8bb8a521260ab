/**
 * The S3 part of `npm run bench` (alone: `npm run bench -- --only s3`): the
 * same bytes through two Heimdall processes on this machine, both on the
 * bench's PostgreSQL (a scratch database each), one keeping blocks in local
 * files (BLOCKSTORE=fs, the default) and one in a bucket of a SeaweedFS the
 * bench starts (a master, two volume servers with replication 001, a filer
 * and its S3 gateway, as the tests run it: BLOCKSTORE=s3). Issue #14's goals:
 * uploads on S3 at ≥ 0.5× the local store, the gateway with a warm cache at
 * ≥ 0.8×; ratios are S3 over files, taken within a round.
 *
 * Uploads: every round starts each side afresh (a new DATA_DIR, database and
 * S3 prefix, so nothing is found already there) and uploads the large file,
 * then the zip bundle; the sides' order alternates each round. The bucket is
 * written to once before the first round, so SeaweedFS's volume growth for a
 * new bucket is not in the figures (a production bucket has its volumes).
 *
 * Gateway: both sides get the same three files; then both are restarted,
 * the S3 side on a fresh DATA_DIR (an empty read cache: a new instance
 * joining), and the large file is read once from each, cold on the S3 side
 * (for information). After an untimed warm-up load that fills the S3 side's
 * read cache, 32 connections load the 64 KiB file (autocannon) and the
 * ~1 MiB file (a plain kept-alive client: autocannon is the limit there)
 * by path on each side, two rounds in opposite orders.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, readdirSync, statSync } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { S3Client } from '../src/storage/s3-client.ts'
import { writeRandomFile, writeTextureBundle } from '../test/support/big-inputs.ts'
import { newToken, startHeimdallProcess, uploadStream, type HeimdallProcess } from '../test/support/heimdall-process.ts'
import { createBucket, ensureSeaweedBinary, startSeaweed, type SeaweedCluster } from '../test/support/seaweedfs.ts'
import { download } from './download.ts'
import { cpuDuring, processesOf } from './cpu-time.ts'
import { keepAliveLoad } from './keep-alive-load.ts'
import { descendants } from './workers/peak-rss.ts'
import type { DatabaseFactory } from './uploads.ts'
import { TreeRssSampler } from './workers/peak-rss.ts'

const MiB = 1024 * 1024
const SECRET_KEY = 'bench-secret-key-bench-secret-key-0123'
const BUCKET = 'heimdall-bench'
const FS = 'fs (local files)'
const S3 = 's3 (SeaweedFS)'
const SIDES = [FS, S3] as const
type Side = (typeof SIDES)[number]
const GATEWAY_ROUNDS = 2

export interface ScaleOutOptions {
  fileSize: number
  /** Entries of 64 KiB in the zip bundle. */
  textures: number
  rounds: number
  /** Seconds of load per gateway figure. */
  seconds: number
  database: DatabaseFactory
}

/** A figure measured once per round: its median and its spread. */
export interface Spread { median: number, min: number, max: number }

export interface ScaleOutResult {
  seaweedfs: string
  rounds: number
  file: { bytes: number, mbps: Record<Side, number[]>, ratio: Spread, cidsMatch: boolean }
  bundle: { bytes: number, entries: number, mbps: Record<Side, number[]>, ratio: Spread, cidsMatch: boolean }
  /**
   * CPU seconds per 64 MiB of the file's upload, each round, by process:
   * `heimdall` (its process tree), `client` (the bench sending it) and, on
   * the S3 side, SeaweedFS's processes by role (`weed volume` is both
   * volume servers).
   */
  fileCpu: Record<Side, Array<Record<string, number>>>
  /** Peak RSS of each side's process tree over a round's uploads (the largest of the rounds), summed VmHWM / largest at one moment. */
  uploadPeakRssMB: Record<Side, { summed: number, atOnce: number }>
  gateway: {
    seconds: number
    rounds: number
    small: { bytes: number, reqs: Record<Side, number[]>, p99: Record<Side, number[]>, ratio: Spread }
    mid: { bytes: number, reqs: Record<Side, number[]>, p99: Record<Side, number[]>, ratio: Spread }
    /** The large file once from each side after the restart: the S3 side's read cache empty. */
    coldLargeMBps: Record<Side, number>
    /** The same file once more after that read (the S3 side now from its cache). */
    warmLargeMBps: Record<Side, number>
    /** The first request of the small file on each restarted instance, ms. */
    firstSmallMs: Record<Side, number>
    /** Bytes in the S3 side's read cache: just after its start, after the cold read, after the warm-up. */
    cacheBytes: { atStart: number, afterCold: number, afterWarmup: number }
    peakRssMB: Record<Side, { summed: number, atOnce: number }>
  }
  loadAverage: { before: number[], after: number[] }
}

function spread (values: readonly number[]): Spread {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b)
  const mid = sorted.length / 2
  const median = sorted.length % 2 === 1 ? sorted[Math.floor(mid)] ?? Number.NaN : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2
  return { median, min: sorted[0] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN }
}

const ratios = (of: Record<Side, number[]>): Spread => spread(of[S3].map((value, round) => value / (of[FS][round] ?? Number.NaN)))

/** Bytes of the files under `dir` (the S3 side's read cache), 0 when it is not there. */
function bytesUnder (dir: string): number {
  let sum = 0
  let entries: string[]
  try { entries = readdirSync(dir) } catch { return 0 }
  for (const entry of entries) {
    const path = join(dir, entry)
    const info = statSync(path, { throwIfNoEntry: false })
    if (info === undefined) continue
    sum += info.isDirectory() ? bytesUnder(path) : info.size
  }
  return sum
}

type Added = Array<{ Name: string, Hash: string }>

async function upload (server: HeimdallProcess, token: string, source: string | Buffer, name: string): Promise<{ seconds: number, items: Added }> {
  const result = await uploadStream(server.url, token, source, name)
  if (result.status !== 200) throw new Error(`upload of ${name} answered ${result.status}: ${JSON.stringify(result.body)}`)
  return { seconds: result.seconds, items: result.body as Added }
}

/** 32 connections: autocannon for the small file, a plain kept-alive client for the large one (see keepAliveLoad). */
async function load (url: string, seconds: number, large = false): Promise<{ reqs: number, p99: number }> {
  if (large) return keepAliveLoad(url, { connections: 32, seconds })
  const result = await autocannon({ url, connections: 32, duration: seconds })
  const failed = result.non2xx + result.errors + result.timeouts
  if (failed > 0) throw new Error(`${url}: ${failed} of ${result.requests.total} requests failed`)
  return { reqs: result.requests.average, p99: result.latency.p99 }
}

async function sha256Of (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

export async function scaleOutBench (work: string, options: ScaleOutOptions): Promise<ScaleOutResult> {
  const loadBefore = loadavg()
  const seaweedBin = await ensureSeaweedBinary()
  const seaweed = await startSeaweed(seaweedBin)
  try {
    return await measure(work, options, seaweed, loadBefore)
  } finally {
    await seaweed.stop()
  }
}

async function measure (work: string, options: ScaleOutOptions, seaweed: SeaweedCluster, loadBefore: number[]): Promise<ScaleOutResult> {
  await createBucket(seaweed, BUCKET)
  const s3Options = { endpoint: seaweed.endpoint, bucket: BUCKET, region: seaweed.region, forcePathStyle: true, accessKeyId: seaweed.accessKeyId, secretAccessKey: seaweed.secretAccessKey }
  // A new bucket's first writes wait for SeaweedFS to grow its volumes: done here, untimed.
  const warm = new S3Client(s3Options)
  await Promise.all(Array.from({ length: 16 }, async (_, i) => warm.putObject(`warmup/${i}`, randomBytes(MiB))))
  warm.close()

  const base = { SECRET_KEY, NODE_ENV: 'production', LOG_LEVEL: 'error', MAX_UPLOAD_BYTES: String(8 * 1024 * MiB), UPLOADS_PER_HOUR: '10000', IDENTITIES_PER_HOUR: '10000' }
  const envFor = (side: Side, dataDir: string, databaseUrl: string, prefix: string): Record<string, string> => ({
    ...base,
    DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl,
    ...(side === S3
      ? {
          BLOCKSTORE: 's3',
          S3_ENDPOINT: seaweed.endpoint,
          S3_BUCKET: BUCKET,
          S3_PREFIX: prefix,
          S3_REGION: seaweed.region,
          S3_FORCE_PATH_STYLE: 'true',
          AWS_ACCESS_KEY_ID: seaweed.accessKeyId,
          AWS_SECRET_ACCESS_KEY: seaweed.secretAccessKey
        }
      : {})
  })

  // Fresh random bytes each run, the same for both sides.
  const seed = randomBytes(8).toString('hex')
  const bigFile = join(work, 's3-random.bin')
  await writeRandomFile(bigFile, options.fileSize, `s3-file-${seed}`)
  const zip = join(work, 's3-textures.zip')
  await writeTextureBundle(zip, options.textures, 64 * 1024, `s3-bundle-${seed}`)
  const fileBytes = (await stat(bigFile)).size
  const zipBytes = (await stat(zip)).size

  // ------------------------------------------------------------ uploads
  const fileMbps: Record<Side, number[]> = { [FS]: [], [S3]: [] }
  const bundleMbps: Record<Side, number[]> = { [FS]: [], [S3]: [] }
  const fileCids = new Set<string>()
  const bundleCids = new Set<string>()
  const uploadPeak: Record<Side, { summed: number, atOnce: number }> = { [FS]: { summed: 0, atOnce: 0 }, [S3]: { summed: 0, atOnce: 0 } }
  const fileCpu: Record<Side, Array<Record<string, number>>> = { [FS]: [], [S3]: [] }
  const weed = processesOf(seaweed.bin)
  const weedRoles = Object.fromEntries([...new Set(weed.map((p) => p.role))].map((role) => [`weed ${role}`, () => weed.filter((p) => p.role === role).map((p) => p.pid)]))
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? SIDES : [...SIDES].reverse()
    const line: string[] = []
    for (const side of order) {
      const db = await options.database()
      const dataDir = await mkdtemp(join(work, 's3-up-'))
      let server: HeimdallProcess | undefined
      try {
        server = await startHeimdallProcess(envFor(side, dataDir, db.url, `up-${round}-${side === S3 ? 's3' : 'fs'}-${seed}/`))
        const token = await newToken(server.url, 'bench')
        const sampler = new TreeRssSampler(server.child.pid ?? 0)
        const pid = server.child.pid ?? 0
        const { result: file, seconds: cpu } = await cpuDuring({
          heimdall: () => [pid, ...descendants(pid)],
          client: () => [process.pid],
          ...(side === S3 ? weedRoles : {})
        }, async () => upload(server as HeimdallProcess, token, bigFile, 'random.bin'))
        fileCpu[side].push(Object.fromEntries(Object.entries(cpu).map(([role, seconds]) => [role, seconds / (fileBytes / (64 * MiB))])))
        const bundle = await upload(server, token, zip, 'textures.zip')
        fileMbps[side].push(fileBytes / MiB / file.seconds)
        bundleMbps[side].push(zipBytes / MiB / bundle.seconds)
        fileCids.add(file.items.find((item) => item.Name === 'random/random.bin')?.Hash ?? '')
        bundleCids.add(bundle.items.find((item) => item.Name === 'textures')?.Hash ?? '')
        uploadPeak[side].summed = Math.max(uploadPeak[side].summed, server.treePeakRss() / MiB)
        uploadPeak[side].atOnce = Math.max(uploadPeak[side].atOnce, sampler.stop() / MiB)
        line.push(`${side} ${(fileBytes / MiB / file.seconds).toFixed(0)} / ${(zipBytes / MiB / bundle.seconds).toFixed(1)}`)
      } finally {
        await server?.stop()
        await db.drop()
        await rm(dataDir, { recursive: true, force: true })
      }
    }
    console.log(`  uploads, round ${round + 1} (file / bundle MB/s): ${line.join('; ')}`)
  }

  // ------------------------------------------------------------ gateway
  const small = randomBytes(64 * 1024)
  const mid = randomBytes(MiB + 64 * 1024)
  const dbs = { [FS]: await options.database(), [S3]: await options.database() }
  const dirs = { [FS]: join(work, 's3-gw-fs'), [S3]: join(work, 's3-gw-s3') }
  const prefix = `gateway-${seed}/`
  const paths = new Map<string, string>()
  const servers: HeimdallProcess[] = []
  try {
    for (const side of SIDES) {
      const server = await startHeimdallProcess(envFor(side, dirs[side], dbs[side].url, prefix))
      servers.push(server)
      const token = await newToken(server.url, 'bench')
      for (const [name, source] of [['small.bin', small], ['mid.bin', mid], ['large.bin', bigFile]] as const) {
        const { items } = await upload(server, token, source, name)
        const path = `/ipfs/${items.at(-1)?.Hash ?? ''}/${name}`
        if (paths.has(name) && paths.get(name) !== path) throw new Error(`the two stores gave different CIDs for ${name}: ${paths.get(name) ?? ''} and ${path}`)
        paths.set(name, path)
      }
    }
    for (const server of servers.splice(0)) await server.stop()
    // A new instance joining: the same database and bucket, an empty read cache.
    dirs[S3] = join(work, 's3-gw-s3-fresh')
    const gw = {
      [FS]: await startHeimdallProcess(envFor(FS, dirs[FS], dbs[FS].url, prefix)),
      [S3]: await startHeimdallProcess(envFor(S3, dirs[S3], dbs[S3].url, prefix))
    }
    servers.push(gw[FS], gw[S3])
    const cacheDir = join(dirs[S3], 'ipfs', 'block-cache')
    // As gateway.ts: the start-up collection is left to finish before anything is measured.
    await new Promise((resolve) => setTimeout(resolve, 5000))
    const atStart = bytesUnder(cacheDir)
    const firstSmallMs = { [FS]: 0, [S3]: 0 }
    for (const side of SIDES) {
      const started = process.hrtime.bigint()
      const res = await fetch(`${gw[side].url}${paths.get('small.bin') ?? ''}`)
      await res.arrayBuffer()
      if (res.status !== 200) throw new Error(`${side}: small.bin answered ${res.status}`)
      firstSmallMs[side] = Number(process.hrtime.bigint() - started) / 1e6
    }
    const coldLargeMBps = { [FS]: 0, [S3]: 0 }
    const warmLargeMBps = { [FS]: 0, [S3]: 0 }
    for (const side of [S3, FS] as const) {
      const cold = await download(`${gw[side].url}${paths.get('large.bin') ?? ''}`)
      coldLargeMBps[side] = cold.bytes / MiB / cold.seconds
    }
    const afterCold = bytesUnder(cacheDir)
    const digest = await sha256Of(bigFile)
    for (const side of SIDES) {
      const hash = createHash('sha256')
      await download(`${gw[side].url}${paths.get('large.bin') ?? ''}`, (bytes) => hash.update(bytes))
      if (hash.digest('hex') !== digest) throw new Error(`${side} sent other bytes than the file's`)
    }
    for (const side of [S3, FS] as const) {
      const again = await download(`${gw[side].url}${paths.get('large.bin') ?? ''}`)
      warmLargeMBps[side] = again.bytes / MiB / again.seconds
    }
    console.log(`  gateway, large file once after the restart (S3 side on an empty cache): ${SIDES.map((s) => `${s} ${coldLargeMBps[s].toFixed(0)} MB/s cold, ${warmLargeMBps[s].toFixed(0)} MB/s again`).join('; ')}`)

    for (const server of servers) server.resetPeaks()
    const samplers = { [FS]: new TreeRssSampler(gw[FS].child.pid ?? 0), [S3]: new TreeRssSampler(gw[S3].child.pid ?? 0) }
    const seconds = Math.max(1, options.seconds)
    // Untimed: every block of both files into the S3 side's read cache, and both processes' code warm.
    for (const name of ['small.bin', 'mid.bin']) {
      for (const side of SIDES) await load(`${gw[side].url}${paths.get(name) ?? ''}`, Math.min(3, seconds), name === 'mid.bin')
    }
    const afterWarmup = bytesUnder(cacheDir)
    const figures = (): { reqs: Record<Side, number[]>, p99: Record<Side, number[]> } => ({ reqs: { [FS]: [], [S3]: [] }, p99: { [FS]: [], [S3]: [] } })
    const loads = { 'small.bin': figures(), 'mid.bin': figures() }
    for (let round = 0; round < GATEWAY_ROUNDS; round++) {
      for (const [k, name] of (['small.bin', 'mid.bin'] as const).entries()) {
        const order = (round + k) % 2 === 0 ? SIDES : [...SIDES].reverse()
        const line: string[] = []
        for (const side of order) {
          const { reqs, p99 } = await load(`${gw[side].url}${paths.get(name) ?? ''}`, seconds, name === 'mid.bin')
          loads[name].reqs[side].push(reqs)
          loads[name].p99[side].push(p99)
          line.push(`${side} ${reqs.toFixed(0)} req/s (p99 ${p99.toFixed(0)} ms)`)
        }
        console.log(`  gateway, ${name}, round ${round + 1}: ${line.join('; ')}`)
      }
    }
    const peakRssMB = {
      [FS]: { summed: gw[FS].treePeakRss() / MiB, atOnce: samplers[FS].stop() / MiB },
      [S3]: { summed: gw[S3].treePeakRss() / MiB, atOnce: samplers[S3].stop() / MiB }
    }
    return {
      seaweedfs: 'master + 2 volume servers (replication 001) + filer + S3 gateway, on loopback',
      rounds: options.rounds,
      file: { bytes: fileBytes, mbps: fileMbps, ratio: ratios(fileMbps), cidsMatch: fileCids.size === 1 && !fileCids.has('') },
      bundle: { bytes: zipBytes, entries: options.textures, mbps: bundleMbps, ratio: ratios(bundleMbps), cidsMatch: bundleCids.size === 1 && !bundleCids.has('') },
      fileCpu,
      uploadPeakRssMB: uploadPeak,
      gateway: {
        seconds,
        rounds: GATEWAY_ROUNDS,
        small: { bytes: small.length, ...loads['small.bin'], ratio: ratios(loads['small.bin'].reqs) },
        mid: { bytes: mid.length, ...loads['mid.bin'], ratio: ratios(loads['mid.bin'].reqs) },
        coldLargeMBps,
        warmLargeMBps,
        firstSmallMs,
        cacheBytes: { atStart, afterCold, afterWarmup },
        peakRssMB
      },
      loadAverage: { before: loadBefore, after: loadavg() }
    }
  } finally {
    for (const server of servers) await server.stop()
    await dbs[FS].drop()
    await dbs[S3].drop()
  }
}

const fmt = (s: Spread, digits = 0): string => `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`
const goal = (s: Spread, at: number): string => {
  const met = s.median >= at
  // Three digits where two would round a miss up to the goal (0.7996 → "0.80× NOT met").
  const digits = !met && Number(s.median.toFixed(2)) >= at ? 3 : 2
  return `**${s.median.toFixed(digits)}×** (${s.min.toFixed(2)}–${s.max.toFixed(2)}) ${met ? 'met' : 'NOT met'} (goal ≥ ${at}×)`
}

export function printScaleOutTable (r: ScaleOutResult): void {
  const g = r.gateway
  const mib = (bytes: number): string => (bytes / MiB).toFixed(0)
  console.log(`\nS3 block store against local files, ${r.rounds} upload round(s), ${g.rounds} gateway rounds of ${g.seconds} s; figures the median (min–max) of the rounds, each ratio taken within a round:`)
  console.log(`\n| workload | ${FS} | ${S3} | s3 / fs |`)
  console.log('| --- | ---: | ---: | --- |')
  console.log(`| upload, one ${mib(r.file.bytes)} MiB file (MB/s) | ${fmt(spread(r.file.mbps[FS]))} | ${fmt(spread(r.file.mbps[S3]))} | ${goal(r.file.ratio, 0.5)} |`)
  console.log(`| upload, zip bundle of ${r.bundle.entries} × 64 KiB (MB/s) | ${fmt(spread(r.bundle.mbps[FS]), 1)} | ${fmt(spread(r.bundle.mbps[S3]), 1)} | ${goal(r.bundle.ratio, 0.5)} |`)
  const rps = (row: ScaleOutResult['gateway']['small'], side: Side): string => `${fmt(spread(row.reqs[side]))} (p99 ${spread(row.p99[side]).median.toFixed(0)} ms)`
  console.log(`| gateway, warm cache, ${(g.small.bytes / 1024).toFixed(0)} KiB file by path, 32 connections: req/s | ${rps(g.small, FS)} | ${rps(g.small, S3)} | ${goal(g.small.ratio, 0.8)} |`)
  console.log(`| gateway, warm cache, ${(g.mid.bytes / MiB).toFixed(2)} MiB file by path, 32 connections (Node client): req/s | ${rps(g.mid, FS)} | ${rps(g.mid, S3)} | ${goal(g.mid.ratio, 0.8)} |`)
  console.log(`| the ${mib(r.file.bytes)} MiB file once, restarted instance (S3: empty read cache) / once more (MB/s) | ${g.coldLargeMBps[FS].toFixed(0)} / ${g.warmLargeMBps[FS].toFixed(0)} | ${g.coldLargeMBps[S3].toFixed(0)} / ${g.warmLargeMBps[S3].toFixed(0)} | cold ${(g.coldLargeMBps[S3] / g.coldLargeMBps[FS]).toFixed(2)}×, again ${(g.warmLargeMBps[S3] / g.warmLargeMBps[FS]).toFixed(2)}× (information) |`)
  console.log(`| first request after the restart, 64 KiB file (ms) | ${g.firstSmallMs[FS].toFixed(1)} | ${g.firstSmallMs[S3].toFixed(1)} | |`)
  const mb = (p: { summed: number, atOnce: number }): string => `${p.summed.toFixed(0)} MB (${p.atOnce.toFixed(0)} MB)`
  console.log(`| peak RSS of the process tree during a round's uploads, summed VmHWM (largest at one moment) | ${mb(r.uploadPeakRssMB[FS])} | ${mb(r.uploadPeakRssMB[S3])} | |`)
  console.log(`| peak RSS under the gateway load, same | ${mb(g.peakRssMB[FS])} | ${mb(g.peakRssMB[S3])} | |`)
  console.log(`\nCIDs: ${r.file.cidsMatch && r.bundle.cidsMatch ? 'the same on both sides in every round (file, bundle root)' : 'DIFFER between the sides'}. S3 read cache on disk: ${mib(g.cacheBytes.atStart)} MiB after the restart, ${mib(g.cacheBytes.afterCold)} MiB after the cold read, ${mib(g.cacheBytes.afterWarmup)} MiB after the warm-up.`)
  // Where the S3 side's upload time goes: CPU per byte, and the throughput this machine's cores allow at that cost.
  const cores = availableParallelism()
  const cpu = (side: Side): { text: string, ceiling: number } => {
    const roles = [...new Set(r.fileCpu[side].flatMap((round) => Object.keys(round)))]
    const median = roles.map((role) => ({ role, seconds: spread(r.fileCpu[side].map((round) => round[role] ?? 0)).median }))
    const total = median.reduce((sum, m) => sum + m.seconds, 0)
    return { text: `${median.map((m) => `${m.role} ${m.seconds.toFixed(2)}`).join(', ')}; total ${total.toFixed(2)}`, ceiling: total > 0 ? 64 * cores / total : 0 }
  }
  const [fsCpu, s3Cpu] = [cpu(FS), cpu(S3)]
  console.log(`CPU seconds per 64 MiB of the file upload (median of the rounds). ${FS}: ${fsCpu.text}, so at most ${fsCpu.ceiling.toFixed(0)} MB/s on ${cores} cores. ${S3}: ${s3Cpu.text}, so at most ${s3Cpu.ceiling.toFixed(0)} MB/s on ${cores} cores, against the ${(0.5 * spread(r.file.mbps[FS]).median).toFixed(0)} MB/s that 0.5× of the file store's median asks.`)
  const load = (l: number[]): string => l.map((v) => v.toFixed(2)).join(', ')
  console.log(`Load average (1, 5, 15 min): ${load(r.loadAverage.before)} before, ${load(r.loadAverage.after)} after. SeaweedFS: ${r.seaweedfs}.`)
}
