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
 * itself; this is for the one that cannot. The same bound ends the sessions
 * of a live instance cut off as long (a partition, a paused container): its
 * work goes on without its locks, as after any broken connection (see
 * advisory-lock.ts), and its own queries fail past DATABASE_QUERY_TIMEOUT_SECONDS.
 * TCP only: PostgreSQL ignores these settings on a Unix socket (the
 * embedded server, on this host).
 */
export interface DeadClientCheck {
  idleSeconds: number
  intervalSeconds: number
  count: number
}

/** DATABASE_DEAD_CLIENT_SECONDS's default: about 25 s from a silent client's last word to its session's end. */
export const DEAD_CLIENT_SECONDS = 25

/** The probes that end a silent client's session in about `seconds` (at least 4); undefined for 0: the server's own settings. */
export function deadClientCheckFor (seconds: number): DeadClientCheck | undefined {
  if (seconds === 0) return undefined
  return { idleSeconds: Math.max(1, Math.round(seconds * 0.4)), intervalSeconds: Math.max(1, Math.round(seconds * 0.2)), count: 3 }
}

export const DEAD_CLIENT_CHECK = deadClientCheckFor(DEAD_CLIENT_SECONDS) as DeadClientCheck

/**
 * The statement that sets `check` for the session it runs in (any role
 * may). A server that does not know a setting (tcp_user_timeout before
 * PostgreSQL 12, a PostgreSQL-compatible server) goes without that one
 * rather than refusing the session or the others.
 */
export function deadClientCheckSql (check: DeadClientCheck = DEAD_CLIENT_CHECK): string {
  const whole = (name: string, value: number): number => {
    if (!Number.isInteger(value) || value < 1 || value > 86_400) throw new RangeError(`${name} must be a whole number from 1 to 86400, not ${value}`)
    return value
  }
  const silentMs = (whole('idleSeconds', check.idleSeconds) + whole('intervalSeconds', check.intervalSeconds) * whole('count', check.count)) * 1000
  const settings: Array<[string, number]> = [
    ['tcp_keepalives_idle', check.idleSeconds],
    ['tcp_keepalives_interval', check.intervalSeconds],
    ['tcp_keepalives_count', check.count],
    ['tcp_user_timeout', silentMs]
  ]
  const each = settings.map(([name, value]) => `BEGIN PERFORM set_config('${name}', '${value}', false); EXCEPTION WHEN OTHERS THEN NULL; END;`)
  return `DO $$ BEGIN ${each.join(' ')} END $$`
}
