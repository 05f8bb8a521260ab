import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { resolve } from 'node:path'

/** The lock files this process holds: a lock naming our pid that is not among them is an earlier process's. */
const held = new Set<string>()

/** Whether `pid` runs: a zombie (exited, not yet reaped by a parent that may never reap it) does not. */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return true // no /proc (not Linux): the signal's answer stands
  }
}

/**
 * Takes the lock file at `path`, which holds its owner's pid, as Kubo's
 * `repo.lock` guards a repo: one process at a time. A lock left by a
 * process that is gone is taken over, and so is one naming this process's
 * own pid that this process never took: in a container every start is pid
 * 1, so after a crash the file names the new process itself. `inUse` makes
 * the error for a live owner. Synchronous, so that a start can go on
 * without an event-loop turn (see startEmbeddedPostgres). Returns the release.
 */
export function takePidLock (path: string, inUse: (pid: number) => Error): () => Promise<void> {
  const key = resolve(path)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(key, 'wx', 0o600)
      try {
        writeSync(fd, `${process.pid}\n`)
      } finally {
        closeSync(fd)
      }
      held.add(key)
      return async () => {
        held.delete(key)
        try { unlinkSync(key) } catch { /* already gone */ }
        await Promise.resolve()
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    let text = ''
    try { text = readFileSync(key, 'utf8') } catch { /* removed meanwhile */ }
    const pid = Number.parseInt(text, 10)
    const ours = pid === process.pid && !held.has(key)
    if (Number.isInteger(pid) && pid > 0 && !ours && alive(pid)) throw inUse(pid)
    try { unlinkSync(key) } catch { /* removed meanwhile */ }
  }
  throw new Error(`could not take the lock ${key}`)
}
