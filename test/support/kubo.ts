import { execFile, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { ImportProfileName } from '../../src/ipfs/import-profiles.ts'
import { goBuild } from './go-build.ts'

const run = promisify(execFile)

export const KUBO_VERSION = 'v0.42.0'
const CACHE = fileURLToPath(new URL(`../../.cache/kubo/${KUBO_VERSION}/`, import.meta.url))
export const KUBO_BIN = join(CACHE, 'ipfs')

/** A real Kubo, built from the Go module proxy (see goBuild; Kubo ≥ 0.40 refuses `go install pkg@version`). */
export async function ensureKuboBinary (): Promise<string> {
  return goBuild('github.com/ipfs/kubo', KUBO_VERSION, './cmd/ipfs', KUBO_BIN)
}

export interface KuboNode {
  /** RPC API, e.g. http://127.0.0.1:40123 */
  apiUrl: string
  /** Its HTTP gateway on loopback, which never fetches: Gateway.NoFetch, and the daemon offline. */
  gatewayUrl: string
  /** Its repository (IPFS_PATH); its flatfs blocks are in `blocks/`. */
  repo: string
  /** Its peer id. */
  peerId: string
  /** The daemon's process (for tests that stop it with SIGSTOP). */
  pid: number
  /** Where its swarm listens (loopback), each ending in /p2p/<peer id>; empty offline. */
  swarm: string[]
  /** What the daemon has printed so far (its log, with GOLOG_LOG_LEVEL set in the environment). */
  output: () => string
  /** Runs the ipfs CLI against this node's repo (and so its daemon). */
  cli: (...args: string[]) => Promise<string>
  stop: () => Promise<void>
}

export interface KuboOptions {
  /**
   * A daemon on the network, but a network of loopback only: the test
   * profile's swarm on 127.0.0.1, no bootstrap peers, no mDNS, and
   * `routing` (default `none`: no DHT; `dhtserver`: the DHTs, whose only
   * peers are the ones the test connects it to). It dials only what it is
   * told to (`ipfs swarm connect`, Peering) or what its DHT peers name.
   */
  online?: boolean
  routing?: 'none' | 'dhtserver'
  /** Its bootstrap peers (loopback addresses of other test nodes); none by default. */
  bootstrap?: string[]
}

/**
 * A Kubo daemon on loopback: `ipfs init --profile=test,<profile>` (loopback
 * addresses, no bootstrap peers, no discovery), then `ipfs daemon --offline`
 * (unless `online`, see KuboOptions). It dials nothing.
 */
export async function startKubo (bin: string, profile: ImportProfileName = 'unixfs-v1-2025', options: KuboOptions = {}): Promise<KuboNode> {
  const repo = await mkdtemp(join(tmpdir(), 'heimdall-kubo-'))
  const env = { ...process.env, IPFS_PATH: repo }
  const cli = async (...args: string[]): Promise<string> => (await run(bin, args, { env, maxBuffer: 64 * 1024 * 1024 })).stdout
  await cli('init', `--profile=test,${profile}`)
  await cli('config', '--json', 'Routing.Type', JSON.stringify(options.online === true ? options.routing ?? 'none' : 'none'))
  await cli('config', '--json', 'Gateway.NoFetch', 'true')
  if (options.bootstrap !== undefined) {
    if (!options.bootstrap.every((a) => a.startsWith('/ip4/127.0.0.1/'))) throw new Error('test Kubo nodes bootstrap from loopback only')
    await cli('config', '--json', 'Bootstrap', JSON.stringify(options.bootstrap))
  }
  const child = spawn(bin, options.online === true ? ['daemon'] : ['daemon', '--offline'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  const deadline = Date.now() + 60_000
  let apiUrl: string | undefined
  let gatewayUrl: string | undefined
  while (apiUrl === undefined || gatewayUrl === undefined) {
    if (child.exitCode !== null) throw new Error(`kubo exited with ${child.exitCode}:\n${output}`)
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`kubo did not start:\n${output}`) }
    if (output.includes('Daemon is ready')) {
      const multiaddr = (await readFile(join(repo, 'api'), 'utf8')).trim()
      const match = /^\/ip4\/(127\.0\.0\.1)\/tcp\/(\d+)/.exec(multiaddr)
      if (match === null) throw new Error(`kubo's API is not on loopback: ${multiaddr}`)
      apiUrl = `http://${match[1]}:${match[2]}`
      const gateway = /Gateway server listening on \/ip4\/(127\.0\.0\.1)\/tcp\/(\d+)/.exec(output)
      if (gateway === null) throw new Error(`kubo's gateway is not on loopback:\n${output}`)
      gatewayUrl = `http://${gateway[1]}:${gateway[2]}`
    } else {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  const peerId = (await cli('id', '-f', '<id>')).trim()
  const swarm = options.online === true ? (await cli('swarm', 'addrs', 'local', '--id')).split('\n').map((line) => line.trim()).filter((line) => line.startsWith('/ip4/127.0.0.1/tcp/')) : []
  return {
    apiUrl,
    gatewayUrl,
    peerId,
    pid: child.pid ?? 0,
    swarm,
    output: () => output,
    repo,
    cli,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await exited
      }
      await rm(repo, { recursive: true, force: true })
    }
  }
}
