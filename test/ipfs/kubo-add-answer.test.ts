import { once } from 'node:events'
import { createServer, type Server, type ServerResponse } from 'node:http'
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { NotFoundError, ServiceUnavailableError } from '../../src/errors.ts'
import { KuboBackend } from '../../src/ipfs/kubo-backend.ts'

const CID_A = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
const CID_ROOT = 'bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'

/**
 * A stand-in for Kubo's /api/v0/add that answers in 5-byte chunks, each its
 * own write, so that almost every multi-byte character of a name is split
 * between two chunks. (A real Kubo writes whole lines, so this cannot be
 * provoked reliably with it.) It keeps the file names it was sent.
 */
async function fakeKubo (answer: readonly object[]): Promise<{ url: string, server: Server, sentNames: string[] }> {
  const sentNames: string[] = []
  const server = createServer((req, res) => {
    const body: Buffer[] = []
    req.on('data', (chunk: Buffer) => { body.push(chunk) })
    req.on('end', () => {
      for (const match of Buffer.concat(body).toString('latin1').matchAll(/filename="([^"]*)"/g)) sentNames.push(match[1] ?? '')
      const bytes = Buffer.from(answer.map((line) => `${JSON.stringify(line)}\n`).join(''))
      res.writeHead(200, { 'Content-Type': 'application/json' })
      void (async () => {
        for (let at = 0; at < bytes.length; at += 5) { res.write(bytes.subarray(at, at + 5)); await sleep(1) }
        res.end()
      })()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, sentNames }
}

describe('KuboBackend reading `ipfs add` answers', () => {
  let server: Server | undefined
  afterEach(() => { server?.close() })

  it('keeps names whose UTF-8 bytes are split between chunks, and sends each name in ASCII that decodes back', async () => {
    const names = ['テクスチャ.png', 'emoji😀.png', 'über/ünïcödé 字 +%20&?#.png']
    const fake = await fakeKubo([...names.map((name) => ({ Name: name, Hash: CID_A, Size: '9' })), { Name: '', Hash: CID_ROOT, Size: '99' }])
    server = fake.server
    const backend = new KuboBackend(fake.url)
    const nodes = await backend.importTree(names.map((path) => ({ path, content: Readable.from([Buffer.from('png')]) })), { profile: 'unixfs-v1-2025' })
    expect(nodes.map((n) => n.path)).toEqual([...names, ''])
    expect(fake.sentNames.every((sent) => /^[\x21-\x7e]*$/.test(sent))).toBe(true)
    expect(fake.sentNames.map((sent) => decodeURIComponent(sent))).toEqual(names)
  })
})

describe('KuboBackend when Kubo stops answering', () => {
  const sockets: Socket[] = []
  let closeServer: (() => void) | undefined
  afterEach(() => { for (const socket of sockets.splice(0)) socket.destroy(); closeServer?.() })

  /** What a stopped (SIGSTOP) or deadlocked Kubo looks like: connections accepted, nothing read, nothing answered. */
  async function frozenKubo (): Promise<string> {
    const server = createTcpServer((socket) => { socket.pause(); sockets.push(socket) })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    closeServer = () => { server.close() }
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  it('readiness and the start-up identify give up in seconds (503), not never', async () => {
    const backend = new KuboBackend(await frozenKubo())
    const started = Date.now()
    await expect(backend.ping()).rejects.toBeInstanceOf(ServiceUnavailableError)
    await expect(backend.identify()).rejects.toBeInstanceOf(ServiceUnavailableError)
    expect(Date.now() - started).toBeLessThan(15_000)
    const listing = (async () => { for await (const cid of backend.listPins({ signal: AbortSignal.timeout(300) })) void cid })()
    await expect(listing).rejects.toBeInstanceOf(ServiceUnavailableError)
  })

  it('an import Kubo stops reading fails with 503 once it has been idle for importIdleMs', async () => {
    const backend = new KuboBackend(await frozenKubo(), { importIdleMs: 300 })
    const endless = Readable.from((function * () { for (;;) yield Buffer.alloc(64 * 1024) })())
    await expect(backend.importTree([{ path: 'big.bin', content: endless }], { profile: 'unixfs-v1-2025' })).rejects.toBeInstanceOf(ServiceUnavailableError)
  })

  it('a CAR upload Kubo stops reading (dag/import) fails with 503 too, instead of holding the upload and every collection', async () => {
    const backend = new KuboBackend(await frozenKubo(), { importIdleMs: 300 })
    const blocks = (async function * () {
      for (let i = 0; ; i++) {
        const bytes = Buffer.alloc(256 * 1024, i % 256)
        yield { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
      }
    })()
    const lease = await backend.openLease()
    try {
      await expect(backend.putBlocks(blocks, { lease })).rejects.toBeInstanceOf(ServiceUnavailableError)
    } finally {
      await lease.release()
    }
  })

  it('a pin Kubo does not answer fails with 503 once it has been idle for pinIdleMs (it held the upload and its root\'s lock for good)', async () => {
    const backend = new KuboBackend(await frozenKubo(), { pinIdleMs: 300 })
    const started = Date.now()
    await expect(backend.pin(CID.parse(CID_ROOT))).rejects.toBeInstanceOf(ServiceUnavailableError)
    expect(Date.now() - started).toBeLessThan(5_000)
  })

  it('a pin that takes longer than pinIdleMs goes on while Kubo reports progress, as it does every half second; a failure in its trailer is the pin\'s', async () => {
    const kubo = async (end: (res: ServerResponse) => void): Promise<string> => {
      const server = createServer((req, res) => {
        req.resume()
        res.writeHead(200, { 'Content-Type': 'application/json', Trailer: 'X-Stream-Error' })
        let ticks = 0
        const timer = setInterval(() => {
          if (++ticks <= 6) { res.write(`${JSON.stringify({ Progress: ticks * 10, Bytes: ticks * 1000 })}\n`); return }
          clearInterval(timer)
          end(res)
        }, 500)
      })
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      closeServer = () => { server.close() }
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    }
    const pinned = new KuboBackend(await kubo((res) => { res.end(`${JSON.stringify({ Pins: [CID_ROOT] })}\n`) }), { pinIdleMs: 1500 })
    const started = Date.now()
    await pinned.pin(CID.parse(CID_ROOT))
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000)
    closeServer?.()
    const failed = new KuboBackend(await kubo((res) => { res.addTrailers({ 'X-Stream-Error': 'merkledag: not found' }); res.end() }), { pinIdleMs: 1500 })
    await expect(failed.pin(CID.parse(CID_ROOT))).rejects.toBeInstanceOf(NotFoundError)
  })

  it('a pin whose count of nodes stands still past pinIdleMs while Kubo\'s ticks go on (a block Kubo looks for forever) fails with 503; a count of 0 (a pin waiting for a repo GC) goes on', async () => {
    /** Kubo's pin/add answer: a tick every 100 ms saying `count(tick)` nodes, for `ticks` ticks, then the pins. */
    const kubo = async (count: (tick: number) => number, ticks: number): Promise<{ url: string, cancelled: () => boolean }> => {
      let cancelled = false
      const server = createServer((req, res) => {
        req.resume()
        res.writeHead(200, { 'Content-Type': 'application/json', Trailer: 'X-Stream-Error' })
        let tick = 0
        const timer = setInterval(() => {
          if (++tick <= ticks) { const nodes = count(tick); res.write(`${JSON.stringify(nodes === 0 ? {} : { Progress: nodes, Bytes: nodes * 100 })}\n`); return }
          clearInterval(timer)
          res.end(`${JSON.stringify({ Pins: [CID_ROOT] })}\n`)
        }, 100)
        res.once('close', () => { if (!res.writableFinished) { cancelled = true; clearInterval(timer) } })
      })
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      closeServer = () => { server.close() }
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, cancelled: () => cancelled }
    }
    const stuck = await kubo((tick) => Math.min(tick, 3), 1_000)
    const started = Date.now()
    const err = await new KuboBackend(stuck.url, { pinIdleMs: 800 }).pin(CID.parse(CID_ROOT)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ServiceUnavailableError)
    expect((err as Error).message).toMatch(/without walking a block further/)
    expect(Date.now() - started).toBeLessThan(3_000)
    await sleep(100)
    expect(stuck.cancelled()).toBe(true)
    closeServer?.()
    // 0 for twice the bound (the pin waiting for a GC), then a count that moves: pinned.
    const waiting = await kubo((tick) => (tick <= 16 ? 0 : tick), 30)
    await new KuboBackend(waiting.url, { pinIdleMs: 800 }).pin(CID.parse(CID_ROOT))
    closeServer?.()
  })

  it('a Kubo that stops once its answer has begun (a pin after a progress line, an import after its first file) is a 503 too, not the "aborted" of the broken response (read as a database failure)', async () => {
    const server = createServer((req, res) => {
      req.resume()
      req.once('end', () => {
        res.writeHead(200, { 'Content-Type': 'application/json' })
        res.write(`${JSON.stringify(req.url?.startsWith('/api/v0/pin/add') === true ? { Progress: 1, Bytes: 10 } : { Name: 'a.bin', Hash: CID_A, Size: '9' })}\n`)
        // …and then nothing, the connection open.
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    closeServer = () => { server.closeAllConnections(); server.close() }
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const backend = new KuboBackend(url, { pinIdleMs: 300, importIdleMs: 300 })
    await expect(backend.pin(CID.parse(CID_ROOT))).rejects.toBeInstanceOf(ServiceUnavailableError)
    await expect(backend.importTree([{ path: 'a.bin', content: Readable.from([Buffer.from('123456789')]) }], { profile: 'unixfs-v1-2025' })).rejects.toBeInstanceOf(ServiceUnavailableError)
  })

  it('a pause of the upload itself (a client sending slowly) is not Kubo stalling', async () => {
    const fake = await fakeKubo([{ Name: 'slow.bin', Hash: CID_A, Size: '9' }, { Name: '', Hash: CID_ROOT, Size: '99' }])
    closeServer = () => { fake.server.close() }
    const backend = new KuboBackend(fake.url, { importIdleMs: 300 })
    const slow = Readable.from((async function * () { yield Buffer.alloc(1024); await sleep(1500); yield Buffer.alloc(1024) })())
    const nodes = await backend.importTree([{ path: 'slow.bin', content: slow }], { profile: 'unixfs-v1-2025' })
    expect(nodes.at(-1)?.cid.toString()).toBe(CID_ROOT)
  })

  it("Kubo's stream error when its datastore closes under an add (a daemon stopping) is 503, not an internal error", async () => {
    const server = createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'application/json', Trailer: 'X-Stream-Error' })
        res.addTrailers({ 'X-Stream-Error': 'committing batch to datastore at /blocks: datastore closed' })
        res.end()
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    closeServer = () => { server.close() }
    const backend = new KuboBackend(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    await expect(backend.importTree([{ path: 'a.bin', content: Readable.from([Buffer.from('a')]) }], { profile: 'unixfs-v1-2025' })).rejects.toBeInstanceOf(ServiceUnavailableError)
  })
})
