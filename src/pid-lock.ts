import { spawnSync } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, unlinkSync, writeSync } from 'node:fs'
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
 * Whether something accepts connections on the Unix socket at `path`: a
 * liveness test that works across pid namespaces (another container on the
 * same volume), where a pid says nothing. Synchronous (a child process
 * connects), since a start must not wait for an event-loop turn; asked only
 * when the pid cannot tell.
 */
function socketAnswers (path: string): boolean {
  if (!existsSync(path)) return false
  const probe = `require('node:net').connect(${JSON.stringify(path)}).on('connect', () => process.exit(0)).on('error', () => process.exit(1))`
  return spawnSync(process.execPath, ['-e', probe], { stdio: 'ignore', timeout: 5000 }).status === 0
}

/** This process's pid namespace (`pid:[4026531836]`), in which a lock's pid means something; '' where there is no /proc. */
function pidNamespace (): string {
  try {
    return readlinkSync('/proc/self/ns/pid')
  } catch {
    return ''
  }
}

/**
 * Takes the lock file at `path`, which holds its owner's pid, as Kubo's
 * `repo.lock` guards a repo: one process at a time. The file also names the
 * owner's pid namespace. In this process's own namespace the pid decides: a
 * live owner refuses the lock (`inUse` makes the error), a gone one leaves
 * it to be taken over. From another namespace (another container on the
 * same volume, or this container before a restart: in a container every
 * start is pid 1) a pid says nothing, so the socket `liveSocket`, which a
 * live owner serves, decides: it answers, the lock is in use. Synchronous,
 * so that a start can go on without an event-loop turn (see
 * startEmbeddedPostgres). Returns the release.
 */
export function takePidLock (path: string, inUse: (pid: number) => Error, options: { liveSocket?: string } = {}): () => Promise<void> {
  const key = resolve(path)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(key, 'wx', 0o600)
      try {
        writeSync(fd, `${process.pid}\n${pidNamespace()}\n`)
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
    const [first = '', namespace = ''] = text.split('\n')
    const pid = Number.parseInt(first, 10)
    if (held.has(key)) throw inUse(process.pid)
    const ours = namespace !== '' && namespace === pidNamespace()
    if (ours) {
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw inUse(pid)
    } else if (options.liveSocket !== undefined ? socketAnswers(options.liveSocket) : Number.isInteger(pid) && pid > 0 && alive(pid)) {
      throw inUse(pid)
    }
    try { unlinkSync(key) } catch { /* removed meanwhile */ }
  }
  throw new Error(`could not take the lock ${key}`)
}
