import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { UnprocessableContentError } from '../../src/errors.ts'
import { checkTarNames, TAR_MAX_ENTRIES, tarRoot, tarStream } from '../../src/gateway/formats/tar.ts'
import type { IpfsBackend } from '../../src/ipfs/ipfs-backend.ts'

type TreeReader = Pick<IpfsBackend, 'stat' | 'read' | 'list'>

/** One file of `size` bytes whose read yields `chunks` of 64 KiB (fewer bytes than `size` when told so), noting when the read is closed. */
async function oneFile (size: number, options: { short?: boolean } = {}): Promise<{ backend: TreeReader, cid: CID, readClosed: () => boolean }> {
  const cid = CID.createV1(raw.code, await sha256.digest(new Uint8Array([1])))
  let closed = false
  const backend = {
    stat: async () => Promise.resolve({ type: 'file', cid, size }),
    list: async function * () {},
    read: async function * () {
      try {
        const chunk = new Uint8Array(64 * 1024)
        for (let sent = 0; sent < (options.short === true ? size / 2 : size); sent += chunk.length) {
          await sleep(0)
          yield chunk
        }
      } finally {
        closed = true
      }
    }
  } as unknown as TreeReader
  return { backend, cid, readClosed: () => closed }
}

/** Fails the test on an error no one listened for, the way it took the process down. */
async function noUncaughtError (work: () => Promise<void>): Promise<void> {
  const uncaught: unknown[] = []
  const onError = (err: unknown): void => { uncaught.push(err) }
  process.on('uncaughtException', onError)
  try {
    await work()
    await sleep(50)
  } finally {
    process.off('uncaughtException', onError)
  }
  expect(uncaught).toEqual([])
}

describe('?format=tar streams', () => {
  it('end quietly when their reader leaves mid-file: no error left unheard (it ended the process), and the file\'s read is closed', async () => {
    await noUncaughtError(async () => {
      const { backend, cid, readClosed } = await oneFile(8 * 1024 * 1024)
      const tar = tarStream(backend, { name: cid.toString(), type: 'file', cid, size: 8 * 1024 * 1024, mode: 0o644 })
      let received = 0
      await new Promise<void>((resolve) => {
        tar.on('data', (chunk: unknown) => {
          received += (chunk as Uint8Array).length
          // The client leaves after its first 256 KiB, as `curl … | head -c` does.
          if (received >= 256 * 1024) { tar.destroy(); resolve() }
        })
        tar.on('error', () => {})
      })
      await sleep(50)
      expect(readClosed()).toBe(true)
    })
  })

  it('fail, with no error left unheard, when a file ends short of the length its node declares (a block missing over Kubo)', async () => {
    await noUncaughtError(async () => {
      const { backend, cid } = await oneFile(1024 * 1024, { short: true })
      const tar = tarStream(backend, { name: cid.toString(), type: 'file', cid, size: 1024 * 1024, mode: 0o644 })
      const failed = new Promise<Error>((resolve) => { tar.on('error', resolve) })
      tar.resume()
      expect((await failed).message).toMatch(/size mismatch/i)
    })
  })
})

describe('?format=tar of a tree that links its folders many times', () => {
  it(`is refused (422) past ${TAR_MAX_ENTRIES} entries, or the walk's own maximum, before any byte, each folder listed once`, async () => {
    // As found by review: four levels of folders, each linking 1,000 times to the one below: 10^12 entries from a 10.8 KB zip.
    const levels = await Promise.all([0, 1, 2, 3].map(async (i) => CID.createV1(raw.code, await sha256.digest(Uint8Array.of(i)))))
    const leaf = CID.createV1(raw.code, await sha256.digest(Uint8Array.of(9)))
    let lists = 0
    const backend = {
      stat: async () => Promise.resolve({ type: 'directory', cid: levels[0], size: 0, mode: 0o755 }),
      getBlock: async () => Promise.reject(new Error('not read')),
      list: async function * (cid: CID) {
        // Before, the walk went on for as long as the client waited: the test stops it.
        if (++lists > 200) throw new Error('walked without end')
        const depth = levels.findIndex((level) => level.equals(cid))
        const below = levels[depth + 1]
        for (let i = 0; i < 1_000; i++) {
          await Promise.resolve()
          yield below === undefined ? { name: `f${i}.bin`, type: 'file', cid: leaf, size: 1, mode: 0o644 } : { name: `d${i}`, type: 'directory', cid: below, size: 0, mode: 0o755 }
        }
      }
    } as unknown as Parameters<typeof checkTarNames>[0]
    const root = await tarRoot(backend, levels[0] as CID)
    const started = Date.now()
    await expect(checkTarNames(backend, root)).rejects.toBeInstanceOf(UnprocessableContentError)
    expect(lists).toBe(4)
    expect(Date.now() - started).toBeLessThan(2_000)
    // A maximum raised with ZIP_MAX_ENTRIES (gatewayEntryLimit) holds the same way.
    lists = 0
    await expect(checkTarNames(backend, root, undefined, undefined, 1_500_000)).rejects.toThrow('more than 1500000 entries')
    expect(lists).toBeLessThanOrEqual(5)
  })
})
