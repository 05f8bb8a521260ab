import { spawn } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const SERVER = fileURLToPath(new URL('./pglite-server.ts', import.meta.url))
/** The socket file name `pg` looks for in a socket directory for port 5432. */
const SOCKET_NAME = '.s.PGSQL.5432'
const START_TIMEOUT_MS = 120_000

export interface EmbeddedPostgres {
  /** What `pg` connects with: the socket directory as host. */
  connection: { host: string, port: number, user: string, database: string }
  stop: () => Promise<void>
}

/**
 * Starts PGlite with its files in `dir`, in a process of its own. PGlite's
 * WASM heap is 370–660 MB resident (over 1 GB while it runs initdb on first
 * start); kept out of the web process, it costs that process nothing, and
 * Heimdall uses one driver, `pg`, for both databases.
 */
export async function startEmbeddedPostgres (dir: string): Promise<EmbeddedPostgres> {
  const socketDir = join(dir, 'socket')
  await mkdir(join(dir, 'data'), { recursive: true })
  await mkdir(socketDir, { recursive: true })
  const child = spawn(process.execPath, [SERVER, join(dir, 'data'), join(socketDir, SOCKET_NAME)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('the embedded PostgreSQL (PGlite) did not start in time')) }, START_TIMEOUT_MS)
    child.once('message', () => { clearTimeout(timer); resolve() })
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`the embedded PostgreSQL (PGlite) exited with ${code ?? 'a signal'} while starting`)) })
  })
  // Never hold the parent open; the child follows the parent out through the IPC channel.
  child.unref()
  child.channel?.unref()
  return {
    connection: { host: socketDir, port: 5432, user: 'postgres', database: 'postgres' },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        // Unref'd, the child would not keep this process alive while we wait for it.
        child.ref()
        child.kill('SIGTERM')
        await exited
      }
    }
  }
}
