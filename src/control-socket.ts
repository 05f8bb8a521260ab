import { chmod, unlink } from 'node:fs/promises'
import type { Server } from 'node:http'
import { join } from 'node:path'
import { HeimdallError } from './errors.ts'
import { http } from './node-http.ts'
import type { GcReport } from './ipfs/ipfs-backend.ts'
import type { CarImportReport } from './services/operator-car-import.ts'

/** The running server's control socket: only its owner (mode 0600) may ask it for a collection. */
export const controlSocketPath = (dataDir: string): string => join(dataDir, 'heimdall.sock')

/**
 * A small HTTP server on a Unix socket for local maintenance of a running
 * server, which holds the embedded repo: `POST /gc` (`?dryRun=1`) answers the
 * collection's report as JSON; `POST /import-car` imports the CAR it is sent.
 * Never on a TCP port.
 */
export interface ControlHandlers {
  gc: (options: { dryRun: boolean }) => Promise<GcReport>
  /** `POST /import-car?name=FILE[&owner=USERNAME][&actor=WHO]`, the CAR as the body: `npm run import-car` while the server holds the repo. */
  importCar?: (source: AsyncIterable<Uint8Array>, options: { fileName: string, owner?: string, actor?: string, signal?: AbortSignal }) => Promise<CarImportReport>
  /** `POST /unpin?cid=CID`: `npm run admin -- unpin`, the operator's pin of a root ended by the server that holds the repo. */
  unpin?: (rootCid: string) => Promise<{ removed: boolean, unpinned: boolean, deferred?: boolean }>
}

export async function listenControlSocket (path: string, handlers: ControlHandlers): Promise<Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://heimdall')
    const answer = (status: number, body: unknown): void => { res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body)) }
    if (url.pathname === '/import-car' && req.method === 'POST' && handlers.importCar !== undefined) {
      const abort = new AbortController()
      req.once('close', () => { if (!req.complete) abort.abort() })
      handlers.importCar(req, { fileName: url.searchParams.get('name') ?? 'import.car', owner: url.searchParams.get('owner') ?? undefined, actor: url.searchParams.get('actor') ?? undefined, signal: abort.signal }).then(
        (report) => { answer(200, report) },
        (err: unknown) => { answer(err instanceof HeimdallError ? err.status : 500, { error: err instanceof Error ? err.message : String(err), details: err instanceof HeimdallError ? err.details : [] }) }
      )
      return
    }
    if (url.pathname === '/unpin' && req.method === 'POST' && handlers.unpin !== undefined) {
      handlers.unpin(url.searchParams.get('cid') ?? '').then(
        (report) => { answer(200, report) },
        (err: unknown) => { answer(err instanceof HeimdallError ? err.status : 500, { error: err instanceof Error ? err.message : String(err) }) }
      )
      return
    }
    if (url.pathname !== '/gc') { answer(404, { error: 'unknown command' }); return }
    if (req.method !== 'POST') { answer(405, { error: 'use POST' }); return }
    const dryRun = ['1', 'true'].includes(url.searchParams.get('dryRun') ?? '')
    handlers.gc({ dryRun }).then((report) => { answer(200, report) }, (err: unknown) => { answer(500, { error: err instanceof Error ? err.message : String(err) }) })
  })
  if (await askControlSocket(path, 'GET', '/').then(() => true, () => false)) throw new Error(`another server answers on ${path}`)
  await unlink(path).catch(() => {}) // left by a server that died
  // A CAR of a large pinset may take longer than Node's default 300 s to arrive (a slow disk, a slow bucket): no request deadline here.
  server.requestTimeout = 0
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen({ path, readableAll: false, writableAll: false }, resolve) })
  await chmod(path, 0o600)
  return server
}

/** One request to a control socket, with `body` streamed when given; rejects when nothing listens there. */
export async function askControlSocket (path: string, method: string, target: string, body?: NodeJS.ReadableStream): Promise<{ status: number, body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: path, method, path: target }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      // An answer that is not JSON (Node's own 408 or 400 page) is reported as its status and text.
      res.on('end', () => { try { resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }) } catch { resolve({ status: res.statusCode ?? 0, body: { error: `the running server answered ${res.statusCode ?? 0}${text.trim() === '' ? '' : `: ${text.trim().slice(0, 200)}`}` } }) } })
    })
    req.once('error', reject)
    if (body === undefined) req.end()
    else body.once('error', (err: Error) => { req.destroy(err) }).pipe(req)
  })
}
