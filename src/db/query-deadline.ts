import type pg from 'pg'

/** A query the database did not answer in time: its connection was closed (see `boundQueries`). */
export class QueryDeadlineError extends Error {
  override readonly name = 'QueryDeadlineError'
  readonly ms: number
  constructor (ms: number) {
    super(`the database did not answer a query in ${ms} ms`)
    this.ms = ms
  }
}

/** What knex and `pg` keep on a pooled connection: knex's mark for "do not lend again", and the socket. */
type PooledClient = pg.Client & { __knex__disposed?: unknown, connection?: { stream?: { destroy: () => void } } }

type QueryCallback = (err: Error | null, result?: unknown) => void

/**
 * Closes `client`'s socket at once: a server that does not answer would
 * keep a connection that is only ended (`end()` waits for its answer) open.
 */
export function destroySocket (client: pg.Client): void {
  (client as PooledClient).connection?.stream?.destroy()
}

/** Closes `client`'s socket and marks it for knex, which then lends it no more (`reason` is what knex reports). */
export function disposeConnection (client: pg.Client, reason: unknown): void {
  (client as PooledClient).__knex__disposed = reason
  destroySocket(client)
}

/**
 * knex's `.options(LOCK_WAIT)` on a statement that waits for a lock other
 * work holds for as long as that work takes (an advisory lock a sweep batch
 * or another instance's upload holds): its deadline is LOCK_WAIT_FACTOR
 * times the others' (10 minutes by default), long enough for that work and
 * still an end for a server that stopped answering.
 */
export const LOCK_WAIT = { lockWait: true } as const
export const LOCK_WAIT_FACTOR = 20

/**
 * Bounds how long a query sent on `client` may go unanswered, for
 * `limitMs()` ms (0: no bound). A PostgreSQL that stops answering (its
 * processes stopped, a host gone without a reset, a network that drops
 * everything) otherwise holds each request on it for as long as its client
 * waits, and each pooled connection with it. `pg`'s own `query_timeout`
 * fails the query but leaves the connection busy with it, so the next query
 * on it waits behind; and a server-side `statement_timeout` is nothing to a
 * server that does not run. Past the bound the connection is closed: the
 * query fails with a QueryDeadlineError (a 503 to the request), knex lends
 * the connection no more, and PostgreSQL, once it runs again, sees the
 * session gone and rolls back its transaction, so nothing half done stays.
 *
 * Only the queries knex sends (with a callback) are bounded, those marked
 * LOCK_WAIT more loosely: a promise-form query on a connection taken for a
 * long wait (the collection lock, block-lease-repository.ts) is not, nor is
 * a streamed one. The bound is checked once more after Node has read what
 * arrived meanwhile, so that a process that was itself busy past it does
 * not take an answer waiting in the socket for none.
 *
 * A query given up on may still complete on the server (a slow server, or
 * one waiting for a row lock, runs on and commits before it notices the
 * closed session): its outcome is unknown, as with any lost connection
 * (see isDatabaseUnavailable), and the caller must not act as if it had
 * not happened.
 */
export function boundQueries (client: pg.Client, limitMs: () => number): void {
  const pooled = client as PooledClient
  const query = client.query.bind(client) as (...args: unknown[]) => unknown
  pooled.query = ((...args: unknown[]) => {
    const answer = args.at(-1)
    const config = args[0] as { lockWait?: boolean } | undefined
    const ms = limitMs() * (config?.lockWait === true ? LOCK_WAIT_FACTOR : 1)
    if (ms <= 0 || typeof answer !== 'function') return query(...args)
    let answered = false
    let late = false
    const timer = setTimeout(() => {
      // After the poll phase: an answer that came while this process was busy is read first.
      setImmediate(() => {
        if (answered) return
        late = true
        disposeConnection(client, new QueryDeadlineError(ms))
      })
    }, ms)
    args[args.length - 1] = (err: Error | null, result?: unknown) => {
      answered = true
      clearTimeout(timer)
      ;(answer as QueryCallback)(late ? new QueryDeadlineError(ms) : err, result)
    }
    return query(...args)
  }) as typeof client.query
}
