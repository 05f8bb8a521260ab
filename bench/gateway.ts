/**
 * The gateway part of `npm run bench` (alone: `npm run bench -- --only gateway`):
 * the same content read through Heimdall on its embedded node, Heimdall over
 * Kubo (blocks from Kubo's flatfs files, as compose runs it, and bytes through
 * Kubo's private gateway, IPFS_BLOCKS_DIR unset), and Kubo's own gateway, in one
 * run, with autocannon as the load. Kubo is started here, offline, on
 * loopback; Heimdall over Kubo writes the content into it, so all three
 * serve the same CIDs. Ratios are against Kubo's gateway. The large file is
 * downloaded in interleaved rounds (fileRounds) by one client that reads
 * every byte (download.ts), and each round's MB/s is compared with Kubo's in
 * the same round, so a machine that gets busier or quieter meanwhile moves
 * both sides of a ratio alike.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { writeRandomFile, writeTextureBundle } from '../test/support/big-inputs.ts'
import { newToken, startHeimdallProcess, uploadStream, type HeimdallProcess } from '../test/support/heimdall-process.ts'
import { ensureKuboBinary, startKubo } from '../test/support/kubo.ts'
import { curlDownload, download } from './download.ts'
import { peakRss, TreeRssSampler } from './workers/peak-rss.ts'

const MiB = 1024 * 1024
const SECRET_KEY = 'bench-secret-key-bench-secret-key-0123'

interface Target { name: string, url: string, server?: HeimdallProcess }
/** A figure measured once per round: its median and its spread. */
export interface Spread { median: number, min: number, max: number }
export interface GatewayRow {
  target: string
  bigDirReqs: number
  bigDirP99: number
  smallDirReqs: number
  smallDirP99: number
  /** The large file's MB/s, one download per round. */
  fileMBps: Spread
  fileMBpsRounds: number[]
  /** Each round's MB/s over Kubo's gateway's in the same round. */
  fileVsKubo: Spread | null
  listingP50: number
  listingP99: number
  notFoundP50: number
  notFoundP99: number
  treePeakRssMB: number | null
  serverPeakRssMB: number | null
  /** The largest sum of the tree's resident sets at one moment under the load (sampled every 100 ms). */
  treeAtOnceRssMB: number | null
  /** The tree's peak from its start to the first request (summed). */
  treeStartPeakRssMB: number | null
}

async function load (url: string, seconds: number): Promise<{ reqs: number, p99: number }> {
  const result = await autocannon({ url, connections: 32, duration: seconds })
  const failed = result.non2xx + result.errors + result.timeouts
  if (failed > 0) throw new Error(`${url}: ${failed} of ${result.requests.total} requests failed`)
  return { reqs: result.requests.average, p99: result.latency.p99 }
}

/** Latencies of `count` requests one after another, after one to warm up: [p50, p99] in ms. */
async function latencies (url: string, status: number, count: number): Promise<[number, number]> {
  const times: number[] = []
  for (let i = 0; i <= count; i++) {
    const started = process.hrtime.bigint()
    const res = await fetch(url, { headers: { Accept: 'text/html' } })
    await res.arrayBuffer()
    if (res.status !== status) throw new Error(`${url}: ${res.status}, expected ${status}`)
    if (i > 0) times.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  times.sort((a, b) => a - b)
  const at = (p: number): number => times[Math.min(times.length - 1, Math.ceil(p * times.length) - 1)] ?? Number.NaN
  return [at(0.5), at(0.99)]
}

async function upload (server: HeimdallProcess, token: string, file: string, name: string): Promise<Array<{ Name: string, Hash: string }>> {
  const result = await uploadStream(server.url, token, file, name)
  if (result.status !== 200) throw new Error(`upload of ${name}: ${result.status} ${JSON.stringify(result.body)}`)
  return result.body as Array<{ Name: string, Hash: string }>
}

function spread (values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length / 2
  const median = sorted.length % 2 === 1 ? sorted[Math.floor(mid)] ?? Number.NaN : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2
  return { median, min: sorted[0] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN }
}

async function sha256Of (file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: MiB })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/**
 * The large file from every target, fairly: first one untimed download each
 * whose bytes are hashed and compared with the file (it also warms every
 * node's page cache alike), then `rounds` rounds of one timed download per
 * target, one after another, the order rotated each round so that no
 * target always follows the same one. MB/s per target per round.
 */
