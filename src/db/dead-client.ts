/**
 * How soon PostgreSQL ends the session of a client that went silent without
 * closing its connection: its host lost power, or the network between them
 * now drops everything. The server probes a TCP connection idle for
 * `idleSeconds`, then every `intervalSeconds`, and closes it once `count`
 * probes went unanswered; and closes one whose data it sent has gone
 * unacknowledged as long (tcp_user_timeout: a host that died before its
 * kernel acknowledged the server's last answer is never probed, its
 * connection not idle, and the server retransmits for some 15 minutes
 * otherwise, seen in the test). Closing it ends what the session held: its
 * advisory locks (a root's lock, the migration lock), its open transaction
 * and that transaction's row locks, which the other instances would
 * otherwise wait on until the operating system's default gave up (2 h 11 min
 * on Linux). A client that exits, even killed, closes its connections
 * itself; this is for the one that cannot. TCP only: PostgreSQL ignores
 * these settings on a Unix socket (the embedded server, on this host).
 */
export interface DeadClientCheck {
  idleSeconds: number
  intervalSeconds: number
  count: number
}

/** About 25 s from the last word of a client gone silent to its session's end. */
export const DEAD_CLIENT_CHECK: DeadClientCheck = { idleSeconds: 10, intervalSeconds: 5, count: 3 }

/**
 * The statement that sets `check` for the session it runs in (any role may).
 * A server that does not know the settings (a PostgreSQL-compatible one)
 * goes without rather than refusing the session.
 */
export function deadClientCheckSql (check: DeadClientCheck = DEAD_CLIENT_CHECK): string {
  const setting = (name: string, value: number): string => {
    if (!Number.isInteger(value) || value < 1 || value > 86_400) throw new RangeError(`${name} must be a whole number from 1 to 86400, not ${value}`)
    return `PERFORM set_config('${name}', '${value}', false);`
  }
  const silentMs = (check.idleSeconds + check.intervalSeconds * check.count) * 1000
  return `DO $$ BEGIN ${setting('tcp_keepalives_idle', check.idleSeconds)} ${setting('tcp_keepalives_interval', check.intervalSeconds)} ${setting('tcp_keepalives_count', check.count)} ` +
    `PERFORM set_config('tcp_user_timeout', '${silentMs}', false); EXCEPTION WHEN OTHERS THEN NULL; END $$`
}
