import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parsePrometheusText, prometheusParserAvailable, type MetricFamily } from '../support/prometheus-text.ts'
import { fixture } from '../support/fixtures.ts'
import { createIdentity, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

const METRICS_TOKEN = 'metrics-token-for-the-test-0123'
const parserHere = await prometheusParserAvailable()
if (!parserHere) {
  if (process.env.CI === 'true') throw new Error('python3 with prometheus_client is required under CI=true (.ci/run installs it)')
  console.warn('\n*** SKIPPING the /metrics suite: python3 -m pip install prometheus_client to run it ***\n')
}

describe.skipIf(!parserHere)('GET /metrics', () => {
  let t: TestHeimdall
  let families: Map<string, MetricFamily>
  const glb = fixture('glb/BoxTextured.glb')
  beforeAll(async () => {
    // Behind a proxy on this machine, as nginx is: the client's address comes from X-Forwarded-For.
    t = await startTestHeimdall({ METRICS_TOKEN, TRUST_PROXY: 'loopback' })
    const { token } = await createIdentity(t.request)
    const items = (await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', glb, 'box.glb').expect(200)).body as Array<{ Hash: string }>
    await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', Buffer.from('MZ not a model'), 'tool.exe').expect(415)
    await t.request.get(`/ipfs/${items.at(-1)?.Hash ?? ''}/box.glb`).expect(200)
    await t.request.get('/no/such/page').expect(404)
    const res = await t.request.get('/metrics').expect(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(res.headers['cache-control']).toBe('no-store')
    // Prometheus' own client library parses it: the exposition must parse whole.
    families = new Map((await parsePrometheusText(res.text)).map((family) => [family.name, family]))
  })
  afterAll(async () => { await t.close() })

  /** The value of the first sample named `name` (default: the family's, `_total` for a counter) whose labels include `labels`. */
  const sample = (family: string, labels: Record<string, string> = {}, name = family): number => {
    const found = families.get(family)?.samples.find((s) => (s.name === name || s.name === `${name}_total`) && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    return found?.value ?? Number.NaN
  }

  it('counts requests by route pattern and status, never by raw path, with latency histograms', () => {
    expect(families.get('heimdall_http_requests')?.type).toBe('counter')
    expect(sample('heimdall_http_requests', { method: 'GET', route: '/ipfs/:cid{/*path}', status: '200' })).toBeGreaterThanOrEqual(1)
    expect(sample('heimdall_http_requests', { method: 'POST', route: '/upload', status: '415' })).toBe(1)
    expect(sample('heimdall_http_requests', { route: 'unmatched', status: '404' })).toBeGreaterThanOrEqual(1)
    const routes = new Set(families.get('heimdall_http_requests')?.samples.map((s) => s.labels.route))
    expect([...routes].some((route) => route?.includes('/no/such'))).toBe(false)
    const latency = families.get('heimdall_http_request_duration_seconds')
    expect(latency?.type).toBe('histogram')
    expect(sample('heimdall_http_request_duration_seconds', { route: '/upload', method: 'POST' }, 'heimdall_http_request_duration_seconds_count')).toBe(2)
    expect(sample('heimdall_http_request_duration_seconds', { route: '/upload', le: '+Inf' }, 'heimdall_http_request_duration_seconds_bucket')).toBe(2)
  })

  it('counts gateway bytes, uploads accepted and refused by reason, backend calls, the pool and the process', () => {
    expect(sample('heimdall_gateway_bytes_served', {}, 'heimdall_gateway_bytes_served_total')).toBeGreaterThan(glb.length)
    expect(sample('heimdall_uploads', { outcome: 'accepted' }, 'heimdall_uploads_total')).toBe(1)
    expect(sample('heimdall_uploads', { outcome: 'refused', reason: 'ERR_UNSUPPORTED_MEDIA_TYPE' }, 'heimdall_uploads_total')).toBe(1)
    expect(sample('heimdall_upload_bytes', { outcome: 'accepted' }, 'heimdall_upload_bytes_total')).toBeGreaterThan(glb.length)
    expect(sample('heimdall_ipfs_backend_call_duration_seconds', { backend: 'helia', operation: 'pin', outcome: 'ok' }, 'heimdall_ipfs_backend_call_duration_seconds_count')).toBeGreaterThanOrEqual(1)
    expect(sample('heimdall_db_pool_connections_used')).toBeGreaterThanOrEqual(0)
    expect(sample('heimdall_db_pool_connections_free')).toBeGreaterThanOrEqual(0)
    expect(sample('heimdall_process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024)
    expect(sample('heimdall_nodejs_eventloop_lag_p99_seconds')).toBeGreaterThanOrEqual(0)
  })

  it('has every metric the example Grafana dashboard plots', async () => {
    const dashboard = JSON.parse(await readFile(new URL('../../grafana/heimdall-dashboard.json', import.meta.url), 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> }
    const exprs = dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr))
    const named = new Set(exprs.flatMap((expr) => expr.match(/heimdall_[a-z0-9_]+/g) ?? []))
    expect(named.size).toBeGreaterThanOrEqual(8)
    const exposed = new Set([...families.values()].flatMap((family) => family.samples.map((s) => s.name)))
    for (const name of named) expect(exposed, name).toContain(name)
  })

  it('answers other machines only with the token', async () => {
    const remote = '203.0.113.7'
    const anonymous = await t.request.get('/metrics').set('X-Forwarded-For', remote).expect(401)
    expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer/)
    expect((anonymous.body as { error: string }).error).toMatch(/METRICS_TOKEN/)
    await t.request.get('/metrics').set('X-Forwarded-For', remote).set('Authorization', 'Bearer wrong-token-wrong-token').expect(403)
    await t.request.get('/metrics').set('X-Forwarded-For', remote).set('Authorization', `Bearer ${METRICS_TOKEN}`).expect(200)
  })

  it('puts the request id of an error in its body, as in the X-Request-Id header', async () => {
    const res = await t.request.get('/uploads/1').expect(401)
    expect((res.body as { requestId: string }).requestId).toBe(res.headers['x-request-id'])
    const given = await t.request.get('/no/such/page').set('X-Request-Id', 'trace-me-42').expect(404)
    expect(given.body).toMatchObject({ requestId: 'trace-me-42' })
  })
})
