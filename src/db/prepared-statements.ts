import { createHash } from 'node:crypto'
import type { Knex } from 'knex'
import type pg from 'pg'
import { disposeConnection } from './query-deadline.ts'

/** The statement's name on the server: from its text, so one text is always one name and two texts never share one. */
export function statementName (text: string): string {
  return `heimdall_${createHash('sha256').update(text).digest('base64url').slice(0, 32)}`
}

/**
 * A statement every upload or sign-in runs, its text fixed (placeholders
 * `$1`, `$2`…), for runStatement: PostgreSQL parses and plans it once per
 * connection, then only binds and runs it. Planning was most of
 * PostgreSQL's work on these (the upload's record, a CTE around a PL/pgSQL
 * function; the quota's set-returning function): 200 concurrent uploads
 * cost the embedded PostgreSQL 0.30–0.43 s of CPU prepared against
 * 0.65–0.78 s planned each time (a burst probe, two servers per side,
 * alternating, two bursts each).
 *
 * Only these: each name is a statement the server keeps for the
 * connection's life, so a text that varies (an `in` list of any length)
 * keeps one per variant. A statement names its columns rather than
 * `select *`: a prepared `*` fails with "cached plan must not change result
 * type" once another instance's migration adds a column.
 */
export class Statement {
  readonly text: string
  readonly name: string

  constructor (text: string) {
    this.text = text
    this.name = statementName(text)
  }
}

/**
 * A statement whose text varies with a few arguments (how many keys an `in`
 * list has, which clauses a record adds): one Statement per variant, made
 * the first time it is asked for.
 */
export function statementVariants<A extends Array<string | number | boolean>> (text: (...variant: A) => string): (...variant: A) => Statement {
  const made = new Map<string, Statement>()
  return (...variant) => {
    const key = variant.join(' ')
    let statement = made.get(key)
    if (statement === undefined) made.set(key, statement = new Statement(text(...variant)))
    return statement
  }
}

/** What knex's client and a transaction's client both have: the connection to send on, and its return. */
interface ConnectionSource {
  acquireConnection: () => Promise<pg.Client>
  releaseConnection: (connection: pg.Client) => Promise<void>
}

/**
 * What the server says of a prepared statement it can no longer run as
 * prepared: its result type changed under it (a migration changed a column's
 * type), or it is gone. `pg` would send it unparsed again, and fail again,
 * for the connection's life.
 */
const STALE_STATEMENT = new Set(['0A000', '26000'])

/**
 * Runs `statement` with `values` on a connection of `db` (the pool's, or the
 * transaction's own when `db` is one) and returns its rows. Sent as it is,
 * past knex's query builder, compiler and runner, which cost more of the
 * client's CPU than the rest of the round trip: 127 against 46 µs per token
 * lookup, 30 at a time on the embedded server. In `pg`'s callback form, the
 * form the connection's query deadline bounds (query-deadline.ts).
 *
 * A statement gone stale fails once: its connection is then closed and the
 * pool lends it no more, so the next run prepares it afresh on another.
 */
export async function runStatement<Row> (db: Knex, statement: Statement, values: readonly unknown[]): Promise<Row[]> {
  // As knex refuses it: its connection is back in the pool, perhaps in another transaction by now.
  if ((db as { isCompleted?: () => boolean }).isCompleted?.() === true) throw new Error('Transaction query already complete')
  const source = db.client as ConnectionSource
  const connection = await source.acquireConnection()
  try {
    return await new Promise<Row[]>((resolve, reject) => {
      connection.query({ text: statement.text, name: statement.name, values: values as unknown[] }, (err: Error | null, result?: pg.QueryResult) => {
        if (err === null) {
          resolve((result?.rows ?? []) as Row[])
          return
        }
        if (STALE_STATEMENT.has((err as { code?: string }).code ?? '')) disposeConnection(connection, err)
        reject(err)
      })
    })
  } finally {
    await source.releaseConnection(connection)
  }
}
