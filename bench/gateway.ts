/**
 * The gateway part of `npm run bench` (alone: `npm run bench -- --only gateway`):
 * the same content read through Heimdall on its embedded node, Heimdall over
 * Kubo (bytes through Kubo's private gateway), and Kubo's own gateway, in one
 * run, with autocannon as the load. Kubo is started here, offline, on
 * loopback; Heimdall over Kubo writes the content into it, so all three
 * serve the same CIDs. Ratios are against Kubo's gateway.
 */
import { randomBytes } from 'node:crypto'
import { get } from 'node:http'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { writeRandomFile, writeTextureBundle } from '../test/support/big-inputs.ts'
import { newToken, startHeimdallProcess, uploadStream, type HeimdallProcess } from '../test/support/heimdall-process.ts'
import { ensureKuboBinary, startKubo } from '../test/support/kubo.ts'
import { peakRss } from './workers/peak-rss.ts'

const MiB = 1024 * 1024
const SECRET_KEY = 'bench-secret-key-bench-secret-key-0123'

interface Target { name: string, url: string, server?: HeimdallProcess }
export interface GatewayRow { target: string, bigDirReqs: number, bigDirP99: number, smallDirReqs: number, smallDirP99: number, fileMBps: number, listingP50: number, listingP99: number, notFoundP50: number, notFoundP99: number, treePeakRssMB: number | null, serverPeakRssMB: number | null }

async function load (url: string, seconds: number): Promise<{ reqs: number, p99: number }> {
  const result = await autocannon({ url, connections: 32, duration: seconds })
  const failed = result.non2xx + result.errors + result.timeouts
  if (failed > 0) throw new Error(`${url}: ${failed} of ${result.requests.total} requests failed`)
  return { reqs: result.requests.average, p99: result.latency.p99 }
}

/** One download of the whole file, every byte read and dropped: MB/s. */
async function download (url: string, expected: number): Promise<number> {
  const started = process.hrtime.bigint()
  const bytes = await new Promise<number>((resolve, reject) => {
    get(url, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`${url}: ${res.statusCode ?? 0}`)); return }
      let n = 0
      res.on('data', (chunk: Buffer) => { n += chunk.length })
      res.once('end', () => { resolve(n) })
      res.once('error', reject)
    }).once('error', reject)
  })
  if (bytes !== expected) throw new Error(`${url}: ${bytes} of ${expected} bytes`)
  return bytes / MiB / (Number(process.hrtime.bigint() - started) / 1e9)
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

/** Peak RSS of a Heimdall process and every process it started (the embedded PostgreSQL's included), summed. */
function treePeak (server: HeimdallProcess): number {
  return server.treePeakRss()
}

