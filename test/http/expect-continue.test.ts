import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixture } from '../support/fixtures.ts'
import { createIdentity, leftovers, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

let t: TestHeimdall
let port: number
let alice: { username: string, token: string }
beforeAll(async () => {
  t = await startTestHeimdall()
  alice = await createIdentity(t.request, 'alice')
  ;({ port } = await t.listen())
})
afterAll(async () => { await t.close() })

/** A multipart body of one file, by hand. */
function multipart (boundary: string, fileName: string, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${fileName}"\r\nContent-Type: application/octet-stream\r\n\r\n`), data, Buffer.from(`\r\n--${boundary}--\r\n`)])
}

/** A raw connection: what the server sends, as it comes. */
function open (): { socket: Socket, received: () => string, next: (pattern: RegExp, ms?: number) => Promise<string> } {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  let text = ''
  socket.on('data', (chunk: Buffer) => { text += chunk.toString('latin1') })
  const next = async (pattern: RegExp, ms = 10_000): Promise<string> => {
    const deadline = Date.now() + ms
    while (!pattern.test(text)) {
      if (Date.now() > deadline) throw new Error(`no ${pattern.source} within ${ms} ms; got ${JSON.stringify(text.slice(0, 300))}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    return text
  }
  return { socket, received: () => text, next }
}

describe('Expect: 100-continue is answered when the route reads the body', () => {
  it('a refused upload (bad credentials, an API key without the upload scope, a body no file within MAX_UPLOAD_BYTES fills) is answered without a 100, before any byte of its body is sent', async () => {
    const key = (await t.request.post('/account/keys').set('Authorization', `Bearer ${alice.token}`).send({ name: 'reader', scopes: ['list'] }).expect(201)).body as { key: string }
    for (const [auth, length, status] of [['Bearer nope', 20 * 1024 * 1024, 401], [`Bearer ${key.key}`, 20 * 1024 * 1024, 403], [`Bearer ${alice.token}`, 1024 ** 3 + 2 * 1024 * 1024, 413]] as const) {
      const before = await leftovers(t)
      const { socket, next } = open()
      socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nExpect: 100-continue\r\nContent-Type: multipart/form-data; boundary=${'x'.repeat(20)}\r\nContent-Length: ${length}\r\n\r\n`)
      const text = await next(new RegExp(`HTTP/1\\.1 ${status}`))
      expect(text).not.toContain('100 Continue')
      socket.destroy()
      expect((await leftovers(t)).uploads).toBe(before.uploads)
    }
  })

  it('an accepted upload gets its 100 when the server reads, then the body, then 200', async () => {
    const boundary = 'y'.repeat(20)
    const body = multipart(boundary, 'box.glb', fixture('glb/BoxTextured.glb'))
    const { socket, next } = open()
    socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice.token}\r\nExpect: 100-continue\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${body.length}\r\n\r\n`)
    await next(/HTTP\/1\.1 100 Continue\r\n\r\n/)
    socket.write(body)
    const text = await next(/HTTP\/1\.1 200[\s\S]*\r\n\r\n[\s\S]*"box\/box\.glb"/)
    expect(text.indexOf('100 Continue')).toBeLessThan(text.indexOf('200 OK'))
    socket.destroy()
  })

  it('a tus PATCH at the wrong offset is refused before its body is sent', async () => {
    const created = await t.request.post('/upload/resumable').set({ 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${alice.token}`, 'Upload-Length': '100', 'Upload-Metadata': `filename ${Buffer.from('a.glb').toString('base64')}` }).expect(201)
    const { socket, next } = open()
    socket.write(`PATCH ${created.headers.location ?? ''} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer ${alice.token}\r\nExpect: 100-continue\r\nUpload-Offset: 50\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 50\r\n\r\n`)
    const text = await next(/HTTP\/1\.1 409/)
    expect(text).not.toContain('100 Continue')
    socket.destroy()
  })
})
