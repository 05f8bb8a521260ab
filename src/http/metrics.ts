import { createHash, timingSafeEqual } from 'node:crypto'
import type { Request, RequestHandler, Response } from 'express'
import type { Knex } from 'knex'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/** Seconds: from a cached gateway hit (~1 ms) to a large upload (minutes). */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
const BACKEND_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120]
/** Backend calls that resolve once (streams are timed by the HTTP request that carries them). */
const TIMED_BACKEND_CALLS = new Set(['importTree', 'putBlocks', 'pin', 'unpin', 'isPinned', 'stat', 'getBlock', 'gc', 'ping', 'openLease'])

/**
 * The service's Prometheus metrics, in a registry of its own (several
 * services in one process, as in tests, do not mix): HTTP requests by route
 * and status with latency, gateway bytes served, uploads accepted and refused
 * by reason with their bytes, IPFS backend call latency, the database pool,
 * and the process (memory, CPU, event loop, GC) from prom-client's defaults.
 */
export class Metrics {
  readonly registry = new Registry()
  readonly #requests: Counter<'method' | 'route' | 'status'>
  readonly #latency: Histogram<'method' | 'route'>
  readonly #gatewayBytes: Counter
  readonly #uploads: Counter<'outcome' | 'reason'>
  readonly #uploadBytes: Counter<'outcome'>
  readonly #backendCalls: Histogram<'backend' | 'operation' | 'outcome'>

  constructor (options: { database?: Knex } = {}) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry, prefix: 'heimdall_' })
    this.#requests = new Counter({ name: 'heimdall_http_requests_total', help: 'HTTP requests answered, by route pattern and status', labelNames: ['method', 'route', 'status'], registers })
    this.#latency = new Histogram({ name: 'heimdall_http_request_duration_seconds', help: 'Time from request to the last byte of the answer, by route pattern', labelNames: ['method', 'route'], buckets: LATENCY_BUCKETS, registers })
    this.#gatewayBytes = new Counter({ name: 'heimdall_gateway_bytes_served_total', help: 'Bytes written to clients by the gateway (/ipfs/), headers included', registers })
    this.#uploads = new Counter({ name: 'heimdall_uploads_total', help: 'Upload requests, accepted or refused, by reason (the error code)', labelNames: ['outcome', 'reason'], registers })
    this.#uploadBytes = new Counter({ name: 'heimdall_upload_bytes_total', help: 'Bytes of upload requests (their Content-Length), accepted or refused', labelNames: ['outcome'], registers })
    this.#backendCalls = new Histogram({ name: 'heimdall_ipfs_backend_call_duration_seconds', help: 'IPFS backend calls, by operation and outcome', labelNames: ['backend', 'operation', 'outcome'], buckets: BACKEND_BUCKETS, registers })
    const client = options.database?.client as { pool?: TarnPool } | undefined
    if (client !== undefined) {
      const gauge = (name: string, help: string, read: (p: TarnPool) => number): void => {
        // Registered by its constructor; read on each scrape (knex makes a new pool after a destroy).
        new Gauge({ name, help, registers, collect () { if (client.pool != null) this.set(read(client.pool)) } })
      }
      gauge('heimdall_db_pool_connections_used', 'Database connections in use', (p) => p.numUsed())
      gauge('heimdall_db_pool_connections_free', 'Database connections idle in the pool', (p) => p.numFree())
      gauge('heimdall_db_pool_acquires_pending', 'Queries waiting for a database connection', (p) => p.numPendingAcquires())
    }
  }

  /** Counts and times every request; the route is the matched pattern, never the raw path. */
  middleware (): RequestHandler {
    return (req, res, next) => {
      const started = process.hrtime.bigint()
      const socket = req.socket
      const written = socket.bytesWritten
      const read = socket.bytesRead
      res.once('close', () => {
        const route = routeOf(req, res)
        const status = res.headersSent ? res.statusCode : 499
        this.#requests.inc({ method: req.method, route, status: String(status) })
        this.#latency.observe({ method: req.method, route }, Number(process.hrtime.bigint() - started) / 1e9)
        if (req.path.startsWith('/ipfs/')) this.#gatewayBytes.inc(Math.max(0, socket.bytesWritten - written))
        if (req.method === 'POST' && req.path === '/upload') {
          const outcome = status < 400 ? 'accepted' : 'refused'
          const reason = outcome === 'accepted' ? '' : String(res.locals.errorCode ?? (status === 499 ? 'ERR_CLIENT_CLOSED_REQUEST' : `HTTP_${status}`))
          this.#uploads.inc({ outcome, reason })
          // What the client sent (Content-Length); a chunked request, by what the socket read meanwhile.
          const declared = Number(req.headers['content-length'])
          this.#uploadBytes.inc({ outcome }, Number.isSafeInteger(declared) && declared >= 0 ? declared : Math.max(0, socket.bytesRead - read))
        }
      })
      next()
    }
  }

  /**
   * The same backend, each call that resolves once timed. Calls go to the
   * backend itself (its private fields need it as `this`).
   */
  instrumentBackend<T extends { kind: string }> (backend: T): T {
    const histogram = this.#backendCalls
    return new Proxy(backend, {
      get (target, property) {
        const value: unknown = Reflect.get(target, property, target)
        if (typeof value !== 'function') return value
        const method = value as (...args: unknown[]) => unknown
        if (typeof property !== 'string' || !TIMED_BACKEND_CALLS.has(property)) return method.bind(target)
        return async (...args: unknown[]) => {
          const end = histogram.startTimer({ backend: target.kind, operation: property })
          try {
            const result = await method.apply(target, args)
            end({ outcome: 'ok' })
            return result
          } catch (err) {
            end({ outcome: err instanceof Error && err.name === 'NotFoundError' ? 'not_found' : 'error' })
            throw err
          }
        }
      }
    })
  }
}

