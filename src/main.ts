import { once } from 'node:events'
import type { Server } from 'node:http'
import module from 'node:module'
import { resolve } from 'node:path'
import { config as loadDotenv } from 'dotenv'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { controlSocketPath, listenControlSocket } from './control-socket.ts'
import { openDatabase } from './db/database.ts'
import { DatabaseInUseError } from './db/embedded-postgres.ts'
import { RepoLockedError } from './ipfs/repo-lock.ts'
import { continueWhenRead } from './http/expect-continue.ts'
import { closeLingering } from './http/middleware/lingering-close.ts'
import { createLogger } from './logger.ts'

const MIN_NODE_MAJOR = 24
const SHUTDOWN_GRACE_MS = 10_000

function requireNode (): void {
  const major = Number(process.versions.node.split('.')[0])
  if (major < MIN_NODE_MAJOR) {
    console.error(`Heimdall needs Node.js ${MIN_NODE_MAJOR} or newer (this is ${process.version}); run it with \`npm start\`, which uses the Node.js that \`npm ci\` installed.`)
    process.exit(1)
  }
}

function readConfig (): Config {
  loadDotenv({ quiet: true })
  try {
    return loadConfig(process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const issue of err.issues) console.error(`configuration error: ${issue}`)
      process.exit(1)
    }
    throw err
  }
}

async function main (): Promise<void> {
  requireNode()
  const config = readConfig()
  const logger = createLogger(config.logLevel)
  // The database starts (on an empty DATA_DIR: a copy of the template cluster, or initdb, in a process of its own started
  // synchronously) while the rest of Heimdall's modules load: that import holds the event loop for most of a second.
  const database = openDatabase({ ...config, dataDir: resolve(config.dataDir) }, { log: logger })
  database.catch(() => {})
  const { openHeimdall } = await import('./heimdall.ts')
  const heimdall = await openHeimdall(config, logger, { database }).catch((err: unknown) => {
    if (err instanceof ConfigError) {
      for (const issue of err.issues) console.error(`configuration error: ${issue}`)
      process.exit(1)
    }
    throw err
  })

  const server: Server = heimdall.app.listen(config.port, config.host)
  continueWhenRead(server, heimdall.app)
  // Large uploads take as long as they take (a body that stops arriving is ended by BODY_IDLE_TIMEOUT_SECONDS, in the app).
  server.requestTimeout = 0
  server.headersTimeout = 60_000
  await once(server, 'listening')
  // What bin/start.js's compile cache gathered while starting is written now, not only at exit (kill -9 skips that).
  module.flushCompileCache()
  // `npm run gc` and `npm run import-car` ask here: this process holds the embedded repo.
  const control = await listenControlSocket(controlSocketPath(config.dataDir), { gc: async (options) => heimdall.collector.run(options), importCar: heimdall.importCar, unpin: heimdall.unpinOperator })
  logger.info({ url: config.publicUrl, host: config.host, port: config.port, database: heimdall.database.kind, ipfs: heimdall.backend.kind }, 'Heimdall is listening')

  let stopping = false
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'shutting down')
    const force = setTimeout(() => { server.closeAllConnections() }, SHUTDOWN_GRACE_MS)
    force.unref()
    server.closeIdleConnections()
    // Their answers are sent: only a refused client's leftover body would hold the stop.
    closeLingering()
    await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    clearTimeout(force)
    await new Promise<void>((resolve) => { control.close(() => { resolve() }) })
    await heimdall.close()
    logger.info('stopped')
    process.exit(0)
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => { void shutdown(signal) })
  }
}

main().catch((err: unknown) => {
  // Another process holding this DATA_DIR is an operator's situation, said in one line; anything else with its stack.
  if (err instanceof DatabaseInUseError || err instanceof RepoLockedError) console.error(`Heimdall failed to start: ${err.message}`)
  else console.error('Heimdall failed to start:', err)
  process.exit(1)
})
