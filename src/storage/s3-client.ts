import { createHash } from 'node:crypto'
import type * as Http from 'node:http'
import https from 'node:https'
import { setTimeout as sleep } from 'node:timers/promises'
import aws4 from 'aws4'
import { XMLParser } from 'fast-xml-parser'
import { http } from '../node-http.ts'

export interface S3Options {
  /** Where the S3 API answers, e.g. `http://127.0.0.1:8333` or `https://s3.eu-west-1.amazonaws.com`. */
  endpoint: string
  bucket: string
  region: string
  /** `https://host/bucket/key` (MinIO, SeaweedFS, Garage, Ceph) instead of `https://bucket.host/key`. */
  forcePathStyle: boolean
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string | undefined
  /** Sockets kept open to the endpoint. */
  maxSockets?: number
  /** How long a request's socket may stay silent (nothing sent or received) before the attempt is given up. */
  timeoutMs?: number
  /** Attempts per request for answers worth trying again (see `retryable`); at least 1. */
  attempts?: number
}

/** One object of a listing. */
export interface S3Object {
  key: string
  size: number
  lastModified: Date
}

/** An S3 answer other than the one asked for, with the store's own error code when it gave one. */
export class S3Error extends Error {
  readonly status: number
  readonly code: string | undefined
  /** The bucket's region when the store named it (`x-amz-bucket-region`, sent with a wrong-region refusal). */
  readonly region: string | undefined
  constructor (message: string, status: number, code?: string, region?: string) {
    super(message)
    this.name = 'S3Error'
    this.status = status
    this.code = code
    this.region = region
  }
}

/**
 * Whether an answer is worth another attempt, and how to wait for it, as the
 * AWS SDKs' standard retry mode decides: `throttled` (429, 503 SlowDown: the
 * store asks for fewer requests; R2 answers 429 to more than one write a
 * second to a key) waits longer than `failed` (500, 502, 504 from the store or
 * a proxy in front of it, and a 400 RequestTimeout: the store gave up waiting
 * for a body that was slow to come). Anything else is the answer.
 */
export function retryable (status: number, body: Buffer): 'throttled' | 'failed' | undefined {
  if (status === 429 || status === 503) return 'throttled'
  if (status === 500 || status === 502 || status === 504) return 'failed'
  if (status === 400 && body.includes('<Code>RequestTimeout</Code>')) return 'failed'
  // The bytes that arrived are not the ones whose MD5 we sent: damaged on the way, so sent again.
  if (status === 400 && body.includes('<Code>BadDigest</Code>')) return 'failed'
  return undefined
}

const ATTEMPTS = 6
/** Exponential backoff with full jitter (base × 2^n, capped), in ms; network errors count as `failed`. */
const BACKOFF = { throttled: { base: 500, cap: 20_000 }, failed: { base: 100, cap: 5_000 } } as const
/** A Retry-After the store sends is honoured up to this. */
const MAX_RETRY_AFTER_MS = 20_000
const xml = new XMLParser({ ignoreAttributes: true, parseTagValue: false, isArray: (name) => name === 'Contents' || name === 'Error' || name === 'Deleted' })

/** RFC 3986 for a key's path: every byte but the unreserved ones and `/`, as SigV4 canonicalises it. */
const encodeKey = (key: string): string => key.split('/').map((part) => encodeURIComponent(part).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)).join('/')

interface Answer {
  status: number
  headers: Http.IncomingHttpHeaders
  body: Buffer
}

/** The wait a Retry-After header asks for (seconds or an HTTP date), capped; undefined without one. */
function retryAfterMs (headers: Http.IncomingHttpHeaders): number | undefined {
  const value = headers['retry-after']
  if (value === undefined) return undefined
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value) - Date.now()
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : undefined
}

/** Whether `key` comes after `previous` in S3's order (by their UTF-8 bytes). */
const follows = (key: string, previous: string): boolean => Buffer.compare(Buffer.from(key), Buffer.from(previous)) > 0

