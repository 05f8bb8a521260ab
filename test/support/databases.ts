import { inject } from 'vitest'
import { openPglite, openPostgres, type Database } from '../../src/db/database.ts'
import { createScratchDatabase } from './postgres-server.ts'

export interface DatabaseFactory {
  name: 'pglite' | 'postgres'
  /** False only when no PostgreSQL server could be started outside CI (the setup said so loudly). */
  available: boolean
  /** A fresh, empty, un-migrated database and the function that disposes of it. */
  open: () => Promise<{ db: Database, dispose: () => Promise<void> }>
}

export function databaseFactories (): DatabaseFactory[] {
  const postgresUrl = inject('postgresUrl')
  return [
    {
      name: 'pglite',
      available: true,
      open: async () => {
        const db = await openPglite(undefined)
        return { db, dispose: async () => { await db.close() } }
      }
    },
    {
      name: 'postgres',
      available: postgresUrl !== '',
      open: async () => {
        const scratch = await createScratchDatabase(postgresUrl)
        const db = openPostgres(scratch.url)
        return { db, dispose: async () => { await db.close(); await scratch.drop() } }
      }
    }
  ]
}