export async function gatewayBench (work: string, options: { fileSize: number, seconds: number }): Promise<GatewayRow[]> {
  const kubo = await startKubo(await ensureKuboBinary())
  // As in production (compose sets NODE_ENV); every 404 would be a warning line otherwise.
  const env = { SECRET_KEY, NODE_ENV: 'production', LOG_LEVEL: 'error', MAX_UPLOAD_BYTES: String(8 * 1024 * MiB) }
  const servers: HeimdallProcess[] = []
  try {
    const overKubo = await startHeimdallProcess({ ...env, DATA_DIR: join(work, 'gw-kubo'), IPFS_API_URL: kubo.apiUrl, IPFS_GATEWAY_URL: kubo.gatewayUrl })
    servers.push(overKubo)
    const embedded = await startHeimdallProcess({ ...env, DATA_DIR: join(work, 'gw-embedded') })
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
    for (const server of servers) server.resetPeaks() // what the uploads that set up the content took is not the gateway's
    const unknown = `/ipfs/${CID.createV1(raw.code, await sha256.digest(randomBytes(32))).toString()}`

    const targets: Target[] = [
      { name: 'Heimdall embedded', url: embedded.url, server: embedded },
      { name: 'Heimdall over Kubo', url: overKubo.url, server: overKubo },
      { name: 'Kubo gateway', url: kubo.gatewayUrl }
    ]
    const rows: GatewayRow[] = []
    for (const target of targets) {
      const u = (path: string | undefined): string => `${target.url}${path ?? ''}`
      const bigDir = await load(u(paths.bigFile), options.seconds)
      const smallDir = await load(u(paths.smallFile), options.seconds)
      const fileMBps = Math.max(await download(u(paths.file), options.fileSize), await download(u(paths.file), options.fileSize))
      const [listingP50, listingP99] = await latencies(u(paths.bigListing), 200, 30)
      const [notFoundP50, notFoundP99] = await latencies(u(unknown), 404, 30)
      const row = { target: target.name, bigDirReqs: bigDir.reqs, bigDirP99: bigDir.p99, smallDirReqs: smallDir.reqs, smallDirP99: smallDir.p99, fileMBps, listingP50, listingP99, notFoundP50, notFoundP99, treePeakRssMB: target.server === undefined ? null : treePeak(target.server) / MiB, serverPeakRssMB: target.server === undefined ? null : target.server.peakRss() / MiB }
      console.log(`  ${target.name}: ${row.bigDirReqs.toFixed(0)} req/s (2,000-entry dir), ${row.smallDirReqs.toFixed(0)} req/s (100-entry dir), ${row.fileMBps.toFixed(0)} MB/s, listing ${row.listingP50.toFixed(1)} ms, 404 ${row.notFoundP50.toFixed(1)} ms`)
      rows.push(row)
    }
    printGatewayTable(rows)
    console.log(`  (bench process peak RSS ${(peakRss() / MiB).toFixed(0)} MB; ${options.seconds} s of load per req/s figure, 32 connections)`)
    return rows
  } finally {
    for (const server of servers) await server.stop()
    await kubo.stop()
  }
}

function printGatewayTable (rows: GatewayRow[]): void {
  const kubo = rows.find((r) => r.target === 'Kubo gateway')
  const ratio = (value: number, reference: number | undefined): string => (reference === undefined ? '' : ` (${(value / reference).toFixed(2)}×)`)
  console.log('\n| workload | ' + rows.map((r) => r.target).join(' | ') + ' |')
  console.log('| --- |' + rows.map(() => ' ---: |').join(''))
  const line = (label: string, cell: (r: GatewayRow) => string): void => { console.log(`| ${label} | ${rows.map(cell).join(' | ')} |`) }
  line('small file in a 2,000-entry directory, 32 connections: req/s (p99)', (r) => `${r.bigDirReqs.toFixed(0)}${r === kubo ? '' : ratio(r.bigDirReqs, kubo?.bigDirReqs)} (p99 ${r.bigDirP99} ms)`)
  line('small file in a 100-entry directory, 32 connections: req/s (p99)', (r) => `${r.smallDirReqs.toFixed(0)}${r === kubo ? '' : ratio(r.smallDirReqs, kubo?.smallDirReqs)} (p99 ${r.smallDirP99} ms)`)
  line('one large file: MB/s', (r) => `${r.fileMBps.toFixed(0)}${r === kubo ? '' : ratio(r.fileMBps, kubo?.fileMBps)}`)
  line('2,000-entry directory listing: p50 / p99', (r) => `${r.listingP50.toFixed(1)} / ${r.listingP99.toFixed(1)} ms`)
  line('unknown CID → 404: p50 / p99', (r) => `${r.notFoundP50.toFixed(1)} / ${r.notFoundP99.toFixed(1)} ms`)
  line('peak RSS under this load, Heimdall\'s process tree (the server alone)', (r) => (r.treePeakRssMB === null ? '—' : `${r.treePeakRssMB.toFixed(0)} MB (${r.serverPeakRssMB?.toFixed(0) ?? '?'} MB)`))
}
