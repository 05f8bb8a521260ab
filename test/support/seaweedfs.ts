import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './free-port.ts'
import { goBuild } from './go-build.ts'


/** SeaweedFS has no tagged Go module versions; this pseudo-version is the commit the tests run against. */
export const SEAWEEDFS_VERSION = 'v0.0.0-20261109003541-7506e5f91cd6'
const CACHE = fileURLToPath(new URL('../../.cache/seaweedfs/', import.meta.url))
export const SEAWEEDFS_BIN = join(CACHE, 'weed')

/** A real SeaweedFS (`weed`), built from the Go module proxy like Kubo (see goBuild). */
export async function ensureSeaweedBinary (): Promise<string> {
  return goBuild('github.com/seaweedfs/seaweedfs', SEAWEEDFS_VERSION, './weed', SEAWEEDFS_BIN)
}

export interface SeaweedVolume {
  /** Its HTTP address, e.g. http://127.0.0.1:40123 (GET /<fid> reads a needle). */
  url: string
  /** SIGTERM, and waits for it to exit. */
  stop: () => Promise<void>
  /** SIGKILL of this one volume server, for fault tests. */
  kill: () => void
}

export interface SeaweedCluster {
  /** The weed binary it runs (createBucket runs its shell). */
  bin: string
  /** The S3 gateway, e.g. http://127.0.0.1:40123 (path-style buckets). */
  endpoint: string
  region: string
  accessKeyId: string
  secretAccessKey: string
  /** The master's HTTP API, e.g. http://127.0.0.1:40123 (/dir/assign, /dir/lookup). */
  masterUrl: string
  /** The filer's HTTP API (buckets are the folders under /buckets/). */
  filerUrl: string
  /** The master's address as `weed shell -master` takes it: host:port.grpcPort. */
  masterAddress: string
  /** The filer's address as `weed shell -filer` takes it: host:port.grpcPort. */
  filerAddress: string
  volumes: SeaweedVolume[]
  /** What every process has printed so far, each line prefixed by its name. */
  output: () => string
  /** Stops every process and removes the folder. */
  stop: () => Promise<void>
}

export interface SeaweedOptions {
  /** How many volume servers (default 2, the fewest replication 001 needs). */
  volumeServers?: number
  /** Default 001: each needle on two volume servers of the same rack. */
  replication?: string
  timeoutMs?: number
}

interface Process { name: string, child: ChildProcess, exited: Promise<unknown> }

/** host:port.grpcPort: SeaweedFS otherwise guesses the gRPC port as port + 10000, past 65535 for a high free port. */
async function address (): Promise<{ port: number, grpc: number, hostPort: string }> {
  const port = await freePort()
  const grpc = await freePort()
  return { port, grpc, hostPort: `127.0.0.1:${port}.${grpc}` }
}

/**
 * A SeaweedFS cluster on loopback, as separate processes in a fresh folder:
 * one master (replication 001 by default, telemetry off, single-master Raft),
 * two volume servers in the same data centre and rack, one filer, and an S3
 * gateway in front of it whose only identity is a random admin key pair.
 * Takes about 15 s, most of it the filer's membership wait. Resolves once
 * the S3 gateway answers, the filer has joined the master's lock ring (S3
 * writes take a lock) and the master can assign a file id with that
 * replication (both volume servers registered). Nothing dials out of loopback:
 * no metrics push, no telemetry, no Iceberg/Lance/IAM side ports.
 */
