import { open, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'

export class RepoLockedError extends Error {
  override readonly name = 'RepoLockedError'
  readonly code = 'ERR_REPO_LOCKED'
  readonly pid: number
  constructor (dir: string, pid: number) {
    super(`the IPFS repo ${dir} is in use by process ${pid}`)
    this.pid = pid
  }
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * One process at a time opens an embedded repo, as Kubo's `repo.lock`: the
 * file holds the owner's pid; a lock left by a process that is gone is taken over.
 */
export async function lockRepo (dir: string): Promise<() => Promise<void>> {
  const path = join(dir, 'repo.lock')
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600)
      await handle.writeFile(`${process.pid}\n`)
      await handle.close()
      return async () => { await unlink(path).catch(() => {}) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10)
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw new RepoLockedError(dir, pid)
    await unlink(path).catch(() => {})
  }
  throw new Error(`could not take the lock of the IPFS repo ${dir}`)
}
