import type { Knex } from 'knex'
import { runStatement, Statement, statementVariants } from './prepared-statements.ts'

export interface LimitKey {
  kind: string
  key: string
}

interface UntilRow { until: string | number }

/**
 * The row source of a rate-limit write: one row, and the transaction's commit
 * made asynchronous (set_config with is_local: this statement's transaction
 * only). A limit's state is not worth a WAL flush per request: were the
 * database server to crash, at most its last fraction of a second of counts
 * would be lost (wal_writer_delay), and any later synchronous commit (an
 * upload's record) flushes them with its own. The upload path's other writes
 * keep synchronous commits.
 */
const RELAXED_ROW = "FROM (SELECT set_config('synchronous_commit', 'off', true) AS setting) AS relaxed"

/** take's statement: $1 kind, $2 key, $3 now + interval, $4 now, $5 interval, $6 tolerance. */
const TAKE = new Statement(`INSERT INTO rate_limits (kind, key, count, until, touched) SELECT $1::varchar, $2::varchar, 0, $3::bigint, $4::bigint ${RELAXED_ROW}
  ON CONFLICT (kind, key) DO UPDATE SET until = GREATEST(rate_limits.until, EXCLUDED.touched) + $5, touched = EXCLUDED.touched
  WHERE GREATEST(rate_limits.until, EXCLUDED.touched) + $5 - EXCLUDED.touched <= $6
  RETURNING until`)

/** backoffs' statement for `count` keys: its values are the keys' kinds and keys in turn, then now. */
const backoffsOf = statementVariants((count: number) => `select kind, key, until from rate_limits
  where (kind, key) in (${Array.from({ length: count }, (_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(', ')}) and until > $${2 * count + 1}`)

/**
 * Rate-limit state in the `rate_limits` table, shared by every instance on
 * the same database. Each operation is one statement, atomic under
 * concurrency (INSERT … ON CONFLICT DO UPDATE locks the row it updates).
 */
export class RateLimitRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  /**
   * GCRA: one request against a bucket that refills one request every
   * `intervalMs` and holds `capacity`. Allowed: undefined; refused: the
   * milliseconds until one more would be allowed. A refused request changes nothing.
   */
  async take (limit: LimitKey, now: number, intervalMs: number, capacity: number): Promise<number | undefined> {
    const tolerance = intervalMs * capacity
    const taken = await runStatement<UntilRow>(this.#db, TAKE, [limit.kind, limit.key, now + intervalMs, now, intervalMs, tolerance])
    if (taken.length > 0) return undefined
    const row: UntilRow | undefined = await this.#db('rate_limits').where({ kind: limit.kind, key: limit.key }).first('until')
    // Allowed again once `until + interval - tolerance` is reached.
    return row === undefined ? 0 : Math.max(0, Number(row.until) + intervalMs - tolerance - now)
  }

  /**
   * The back-offs among `keys` still running at `now`, with their ends. One query,
   * prepared: its text is one per number of keys, and an address has one (authKeys).
   */
  async backoffs (keys: readonly LimitKey[], now: number): Promise<Array<LimitKey & { until: number }>> {
    if (keys.length === 0) return []
    const rows = await runStatement<LimitKey & UntilRow>(this.#db, backoffsOf(keys.length), [...keys.flatMap((k) => [k.kind, k.key]), now])
    return rows.map((r) => ({ kind: r.kind, key: r.key, until: Number(r.until) }))
  }

  /**
   * Counts one more failure for `limit` (from 1 again when the last was
   * longer than `forgetMs` ago) and sets the back-off `backoff(count)` earns.
   * Returns the count and the back-off's end.
   */
  async fail (limit: LimitKey, now: number, forgetMs: number, backoff: (failures: number) => number): Promise<{ count: number, until: number }> {
    const result = await this.#db.raw<{ rows: Array<{ count: number }> }>(
      `INSERT INTO rate_limits (kind, key, count, until, touched) SELECT ?::varchar, ?::varchar, 1, 0, ?::bigint ${RELAXED_ROW}
       ON CONFLICT (kind, key) DO UPDATE SET
         count = CASE WHEN rate_limits.touched < ? THEN 1 ELSE rate_limits.count + 1 END,
         touched = EXCLUDED.touched
       RETURNING count`,
      [limit.kind, limit.key, now, now - forgetMs])
    const count = result.rows[0]?.count ?? 1
    const delay = backoff(count)
    if (delay <= 0) return { count, until: 0 }
    const until = now + delay
    await this.#db('rate_limits').where({ kind: limit.kind, key: limit.key }).update({ until: this.#db.raw('GREATEST(until, ?)', [until]) })
    return { count, until }
  }

  /** Removes rows untouched since `before` whose limits have run out: such a row says nothing an absent one does not. */
  async purge (before: number, now: number): Promise<number> {
    return this.#db('rate_limits').where('touched', '<', before).andWhere('until', '<', now).delete()
  }
}
