import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { chown, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { waitForPostgres } from '../../src/db/embedded-postgres.ts'
import { freePort } from './free-port.ts'

export interface PostgresServer {
  /** Connection URL of the `postgres` database as superuser `heimdall`. */
  url: string
  /** Stops the server and removes its files. */
  stop: () => Promise<void>
  /** Stops the server (fast shutdown) and keeps its files, for an outage test. */
  pause: () => Promise<void>
  /** Starts it again on the same files and port after `pause`. */
  resume: () => Promise<void>
}

/** Finds `initdb` and `postgres`: $PG_BIN, else the newest Debian install, else $PATH. */
export function findPostgresBinaries (): { initdb: string, postgres: string } | undefined {
  const candidates: string[] = []
  if (process.env.PG_BIN !== undefined) candidates.push(process.env.PG_BIN)
  const debian = '/usr/lib/postgresql'
  if (existsSync(debian)) {
    for (const version of readdirSync(debian).sort((a, b) => Number(b) - Number(a))) candidates.push(join(debian, version, 'bin'))
  }
  candidates.push(...(process.env.PATH ?? '').split(':'))
  for (const dir of candidates) {
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))) {
      return { initdb: join(dir, 'initdb'), postgres: join(dir, 'postgres') }
    }
  }
  return undefined
}

/** PostgreSQL refuses to run as root; as root we run it as the `postgres` system user. */
function runAs (): { uid: number, gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
    return { uid, gid }
  } catch (err) {
    throw new Error('running as root and there is no `postgres` user to run PostgreSQL as', { cause: err })
  }
}

/** Starts a throw-away PostgreSQL server on 127.0.0.1 with its files in a temp dir. */
export async function startPostgresServer (): Promise<PostgresServer> {
  const binaries = findPostgresBinaries()
  if (binaries === undefined) throw new Error('PostgreSQL server binaries (initdb, postgres) not found; install Debian\'s `postgresql` or set PG_BIN')
  const dir = await mkdtemp(join(tmpdir(), 'heimdall-pg-'))
  const user = runAs()
  if (user !== undefined) await chown(dir, user.uid, user.gid)
  const dataDir = join(dir, 'data')
  execFileSync(binaries.initdb, ['-D', dataDir, '-U', 'heimdall', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-locale'], { ...user, stdio: 'pipe' })
  const port = await freePort()
  const url = `postgres://heimdall@127.0.0.1:${port}/postgres`
  let child: ChildProcess | undefined
  const launch = async (): Promise<void> => {
    let output = ''
    const server = spawn(binaries.postgres, [
      '-D', dataDir, '-p', String(port), '-h', '127.0.0.1', '-k', dir,
      '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200'
    ], { ...user, stdio: ['ignore', 'pipe', 'pipe'] })
    child = server
    server.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    server.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    try {
      await waitForPostgres({ connectionString: url }, { name: 'postgres', exited: () => server.exitCode !== null, log: () => output, timeoutMs: 30_000, intervalMs: 100 })
    } catch (err) {
      server.kill('SIGKILL')
      throw err
    }
  }
  const halt = async (): Promise<void> => {
    const server = child
    if (server === undefined || server.exitCode !== null || server.signalCode !== null) return
    const exited = new Promise((resolve) => server.once('exit', resolve))
    server.kill('SIGINT') // fast shutdown
    await exited
  }
  try {
    await launch()
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  return {
    url,
    stop: async () => {
      await halt()
      await rm(dir, { recursive: true, force: true })
    },
    pause: halt,
    resume: launch
  }
}

/** Creates a fresh database on the server; returns its URL and a function that drops it. */
export async function createScratchDatabase (serverUrl: string): Promise<{ url: string, drop: () => Promise<void> }> {
  const name = `heimdall_test_${Math.random().toString(36).slice(2, 10)}`
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: serverUrl })
      await client.connect()
      await client.query(`drop database if exists ${name} with (force)`)
      await client.end()
    }
  }
}
