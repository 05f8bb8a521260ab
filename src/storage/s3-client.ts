import { createHash } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import { setTimeout as sleep } from 'node:timers/promises'
import aws4 from 'aws4'
import { XMLParser } from 'fast-xml-parser'

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
  /** Per request, from the first byte sent to the last byte received. */
  timeoutMs?: number
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
  constructor (message: string, status: number, code?: string) {
    super(message)
    this.name = 'S3Error'
    this.status = status
    this.code = code
  }
}

const RETRIES = 3
const xml = new XMLParser({ ignoreAttributes: true, parseTagValue: false, isArray: (name) => name === 'Contents' || name === 'Error' || name === 'Deleted' })

/** RFC 3986 for a key's path: every byte but the unreserved ones and `/`, as SigV4 canonicalises it. */
const encodeKey = (key: string): string => key.split('/').map((part) => encodeURIComponent(part).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)).join('/')

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/**
 * The few S3 calls a block store makes (PutObject, GetObject, HeadObject,
 * DeleteObjects, ListObjectsV2, CreateBucket), signed with SigV4 over kept-
 * alive sockets. Bodies are whole blocks (at most a few MiB): a PUT sends the
 * caller's bytes as they are, a GET can read straight into the caller's
 * buffer. Network errors, 500/503 and SlowDown are retried with backoff; a
 * store on an `https` endpoint gets TLS.
 */
export class S3Client {
  readonly #options: Required<Omit<S3Options, 'sessionToken'>> & { sessionToken: string | undefined }
  readonly #url: URL
  readonly #agent: http.Agent

  constructor (options: S3Options) {
    this.#options = { maxSockets: 64, timeoutMs: 30_000, sessionToken: undefined, ...options }
    this.#url = new URL(options.endpoint)
    const Agent = this.#url.protocol === 'https:' ? https.Agent : http.Agent
    this.#agent = new Agent({ keepAlive: true, maxSockets: this.#options.maxSockets, scheduling: 'lifo' })
  }

  get bucket (): string { return this.#options.bucket }

  async putObject (key: string, body: Uint8Array): Promise<void> {
    await this.#expect([200], 'PUT', key, { body, headers: { 'Content-Type': 'application/octet-stream' } })
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
    let token: string | undefined
    do {
      const query = new URLSearchParams({ 'list-type': '2', prefix, 'max-keys': '1000' })
      if (token !== undefined) query.set('continuation-token', token)
      const answer = await this.#expect([200], 'GET', '', { query: query.toString() })
      const parsed = xml.parse(answer.body.toString('utf8')) as { ListBucketResult?: { IsTruncated?: string, NextContinuationToken?: string, Contents?: Array<{ Key: string, Size: string, LastModified: string }> } }
      const result = parsed.ListBucketResult
      if (result === undefined) throw new S3Error('S3 answered a listing without a ListBucketResult', answer.status)
      for (const item of result.Contents ?? []) yield { key: String(item.Key), size: Number(item.Size), lastModified: new Date(item.LastModified) }
      token = result.IsTruncated === 'true' ? result.NextContinuationToken : undefined
    } while (token !== undefined)
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
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1]
    const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1]
    throw new S3Error(`S3 ${method} ${key === '' ? this.#options.bucket : key}: ${answer.status}${code !== undefined ? ` ${code}` : ''}${message !== undefined ? `: ${message}` : ''}`, answer.status, code)
  }

  async #request (method: string, key: string, options: { query?: string, body?: Uint8Array, headers?: Record<string, string>, into?: Uint8Array } = {}): Promise<Answer> {
    for (let attempt = 1; ; attempt++) {
      try {
        const answer = await this.#once(method, key, options)
        const retry = answer.status === 500 || answer.status === 503 || (answer.status === 429)
        if (!retry || attempt >= RETRIES) return answer
      } catch (err) {
        if (attempt >= RETRIES) throw err
      }
      await sleep(50 * 4 ** (attempt - 1))
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
        // A block is checked against its CID when it is read back; the SDKs leave the payload unsigned on streams the same way.
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
        headers: signed.headers as http.OutgoingHttpHeaders,
        agent: this.#agent,
        timeout: this.#options.timeoutMs
      }, (res) => {
        const status = res.statusCode ?? 0
        const into = status === 200 ? options.into : undefined
        const chunks: Buffer[] = []
        let filled = 0
        res.on('data', (chunk: Buffer) => {
          if (into === undefined) { chunks.push(chunk); return }
          // Straight into the caller's buffer: no copy of the whole block in between.
          if (filled < into.length) into.set(chunk.subarray(0, into.length - filled), filled)
          filled += chunk.length
        })
        res.on('end', () => { resolve({ status, headers: res.headers, body: into === undefined ? Buffer.concat(chunks) : Buffer.alloc(0) }) })
        res.on('error', reject)
        res.on('aborted', () => { reject(new Error(`S3 ${method} ${key}: the answer was cut off`)) })
      })
      req.on('timeout', () => { req.destroy(new Error(`S3 ${method} ${key}: no answer within ${this.#options.timeoutMs} ms`)) })
      req.on('error', reject)
      req.end(body)
    })
  }
}
