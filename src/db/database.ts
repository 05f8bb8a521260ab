import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import knex, { type Knex } from 'knex'
import ClientPgLite from 'knex-pglite'
import { DirectoryMigrationSource } from './migration-source.ts'

export interface Database {
  readonly kind: 'pglite' | 'postgres'
  readonly knex: Knex
  /** Applies every pending migration. */
  migrate: () => Promise<void>
  /** Resolves when the database answers a query. */
  ping: () => Promise<void>
  close: () => Promise<void>
}

const migrations = { migrationSource: new DirectoryMigrationSource() }

function wrap (kind: Database['kind'], db: Knex): Database {
  return {
    kind,
    knex: db,
    migrate: async () => { await db.migrate.latest(migrations) },
    ping: async () => { await db.raw('select 1') },
    close: async () => { await db.destroy() }
  }
}

/** A PostgreSQL server, through `pg`. */
export function openPostgres (url: string): Database {
  return wrap('postgres', knex({ client: 'pg', connection: url, pool: { min: 0, max: 10 }, migrations }))
}

/** Embedded PostgreSQL (PGlite) keeping its files in `dir`; in memory when `dir` is undefined. */
export async function openPglite (dir: string | undefined): Promise<Database> {
  if (dir !== undefined) await mkdir(dir, { recursive: true })
  return wrap('pglite', knex({
    client: ClientPgLite,
    dialect: 'postgres',
    connection: dir === undefined ? {} : { filename: dir },
    migrations
  }))
}

export async function openDatabase (config: { databaseUrl: string | undefined, dataDir: string }): Promise<Database> {
  return config.databaseUrl !== undefined
    ? openPostgres(config.databaseUrl)
    : openPglite(join(config.dataDir, 'pgdata'))
}

/** True when `err` is PostgreSQL's unique_violation. */
export function isUniqueViolation (err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === '23505'
}
