import { spawnSync } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, linkSync, openSync, readFileSync, readlinkSync, renameSync, unlinkSync, writeSync } from 'node:fs'
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
  // Exit 1: the connection was refused (no owner). Anything else, a probe that could not run or did not finish in time
  // included, counts as an owner: a lock is never taken on a guess.
  return spawnSync(process.execPath, ['-e', probe], { stdio: 'ignore', timeout: 5000 }).status !== 1
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
 * owner's pid namespace, and the owner serves a Unix socket beside it
 * (`<path>.sock`) from the moment it has the lock until it lets go. In this
 * process's own namespace the pid decides: a live owner refuses the lock
 * (`inUse` makes the error), a gone one leaves it to be taken over. From
 * another namespace (another container on the same volume, or this one
 * before a restart: in a container every start is pid 1) a pid says
 * nothing, so the owner's socket decides: it answers, the lock is in use.
 * Synchronous, so that a start can go on without an event-loop turn (see
 * startEmbeddedPostgres): a Unix socket is bound and listening when
 * `listen` returns, and the kernel queues a probe's connection meanwhile.
 * Returns the release, which removes the file only while it is still this
 * process's.
 */
export function takePidLock (path: string, inUse: (pid: number) => Error): () => Promise<void> {
  const key = resolve(path)
  const socket = `${key}.sock`
  const content = `${process.pid}\n${pidNamespace()}\n`
  for (let attempt = 0; attempt < 3; attempt++) {
    // Never empty: the content is written to a file of our own, then linked into place (link fails if the lock exists).
    const temp = `${key}.${process.pid}.${randomBytes(6).toString('hex')}`
    const fd = openSync(temp, 'wx', 0o600)
    try {
      writeSync(fd, content)
    } finally {
      closeSync(fd)
    }
    try {
      try {
        linkSync(temp, key)
      } finally {
        unlinkSync(temp)
      }
      held.add(key)
      const server = serveLockSocket(socket)
      let released = false
      return async () => {
        if (released) return
        released = true
        held.delete(key)
        server?.close()
        try { if (readFileSync(key, 'utf8') === content) unlinkSync(key) } catch { /* already gone */ }
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
    if (namespace !== '' && namespace === pidNamespace()) {
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw inUse(pid)
    } else if (socketAnswers(socket) || (namespace === '' && Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid))) {
      // Another namespace: its owner's socket. A lock of an older version (no namespace line): its pid as before, too.
      throw inUse(pid)
    }
    removeIfStill(key, text)
  }
  throw new Error(`could not take the lock ${key}`)
}

/**
 * Removes the lock at `key` only if it still holds `judged`, the content found
 * stale: moved aside atomically, then checked, and put back if another
 * process's new lock was moved instead (two starts taking over one stale lock
 * at once would otherwise each delete the other's).
 */
function removeIfStill (key: string, judged: string): void {
  const aside = `${key}.stale.${process.pid}.${randomBytes(6).toString('hex')}`
  try { renameSync(key, aside) } catch { return /* gone meanwhile */ }
  let moved = ''
  try { moved = readFileSync(aside, 'utf8') } catch { /* unreadable: treated as another's */ }
  if (moved !== judged) {
    try { linkSync(aside, key) } catch { /* a newer lock is in place already */ }
  }
  try { unlinkSync(aside) } catch { /* gone */ }
}

/** Listens on `path` (a stale file of a gone owner removed first), unreferenced; undefined where it cannot (the lock still holds by pid). */
function serveLockSocket (path: string): Server | undefined {
  try { unlinkSync(path) } catch { /* none */ }
  const server = createServer((connection) => { connection.destroy() })
  server.on('error', () => { /* a socket path that cannot be bound: the pid still guards within the namespace */ })
  server.listen(path)
  server.unref()
  return server
}
