import { createHash } from 'node:crypto'
import type pg from 'pg'
import { disposeConnection } from './query-deadline.ts'

/**
 * knex's `.options(PREPARED)` on a statement every upload or sign-in runs:
 * PostgreSQL parses and plans it once per connection, then only binds and
 * runs it. Planning was most of PostgreSQL's work on these (the upload's
 * record, a CTE around a PL/pgSQL function; the quota's set-returning
 * function): 200 concurrent uploads cost the embedded PostgreSQL 0.30–0.43 s
 * of CPU prepared against 0.65–0.78 s planned each time (a burst probe,
 * two servers per side, alternating, two bursts each).
 *
 * Only marked statements: each name is a statement the server keeps for the
 * connection's life, and a text that varies (a `whereIn` of any length)
 * would keep one per length. A marked statement names its columns rather
 * than `select *`: a prepared `*` fails with "cached plan must not change
 * result type" once another instance's migration adds a column.
 */
export const PREPARED = { prepared: true } as const

/** The statement's name on the server: from its text, so one text is always one name and two texts never share one. */
export function statementName (text: string): string {
  return `heimdall_${createHash('sha256').update(text).digest('base64url').slice(0, 32)}`
}

type QueryConfig = { text?: unknown, name?: unknown, prepared?: unknown }
type QueryCallback = (err: Error | null, result?: unknown) => void

/**
 * What the server says of a prepared statement it can no longer run as
 * prepared: its result type changed under it (a migration changed a column's
 * type), or it is gone. `pg` would send it unparsed again, and fail again,
 * for the connection's life.
 */
const STALE_STATEMENT = new Set(['0A000', '26000'])

/**
 * Names the marked statements `client` is sent (see PREPARED); `pg` prepares
 * a named statement on its first use on a connection. A statement gone stale
 * fails once: its connection is then closed and knex lends it no more, so
 * the next use prepares it afresh on another.
 */
export function prepareMarked (client: pg.Client): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown
  client.query = ((...args: unknown[]) => {
    const config = args[0] as QueryConfig | undefined
    const answer = args.at(-1)
    if (typeof config === 'object' && config !== null && config.prepared === true && typeof config.text === 'string' && config.name === undefined) {
      config.name = statementName(config.text)
      if (typeof answer === 'function') {
        args[args.length - 1] = (err: Error | null, result?: unknown) => {
          if (err !== null && STALE_STATEMENT.has((err as { code?: string }).code ?? '')) disposeConnection(client, err)
          ;(answer as QueryCallback)(err, result)
        }
      }
    }
    return query(...args)
  }) as typeof client.query
}