async function fileRounds (targets: readonly Target[], path: string, file: string, rounds: number): Promise<number[][]> {
  const timed = process.env.BENCH_CLIENT === 'curl' ? curlDownload : download
  const digest = await sha256Of(file)
  for (const target of targets) {
    const hash = createHash('sha256')
    await download(`${target.url}${path}`, (bytes) => hash.update(bytes))
    if (hash.digest('hex') !== digest) throw new Error(`${target.name} sent other bytes than the file's`)
  }
  const mbps = targets.map((): number[] => [])
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < targets.length; k++) {
      const i = (round + k) % targets.length
      const { bytes, seconds } = await timed(`${(targets[i] as Target).url}${path}`)
      if (bytes !== (await stat(file)).size) throw new Error(`${(targets[i] as Target).name}: ${bytes} bytes of the file's ${(await stat(file)).size}`)
      mbps[i]?.push(bytes / MiB / seconds)
    }
  }
  return mbps
}

export async function gatewayBench (work: string, options: { fileSize: number, seconds: number, rounds: number }): Promise<GatewayRow[]> {
  const kubo = await startKubo(await ensureKuboBinary())
  // As in production (compose sets NODE_ENV); every 404 would be a warning line otherwise.
  const env = { SECRET_KEY, NODE_ENV: 'production', LOG_LEVEL: 'error', MAX_UPLOAD_BYTES: String(8 * 1024 * MiB) }
  const servers: HeimdallProcess[] = []
  try {
    const overKuboEnv = { ...env, DATA_DIR: join(work, 'gw-kubo'), IPFS_API_URL: kubo.apiUrl, IPFS_GATEWAY_URL: kubo.gatewayUrl }
    const embeddedEnv = { ...env, DATA_DIR: join(work, 'gw-embedded') }
    let overKubo = await startHeimdallProcess(overKuboEnv)
    servers.push(overKubo)
    let embedded = await startHeimdallProcess(embeddedEnv)
    servers.push(embedded)

    const big = join(work, 'gw-2000.zip')
    const small = join(work, 'gw-100.zip')
    const file = join(work, 'gw-big.bin')
    await writeTextureBundle(big, 2000, 4096, 'gw-2000')
    await writeTextureBundle(small, 100, 4096, 'gw-100')
    await writeRandomFile(file, options.fileSize, 'gw-big')
    const paths: Record<string, string> = {}
    for (const server of [overKubo, embedded]) {
      const token = await newToken(server.url, 'bench')
      const bigDir = await upload(server, token, big, 'dir2000.zip')
      const smallDir = await upload(server, token, small, 'dir100.zip')
      const single = await upload(server, token, file, 'big.bin')
      const now = {
        bigFile: `/ipfs/${bigDir.at(-1)?.Hash ?? ''}/textures/t01234.png`,
        bigListing: `/ipfs/${bigDir.at(-1)?.Hash ?? ''}/textures/`,
        smallFile: `/ipfs/${smallDir.at(-1)?.Hash ?? ''}/textures/t00042.png`,
        file: `/ipfs/${single.at(-1)?.Hash ?? ''}/big.bin`
      }
      for (const [key, value] of Object.entries(now)) {
        if (paths[key] !== undefined && paths[key] !== value) throw new Error(`the two nodes gave different CIDs: ${paths[key]} and ${value}`)
        paths[key] = value
      }
    }
    // The gateway's memory is measured on fresh processes over the uploaded content: what the uploads
    // that set it up left in the heap is not the gateway's (their own peaks are in the upload bench).
    for (const server of servers.splice(0)) await server.stop()
    overKubo = await startHeimdallProcess(overKuboEnv)
    servers.push(overKubo)
    // As compose runs it: Kubo's flatfs folder shared read-only (another DATA_DIR, the same Kubo).
    const kuboFiles = await startHeimdallProcess({ ...overKuboEnv, DATA_DIR: join(work, 'gw-kubo-files'), IPFS_BLOCKS_DIR: join(kubo.repo, 'blocks') })
    servers.push(kuboFiles)
    embedded = await startHeimdallProcess(embeddedEnv)
    servers.push(embedded)
    // Start-up's own peak (the start-up collection walks every pinned DAG) is reported apart, then the
    // peaks start over: the figure compared with the goal is the tree's under the gateway's load.
    await new Promise((resolve) => setTimeout(resolve, 5000))
    const startPeaks = new Map(servers.map((server) => [server, server.treePeakRss()]))
    for (const server of servers) server.resetPeaks()
    const samplers = new Map(servers.map((server) => [server, new TreeRssSampler(server.child.pid ?? 0)]))
    const unknown = `/ipfs/${CID.createV1(raw.code, await sha256.digest(randomBytes(32))).toString()}`

    const targets: Target[] = [
      { name: 'Heimdall embedded', url: embedded.url, server: embedded },
      { name: 'Heimdall over Kubo, block files', url: kuboFiles.url, server: kuboFiles },
      { name: 'Heimdall over Kubo, its gateway', url: overKubo.url, server: overKubo },
      { name: 'Kubo gateway', url: kubo.gatewayUrl }
    ]
    const loads: Array<Pick<GatewayRow, 'bigDirReqs' | 'bigDirP99' | 'smallDirReqs' | 'smallDirP99'>> = []
    for (const target of targets) {
      // BENCH_SECONDS=0 skips the request loads: the large file alone.
      if (options.seconds <= 0) { loads.push({ bigDirReqs: Number.NaN, bigDirP99: Number.NaN, smallDirReqs: Number.NaN, smallDirP99: Number.NaN }); continue }
      const bigDir = await load(`${target.url}${paths.bigFile ?? ''}`, options.seconds)
      const smallDir = await load(`${target.url}${paths.smallFile ?? ''}`, options.seconds)
      loads.push({ bigDirReqs: bigDir.reqs, bigDirP99: bigDir.p99, smallDirReqs: smallDir.reqs, smallDirP99: smallDir.p99 })
      console.log(`  ${target.name}: ${bigDir.reqs.toFixed(0)} req/s (2,000-entry dir), ${smallDir.reqs.toFixed(0)} req/s (100-entry dir)`)
    }
    const files = await fileRounds(targets, paths.file ?? '', file, options.rounds)
    const kuboRounds = files[targets.findIndex((t) => t.server === undefined)] ?? []
    const rows: GatewayRow[] = []
    for (const [i, target] of targets.entries()) {
      const [listingP50, listingP99] = options.seconds <= 0 ? [Number.NaN, Number.NaN] : await latencies(`${target.url}${paths.bigListing ?? ''}`, 200, 30)
      const [notFoundP50, notFoundP99] = options.seconds <= 0 ? [Number.NaN, Number.NaN] : await latencies(`${target.url}${unknown}`, 404, 30)
      const rounds = files[i] ?? []
      const row: GatewayRow = {
        target: target.name,
        ...(loads[i] as Pick<GatewayRow, 'bigDirReqs' | 'bigDirP99' | 'smallDirReqs' | 'smallDirP99'>),
        fileMBps: spread(rounds),
        fileMBpsRounds: rounds,
        fileVsKubo: target.server === undefined ? null : spread(rounds.map((value, round) => value / (kuboRounds[round] ?? Number.NaN))),
        listingP50,
        listingP99,
        notFoundP50,
        notFoundP99,
        treePeakRssMB: target.server === undefined ? null : target.server.treePeakRss() / MiB,
        serverPeakRssMB: target.server === undefined ? null : target.server.peakRss() / MiB,
        treeAtOnceRssMB: target.server === undefined ? null : (samplers.get(target.server)?.stop() ?? Number.NaN) / MiB,
        treeStartPeakRssMB: target.server === undefined ? null : (startPeaks.get(target.server) ?? Number.NaN) / MiB
      }
      console.log(`  ${target.name}: large file ${rounds.map((r) => r.toFixed(0)).join(', ')} MB/s, listing ${row.listingP50.toFixed(1)} ms, 404 ${row.notFoundP50.toFixed(1)} ms`)
      rows.push(row)
    }
    printGatewayTable(rows)
    console.log(`  (bench process peak RSS ${(peakRss() / MiB).toFixed(0)} MB; ${options.seconds} s of load per req/s figure, 32 connections; large file: ${options.rounds} rounds, targets interleaved)`)
    return rows
  } finally {
    for (const server of servers) await server.stop()
    await kubo.stop()
  }
}

