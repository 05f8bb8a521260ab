import { existsSync, readlinkSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { takePidLock } from '../src/pid-lock.ts'

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'heimdall-lock-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

const inUse = (pid: number): Error => new Error(`held by ${pid}`)
const namespace = readlinkSync('/proc/self/ns/pid')

describe('pid lock files', () => {
  it('one holder at a time, naming its pid and pid namespace, serving its socket at once; released, taken again', async () => {
    const path = join(dir, 'a.lock')
    const release = takePidLock(path, inUse)
    expect(await readFile(path, 'utf8')).toBe(`${process.pid}\n${namespace}\n`)
    // Listening before any turn of the event loop: a probe from another namespace would find it.
    expect(existsSync(`${path}.sock`)).toBe(true)
    expect(() => takePidLock(path, inUse)).toThrow(`held by ${process.pid}`)
    await release()
    await (takePidLock(path, inUse))()
  })

  it('in its own pid namespace, the pid decides: a live owner refuses, a gone one is taken over', async () => {
    const live = join(dir, 'live.lock')
    await writeFile(live, `1\n${namespace}\n`)
    expect(() => takePidLock(live, inUse)).toThrow('held by 1')
    const gone = join(dir, 'gone.lock')
    await writeFile(gone, `2147483646\n${namespace}\n`)
    await (takePidLock(gone, inUse))()
  })

  it('from another pid namespace (another container, or this one before a restart), the owner\'s socket decides', async () => {
    const path = join(dir, 'other.lock')
    // Pid 1 of another container: in this namespace the pid is someone else, or this process itself after a restart.
    for (const pid of [1, process.pid]) {
      await writeFile(path, `${pid}\npid:[1]\n`)
      const owner = createServer()
      await new Promise<void>((resolve) => { owner.listen(`${path}.sock`, resolve) })
      try {
        expect(() => takePidLock(path, inUse), `pid ${pid}, socket served`).toThrow(`held by ${pid}`)
      } finally {
        await new Promise((resolve) => { owner.close(resolve) })
      }
      // Its socket no longer answers (that container stopped): taken over.
      await (takePidLock(path, inUse))()
    }
  })

  it('a release removes the file only while it is still this process\'s: a racer that failed leaves the winner\'s lock', async () => {
    const path = join(dir, 'race.lock')
    const release = takePidLock(path, inUse)
    await writeFile(path, `4242\npid:[2]\n`)
    await release()
    expect(await readFile(path, 'utf8')).toBe('4242\npid:[2]\n')
  })
})