export async function startSeaweed (bin: string, options: SeaweedOptions = {}): Promise<SeaweedCluster> {
  const replication = options.replication ?? '001'
  const timeoutMs = options.timeoutMs ?? 60_000
  const deadline = Date.now() + timeoutMs
  const dir = await mkdtemp(join(tmpdir(), 'heimdall-seaweedfs-'))
  const processes: Process[] = []
  let output = ''
  const spawnWeed = (name: string, args: string[]): Process => {
    // cwd is the folder: SeaweedFS reads security.toml / filer.toml from '.' first.
    const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    const collect = (chunk: Buffer): void => { output += chunk.toString().replace(/^(?=.)/gm, `[${name}] `) }
    child.stdout?.on('data', collect)
    child.stderr?.on('data', collect)
    const exited = new Promise((resolve) => child.once('exit', resolve))
    const proc = { name, child, exited }
    processes.push(proc)
    return proc
  }
  const stopProcess = async (proc: Process): Promise<void> => {
    if (proc.child.exitCode === null && proc.child.signalCode === null) {
      proc.child.kill('SIGTERM')
      // The folder is thrown away, so there is nothing to wait for: a filer whose volume server was killed retries its metadata-log flush for good.
      const timer = setTimeout(() => proc.child.kill('SIGKILL'), 2_000)
      await proc.exited
      clearTimeout(timer)
    }
  }
  const stop = async (): Promise<void> => {
    // Gateway first, master last, so nothing logs a lost master on the way down.
    for (const proc of [...processes].reverse()) await stopProcess(proc)
    await rm(dir, { recursive: true, force: true })
  }

  try {
    const master = await address()
    const masterDir = join(dir, 'master')
    await mkdir(masterDir)
    // A fresh master holds volume id allocation for a warm-up window (~10 s) so veteran volume servers can report; here there are none.
    await writeFile(join(dir, 'master.toml'), '[master.volume_growth]\nallocation_deferral = "0s"\n')
    spawnWeed('master', [
      'master', '-ip=127.0.0.1', '-ip.bind=127.0.0.1', `-port=${master.port}`, `-port.grpc=${master.grpc}`,
      `-mdir=${masterDir}`, '-peers=none', `-defaultReplication=${replication}`, '-volumeSizeLimitMB=64',
      '-telemetry=false', '-heartbeatInterval=200ms'
    ])
    // The filer sleeps 7 s after a failed first call to the master, so everything else waits for the master's leadership.
    await waitFor('the master to lead', processes, deadline, async () => {
      const answer = await fetch(`http://127.0.0.1:${master.port}/cluster/status`, { signal: AbortSignal.timeout(2000) })
      const status = await answer.text()
      return (JSON.parse(status) as { IsLeader?: boolean }).IsLeader === true ? true : status
    })
    const volumes: SeaweedVolume[] = []
    for (let i = 0; i < (options.volumeServers ?? 2); i++) {
      const volume = await address()
      const volumeDir = join(dir, `volume${i}`)
      await mkdir(volumeDir)
      const proc = spawnWeed(`volume${i}`, [
        'volume', '-ip=127.0.0.1', '-ip.bind=127.0.0.1', `-port=${volume.port}`, `-port.grpc=${volume.grpc}`,
        `-dir=${volumeDir}`, '-max=100', `-master=${master.hostPort}`, '-dataCenter=dc1', '-rack=rack1',
        '-preStopSeconds=0'
      ])
      volumes.push({
        url: `http://127.0.0.1:${volume.port}`,
        stop: async () => { await stopProcess(proc) },
        kill: () => { proc.child.kill('SIGKILL') }
      })
    }
    const filer = await address()
    const s3Port = await freePort()
    const s3Grpc = await freePort()
    const accessKeyId = `heimdall${randomBytes(8).toString('hex')}`
    const secretAccessKey = randomBytes(24).toString('base64url')
    const s3Config = join(dir, 's3.json')
    await writeFile(s3Config, JSON.stringify({
      identities: [{
        name: 'heimdall',
        credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }],
        actions: ['Admin', 'Read', 'Write', 'List', 'Tagging']
      }]
    }))
    const filerDir = join(dir, 'filer')
    await mkdir(filerDir)
    spawnWeed('filer', [
      'filer', '-ip=127.0.0.1', '-ip.bind=127.0.0.1', `-port=${filer.port}`, `-port.grpc=${filer.grpc}`,
      `-master=${master.hostPort}`, `-defaultStoreDir=${filerDir}`, `-localSocket=${join(dir, 'filer.sock')}`,
      // The filer's IAM gRPC service serves the same identities as the gateway.
      `-s3.config=${s3Config}`
    ])
    // Its own process rather than `weed filer -s3`: the embedded gateway dials the filer's gRPC at port + 10000, ignoring -port.grpc.
    spawnWeed('s3', [
      's3', '-ip=127.0.0.1', '-ip.bind=127.0.0.1', `-port=${s3Port}`, `-port.grpc=${s3Grpc}`,
      `-filer=${filer.hostPort}`, `-config=${s3Config}`, `-localSocket=${join(dir, 's3.sock')}`,
      '-port.iceberg=0', '-port.lance=0', '-iam=false'
    ])

    const cluster: SeaweedCluster = {
      bin,
      endpoint: `http://127.0.0.1:${s3Port}`,
      region: 'us-east-1',
      accessKeyId,
      secretAccessKey,
      masterUrl: `http://127.0.0.1:${master.port}`,
      filerUrl: `http://127.0.0.1:${filer.port}`,
      masterAddress: master.hostPort,
      filerAddress: filer.hostPort,
      volumes,
      output: () => output,
      stop
    }
    await Promise.all([
      waitFor('the S3 gateway', processes, deadline, async () => {
        await fetch(`${cluster.endpoint}/`, { signal: AbortSignal.timeout(2000) })
        return true as const
      }),
      // A standalone filer on a fresh store announces itself to the master only after 10 s of empty
      // membership scans; until then it has no lock ring, and an S3 write waits for one.
      waitFor('the filer to join the lock ring', processes, deadline, () => {
        return /^\[filer\] .*LockRing: applying master ring update/m.test(output) ? true : 'no ring yet'
      }),
      waitFor(`a file id with replication ${replication}`, processes, deadline, async () => {
        const answer = await fetch(`${cluster.masterUrl}/dir/assign?replication=${replication}`, { signal: AbortSignal.timeout(5000) })
        const assigned = await answer.text()
        return typeof (JSON.parse(assigned) as { fid?: unknown }).fid === 'string' ? true : assigned
      })
    ])
    return cluster
  } catch (err) {
    await stop()
    throw new Error(`SeaweedFS did not start: ${String(err)}\n${output}`, { cause: err })
  }
}

