import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import knex from 'knex'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { openSharedStore } from '../../src/storage/open-shared-store.ts'
import { S3Client } from '../../src/storage/s3-client.ts'

/**
 * How the client meets answers SeaweedFS never gives (the suite's real store
 * is in block-storage.test.ts): a proxy's 502, R2's 429, a RequestTimeout,
 * AWS's wrong-region refusal, a store that lists in ListObjects V1's shape.
 * A scripted HTTP server on loopback answers in S3's shapes, one script per
 * test, and records what it was asked and on which connection.
 */
interface Asked { method: string, url: URL, connection: number }
type Script = (asked: Asked, res: ServerResponse, req: IncomingMessage) => void

let server: Server
let script: Script
let asked: Asked[] = []
let dir: string
const s3Error = (res: ServerResponse, status: number, code: string, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'Content-Type': 'application/xml', ...headers }).end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code} happened</Message></Error>`)
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'heimdall-s3-client-'))
  let connections = 0
  server = createServer((req, res) => {
    const entry = { method: req.method ?? '', url: new URL(req.url ?? '/', 'http://s3'), connection: (req.socket as unknown as { id: number }).id }
    asked.push(entry)
    req.resume()
    req.on('end', () => { script(entry, res, req) })
  })
  server.on('connection', (socket) => { (socket as unknown as { id: number }).id = ++connections })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
  await rm(dir, { recursive: true, force: true })
})
afterEach(() => { asked = [] })

const endpoint = (): string => `http://127.0.0.1:${(server.address() as AddressInfo).port}`
const client = (options: { attempts?: number, region?: string } = {}): S3Client => new S3Client({ endpoint: endpoint(), bucket: 'b', region: options.region ?? 'us-east-1', forcePathStyle: true, accessKeyId: 'k', secretAccessKey: 's', ...(options.attempts === undefined ? {} : { attempts: options.attempts }) })

describe('S3Client against answers real stores give', () => {
  it('tries again after a proxy\'s 502 and 504, a 500 and a 400 RequestTimeout, each time on a new connection; a 403 is the answer at once', async () => {
    const failures = [(res: ServerResponse) => { s3Error(res, 502, 'BadGateway') }, (res: ServerResponse) => { s3Error(res, 504, 'GatewayTimeout') }, (res: ServerResponse) => { s3Error(res, 500, 'InternalError') }, (res: ServerResponse) => { s3Error(res, 400, 'RequestTimeout') }]
    script = (_asked, res) => {
      const fail = failures[asked.length - 1]
      if (fail !== undefined) fail(res)
      else res.writeHead(200, { 'Content-Length': '5' }).end('bytes')
    }
    const s3 = client()
    expect((await s3.getObject('k'))?.toString()).toBe('bytes')
    expect(asked).toHaveLength(5)
    // A 5xx's socket is not kept (behind a load balancer, another server may answer); a 400's is.
    expect(new Set(asked.slice(0, 4).map((a) => a.connection)).size).toBe(4)
    expect(asked[4]?.connection).toBe(asked[3]?.connection)

    asked = []
    script = (_asked, res) => { s3Error(res, 403, 'AccessDenied') }
    await expect(s3.getObject('k')).rejects.toThrow(/S3 GET k: 403 AccessDenied: AccessDenied happened/)
    expect(asked).toHaveLength(1)
    s3.close()
  })

  it('waits as a throttling store asks (429, 503 SlowDown with Retry-After), and gives up after its attempts with the store\'s words', async () => {
    script = (_asked, res) => { if (asked.length === 1) s3Error(res, 429, 'TooManyRequests', { 'Retry-After': '1' }); else res.writeHead(200).end() }
    const s3 = client({ attempts: 3 })
    const started = Date.now()
    await s3.putObject('k', Buffer.from('x'))
    expect(Date.now() - started).toBeGreaterThanOrEqual(950)
    expect(asked.map((a) => a.method)).toEqual(['PUT', 'PUT'])

    asked = []
    script = (_asked, res) => { s3Error(res, 503, 'SlowDown', { 'Retry-After': '0' }) }
    await expect(s3.putObject('k', Buffer.from('x'))).rejects.toMatchObject({ status: 503, code: 'SlowDown' })
    expect(asked).toHaveLength(3)
    s3.close()
  })

  it('pages a listing by continuation token, and after the last key when a store answers in V1\'s shape (truncated, no token)', async () => {
    const page = (keys: string[], more: string): string => `<?xml version="1.0"?><ListBucketResult>${keys.map((k) => `<Contents><Key>${k}</Key><Size>1</Size><LastModified>2026-01-01T00:00:00Z</LastModified></Contents>`).join('')}${more}</ListBucketResult>`
    script = ({ url }, res) => {
      const after = url.searchParams.get('start-after')
      const token = url.searchParams.get('continuation-token')
      // A V1-shaped store reads marker, not start-after: both are sent.
      const body = token === null && after === null ? page(['p/a', 'p/b'], '<IsTruncated>true</IsTruncated><NextContinuationToken>t1</NextContinuationToken>')
        : token === 't1' ? page(['p/c'], '<IsTruncated>true</IsTruncated>')
          : after === 'p/c' && url.searchParams.get('marker') === 'p/c' ? page(['p/d'], '<IsTruncated>false</IsTruncated>') : 'unexpected'
      res.writeHead(200, { 'Content-Type': 'application/xml' }).end(body)
    }
    const s3 = client()
    const keys: string[] = []
    for await (const item of s3.listObjects('p/')) keys.push(item.key)
    expect(keys).toEqual(['p/a', 'p/b', 'p/c', 'p/d'])

    script = (_asked, res) => { res.writeHead(200).end(page([], '<IsTruncated>true</IsTruncated>')) }
    await expect((async () => { for await (const item of s3.listObjects('p/')) keys.push(item.key) })()).rejects.toThrow(/truncated listing with no continuation token/)
    // An empty last page after a V1-shaped one (its keys deleted meanwhile) simply ends the listing.
    script = ({ url }, res) => { res.writeHead(200).end(url.searchParams.get('marker') === null ? page(['p/a'], '<IsTruncated>true</IsTruncated>') : page([], '<IsTruncated>false</IsTruncated>')) }
    const ended: string[] = []
    for await (const item of s3.listObjects('p/')) ended.push(item.key)
    expect(ended).toEqual(['p/a'])
    // A store that ignores every way of asking for the next page: an error, not the first page for ever.
    asked = []
    script = (_asked, res) => { res.writeHead(200).end(page(['p/a', 'p/b'], '<IsTruncated>true</IsTruncated>')) }
    await expect((async () => { for await (const item of s3.listObjects('p/')) keys.push(item.key) })()).rejects.toThrow(/do not follow it: it pages neither/)
    expect(asked).toHaveLength(2)
    script = (_asked, res) => { res.writeHead(200).end(page(['p/a'], '<IsTruncated>true</IsTruncated><NextContinuationToken>same</NextContinuationToken>')) }
    await expect((async () => { for await (const item of s3.listObjects('p/')) keys.push(item.key) })()).rejects.toThrow(/same continuation token twice/)
    s3.close()
  })
})

