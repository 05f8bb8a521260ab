import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { CID } from 'multiformats/cid'
import { ServiceUnavailableError } from '../../src/errors.ts'
import { httpGatewayBytes } from '../../src/gateway/http-gateway-bytes.ts'
import { idleBounded } from '../../src/ipfs/idle-bound.ts'
import { KuboBackend } from '../../src/ipfs/kubo-backend.ts'
import { createIdentity, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { startKubo, type KuboNode } from '../support/kubo.ts'
import { createScratchDatabase } from '../support/postgres-server.ts'

const FILE = CID.parse('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
const MiB = 1024 * 1024

/**
 * Reads from a Kubo that stops answering (stopped, or the network between
 * dropping everything) are 503s after the read bound, not requests held
 * for as long as their clients wait; a client that is slow itself is not
 * the node stalling.
 */
describe('reads from a Kubo that stops answering', () => {
  const sockets: Socket[] = []
  const servers: Array<{ close: () => void }> = []
  afterEach(() => { for (const socket of sockets.splice(0)) socket.destroy(); for (const server of servers.splice(0)) server.close() })

  /** Connections accepted, nothing read, nothing answered. */
  async function frozen (): Promise<string> {
    const server = createTcpServer((socket) => { socket.pause(); sockets.push(socket) })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    servers.push(server)
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  /** A gateway that answers with `handle`. */
  async function gateway (handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const server: Server = createServer(handle)
    server.on('connection', (socket) => { sockets.push(socket) })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    servers.push(server)
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  const sink = (delayMs = 0): Writable => new Writable({ highWaterMark: 64 * 1024, write (_chunk, _enc, cb) { setTimeout(cb, delayMs) } })
  const drain = async (items: AsyncIterable<unknown>): Promise<void> => { for await (const item of items) void item }

  it('a read its consumer leaves early ends the request behind it and closes its source (a refused upload\'s cat stayed open in Kubo)', async () => {
    let closed = false
    const source = (async function * () {
      try { for (let i = 0; ; i++) { yield i; await sleep(1) } } finally { closed = true }
    })()
    const abort = new AbortController()
    for await (const item of idleBounded(source, 1000, () => new Error('stalled'), abort)) if (item === 2) break
    await sleep(10)
    expect({ closed, aborted: abort.signal.aborted }).toEqual({ closed: true, aborted: true })
    // Read to its end, nothing is aborted.
    const whole = new AbortController()
    let count = 0
    for await (const item of idleBounded((async function * () { for (const n of [1, 2, 3]) { await sleep(1); yield n } })(), 1000, () => new Error('stalled'), whole)) count += item
    expect({ count, aborted: whole.signal.aborted }).toEqual({ count: 6, aborted: false })
  })

  it('a stat, a listing, a block and a file\'s bytes over the RPC API fail with 503 after readIdleMs', async () => {
    const backend = new KuboBackend(await frozen(), { readIdleMs: 300 })
    const started = Date.now()
    await expect(backend.stat(FILE)).rejects.toBeInstanceOf(ServiceUnavailableError)
    await expect(drain(backend.list(FILE))).rejects.toBeInstanceOf(ServiceUnavailableError)
    await expect(backend.getBlock(FILE)).rejects.toBeInstanceOf(ServiceUnavailableError)
    await expect(drain(backend.read(FILE, []))).rejects.toBeInstanceOf(ServiceUnavailableError)
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('a stat, a listing, a block and a file\'s bytes end when their caller gives up, not at the bound (a client that left a tar)', async () => {
    const backend = new KuboBackend(await frozen(), { readIdleMs: 30_000 })
    for (const ask of [
      async (signal: AbortSignal) => backend.stat(FILE, [], { signal }),
      async (signal: AbortSignal) => { await drain(backend.list(FILE, [], { signal })) },
      async (signal: AbortSignal) => backend.getBlock(FILE, { signal }),
      async (signal: AbortSignal) => { await drain(backend.read(FILE, [], { signal })) }
    ]) {
      const started = Date.now()
      await expect(ask(AbortSignal.timeout(200))).rejects.toThrow()
      expect(Date.now() - started).toBeLessThan(5_000)
    }
  })

  it('a file\'s bytes from the gateway fail with 503 when its head does not come, for a small and a large read', async () => {
    const bytes = httpGatewayBytes(await frozen(), { idleMs: 300 })
    const small = { cid: FILE, type: 'file' as const, size: 1000 }
    const large = { cid: FILE, type: 'file' as const, size: 4 * MiB }
    await expect(drain(bytes.read(small, { offset: 0, length: 1000 }))).rejects.toBeInstanceOf(ServiceUnavailableError)
    await expect(bytes.writeTo(small, { offset: 0, length: 1000 }, sink())).rejects.toBeInstanceOf(ServiceUnavailableError)
    await expect(bytes.writeTo(large, { offset: 0, length: 4 * MiB }, sink())).rejects.toBeInstanceOf(ServiceUnavailableError)
  })

  it('a body that stops mid-way is cut after idleMs; one the client reads slowly goes on', async () => {
    const size = 4 * MiB
    // Half the body, then silence with the connection open.
    const stalling = httpGatewayBytes(await gateway((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(size) })
      res.write(Buffer.alloc(size / 2))
    }), { idleMs: 300 })
    const node = { cid: FILE, type: 'file' as const, size }
    await expect(stalling.writeTo(node, { offset: 0, length: size }, sink())).rejects.toBeInstanceOf(ServiceUnavailableError)
    await expect(drain(stalling.read(node, { offset: 0, length: size }))).rejects.toBeInstanceOf(ServiceUnavailableError)
    const smallNode = { cid: FILE, type: 'file' as const, size: 1000 }
    const smallStalling = httpGatewayBytes(await gateway((_req, res) => {
      res.writeHead(200, { 'Content-Length': '1000' })
      res.write(Buffer.alloc(500))
    }), { idleMs: 300 })
    await expect(smallStalling.writeTo(smallNode, { offset: 0, length: 1000 }, sink())).rejects.toBeInstanceOf(ServiceUnavailableError)

    // The whole body at once, to a client that takes 400 ms a write (past idleMs each time): the read waits for it,
    // paused, which is not Kubo's silence.
    const big = 12 * MiB
    const serving = (length: number) => (_req: IncomingMessage, res: ServerResponse): void => {
      res.writeHead(200, { 'Content-Length': String(length) })
      res.end(Buffer.alloc(length))
    }
    const whole = httpGatewayBytes(await gateway(serving(big)), { idleMs: 300 })
    await whole.writeTo({ cid: FILE, type: 'file', size: big }, { offset: 0, length: big }, sink(400))
    let read = 0
    const fourMiB = httpGatewayBytes(await gateway(serving(size)), { idleMs: 300 })
    for await (const chunk of fourMiB.read(node, { offset: 0, length: size })) { read += chunk.length; if (read <= 3 * 64 * 1024) await sleep(400) }
    expect(read).toBe(size)
  })
})

/**
 * Through the gateway's routes, over a real Kubo that is then stopped
 * (SIGSTOP: connections accepted, nothing answered), with
 * IPFS_TIMEOUT_SECONDS=1: a file whose resolution is remembered but whose
 * bytes must come from Kubo's gateway.
 */
describe.skipIf(inject('kuboBin') === '')('the gateway\'s routes and uploads over a stopped Kubo', () => {
  let kubo: KuboNode
  let t: TestHeimdall
  let token: string
  let fileCid: string
  let drop: (() => Promise<void>) | undefined
  let stopped = false
  const resume = (): void => { if (stopped) { process.kill(kubo.pid, 'SIGCONT'); stopped = false } }

  beforeAll(async () => {
    kubo = await startKubo(inject('kuboBin'))
    const scratch = await createScratchDatabase(inject('postgresUrl'))
    t = await startTestHeimdall({ DATABASE_URL: scratch.url, IPFS_API_URL: kubo.apiUrl, IPFS_GATEWAY_URL: kubo.gatewayUrl, IPFS_TIMEOUT_SECONDS: '1' })
    drop = scratch.drop
    ;({ token } = await createIdentity(t.request))
    const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', randomBytes(3 * MiB), 'big.bin').expect(200)
    fileCid = (res.body as Array<{ Name: string, Hash: string }>).find((item) => item.Name === 'big/big.bin')?.Hash ?? ''
    // Resolved once while Kubo answers (named .bin: nothing sniffed): the node is remembered, its bytes are not.
    await t.request.head(`/ipfs/${fileCid}?filename=big.bin`).expect(200)
  }, 120_000)

  afterAll(async () => {
    resume()
    await t?.close()
    await drop?.()
    await kubo?.stop()
  })

  it('a bare CID\'s type, sniffed from bytes Kubo does not send, is a 503 after the bound, not a guess (a HEAD answered 200, a GET waited twice)', async () => {
    process.kill(kubo.pid, 'SIGSTOP')
    stopped = true
    for (const method of ['head', 'get'] as const) {
      const started = Date.now()
      const res = await t.request[method](`/ipfs/${fileCid}`)
      const seconds = (Date.now() - started) / 1000
      expect({ method, status: res.status }).toEqual({ method, status: 503 })
      expect(seconds).toBeLessThan(1.9)
    }
    resume()
    const back = await t.request.head(`/ipfs/${fileCid}`).expect(200)
    expect(back.headers['content-type']).toBe('application/octet-stream')
  }, 60_000)

  it('an upload whose client leaves after sending it all, while Kubo keeps its import waiting, is dropped, not stored once Kubo is back', async () => {
    const { port } = await t.listen()
    const uploads = async (): Promise<number> => ((await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)).body as { total: number }).total
    const before = await uploads()
    process.kill(kubo.pid, 'SIGSTOP')
    stopped = true
    const boundary = 'heimdall-left'
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="left.js"\r\nContent-Type: application/javascript\r\n\r\n`),
      Buffer.from(`print("${randomBytes(8).toString('hex')}")\n`),
      Buffer.from(`\r\n--${boundary}--\r\n`)
    ])
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/upload', headers: { Authorization: `Bearer ${token}`, 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': body.length } })
    req.on('error', () => {})
    req.end(body)
    // The body sent and read, its import waiting on Kubo: the client gives up.
    await sleep(1000)
    req.destroy()
    await sleep(200)
    resume()
    await sleep(2000)
    expect(await uploads()).toBe(before)
  }, 60_000)
})
