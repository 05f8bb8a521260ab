import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { takePidLock } from '../src/pid-lock.ts'

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'heimdall-lock-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

const inUse = (pid: number): Error => new Error(`held by ${pid}`)

describe('pid lock files', () => {
  it('one holder at a time; released, taken again', async () => {
    const path = join(dir, 'a.lock')
    const release = takePidLock(path, inUse)
    expect(await readFile(path, 'utf8')).toBe(`${process.pid}\n`)
    expect(() => takePidLock(path, inUse)).toThrow(`held by ${process.pid}`)
    await release()
    await (takePidLock(path, inUse))()
  })

  it('takes over a lock of a process that is gone, and one naming this process that it never took (a container\'s pid 1 after a crash)', async () => {
    const gone = join(dir, 'gone.lock')
    await writeFile(gone, '2147483646\n')
    await (takePidLock(gone, inUse))()
    const reused = join(dir, 'reused.lock')
    await writeFile(reused, `${process.pid}\n`)
    const release = takePidLock(reused, inUse)
    expect(() => takePidLock(reused, inUse)).toThrow(`held by ${process.pid}`)
    await release()
  })
})
