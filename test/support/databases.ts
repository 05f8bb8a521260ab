import { afterAll, inject } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openPostgres, type Database } from '../../src/db/database.ts'
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts'
import { createScratchDatabase } from './postgres-server.ts'

export interface DatabaseFactory {
  name: 'embedded PostgreSQL' | 'PostgreSQL'
  /** False only when no PostgreSQL server could be started outside CI (the setup said so loudly). */
  available: boolean
  /** A fresh, empty, un-migrated database, its URL (for more connections to it) and the function that disposes of it. */
  open: () => Promise<{ db: Database, url: string, dispose: () => Promise<void> }>
}

/**
 * One embedded server per test file (its initdb takes seconds), started when
 * first asked for, with a scratch database per test as on the PostgreSQL
 * server. test/db/embedded-postgres.test.ts covers openEmbedded itself.
 */
let embedded: Promise<{ url: string, stop: () => Promise<void> }> | undefined
function embeddedServer (): Promise<{ url: string, stop: () => Promise<void> }> {
  embedded ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'heimdall-embedded-'))
    const server = await startEmbeddedPostgres(join(dir, 'postgres'))
    return {
      url: `postgres://postgres@${encodeURIComponent(server.connection.host)}/postgres`,
      stop: async () => { await server.stop(); await rm(dir, { recursive: true, force: true }) }
    }
  })()
  return embedded
}

export function databaseFactories (): DatabaseFactory[] {
  const postgresUrl = inject('postgresUrl')
  afterAll(async () => {
    const started = embedded
    embedded = undefined
    if (started !== undefined) await (await started).stop()
  })
  return [
    {
      name: 'embedded PostgreSQL',
      available: true,
      open: async () => {
        const scratch = await createScratchDatabase((await embeddedServer()).url)
        const db = openPostgres(scratch.url)
        return { db, url: scratch.url, dispose: async () => { await db.close(); await scratch.drop() } }
      }
    },
    {
      name: 'PostgreSQL',
      available: postgresUrl !== '',
      open: async () => {
        const scratch = await createScratchDatabase(postgresUrl)
        const db = openPostgres(scratch.url)
        return { db, url: scratch.url, dispose: async () => { await db.close(); await scratch.drop() } }
      }
    }
  ]
}
