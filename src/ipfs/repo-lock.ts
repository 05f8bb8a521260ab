import { dirname, join } from 'node:path'
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
  // The service serves DATA_DIR/heimdall.sock (the repo is DATA_DIR/ipfs) while it holds the repo: alive across containers.
  return await Promise.resolve(takePidLock(join(dir, 'repo.lock'), (pid) => new RepoLockedError(dir, pid), { liveSocket: join(dirname(dir), 'heimdall.sock') }))
}
