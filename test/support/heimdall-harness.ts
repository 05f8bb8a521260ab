import { once } from 'node:events'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import supertest from 'supertest'
import { expect } from 'vitest'
import { loadConfig } from '../../src/config.ts'
import { openHeimdall, type Heimdall } from '../../src/heimdall.ts'
import { continueWhenRead } from '../../src/http/expect-continue.ts'
import { createLogger } from '../../src/logger.ts'

export interface TestHeimdall {
  heimdall: Heimdall
  /** A client that keeps no cookies, as the add-on and scripts. */
  request: ReturnType<typeof supertest>
  /** A new client that keeps cookies, as a browser does. */
  browser: () => supertest.Agent
  dataDir: string
  /** Every log line written so far, raw JSON. */
  logs: string[]
  /** The app on a real socket at 127.0.0.1 (one server per TestHeimdall, stopped by `close`), for clients that are not supertest. */
  listen: () => Promise<{ server: Server, port: number, url: string }>
  /** Stops the app (and its server, if listening); removes DATA_DIR unless `keepData`. */
  close: (options?: { keepData?: boolean }) => Promise<void>
}

export async function makeDataDir (): Promise<string> {
  return mkdtemp(join(tmpdir(), 'heimdall-test-'))
}

/** The real app over a real embedded node and PGlite in a temp DATA_DIR. */
export async function startTestHeimdall (env: Record<string, string> = {}, dataDir?: string): Promise<TestHeimdall> {
  const dir = dataDir ?? await makeDataDir()
  // Generous limits on failed sign-ins and new identities, so tests that send wrong tokens on purpose never meet a back-off; test/http/rate-limits.test.ts sets its own.
  const config = loadConfig({ DATA_DIR: dir, SECRET_KEY: 'test-secret-key-test-secret-key-0123456789', AUTH_FAILURES_ALLOWED: '1000000', IDENTITIES_PER_HOUR: '1000000', ...env })
  const logs: string[] = []
  const sink = new Writable({ write (chunk: Buffer, _enc, cb) { logs.push(...chunk.toString().split('\n').filter(Boolean)); cb() } })
  const heimdall = await openHeimdall(config, createLogger('info', sink))
  let listening: Promise<{ server: Server, port: number, url: string }> | undefined
  return {
    heimdall,
    request: supertest(heimdall.app),
    browser: () => supertest.agent(heimdall.app),
    dataDir: dir,
    logs,
    listen: async () => (listening ??= (async () => {
      const server = heimdall.app.listen(0, '127.0.0.1')
      continueWhenRead(server, heimdall.app)
      await once(server, 'listening')
      const { port } = server.address() as AddressInfo
      return { server, port, url: `http://127.0.0.1:${port}` }
    })()),
    close: async (options = {}) => {
      if (listening !== undefined) {
        const { server } = await listening
        server.closeAllConnections()
        await new Promise((resolve) => { server.close(resolve) })
      }
      await heimdall.close()
      if (options.keepData !== true) await rm(dir, { recursive: true, force: true })
    }
  }
}

/** Creates an identity through the API the add-on uses; returns its username and token. */
export async function createIdentity (request: ReturnType<typeof supertest> | supertest.Agent, username = `user${Math.random().toString(36).slice(2, 8)}`): Promise<{ username: string, token: string }> {
  const res = await request.post('/new').type('form').send({ username }).expect(201)
  const body = res.body as { username: string, secret: string }
  return { username: body.username, token: body.secret }
}

/** Files under the embedded node's block directory (blocks and partial writes); 0 over Kubo. */
export async function blockFiles (dataDir: string): Promise<{ files: number, bytes: number }> {
  const found = { files: 0, bytes: 0 }
  const dir = join(dataDir, 'ipfs', 'blocks')
  for (const shard of await readdir(dir).catch(() => [])) {
    for (const name of await readdir(join(dir, shard)).catch(() => [])) {
      found.files++
      found.bytes += (await stat(join(dir, shard, name)).catch(() => ({ size: 0 }))).size
    }
  }
  return found
}

/** What an upload can leave behind: files in tmp, rows, pins, blocks. All must be zero after a refusal. */
export async function leftovers (t: TestHeimdall): Promise<{ tmpFiles: string[], uploads: number, entries: number, pins: string[], blocks: number }> {
  const count = async (table: string): Promise<number> => {
    const [row] = await t.heimdall.database.knex(table).count<Array<{ n: string | number }>>({ n: '*' })
    return Number(row?.n ?? 0)
  }
  const pins: string[] = []
  for await (const cid of t.heimdall.backend.listPins()) pins.push(cid.toString())
  return { tmpFiles: await readdir(t.heimdall.tmpDir), uploads: await count('uploads'), entries: await count('upload_entries'), pins, blocks: (await blockFiles(t.dataDir)).files }
}

type Parser = Extract<Parameters<supertest.Test['parse']>[0], (res: never, callback: never) => void>

/** The CSRF token of the first form on a page. */
export function csrfField (html: string): string {
  const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1]
  if (token === undefined) throw new Error('the page has no CSRF field')
  return token
}

/** After a refusal: no temp file, and no more rows, pins or blocks than `before`. */
export async function expectNothingLeftBehind (t: TestHeimdall, before: Awaited<ReturnType<typeof leftovers>>): Promise<void> {
  // A hung-up client's import stops at its next chunk; give the removal of its blocks a moment.
  const deadline = Date.now() + 3000
  while ((await leftovers(t)).blocks > before.blocks && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  const now = await leftovers(t)
  expect(now.blocks).toBeLessThanOrEqual(before.blocks)
  expect(now.tmpFiles).toEqual([])
  expect(now.uploads).toBe(before.uploads)
  expect(now.entries).toBe(before.entries)
  expect(now.pins.sort()).toEqual(before.pins.sort())
}

/** supertest parser that keeps any body as raw bytes: `.buffer(true).parse(asBytes)`. */
export const asBytes = ((res: NodeJS.ReadableStream, callback: (err: Error | null, body: Buffer) => void): void => {
  const chunks: Buffer[] = []
  res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
  res.on('end', () => { callback(null, Buffer.concat(chunks)) })
  res.on('error', (err: Error) => { callback(err, Buffer.alloc(0)) })
}) as unknown as Parser
