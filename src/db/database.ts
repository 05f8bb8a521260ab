import knex, { type Knex } from 'knex'
import { join } from 'node:path'
import { startEmbeddedPostgres } from './embedded-postgres.ts'
import { DirectoryMigrationSource } from './migration-source.ts'

export interface Database {
  /** `embedded`: PGlite in a child process of ours; `postgres`: a server at DATABASE_URL. */
  readonly kind: 'embedded' | 'postgres'
  readonly knex: Knex
  /** Applies every pending migration. */
  migrate: () => Promise<void>
  /** Resolves when the database answers a query. */
  ping: () => Promise<void>
  close: () => Promise<void>
}

const migrations = { migrationSource: new DirectoryMigrationSource() }

function wrap (kind: Database['kind'], db: Knex, onClose: () => Promise<void> = async () => {}): Database {
  return {
    kind,
    knex: db,
    migrate: async () => { await db.migrate.latest(migrations) },
    ping: async () => { await db.raw('select 1') },
    close: async () => {
      await db.destroy()
      await onClose()
    }
  }
}

/** A PostgreSQL server, through `pg`. */
export function openPostgres (url: string): Database {
  return wrap('postgres', knex({ client: 'pg', connection: url, pool: { min: 0, max: 10 }, migrations }))
}

/**
 * Embedded PostgreSQL (PGlite) with its files in `dir`, in a child process,
 * through `pg` as well. PGlite runs one session, so the pool holds one
 * connection: queries and transactions take turns.
 */
export async function openEmbedded (dir: string): Promise<Database> {
  const embedded = await startEmbeddedPostgres(dir)
  const db = knex({ client: 'pg', connection: embedded.connection, pool: { min: 0, max: 1 }, migrations })
  return wrap('embedded', db, embedded.stop)
}

export async function openDatabase (config: { databaseUrl: string | undefined, dataDir: string }): Promise<Database> {
  return config.databaseUrl !== undefined
    ? openPostgres(config.databaseUrl)
    : openEmbedded(join(config.dataDir, 'pglite'))
}

/** True when `err` is PostgreSQL's unique_violation. */
export function isUniqueViolation (err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === '23505'
}
