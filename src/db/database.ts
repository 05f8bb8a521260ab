import knex, { type Knex } from 'knex'
import { join, resolve } from 'node:path'
import pg from 'pg'
import { advisoryKey } from './advisory-lock.ts'
import { deadClientCheckFor, deadClientCheckSql, DEAD_CLIENT_SECONDS } from './dead-client.ts'
import { startEmbeddedPostgres } from './embedded-postgres.ts'
import { createHeimdallDatabase, HEIMDALL_DATABASE } from './pglite-import.ts'
import { DirectoryMigrationSource } from './migration-source.ts'
import { boundQueries } from './query-deadline.ts'

export interface Database {
  /** `embedded`: PostgreSQL in child processes of ours, on a socket in DATA_DIR; `postgres`: a server at DATABASE_URL. */
  readonly kind: 'embedded' | 'postgres'
  readonly knex: Knex
  /** Applies every pending migration. */
  migrate: () => Promise<void>
  /** Resolves when the database answers a query. */
  ping: () => Promise<void>
  close: () => Promise<void>
}

const migrations = { migrationSource: new DirectoryMigrationSource() }

const MIGRATION_LOCK = advisoryKey('heimdall/migrations')

/**
 * Applies pending migrations while holding a session advisory lock on a
 * connection of its own. Instances starting together queue on that lock: the
 * first migrates, the others then find nothing to do. Without it they would
 * race to create knex's tables, and the losers of knex's own lock row fail
 * ("Migration table is already locked") instead of waiting. Holding the lock
 * also tells us that knex's lock row, if still set, was left by a process
 * killed while migrating (its migration rolled back with its transaction),
 * so it is freed rather than blocking every start until an operator does.
 * The lock ends with the connection, however this process ends.
 */
async function migrateExclusively (db: Knex, connection: pg.ClientConfig, deadClient: string | undefined): Promise<void> {
  const client = new pg.Client(connection)
  client.on('error', () => {}) // a broken connection fails the queries below; the lock went with it
  await client.connect()
  try {
    // An instance whose host dies while it migrates must not hold every other start until TCP's default gives up.
    if (deadClient !== undefined) await client.query(deadClient)
    await client.query('select pg_advisory_lock($1, $2)', MIGRATION_LOCK)
    if (await db.schema.hasTable('knex_migrations_lock')) await db('knex_migrations_lock').update({ is_locked: 0 })
    await db.migrate.latest(migrations)
  } finally {
    await client.end()
  }
}

/**
 * How long a query of the pool may go unanswered before its connection is
 * closed (query-deadline.ts); not while migrations run, which may rewrite
 * a large table.
 */
class Deadline {
  migrating = 0
  readonly ms: number
  constructor (ms: number) { this.ms = ms }
  readonly limit = (): number => this.migrating > 0 ? 0 : this.ms
}

export interface DatabaseOptions {
  log?: DatabaseLog
  /** DATABASE_QUERY_TIMEOUT_SECONDS: 0 or absent, none. */
  queryTimeoutSeconds?: number
  /** DATABASE_DEAD_CLIENT_SECONDS (dead-client.ts): absent, its default; 0, the server's own settings. */
  deadClientSeconds?: number
}

/** The statement each new session runs so the server ends it once its client went silent; undefined: none. */
const deadClientStatement = (options: DatabaseOptions): string | undefined => {
  const check = deadClientCheckFor(options.deadClientSeconds ?? DEAD_CLIENT_SECONDS)
  return check === undefined ? undefined : deadClientCheckSql(check)
}

/**
 * knex's pool for `connection`: every session READ COMMITTED, its queries
 * bounded by `deadline`, and so is making a connection (a server that
 * accepts and never answers held it until knex's 60 s acquire timeout).
 */
function pooled (connection: pg.ClientConfig, pool: Knex.PoolConfig, deadline: Deadline, log: DatabaseLog | undefined, deadClient: string | undefined): Knex {
  const bounded = deadline.ms > 0 ? { ...connection, connectionTimeoutMillis: deadline.ms } : connection
  const afterCreate = (client: pg.Client, done: (err: Error | null, client: pg.Client) => void): void => {
    boundQueries(client, deadline.limit)
    prepareSession(client, deadClient, done)
  }
  return knex({ client: 'pg', connection: bounded as Knex.StaticConnectionConfig, pool: { ...pool, afterCreate }, migrations, log: knexLog(log) })
}

function wrap (kind: Database['kind'], db: Knex, connection: pg.ClientConfig, deadline: Deadline, deadClient: string | undefined, onClose: () => Promise<void> = async () => {}): Database {
  return {
    kind,
    knex: db,
    migrate: async () => {
      deadline.migrating++
      try { await migrateExclusively(db, connection, deadClient) } finally { deadline.migrating-- }
    },
    ping: async () => { await db.raw('select 1') },
    close: async () => {
      await db.destroy()
      await onClose()
    }
  }
}

