import { chmod, unlink } from 'node:fs/promises'
import { createServer, request, type Server } from 'node:http'
import { join } from 'node:path'
import type { GcReport } from './ipfs/ipfs-backend.ts'

/** The running server's control socket: only its owner (mode 0600) may ask it for a collection. */
export const controlSocketPath = (dataDir: string): string => join(dataDir, 'heimdall.sock')

/**
 * A small HTTP server on a Unix socket for local maintenance of a running
 * server, which holds the embedded repo: `POST /gc` (`?dryRun=1`) answers the
 * collection's report as JSON. Never on a TCP port.
 */
export async function listenControlSocket (path: string, handlers: { gc: (options: { dryRun: boolean }) => Promise<GcReport> }): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://heimdall')
    const answer = (status: number, body: unknown): void => { res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body)) }
    if (url.pathname !== '/gc') { answer(404, { error: 'unknown command' }); return }
    if (req.method !== 'POST') { answer(405, { error: 'use POST' }); return }
    const dryRun = ['1', 'true'].includes(url.searchParams.get('dryRun') ?? '')
    handlers.gc({ dryRun }).then((report) => { answer(200, report) }, (err: unknown) => { answer(500, { error: err instanceof Error ? err.message : String(err) }) })
  })
  if (await askControlSocket(path, 'GET', '/').then(() => true, () => false)) throw new Error(`another server answers on ${path}`)
  await unlink(path).catch(() => {}) // left by a server that died
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen({ path, readableAll: false, writableAll: false }, resolve) })
  await chmod(path, 0o600)
  return server
}

/** One request to a control socket; rejects when nothing listens there. */
export async function askControlSocket (path: string, method: string, target: string): Promise<{ status: number, body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: path, method, path: target }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => { try { resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }) } catch (err) { reject(err instanceof Error ? err : new Error(String(err))) } })
    })
    req.once('error', reject)
    req.end()
  })
}
