import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { CID } from 'multiformats/cid'
import { afterEach, describe, expect, it } from 'vitest'
import { HeliaBackend } from '../../src/ipfs/helia-backend.ts'
import { RepoLockedError } from '../../src/ipfs/repo-lock.ts'
import { blockFiles } from '../support/heimdall-harness.ts'

const dirs: string[] = []
afterEach(async () => { for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true }) })
const repoDir = async (): Promise<string> => { const dir = await mkdtemp(join(tmpdir(), 'heimdall-repo-')); dirs.push(dir); return dir }

describe('the embedded repo', () => {
  it('is opened by one process at a time; a lock left by a dead process is taken over', async () => {
    const dir = await repoDir()
    const first = await HeliaBackend.open(join(dir, 'ipfs'))
    await expect(HeliaBackend.open(join(dir, 'ipfs'))).rejects.toBeInstanceOf(RepoLockedError)
    await first.close()
    await writeFile(join(dir, 'ipfs', 'repo.lock'), '2147483646\n') // no such process
    const second = await HeliaBackend.open(join(dir, 'ipfs'))
    await second.close()
  })

  it('answers the readiness probe without writing a block', async () => {
    const dir = await repoDir()
    const backend = await HeliaBackend.open(join(dir, 'ipfs'))
    try {
      await backend.ping()
      await backend.ping()
      expect(await blockFiles(dir)).toEqual({ files: 0, bytes: 0 })
    } finally {
      await backend.close()
    }
  })

  it('a root whose pin record is gone is not pinned, whatever per-block records remain; a collection removes both', async () => {
    const dir = await repoDir()
    const backend = await HeliaBackend.open(join(dir, 'ipfs'))
    try {
      const nodes = await backend.importTree([{ path: 'a.bin', content: Readable.from([randomBytes(100_000)]) }], { profile: 'unixfs-v1-2025' })
      const root = nodes.at(-1)?.cid as CID
      await backend.pin(root)
      // As a crash mid-pin leaves it: per-block records written, the root's own pin record not.
      const pinDir = join(dir, 'ipfs', 'datastore', 'pin')
      for (const name of await readdir(pinDir)) await unlink(join(pinDir, name))
      expect(await backend.isPinned(root)).toBe(false)
      const report = await backend.gc()
      expect(report.blocks).toBe(2)
      expect(report.records).toBe(2)
      expect(await readdir(join(dir, 'ipfs', 'datastore', 'pinned-block')).catch(() => [])).toEqual([])
      expect(await blockFiles(dir)).toEqual({ files: 0, bytes: 0 })
    } finally {
      await backend.close()
    }
  })
})