function printGatewayTable (rows: GatewayRow[]): void {
  const kubo = rows.find((r) => r.target === 'Kubo gateway')
  const ratio = (value: number, reference: number | undefined): string => (reference === undefined ? '' : `, ${(value / reference).toFixed(2)}×`)
  console.log('\n| workload | ' + rows.map((r) => r.target).join(' | ') + ' |')
  console.log('| --- |' + rows.map(() => ' ---: |').join(''))
  const line = (label: string, cell: (r: GatewayRow) => string): void => { console.log(`| ${label} | ${rows.map(cell).join(' | ')} |`) }
  const loaded = rows.some((r) => !Number.isNaN(r.bigDirReqs))
  if (loaded) line('small file in a 2,000-entry directory, 32 connections: req/s (p99)', (r) => `${r.bigDirReqs.toFixed(0)}${r === kubo ? '' : ratio(r.bigDirReqs, kubo?.bigDirReqs)} (p99 ${r.bigDirP99} ms)`)
  if (loaded) line('small file in a 100-entry directory, 32 connections: req/s (p99)', (r) => `${r.smallDirReqs.toFixed(0)}${r === kubo ? '' : ratio(r.smallDirReqs, kubo?.smallDirReqs)} (p99 ${r.smallDirP99} ms)`)
  const range = (s: Spread, digits: number): string => `${s.min.toFixed(digits)}–${s.max.toFixed(digits)}`
  line('one large file: MB/s, median (min–max of the rounds)', (r) => `${r.fileMBps.median.toFixed(0)} (${range(r.fileMBps, 0)})`)
  line('one large file: × Kubo\'s gateway in the same round, median (min–max)', (r) => (r.fileVsKubo === null ? '—' : `**${r.fileVsKubo.median.toFixed(2)}×** (${range(r.fileVsKubo, 2)})`))
  if (loaded) line('2,000-entry directory listing: p50 / p99', (r) => `${r.listingP50.toFixed(1)} / ${r.listingP99.toFixed(1)} ms`)
  if (loaded) line('unknown CID → 404: p50 / p99', (r) => `${r.notFoundP50.toFixed(1)} / ${r.notFoundP99.toFixed(1)} ms`)
  line('peak RSS under this load, Heimdall\'s process tree, summed (the server alone)', (r) => (r.treePeakRssMB === null ? '—' : `${r.treePeakRssMB.toFixed(0)} MB (${r.serverPeakRssMB?.toFixed(0) ?? '?'} MB)`))
  line('largest RSS of the process tree at one moment under this load (sampled every 100 ms)', (r) => (r.treeAtOnceRssMB === null ? '—' : `${r.treeAtOnceRssMB.toFixed(0)} MB`))
  line('peak RSS from start-up to the first request, process tree', (r) => (r.treeStartPeakRssMB === null ? '—' : `${r.treeStartPeakRssMB.toFixed(0)} MB`))
}
