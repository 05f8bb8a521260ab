import { execFile, spawnSync } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { promisify } from 'node:util'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { continueWhenRead } from '../../src/http/expect-continue.ts'
import { closeLingering, lingeringClose } from '../../src/http/middleware/lingering-close.ts'
import { createIdentity, leftovers, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { requireTool } from '../support/tools.ts'

const run = promisify(execFile)
const MiB = 1024 * 1024
const python = requireTool('python3', spawnSync('python3', ['--version']).status === 0, 'the lingering close (a client that sends its whole body before it reads)')

/**
 * An upload as Python's http.client sends it (as the Blender add-on and most
 * scripts do): no Expect, the whole body written before the answer is read;
 * `chunked` sends it without a Content-Length. Prints the status and body, or
 * the error the client met.
 */
const PY_UPLOAD = `
import http.client, json, os, sys
port, token, size, chunked = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == 'chunked'
boundary = 'lingerboundary'
head = ('--%s\\r\\nContent-Disposition: form-data; name="file"; filename="big.glb"\\r\\nContent-Type: application/octet-stream\\r\\n\\r\\n' % boundary).encode()
tail = ('\\r\\n--%s--\\r\\n' % boundary).encode()
def pieces():
    yield head
    left = size
    block = os.urandom(1 << 20)
    while left > 0:
        yield block[:min(left, len(block))]
        left -= len(block)
    yield tail
c = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
headers = {'Content-Type': 'multipart/form-data; boundary=' + boundary, 'Authorization': 'Bearer ' + token, 'Accept': 'application/json'}
try:
    if chunked:
        c.request('POST', '/upload', body=pieces(), headers=headers, encode_chunked=True)
    else:
        c.request('POST', '/upload', body=b''.join(pieces()), headers=headers)
    r = c.getresponse()
    print(json.dumps({'status': r.status, 'body': json.loads(r.read())}))
except Exception as e:
    print(json.dumps({'status': 0, 'body': {'error': '%s: %s' % (type(e).__name__, e)}}))
`

/**
 * Sends `head` and then body bytes as fast as the connection takes them,
 * until the answer's head comes back or `budget` bytes went; then, if the
 * answer has not come, `tail` if given (the body's end), waiting for the
 * answer. Resolves with the answer (empty if none), the body bytes sent
 * before it came, and whether the tail was sent.
 */
async function sendUntilAnswered (port: number, head: string, budget: number, chunked: boolean, tail?: string): Promise<{ answer: string, sent: number, ended: boolean }> {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  let answer = ''
  let sent = 0
  const answered = (): boolean => answer.includes('\r\n\r\n')
  socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1') })
  socket.on('error', () => {})
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write(head)
  const piece = Buffer.alloc(MiB, 7)
  const framed = chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece
  while (!answered() && sent < budget && !socket.destroyed) {
    sent += piece.length
    if (!socket.write(framed)) await new Promise((resolve) => { socket.once('drain', resolve); socket.once('close', resolve) })
  }
  const ended = !answered() && tail !== undefined
  if (ended) {
    socket.write(tail)
    for (let waited = 0; !answered() && waited < 10_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  // The answer's body follows its head.
  await new Promise((resolve) => setTimeout(resolve, 200))
  socket.destroy()
  return { answer, sent, ended }
}

const multipartHead = (fields: Record<string, string>, filename = 'big.glb'): string => [
  ...Object.entries(fields).map(([name, value]) => `--b\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`),
  `--b\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`
].join('')

describe('answers given before the body is read reach a client still sending it', () => {
  let t: TestHeimdall
  let port: number
  let alice: { username: string, token: string }
  beforeAll(async () => {
    t = await startTestHeimdall({ MAX_UPLOAD_BYTES: String(48 * MiB), AUTH_FAILURES_ALLOWED: '100' })
    alice = await createIdentity(t.request, 'alice')
    ;({ port } = await t.listen())
  })
  afterAll(async () => { await t?.close() })

  async function pyUpload (token: string, size: number, how: 'length' | 'chunked'): Promise<{ status: number, body: { error?: string } }> {
    const { stdout } = await run('python3', ['-c', PY_UPLOAD, String(port), token, String(size), how], { maxBuffer: MiB })
    return JSON.parse(stdout) as { status: number, body: { error?: string } }
  }

  it.skipIf(!python)('a wrong token, an upload too large by its Content-Length, and one found too large as it streams: each client reads its answer (it met a broken pipe before)', async () => {
    const before = await leftovers(t)
    // 40 MiB: far more than the socket buffers hold, so the client is writing when the answer comes.
    expect(await pyUpload('not-a-token', 40 * MiB, 'length')).toMatchObject({ status: 401, body: { error: 'unknown username or wrong token' } })
    expect(await pyUpload(alice.token, 64 * MiB, 'length')).toMatchObject({ status: 413 })
    expect(await pyUpload(alice.token, 64 * MiB, 'chunked')).toMatchObject({ status: 413 })
    expect(await leftovers(t)).toEqual(before)
    // The server is as it was: an upload after them goes through.
    expect((await pyUpload(alice.token, 2 * MiB, 'length')).status).not.toBe(0)
  }, 120_000)

  it('answers a chunked upload as soon as it is found too large: the rest of the body is not read first (multer read it all)', async () => {
    const before = await leftovers(t)
    // Chunked: no length to refuse it by; the 413 comes once the file passes MAX_UPLOAD_BYTES, while the client goes on.
    // An asset streams into the node; a bundle, to a temp file.
    for (const filename of ['big.glb', 'big.zip']) {
      const part = multipartHead({}, filename)
      const chunkedHead = `POST /upload HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nAuthorization: Bearer ${alice.token}\r\n` +
        `Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n${part.length.toString(16)}\r\n${part}\r\n`
      const chunked = await sendUntilAnswered(port, chunkedHead, 2048 * MiB, true)
      expect(chunked.answer).toMatch(/^HTTP\/1\.1 413 /)
      expect(chunked.answer).toMatch(/connection: close/i)
      expect(chunked.sent).toBeLessThan(48 * MiB + 64 * MiB)
    }
    // A field that never ends: busboy checks a field's size only at its end. Refused once the body passes
    // MAX_UPLOAD_BYTES and the form's slack.
    const field = '--b\r\nContent-Disposition: form-data; name="note"\r\n\r\n'
    const endlessField = await sendUntilAnswered(port, `POST /upload HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nAuthorization: Bearer ${alice.token}\r\n` +
      `Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n${field.length.toString(16)}\r\n${field}\r\n`, 2048 * MiB, true)
    expect(endlessField.answer).toMatch(/^HTTP\/1\.1 413 /)
    expect(endlessField.sent).toBeLessThan(48 * MiB + 64 * MiB)
    expect(await leftovers(t)).toEqual(before)
  }, 120_000)
})

describe('an upload over its owner\'s quota, the credentials in the form', () => {
  let t: TestHeimdall
  beforeAll(async () => { t = await startTestHeimdall({ MAX_UPLOAD_BYTES: String(512 * MiB), QUOTA_BYTES: String(4 * MiB) }) })
  afterAll(async () => { await t?.close() })

  it('chunked, is answered once the credentials are read, not after the whole body (multer read it all first); with a length, after the body, bounded by MAX_UPLOAD_BYTES', async () => {
    // As the page and the add-on's form send them: the quota is known only once they are read.
    const bob = await createIdentity(t.request, 'bob')
    const { port } = await t.listen()
    const before = await leftovers(t)
    const form = multipartHead({ username: bob.username, token: bob.token })
    const chunkedHead = 'POST /upload HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: multipart/form-data; boundary=b\r\n' +
      `Transfer-Encoding: chunked\r\n\r\n${form.length.toString(16)}\r\n${form}\r\n`
    const chunked = await sendUntilAnswered(port, chunkedHead, 1024 * MiB, true)
    expect(chunked.answer).toMatch(/^HTTP\/1\.1 413 /)
    expect(chunked.sent).toBeLessThan(100 * MiB)
    // A length over what bob has left: the body is read (so that a browser, which reads no answer before it has sent
    // all, gets it), and answered at its end.
    const end = '\r\n--b--\r\n'
    const lengthHead = 'POST /upload HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: multipart/form-data; boundary=b\r\n' +
      `Content-Length: ${form.length + 64 * MiB + end.length}\r\n\r\n${form}`
    const withLength = await sendUntilAnswered(port, lengthHead, 64 * MiB, false, end)
    expect(withLength).toMatchObject({ sent: 64 * MiB, ended: true })
    expect(withLength.answer).toMatch(/^HTTP\/1\.1 413 /)
    expect(await leftovers(t)).toEqual(before)
  }, 60_000)
})

describe('the lingering close\'s limits', () => {
  const limits = { totalMs: 1500, idleMs: 400, maxSockets: 2, maxPerAddress: 1 }
  let server: Server
  let port: number
  let counted = 0
  beforeAll(async () => {
    const app = express()
    app.use(lingeringClose(limits))
    // Refuses at once, the body unread: with the connection closed, or kept alive.
    app.post('/close', (_req, res) => { res.status(401).set('Connection', 'close').json({ error: 'no' }) })
    app.post('/busy', (_req, res) => { res.status(429).set('Connection', 'close').json({ error: 'later' }) })
    app.post('/keep', (_req, res) => { res.status(400).json({ error: 'no' }) })
    app.post('/count', (_req, res) => { counted++; res.json({ counted }) })
    app.get('/ok', (_req, res) => { res.json({ ok: true }) })
    server = createServer(app)
    continueWhenRead(server, app)
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
    port = (server.address() as AddressInfo).port
  })
  afterAll(async () => { await new Promise((resolve) => { server.close(resolve) }) })

  /** When the server closed its side of the connection made now (one at a time), in ms since `started`. */
  function serverClose (started: number): Promise<number> {
    return new Promise((resolve) => { server.once('connection', (socket) => { socket.once('close', () => { resolve(Date.now() - started) }) }) })
  }

  /**
   * A connection as Python's http.client holds one: it goes on sending after
   * the server's FIN (half open). `text()` is what came back; `closed`, when
   * the server closed its side (ms since it was made).
   */
  function openHalf (from = '127.0.0.1'): { socket: Socket, text: () => string, closed: Promise<number>, failed: () => boolean } {
    const closed = serverClose(Date.now())
    const socket = connect({ port, host: '127.0.0.1', localAddress: from, allowHalfOpen: true })
    let text = ''
    let failed = false
    socket.on('data', (chunk: Buffer) => { text += chunk.toString('latin1') })
    socket.on('error', () => { failed = true })
    return { socket, text: () => text, closed, failed: () => failed }
  }

  /**
   * Sends `head`, then body bytes every 20 ms while `sending(ms since
   * start)` holds, going on after the server's FIN as Python's http.client
   * does (a half-open socket); resolves with what came back and when the
   * server closed the connection.
   */
  async function exchange (head: string, sending: (elapsed: number) => boolean, from?: string): Promise<{ text: string, closedAfterMs: number }> {
    const started = Date.now()
    const { socket, text, closed } = openHalf(from)
    // The answer has all come once the server's FIN (or its reset) has.
    const answered = new Promise((resolve) => { socket.once('end', resolve); socket.once('close', resolve) })
    socket.write(head)
    const timer = setInterval(() => {
      if (!socket.destroyed && sending(Date.now() - started)) socket.write(Buffer.alloc(16 * 1024))
    }, 20)
    const closedAfterMs = await closed
    clearInterval(timer)
    await answered
    socket.destroy()
    return { text: text(), closedAfterMs }
  }

  const post = (path: string, extra = ''): string => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${1024 ** 3}\r\n${extra}\r\n`

  it('reads on after the answer while the body keeps coming, for totalMs at most; the answer and FIN come first', async () => {
    const { text, closedAfterMs } = await exchange(post('/close'), () => true)
    expect(text).toMatch(/^HTTP\/1\.1 401 [\s\S]*\r\n\r\n\{"error":"no"\}$/)
    expect(closedAfterMs).toBeGreaterThanOrEqual(limits.totalMs - 50)
    expect(closedAfterMs).toBeLessThan(limits.totalMs + 1000)
  })

  it('closes once the body pauses for idleMs', async () => {
    const { text, closedAfterMs } = await exchange(post('/close'), (elapsed) => elapsed < 300)
    expect(text).toContain('HTTP/1.1 401')
    expect(closedAfterMs).toBeGreaterThanOrEqual(300 + limits.idleMs - 100)
    expect(closedAfterMs).toBeLessThan(limits.totalMs)
  })

  it('closes as soon as the whole body is read, with nothing left to reset', async () => {
    const { socket, text, closed, failed } = openHalf()
    const ended = new Promise<void>((resolve) => { socket.once('end', resolve) })
    socket.write(`POST /close HTTP/1.1\r\nHost: x\r\nContent-Length: ${4 * MiB}\r\n\r\n`)
    await new Promise((resolve) => setTimeout(resolve, 100))
    // The whole body, after the answer: every byte of it is taken, none reset.
    socket.write(Buffer.alloc(4 * MiB))
    expect(await closed).toBeLessThan(limits.idleMs)
    await ended
    expect(failed()).toBe(false)
    expect(text()).toMatch(/^HTTP\/1\.1 401 [\s\S]*\{"error":"no"\}$/)
    socket.destroy()
  })

  it('leaves a kept-alive answer to Node: the rest of the body read, the connection used for the next request', async () => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    socket.on('data', (chunk: Buffer) => { text += chunk.toString('latin1') })
    socket.write(`POST /keep HTTP/1.1\r\nHost: x\r\nContent-Length: ${4 * MiB}\r\n\r\n`)
    await expect.poll(() => text).toContain('HTTP/1.1 400')
    socket.write(Buffer.alloc(4 * MiB))
    socket.write('GET /ok HTTP/1.1\r\nHost: x\r\n\r\n')
    await expect.poll(() => text).toContain('{"ok":true}')
    socket.destroy()
  })

  it('runs no request pipelined after a closing answer', async () => {
    const before = counted
    const { socket, text, closed } = openHalf()
    socket.write('POST /close HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n')
    await expect.poll(text).toContain('HTTP/1.1 401')
    // The body's last bytes and the next request in one write, as a pipelining client sends them.
    socket.write('12345POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')
    await closed
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(counted).toBe(before)
    expect(text()).not.toContain('counted')
    socket.destroy()
  })

  it('waits for the body of a client that asked Expect: 100-continue but sent it anyway; lets one that closes go at once', async () => {
    const sentAnyway = await exchange(post('/close', 'Expect: 100-continue\r\n'), (elapsed) => elapsed < 300)
    expect(sentAnyway.text).toContain('HTTP/1.1 401')
    expect(sentAnyway.text).not.toContain('100 Continue')
    expect(sentAnyway.closedAfterMs).toBeGreaterThanOrEqual(300 + limits.idleMs - 100)

    const { socket, text, closed } = openHalf()
    // curl: it waits, reads the refusal, and closes.
    socket.on('end', () => { socket.end() })
    socket.write(post('/close', 'Expect: 100-continue\r\n'))
    expect(await closed).toBeLessThan(limits.idleMs)
    expect(text()).toContain('HTTP/1.1 401')
  })

  it('closes at once past maxPerAddress lingering for a client or maxSockets in all, after a 429, and at shutdown (then lingers no more)', async () => {
    const first = exchange(post('/close'), () => true)
    await new Promise((resolve) => setTimeout(resolve, 100))
    // The same client (127.0.0.1) again: its share is taken.
    const second = await exchange(post('/close'), () => true)
    expect(second.text).toContain('HTTP/1.1 401')
    expect(second.closedAfterMs).toBeLessThan(limits.idleMs)

    const busy = await exchange(post('/busy'), () => true)
    expect(busy.text).toContain('HTTP/1.1 429')
    expect(busy.closedAfterMs).toBeLessThan(limits.idleMs)

    // Other clients (other loopback addresses) linger up to maxSockets in all.
    const other = exchange(post('/close'), () => true, '127.0.0.2')
    await new Promise((resolve) => setTimeout(resolve, 100))
    const third = await exchange(post('/close'), () => true, '127.0.0.3')
    expect(third.text).toContain('HTTP/1.1 401')
    expect(third.closedAfterMs).toBeLessThan(limits.idleMs)

    closeLingering()
    expect((await first).closedAfterMs).toBeLessThan(limits.totalMs - 500)
    expect((await other).closedAfterMs).toBeLessThan(limits.totalMs - 500)
    // An answer given while the server stops does not hold the stop.
    const during = await exchange(post('/close'), () => true)
    expect(during.text).toContain('HTTP/1.1 401')
    expect(during.closedAfterMs).toBeLessThan(limits.idleMs)
  })
})