/** Where knex's own messages go (a dropped connection, a failed acquire): the service's logger, not bare stderr. */
export interface DatabaseLog {
  warn: (obj: object, message: string) => void
  error: (obj: object, message: string) => void
}

function knexLog (log: DatabaseLog | undefined): Knex.Config['log'] {
  if (log === undefined) return undefined
  return {
    warn: (message: unknown) => { log.warn({ detail: String(message) }, 'database client warning') },
    error: (message: unknown) => { log.error({ detail: String(message) }, 'database client error') },
    deprecate: () => {},
    debug: () => {}
  }
}

/**
 * Every pooled session runs READ COMMITTED, whatever the server's or the
 * database's default_transaction_isolation: heimdall_record_upload counts an
 * identity's uploads after waiting for its row lock, which sees the uploads
 * committed meanwhile only at READ COMMITTED (under REPEATABLE READ the
 * statement's snapshot predates the wait, and concurrent uploads overran the
 * quota, tested). It has the server check that its client is still there
 * while a statement runs (CHECK_CLIENT), and end it once its client went
 * silent between statements (dead-client.ts: the transaction of an instance
 * whose host died holds its row locks no longer). One statement per new
 * session, sent before knex uses it.
 */
function prepareSession (connection: pg.Client, deadClient: string | undefined, done: (err: Error | null, connection: pg.Client) => void): void {
  // The callback form: a query bounded by the deadline, as knex's are.
  connection.query(`SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED; ${CHECK_CLIENT}${deadClient === undefined ? '' : `; ${deadClient}`}`, (err) => { done(err, connection) })
}

/**
 * A statement whose client has gone (a query given up on past its deadline
 * closes its connection, query-deadline.ts) is cancelled within 1.5 s
 * rather than run on: one waiting for a lock would otherwise commit once
 * it got it, after its request was answered 503. PostgreSQL 14 and later,
 * where the platform can tell (Linux can; Windows cannot): a server without
 * it, or refusing it, goes without.
 */
const CHECK_CLIENT = "DO $$ BEGIN PERFORM set_config('client_connection_check_interval', '1500', false); EXCEPTION WHEN OTHERS THEN NULL; END $$"


/** A PostgreSQL server, through `pg`. */
export function openPostgres (url: string, options: DatabaseOptions = {}): Database {
  const deadline = new Deadline((options.queryTimeoutSeconds ?? 0) * 1000)
  const deadClient = deadClientStatement(options)
  return wrap('postgres', pooled({ connectionString: url }, { min: 0, max: 10 }, deadline, options.log, deadClient), { connectionString: url }, deadline, deadClient)
}

/**
 * Embedded PostgreSQL with its cluster and socket in `dir`, started as child
 * processes, through `pg` as well; Heimdall's tables live in its database
 * `heimdall`. `importFrom` is a data folder of the former embedded engine
 * (PGlite), copied into that database when it is first created. The server
 * allows 20 connections (room for `npm run migrate` and an operator's psql);
 * three pooled sessions serve one web process (each is a server process of
 * ~20 MB; Heimdall's queries are short), idle ones closed after 30 s.
 */
export async function openEmbedded (dir: string, options: DatabaseOptions & { importFrom?: string } = {}): Promise<Database> {
  const embedded = await startEmbeddedPostgres(dir)
  try {
    await createHeimdallDatabase(embedded.connection, options.importFrom)
  } catch (err) {
    await embedded.stop()
    throw err
  }
  const connection = { ...embedded.connection, database: HEIMDALL_DATABASE }
  const deadline = new Deadline((options.queryTimeoutSeconds ?? 0) * 1000)
  // A Unix socket: no keepalive to set (its clients are on this host).
  const db = pooled(connection, { min: 0, max: 3, idleTimeoutMillis: 30_000 }, deadline, options.log, undefined)
  return wrap('embedded', db, connection, deadline, undefined, embedded.stop)
}

/** DATABASE_URL's server, else the embedded one in DATA_DIR/postgres (taking over DATA_DIR/pglite once, if there is one). */
export async function openDatabase (config: { databaseUrl: string | undefined, dataDir: string, databaseQueryTimeoutSeconds?: number, databaseDeadClientSeconds?: number }, options: DatabaseOptions = {}): Promise<Database> {
  // Absolute: the embedded server's socket folder is the connection's host, and pg reads a relative one (DATA_DIR=./data,
  // as .env.example has it) as a host name to look up.
  const dataDir = resolve(config.dataDir)
  const opened = { queryTimeoutSeconds: config.databaseQueryTimeoutSeconds, deadClientSeconds: config.databaseDeadClientSeconds, ...options }
  return config.databaseUrl !== undefined
    ? openPostgres(config.databaseUrl, opened)
    : openEmbedded(join(dataDir, 'postgres'), { importFrom: join(dataDir, 'pglite'), ...opened })
}

/** True when `err` is PostgreSQL's unique_violation. */
export function isUniqueViolation (err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === '23505'
}
