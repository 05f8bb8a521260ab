import { createServer } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { askControlSocket, listenControlSocket } from '../src/control-socket.ts'

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'heimdall-control-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

describe('the control socket', () => {
  it('sets no deadline on a request: a large CAR may take longer than Node\'s default 300 s to arrive', async () => {
    const server = await listenControlSocket(join(dir, 'a.sock'), { gc: async () => Promise.reject(new Error('not asked')) })
    try {
      expect(server.requestTimeout).toBe(0)
    } finally {
      await new Promise((resolve) => { server.close(resolve) })
    }
  })

  it('reports an answer that is not JSON (Node\'s own 408 page) with its status and text, not a parse error', async () => {
    const path = join(dir, 'b.sock')
    const plain = createServer((_req, res) => { res.writeHead(408, { 'Content-Type': 'text/plain' }).end('Request Timeout') })
    await new Promise<void>((resolve) => { plain.listen(path, resolve) })
    try {
      expect(await askControlSocket(path, 'GET', '/')).toEqual({ status: 408, body: { error: 'the running server answered 408: Request Timeout' } })
    } finally {
      await new Promise((resolve) => { plain.close(resolve) })
    }
  })
})
