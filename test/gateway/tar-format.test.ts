import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { tarStream } from '../../src/gateway/formats/tar.ts'
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
