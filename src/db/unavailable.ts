/** Connection failures of the `pg` driver and knex's pool, and PostgreSQL's "connection gone / shutting down" states. */
const DB_UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'EPIPE', 'ENOENT'])
const DB_UNAVAILABLE_SQLSTATE = /^(08|57P0)/

/**
 * True for an error that says the database cannot be reached right now (not
 * that a query was wrong). What the failed statement did is then unknown: a
 * statement given up on (QueryDeadlineError) or whose connection broke may
 * still have committed.
 */
export function isDatabaseUnavailable (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  if (err.name === 'KnexTimeoutError' || err.name === 'QueryDeadlineError') return true
  if (/Connection terminated|Client has encountered a connection error|Connection ended unexpectedly/i.test(err.message)) return true
  // `pg`'s own words for a connection not made within connectionTimeoutMillis (the database's query timeout).
  if (err.message === 'timeout expired') return true
  const code = (err as NodeJS.ErrnoException).code
  if (typeof code !== 'string') return false
  // `pg` rejects with the socket's error; ENOENT counts only as "connect ENOENT <unix socket>".
  if (DB_UNREACHABLE_CODES.has(code)) return code !== 'ENOENT' || err.message.startsWith('connect')
  return DB_UNAVAILABLE_SQLSTATE.test(code) && 'severity' in err
}