interface TarnPool {
  numUsed: () => number
  numFree: () => number
  numPendingAcquires: () => number
}

function routeOf (req: Request, res: Response): string {
  const pattern = (req.route as { path?: unknown } | undefined)?.path
  if (typeof pattern === 'string') return `${req.baseUrl}${pattern}`
  if (req.path.startsWith('/static/')) return '/static'
  return res.statusCode === 404 ? 'unmatched' : 'other'
}

/**
 * Who may read /metrics: a client on this machine (the address Express
 * believes, so behind a trusted proxy the real client's; a request that came
 * through an untrusted proxy is never taken for local), or anyone with
 * `Authorization: Bearer <METRICS_TOKEN>`.
 */
export function metricsRoute (metrics: Metrics, options: { token: string | undefined, trustProxy: boolean | number | string }): RequestHandler {
  const expected = options.token === undefined ? undefined : digest(options.token)
  return (req, res, next) => {
    const local = isLoopback(req.ip) && (options.trustProxy !== false || req.headers['x-forwarded-for'] === undefined)
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
    const authorized = bearer !== undefined && expected !== undefined && timingSafeEqual(digest(bearer), expected)
    if (!local && !authorized) {
      res.status(bearer === undefined ? 401 : 403)
      if (bearer === undefined) res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"')
      res.json({ error: expected === undefined ? 'metrics are answered to this machine only (set METRICS_TOKEN to scrape from elsewhere)' : 'metrics need Authorization: Bearer <METRICS_TOKEN>', code: 'ERR_METRICS_FORBIDDEN', details: [] })
      return
    }
    metrics.registry.metrics().then((text) => {
      res.setHeader('Content-Type', metrics.registry.contentType)
      res.setHeader('Cache-Control', 'no-store')
      res.send(text)
    }, next)
  }
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest()

function isLoopback (address: string | undefined): boolean {
  if (address === undefined) return false
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.')
}