/**
 * The few S3 calls a block store makes (PutObject, GetObject, HeadObject,
 * DeleteObjects, ListObjectsV2, CreateBucket), signed with SigV4 over kept-
 * alive sockets. Bodies are whole blocks or packs (at most a few MiB): a PUT
 * sends the caller's bytes as they are, a GET can read straight into the
 * caller's buffer. Network errors and the answers `retryable` names are
 * tried again with backoff (a Retry-After honoured), the socket of a 5xx
 * dropped so the next attempt may reach another server behind the endpoint;
 * a store on an `https` endpoint gets TLS.
 */
export class S3Client {
  readonly #options: Required<Omit<S3Options, 'sessionToken'>> & { sessionToken: string | undefined }
  readonly #url: URL
  readonly #agent: Http.Agent

  constructor (options: S3Options) {
    this.#options = { maxSockets: 64, timeoutMs: 30_000, attempts: ATTEMPTS, sessionToken: undefined, ...options }
    this.#url = new URL(options.endpoint)
    const Agent = this.#url.protocol === 'https:' ? https.Agent : http.Agent
    this.#agent = new Agent({ keepAlive: true, maxSockets: this.#options.maxSockets, scheduling: 'lifo' })
  }

  get bucket (): string { return this.#options.bucket }

  /**
   * Stores `body` under `key`, with its Content-MD5: the store refuses
   * bytes damaged on the way (BadDigest, tried again) instead of keeping
   * them, where a read would only find the damage later, when the block is
   * checked against its CID and the upload it belongs to is already lost.
   * PutObject has defined it from the start; SeaweedFS refuses a wrong one
   * (BadDigest) and a malformed one (InvalidDigest), tested.
   */
  async putObject (key: string, body: Uint8Array): Promise<void> {
    const md5 = createHash('md5').update(body).digest('base64')
    await this.#expect([200], 'PUT', key, { body, headers: { 'Content-Type': 'application/octet-stream', 'Content-MD5': md5 } })
  }

  /** The object's bytes, or undefined when there is none. */
  async getObject (key: string): Promise<Buffer | undefined> {
    const answer = await this.#request('GET', key)
    if (answer.status === 404) return undefined
    this.#check(answer, [200], 'GET', key)
    return answer.body
  }

  /**
   * The object read into `into` (its first `into.length` bytes): how many
   * bytes that filled and the object's size, or undefined when there is none.
   */
  async getObjectInto (key: string, into: Uint8Array): Promise<{ read: number, size: number } | undefined> {
    const answer = await this.#request('GET', key, { into })
    if (answer.status === 404) return undefined
    this.#check(answer, [200], 'GET', key)
    const size = Number(answer.headers['content-length'] ?? 0)
    return { read: Math.min(into.length, size), size }
  }

  /** `length` bytes of the object from `offset` (a ranged GET), or undefined when there is no such object. */
  async getRange (key: string, offset: number, length: number): Promise<Buffer | undefined> {
    const answer = await this.#request('GET', key, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } })
    if (answer.status === 404) return undefined
    this.#check(answer, [206, 200], 'GET', key)
    // A store that ignores Range sends the whole object (200): a copy of the range, not a view keeping the object alive.
    return answer.status === 200 ? Buffer.from(answer.body.subarray(offset, offset + length)) : answer.body
  }

  async headObject (key: string): Promise<{ size: number, lastModified: Date } | undefined> {
    const answer = await this.#request('HEAD', key)
    if (answer.status === 404) return undefined
    this.#check(answer, [200], 'HEAD', key)
    return { size: Number(answer.headers['content-length'] ?? 0), lastModified: new Date(String(answer.headers['last-modified'])) }
  }

  /** Deletes up to 1,000 keys in one request; keys that are not there are not an error. */
  async deleteObjects (keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return
    if (keys.length > 1000) throw new RangeError('DeleteObjects takes at most 1,000 keys')
    const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    const body = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>${keys.map((k) => `<Object><Key>${escape(k)}</Key></Object>`).join('')}</Delete>`)
    const answer = await this.#expect([200], 'POST', '', {
      query: 'delete=',
      body,
      headers: { 'Content-Type': 'application/xml', 'Content-MD5': createHash('md5').update(body).digest('base64') }
    })
    const parsed = xml.parse(answer.body.toString('utf8')) as { DeleteResult?: { Error?: Array<{ Key?: string, Code?: string, Message?: string }> } }
    const failed = parsed.DeleteResult?.Error?.filter((e) => e.Code !== 'NoSuchKey') ?? []
    if (failed.length > 0) throw new S3Error(`S3 could not delete ${failed.length} of ${keys.length} objects (first: ${failed[0]?.Key ?? '?'}: ${failed[0]?.Code ?? '?'} ${failed[0]?.Message ?? ''})`, 200, failed[0]?.Code)
  }

  /** Every object under `prefix`, in key order, a page (up to 1,000) at a time. */
  async * listObjects (prefix: string): AsyncIterable<S3Object> {
    // The next page: after a continuation token, or (a store that answers in ListObjects V1's shape, truncated with no token) after
    // the last key seen, named both ways: V2's start-after and V1's marker, which such a store may be reading instead.
    let token: string | undefined
    let after: string | undefined
    for (;;) {
      const query = new URLSearchParams({ 'list-type': '2', prefix, 'max-keys': '1000' })
      if (token !== undefined) query.set('continuation-token', token)
      else if (after !== undefined) { query.set('start-after', after); query.set('marker', after) }
      const answer = await this.#expect([200], 'GET', '', { query: query.toString() })
      const parsed = xml.parse(answer.body.toString('utf8')) as { ListBucketResult?: { IsTruncated?: string, NextContinuationToken?: string, Contents?: Array<{ Key: string, Size: string, LastModified: string }> } }
      const result = parsed.ListBucketResult
      if (result === undefined) throw new S3Error('S3 answered a listing without a ListBucketResult', answer.status)
      const contents = result.Contents ?? []
      const last = contents.at(-1)
      const first = contents[0]
      // A page that does not move past the previous one would be listed for ever (a store that ignores both ways of asking for the next).
      if (token === undefined && after !== undefined && ((first !== undefined && !follows(String(first.Key), after)) || (first === undefined && result.IsTruncated === 'true'))) {
        throw new S3Error(`S3 answered the listing after "${after}" with keys that do not follow it: it pages neither by continuation token nor by start-after or marker`, answer.status)
      }
      for (const item of contents) yield { key: String(item.Key), size: Number(item.Size), lastModified: new Date(item.LastModified) }
      if (result.IsTruncated !== 'true') return
      if (result.NextContinuationToken !== undefined && result.NextContinuationToken !== '') {
        if (result.NextContinuationToken === token) throw new S3Error('S3 answered the same continuation token twice: the listing would not end', answer.status)
        token = result.NextContinuationToken
      } else if (last !== undefined) {
        token = undefined
        after = String(last.Key)
      } else {
        throw new S3Error('S3 answered a truncated listing with no continuation token and no key to continue after', answer.status)
      }
    }
  }

  /** Creates the bucket; one that is already ours is fine. */
  async createBucket (): Promise<void> {
    const answer = await this.#request('PUT', '')
    if (answer.status === 409 && /BucketAlreadyOwnedByYou/.test(answer.body.toString())) return
    this.#check(answer, [200], 'PUT', '')
  }

  /** Resolves when the bucket answers (HeadBucket); for readiness probes. */
  async ping (): Promise<void> {
    await this.#expect([200], 'HEAD', '')
  }

  /**
   * Resolves when these credentials may list `prefix` (ListObjectsV2 of one
   * key): at start-up, where a refusal should say why. Unlike HeadBucket's,
   * its error answers have a body with the store's code and message.
   */
  async checkAccess (prefix: string): Promise<void> {
    await this.#expect([200], 'GET', '', { query: new URLSearchParams({ 'list-type': '2', prefix, 'max-keys': '1' }).toString() })
  }

  close (): void {
    this.#agent.destroy()
  }

  async #expect (ok: number[], method: string, key: string, options: { query?: string, body?: Uint8Array, headers?: Record<string, string> } = {}): Promise<Answer> {
    const answer = await this.#request(method, key, options)
    this.#check(answer, ok, method, key)
    return answer
  }

  #check (answer: Answer, ok: number[], method: string, key: string): void {
    if (ok.includes(answer.status)) return
    const text = answer.body.toString('utf8')
    // MinIO names the error in a header too, the only place a HEAD answer can.
    const minioCode = answer.headers['x-minio-error-code']
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? (typeof minioCode === 'string' ? minioCode : undefined)
    const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1]
    const region = answer.headers['x-amz-bucket-region']
    const inRegion = typeof region === 'string' && region !== this.#options.region ? region : undefined
    throw new S3Error(`S3 ${method} ${key === '' ? this.#options.bucket : key}: ${answer.status}${code !== undefined ? ` ${code}` : ''}${message !== undefined ? `: ${message}` : ''}${inRegion !== undefined ? ` (the bucket is in region ${inRegion})` : ''}`, answer.status, code, inRegion)
  }

  async #request (method: string, key: string, options: { query?: string, body?: Uint8Array, headers?: Record<string, string>, into?: Uint8Array } = {}): Promise<Answer> {
    for (let attempt = 1; ; attempt++) {
      let kind: 'throttled' | 'failed' = 'failed'
      let asked: number | undefined
      try {
        const answer = await this.#once(method, key, options)
        const verdict = retryable(answer.status, answer.body)
        if (verdict === undefined || attempt >= this.#options.attempts) return answer
        kind = verdict
        asked = retryAfterMs(answer.headers)
      } catch (err) {
        if (attempt >= this.#options.attempts) throw err
      }
      const { base, cap } = BACKOFF[kind]
      await sleep(asked ?? Math.random() * Math.min(cap, base * 2 ** (attempt - 1)))
    }
  }

  #once (method: string, key: string, options: { query?: string, body?: Uint8Array, headers?: Record<string, string>, into?: Uint8Array }): Promise<Answer> {
    const { bucket, forcePathStyle } = this.#options
    const basePath = this.#url.pathname.replace(/\/$/, '')
    const host = forcePathStyle ? this.#url.host : `${bucket}.${this.#url.host}`
    const objectPath = forcePathStyle ? `${basePath}/${bucket}${key === '' ? '' : `/${encodeKey(key)}`}` : `${basePath}/${encodeKey(key)}`
    const path = options.query === undefined ? objectPath : `${objectPath}?${options.query}`
    const body = options.body
    const signed = aws4.sign({
      host,
      path,
      method,
      service: 's3',
      region: this.#options.region,
      headers: {
        ...options.headers,
        // The payload is not signed (the SDKs leave streams unsigned the same way): a PUT's Content-MD5 is checked by the store, and a block against its CID when it is read back.
        'X-Amz-Content-Sha256': body === undefined ? 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' : 'UNSIGNED-PAYLOAD',
        ...(body === undefined ? {} : { 'Content-Length': String(body.byteLength) })
      }
    }, { accessKeyId: this.#options.accessKeyId, secretAccessKey: this.#options.secretAccessKey, sessionToken: this.#options.sessionToken })
    const transport = this.#url.protocol === 'https:' ? https : http
    return new Promise<Answer>((resolve, reject) => {
      const req = transport.request({
        protocol: this.#url.protocol,
        hostname: forcePathStyle ? this.#url.hostname : `${bucket}.${this.#url.hostname}`,
        port: this.#url.port,
        method,
        path,
        headers: signed.headers as Http.OutgoingHttpHeaders,
        agent: this.#agent,
        timeout: this.#options.timeoutMs
      }, (res) => {
        const status = res.statusCode ?? 0
        const socket = res.socket
        const into = status === 200 ? options.into : undefined
        const chunks: Buffer[] = []
        let filled = 0
        res.on('data', (chunk: Buffer) => {
          if (into === undefined) { chunks.push(chunk); return }
          // Straight into the caller's buffer: no copy of the whole block in between.
          if (filled < into.length) into.set(chunk.subarray(0, into.length - filled), filled)
          filled += chunk.length
        })
        res.on('end', () => {
          // Not back into the pool: the next attempt gets a new connection, perhaps to a server behind the endpoint that is not failing (B2 advises it for its 503s).
          if (status >= 500) socket.destroy()
          resolve({ status, headers: res.headers, body: into === undefined ? Buffer.concat(chunks) : Buffer.alloc(0) })
        })
        res.on('error', reject)
        res.on('aborted', () => { reject(new Error(`S3 ${method} ${key}: the answer was cut off`)) })
      })
      req.on('timeout', () => { req.destroy(new Error(`S3 ${method} ${key}: no answer within ${this.#options.timeoutMs} ms`)) })
      req.on('error', reject)
      req.end(body)
    })
  }
}
