/**
 * Runs work on one key at a time. The shape of tus-node-server's `Locker`: an
 * in-memory implementation (KeyedLock) serves one process, a distributed one
 * (PgAdvisoryLock) serves several instances sharing one PostgreSQL, and the
 * start-up code picks one; callers never know which.
 */
export interface ContentLock {
  /** Resolves or rejects with `work`'s outcome once no other holder of `key` (here or, if distributed, elsewhere) is running. */
  run: <T>(key: string, work: () => Promise<T>) => Promise<T>
}
