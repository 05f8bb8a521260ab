import { createHash } from 'node:crypto'
import pg from 'pg'
import type { ContentLock } from '../services/content-lock.ts'
import { KeyedLock } from '../services/keyed-lock.ts'
import { DEAD_CLIENT_CHECK, deadClientCheckSql, type DeadClientCheck } from './dead-client.ts'
import { destroySocket } from './query-deadline.ts'

/**
 * The two int4 of a PostgreSQL advisory lock for `name`: the first 8 bytes of
 * its SHA-256, so every instance derives the same pair. The two-key form lives
 * apart from single-bigint advisory locks other software may take.
 */
export function advisoryKey (name: string): [number, number] {
  const digest = createHash('sha256').update(name).digest()
  return [digest.readInt32BE(0), digest.readInt32BE(4)]
}

export interface PgAdvisoryLockOptions {
  /** Prefix of every key's lock name, so two applications sharing a server do not block each other. */
  namespace?: string
  /**
   * How long the unlock may go unanswered (0: no limit): past it the
   * connection is closed instead, which ends the lock with the session once
   * the server runs again. A server that stopped answering held the request
   * in its `finally` for good.
   */
  unlockTimeoutMs?: number
  /** When the server ends a lock's session whose client went silent (DEAD_CLIENT_CHECK unless given; false: the server's own settings). */
  deadClientCheck?: DeadClientCheck | false
}

/**
 * A ContentLock across every instance sharing one PostgreSQL: a session
 * advisory lock per key, held on a connection of this lock's own pool for as
 * long as the work runs. The pool is separate from the one the work queries
 * through, so holders waiting in pg_advisory_lock can never take the
 * connections the holder needs to finish. Waiters on one key within this
 * process queue here first (KeyedLock), so N of them hold one connection, not
 * N.
 *
 * A session lock lives as long as its connection: if the connection breaks
 * while the work runs, PostgreSQL has released the lock and another instance
 * may enter. So does a host that dies holding one: its session is idle while
 * the work runs, and the server ends it once its client stops answering
 * TCP keepalive probes (dead-client.ts), not hours later. The work is not
 * stopped (it cannot be, from here); its own queries fail if the database
 * went away, and what it writes must stay correct under the database's
 * constraints anyway.
 */
export class PgAdvisoryLock implements ContentLock {
  readonly #pool: pg.Pool
  readonly #local = new KeyedLock()
  readonly #namespace: string
  readonly #unlockTimeoutMs: number

  /** `connection`: a connection string or a pool configuration (16 connections unless it says otherwise). */
  constructor (connection: string | pg.PoolConfig, options: PgAdvisoryLockOptions = {}) {
    const config = typeof connection === 'string' ? { connectionString: connection } : connection
    this.#pool = new pg.Pool({ max: 16, idleTimeoutMillis: 30_000, ...config })
    // An idle connection that breaks is dropped by the pool; without a listener the error would end the process.
    this.#pool.on('error', () => {})
    // Sent on each new session before anything else: pg runs a client's queries in order.
    const check = options.deadClientCheck ?? DEAD_CLIENT_CHECK
    if (check !== false) {
      const deadClient = deadClientCheckSql(check)
      this.#pool.on('connect', (client) => { client.query(deadClient).catch(() => {}) })
    }
    this.#namespace = options.namespace ?? 'heimdall/content-lock/'
    this.#unlockTimeoutMs = options.unlockTimeoutMs ?? 0
  }

  async run<T> (key: string, work: () => Promise<T>): Promise<T> {
    return this.#local.run(key, async () => {
      const [high, low] = advisoryKey(this.#namespace + key)
      const client = await this.#pool.connect()
      let broken = false
      const onError = (): void => { broken = true }
      client.on('error', onError)
      try {
        await client.query('select pg_advisory_lock($1, $2)', [high, low])
      } catch (err) {
        client.removeListener('error', onError)
        client.release(true) // whether or not the lock was granted, closing the session drops it
        throw err
      }
      try {
        return await work()
      } finally {
        let released = false
        if (!broken) {
          try {
            const unlock = client.query<{ released: boolean }>('select pg_advisory_unlock($1, $2) as released', [high, low])
            const result = await (this.#unlockTimeoutMs > 0 ? withinMs(unlock, this.#unlockTimeoutMs) : unlock)
            released = result.rows[0]?.released === true
          } catch {
            // the connection is closed below
          }
        }
        // A connection whose unlock did not succeed is closed, never pooled: the lock must not outlive the work.
        if (!released) destroySocket(client)
        client.removeListener('error', onError)
        client.release(released ? undefined : true)
      }
    })
  }

  async close (): Promise<void> {
    await this.#pool.end()
  }
}

/** `promise`, or a rejection once `ms` pass without it settling. */
async function withinMs<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`no answer in ${ms} ms`)) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}
