import { inject } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openEmbedded, openPostgres, type Database } from '../../src/db/database.ts'
import { createScratchDatabase } from './postgres-server.ts'

export interface DatabaseFactory {
  name: 'embedded PostgreSQL' | 'PostgreSQL'
  /** False only when no PostgreSQL server could be started outside CI (the setup said so loudly). */
  available: boolean
  /** A fresh, empty, un-migrated database and the function that disposes of it. */
  open: () => Promise<{ db: Database, dispose: () => Promise<void> }>
}

export function databaseFactories (): DatabaseFactory[] {
  const postgresUrl = inject('postgresUrl')
  return [
    {
      name: 'embedded PostgreSQL',
      available: true,
      open: async () => {
        const dir = await mkdtemp(join(tmpdir(), 'heimdall-embedded-'))
        const db = await openEmbedded(join(dir, 'postgres'))
        return { db, dispose: async () => { await db.close(); await rm(dir, { recursive: true, force: true }) } }
      }
    },
    {
      name: 'PostgreSQL',
      available: postgresUrl !== '',
      open: async () => {
        const scratch = await createScratchDatabase(postgresUrl)
        const db = openPostgres(scratch.url)
        return { db, dispose: async () => { await db.close(); await scratch.drop() } }
      }
    }
  ]
}