/**
 * Polls `check` (true, or what it saw instead) every 100 ms until it is true,
 * failing early when one of the processes has exited.
 */
async function waitFor (what: string, processes: Process[], deadline: number, check: () => Promise<true | string> | true | string): Promise<void> {
  let last: string
  for (;;) {
    const dead = processes.find((p) => p.child.exitCode !== null || p.child.signalCode !== null)
    if (dead !== undefined) throw new Error(`weed ${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode}) while waiting for ${what}`)
    try {
      const seen = await check()
      if (seen === true) return
      last = seen
    } catch (err) { last = String(err) }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Creates a bucket with `weed shell`'s s3.bucket.create (no S3 client needed). */
export async function createBucket (cluster: SeaweedCluster, name: string): Promise<void> {
  const child = spawn(cluster.bin, ['shell', `-master=${cluster.masterAddress}`, `-filer=${cluster.filerAddress}`], { stdio: ['pipe', 'pipe', 'pipe'] })
  let text = ''
  child.stdout.on('data', (chunk: Buffer) => { text += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { text += chunk.toString() })
  child.stdin.end(`s3.bucket.create -name ${name}\nexit\n`)
  const code = await new Promise((resolve) => child.once('exit', resolve))
  if (code !== 0) throw new Error(`weed shell s3.bucket.create ${name} exited with ${String(code)}:\n${text}`)
  const listing = await fetch(`${cluster.filerUrl}/buckets/${name}/`, { headers: { accept: 'application/json' } })
  if (!listing.ok) throw new Error(`bucket ${name} is not on the filer after s3.bucket.create (${listing.status}):\n${text}`)
}
