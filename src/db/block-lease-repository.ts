import type { Knex } from 'knex'
import { LOCK_WAIT } from './query-deadline.ts'

/**
 * The advisory lock (a pair of int4) that orders lease registrations and
 * sweeps across every instance: a registration holds it shared for its one
 * statement, a sweep batch holds it alone from reading the leases to the end
 * of its deletes. 0x48454d44 is "HEMD".
 */
export const SWEEP_LOCK = [0x48454d44, 1] as const
/** Held (session-level) by the one instance collecting garbage at a time. */
const COLLECTION_LOCK = [0x48454d44, 2] as const

/** The part of knex's client that lends a raw connection (not in its types). */
interface KnexPool {
  acquireConnection: () => Promise<{ query: (sql: string, values?: unknown[]) => Promise<unknown>, __knex__disposed?: unknown }>
  releaseConnection: (connection: unknown) => Promise<void>
}

/**
 * Leases of the shared block store (see the shared_block_store migration):
 * an import in progress, on any instance, and the keys of every block it
 * wrote or is about to write. The garbage collector never deletes a key a
 * live lease holds; leases of an instance that stopped beating are dead.
 */
export class BlockLeaseRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  async open (instance: string): Promise<number> {
    const rows: Array<{ id: number | string }> = await this.#db('block_leases').insert({ instance }).returning('id')
    const row = rows[0]
    if (row === undefined) throw new Error('insert returned no row')
    return Number(row.id)
  }

  /**
   * Records keys under a lease before their blocks are written. It waits for
   * a sweep batch under way, so that a sweep either saw the keys or finished
   * its deletes before the writes that follow. Returns those of `keys` the
   * S3 store has packed already: held by the lease from now on, they need
   * not be written again (read after the lock was granted; see the
   * register_lease_keys migration).
   */
  async register (leaseId: number, keys: readonly string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set()
    const result = await this.#db.raw<{ rows: Array<{ key: string }> }>('select k as key from heimdall_register_lease_keys(?, ?, ?, ?::text[]) as k', [...SWEEP_LOCK, leaseId, keys as string[]]).options(LOCK_WAIT)
    return new Set(result.rows.map((row) => row.key))
  }

  /** Ends a lease (its keys go with it). */
  async close (leaseId: number): Promise<void> {
    await this.#db('block_leases').where({ id: leaseId }).delete()
  }

  /**
   * Marks one lease alive; false when its row is gone (another instance's
   * collection expired it after this one missed its heartbeats, and may
   * have swept its blocks since).
   */
  async renew (leaseId: number): Promise<boolean> {
    return await this.#db('block_leases').where({ id: leaseId }).update({ heartbeat_at: this.#db.fn.now() }) > 0
  }

  /** Marks this instance's leases alive. */
  async heartbeat (instance: string): Promise<void> {
    await this.#db('block_leases').where({ instance }).update({ heartbeat_at: this.#db.fn.now() })
  }

  /** Ends every lease of `instance`: at its start-up, what its previous run left was never finished. */
  async dropInstance (instance: string): Promise<number> {
    return this.#db('block_leases').where({ instance }).delete()
  }

  /** Ends leases whose instance has not beaten for `seconds`: it died mid-import. */
  async expire (seconds: number): Promise<number> {
    return this.#db('block_leases').where('heartbeat_at', '<', this.#db.raw('now() - make_interval(secs => ?)', [seconds])).delete()
  }

  /**
   * Runs one sweep batch with the sweep lock held alone: `leased(keys)`
   * gives those of `keys` that a lease holds, and no lease can add a key
   * until `work` (which deletes what it may) has returned; `collected(keys)`
   * records what it deleted, for the other instances' caches, in the same
   * transaction.
   */
  async sweep<T> (work: (batch: { leased: (keys: readonly string[]) => Promise<Set<string>>, collected: (keys: readonly string[]) => Promise<void>, transaction: Knex.Transaction }) => Promise<T>): Promise<T> {
    return this.#db.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?, ?)', [...SWEEP_LOCK]).options(LOCK_WAIT)
      return work({
        leased: async (keys) => {
          if (keys.length === 0) return new Set<string>()
          const rows = await trx('block_lease_keys').distinct('block_key').whereIn('block_key', keys as string[]) as Array<{ block_key: string }>
          return new Set(rows.map((row) => row.block_key))
        },
        collected: async (keys) => {
          if (keys.length > 0) await trx('collected_blocks').insert({ keys: keys as string[] })
        },
        // For any other read the batch makes: on this connection, never a second one from the pool (see addedSince).
        transaction: trx
      })
    })
  }

  /** Batches of collected keys after `id`, oldest first (at most `limit` batches), and the last id seen. */
  async collectedSince (id: number, limit = 100): Promise<{ id: number, keys: string[] }> {
    const rows: Array<{ id: string | number, keys: string[] }> = await this.#db('collected_blocks').where('id', '>', id).orderBy('id').limit(limit).select('id', 'keys')
    return { id: rows.length === 0 ? id : Number(rows.at(-1)?.id), keys: rows.flatMap((row) => row.keys) }
  }

  /** The newest batch's id (0 when none), and the oldest still kept (undefined when none). */
  async collectedRange (): Promise<{ first: number | undefined, last: number }> {
    const row = await this.#db('collected_blocks').min({ first: 'id' }).max({ last: 'id' }).first() as { first: string | number | null, last: string | number | null } | undefined
    return { first: row?.first == null ? undefined : Number(row.first), last: Number(row?.last ?? 0) }
  }

  /** Forgets batches older than `seconds`. */
  async pruneCollected (seconds: number): Promise<void> {
    await this.#db('collected_blocks').where('collected_at', '<', this.#db.raw('now() - make_interval(secs => ?)', [seconds])).delete()
  }

  /**
   * Runs `work` as the only collection across instances: the lock is a
   * session lock on one connection held for the whole collection (released
   * if the connection or process dies).
   */
  async exclusiveCollection<T> (work: () => Promise<T>): Promise<T> {
    const pool = this.#db.client as unknown as KnexPool
    const client = await pool.acquireConnection()
    let healthy = false
    try {
      await client.query('select pg_advisory_lock($1, $2)', [...COLLECTION_LOCK])
      try {
        return await work()
      } finally {
        await client.query('select pg_advisory_unlock($1, $2)', [...COLLECTION_LOCK])
        healthy = true
      }
    } finally {
      // A connection whose unlock failed may still hold the lock: marked disposed, the pool closes it instead of lending it again.
      if (!healthy) client.__knex__disposed ??= 'the collection lock could not be released'
      await pool.releaseConnection(client)
    }
  }
}
