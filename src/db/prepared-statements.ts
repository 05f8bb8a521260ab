import { createHash } from 'node:crypto'
import type pg from 'pg'

/**
 * knex's `.options(PREPARED)` on a statement every upload or sign-in runs:
 * PostgreSQL parses and plans it once per connection, then only binds and
 * runs it. Planning was most of the server's work on these (the upload's
 * record, a CTE around a PL/pgSQL function; the quota's set-returning
 * function): 200 concurrent uploads cost the embedded PostgreSQL 0.37–0.48 s
 * of CPU named against 0.65–0.77 s planned each time (measured in one burst
 * probe, alternating, three rounds each).
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

/** Names the marked statements `client` is sent (see PREPARED); `pg` prepares a named statement on its first use on a connection. */
export function prepareMarked (client: pg.Client): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown
  const names = new Map<string, string>()
  client.query = ((...args: unknown[]) => {
    const config = args[0] as QueryConfig | undefined
    if (typeof config === 'object' && config !== null && config.prepared === true && typeof config.text === 'string' && config.name === undefined) {
      let name = names.get(config.text)
      if (name === undefined) names.set(config.text, name = statementName(config.text))
      config.name = name
    }
    return query(...args)
  }) as typeof client.query
}
