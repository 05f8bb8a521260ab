/**
 * The embedded database's own process: PGlite (PostgreSQL compiled to WASM)
 * served over the PostgreSQL wire protocol on a Unix socket, so Heimdall
 * talks to it with `pg` exactly as to a PostgreSQL server. Started and
 * stopped by embedded-postgres.ts; exits when its parent goes away.
 *
 *   node src/db/pglite-server.ts <data dir> <socket path>
 */
import { rm } from 'node:fs/promises'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const [dataDir, socketArg] = process.argv.slice(2)
if (dataDir === undefined || socketArg === undefined) throw new Error('usage: pglite-server.ts <data dir> <socket path>')
const socketPath: string = socketArg

const db = await PGlite.create(dataDir)
await rm(socketPath, { force: true })
const server = new PGLiteSocketServer({ db, path: socketPath })
await server.start()

let stopping = false
async function stop (): Promise<void> {
  if (stopping) return
  stopping = true
  await server.stop()
  await db.close()
  await rm(socketPath, { force: true })
  process.exit(0)
}
process.once('SIGTERM', () => { void stop() })
process.once('SIGINT', () => { void stop() })
// The IPC channel closes when the parent exits, however it exits.
process.once('disconnect', () => { void stop() })
process.send?.('ready')
