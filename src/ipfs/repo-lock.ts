import { join } from 'node:path'
import { takePidLock } from '../pid-lock.ts'

export class RepoLockedError extends Error {
  override readonly name = 'RepoLockedError'
  readonly code = 'ERR_REPO_LOCKED'
  readonly pid: number
  constructor (dir: string, pid: number) {
    super(`the IPFS repo ${dir} is in use by process ${pid}`)
    this.pid = pid
  }
}

/** One process at a time opens an embedded repo (see takePidLock). */
export async function lockRepo (dir: string): Promise<() => Promise<void>> {
  return await Promise.resolve(takePidLock(join(dir, 'repo.lock'), (pid) => new RepoLockedError(dir, pid)))
}
