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
 * Only the queries knex sends (with a callback) are bounded: a promise-form
 * query on a connection taken for a long wait (the collection lock,
 * block-lease-repository.ts) is not, nor is a streamed one.
 */
export function boundQueries (client: pg.Client, limitMs: () => number): void {
  const pooled = client as PooledClient
  const query = client.query.bind(client) as (...args: unknown[]) => unknown
  pooled.query = ((...args: unknown[]) => {
    const ms = limitMs()
    const answer = args.at(-1)
    if (ms <= 0 || typeof answer !== 'function') return query(...args)
    let late = false
    const timer = setTimeout(() => {
      late = true
      pooled.__knex__disposed = new QueryDeadlineError(ms)
      pooled.connection?.stream?.destroy()
    }, ms)
    args[args.length - 1] = (err: Error | null, result?: unknown) => {
      clearTimeout(timer)
      ;(answer as QueryCallback)(late ? new QueryDeadlineError(ms) : err, result)
    }
    return query(...args)
  }) as typeof client.query
}