describe('opening the shared store on a bucket that refuses, the reason in the configuration\'s terms', () => {
  const open = async (region = 'us-east-1'): Promise<unknown> => {
    const db = knex({ client: 'pg' }) // never asked: the bucket is checked first
    try {
      return await openSharedStore({ kind: 's3', endpoint: endpoint(), bucket: 'b', prefix: 'heimdall/', region, forcePathStyle: true, accessKeyId: 'k', secretAccessKey: 's', sessionToken: undefined, cacheBytes: 0, packBytes: 0, packMemory: 1024 ** 2, leaseTtlSeconds: 300 }, { db, dir, instance: 'x' })
    } finally {
      await db.destroy()
    }
  }

  it('names the region a wrong-region refusal gives, a skewed clock, missing rights, and checks by listing its prefix', async () => {
    script = (_asked, res) => { s3Error(res, 400, 'AuthorizationHeaderMalformed', { 'x-amz-bucket-region': 'eu-west-1' }) }
    await expect(open()).rejects.toThrow(/bucket "b" at .* is in region eu-west-1, not S3_REGION=us-east-1: set S3_REGION=eu-west-1/)
    expect(asked[0]?.method).toBe('GET')
    expect(Object.fromEntries(asked[0]?.url.searchParams ?? [])).toEqual({ 'list-type': '2', prefix: 'heimdall/', 'max-keys': '1' })

    script = (_asked, res) => { s3Error(res, 403, 'RequestTimeTooSkewed') }
    await expect(open()).rejects.toThrow(/refused the request's time: this machine's clock is more than 15 minutes off/)
    script = (_asked, res) => { s3Error(res, 403, 'AccessDenied') }
    await expect(open()).rejects.toThrow(/refused the credentials or their rights \(AccessDenied: .*s3:ListBucket on the bucket; s3:GetObject, s3:PutObject and s3:DeleteObject/)
    script = (_asked, res) => { s3Error(res, 403, 'SignatureDoesNotMatch') }
    await expect(open()).rejects.toThrow(/refused the credentials \(SignatureDoesNotMatch: AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY\)/)
    script = (_asked, res) => { s3Error(res, 404, 'NoSuchBucket') }
    await expect(open()).rejects.toThrow(/does not exist: create it first/)
  })
})
