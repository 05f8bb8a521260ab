import { request } from 'node:https'
import { request as httpRequest } from 'node:http'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { runAddonClient } from '../support/addon-client.ts'
import { startHeimdallProcess, uploadStream, type HeimdallProcess } from '../support/heimdall-process.ts'
import { startKubo, type KuboNode } from '../support/kubo.ts'
import { kuboDeterministicStream } from '../support/kubo-vectors.ts'
import { findNginx, makeCertificate, startNginx, type NginxProcess } from '../support/nginx.ts'
import { freePort } from '../support/free-port.ts'
import { createScratchDatabase } from '../support/postgres-server.ts'

const MiB = 1024 * 1024
const nginxBin = findNginx()
const ready = inject('postgresUrl') !== '' && inject('kuboBin') !== '' && nginxBin !== undefined
if (!ready) {
  if (process.env.CI === 'true') throw new Error('the stack test needs PostgreSQL, Kubo and nginx under CI')
  console.warn('\n!!!!! SKIPPING the stack test: it needs PostgreSQL, Kubo (Go) and nginx\n')
}

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string }

/**
 * The production topology from the same programs, as processes on loopback:
 * PostgreSQL, an offline Kubo, Heimdall (npm start's arguments) with
 * DATABASE_URL and IPFS_API_URL, and nginx running the repository's template
 * with a self-signed certificate. Everything goes through nginx over HTTPS.
 */
describe.skipIf(!ready)('the compose topology as processes: nginx (TLS) → Heimdall → Kubo + PostgreSQL', () => {
  let work: string
  let kubo: KuboNode
  let heimdall: HeimdallProcess
  let nginx: NginxProcess
  let dropDatabase: () => Promise<void>
  let ca: Buffer
  let base: string
  let httpBase: string
  let heimdallEnv: Record<string, string>

  /** One request through nginx, trusting the test certificate. */
  async function call (method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request(`${base}${path}`, { method, headers, ca }, (res) => {
        let text = ''
        res.on('data', (chunk: Buffer) => { text += chunk.toString() })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }) })
      })
      req.on('error', reject)
      req.end(body)
    })
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'heimdall-stack-'))
    const db = await createScratchDatabase(inject('postgresUrl'))
    dropDatabase = db.drop
    // On the network, as in docker-compose.yml, but a network of loopback only (no bootstrap peers, no DHT).
    kubo = await startKubo(inject('kuboBin'), undefined, { online: true })
    const certificate = await makeCertificate(join(work, 'letsencrypt', 'live', 'localhost'))
    ca = certificate.cert
    const [httpPort, httpsPort, heimdallPort] = [await freePort(), await freePort(), await freePort()]
    base = `https://localhost:${httpsPort}`
    httpBase = `http://127.0.0.1:${httpPort}`
    heimdallEnv = {
      PORT: String(heimdallPort),
      DATA_DIR: join(work, 'heimdall'),
      DATABASE_URL: db.url,
      IPFS_API_URL: kubo.apiUrl,
      PUBLIC_URL: base,
      TRUST_PROXY: 'loopback',
      SECRET_KEY: 'stack-test-secret-key-stack-test-secret-key',
      MAX_UPLOAD_BYTES: String(400 * MiB)
    }
    heimdall = await startHeimdallProcess(heimdallEnv)
    nginx = await startNginx(nginxBin ?? 'nginx', {
      upstream: `127.0.0.1:${heimdallPort}`,
      httpListen: `127.0.0.1:${httpPort}`,
      httpsListen: `127.0.0.1:${httpsPort}`,
      certDir: certificate.dir,
      domain: 'localhost',
      maxUploadBytes: 400 * MiB
    })
  }, 180_000)

  afterAll(async () => {
    await nginx?.stop()
    await heimdall?.stop()
    await kubo?.stop()
    await dropDatabase?.()
    await rm(work, { recursive: true, force: true })
  })

  let addon: Record<string, unknown>

  it('runs the add-on round trip over HTTPS', async () => {
    addon = await runAddonClient(base, 'stack_artist', join(work, 'letsencrypt', 'live', 'localhost', 'fullchain.pem'))
    expect(addon).toMatchObject({ routes_status: 200, new_user_status: 201, upload_status: 200, fst_status: 200, texture_status: 200, texture_matches: true })
    expect(addon.fst).toContain('filename = model.fbx')
  })

  it('keeps the add-on\'s sign-in link, token and all, out of nginx\'s access log', async () => {
    const token = String(addon.secret)
    const link = `/uploads?username=stack_artist&token=${encodeURIComponent(token)}`
    const signIn = await call('GET', link, { Accept: 'text/html' })
    expect(signIn.status).toBe(303)
    // What the page it lands on then asks for carries the link as its Referer.
    await call('GET', '/plugin_routes', { Referer: `${base}${link}` })
    const log = await readFile(join(nginx.prefix, 'logs', 'access.log'), 'utf8')
    expect(log).toMatch(/"GET \/uploads HTTP\/[\d.]+" 303 /)
    expect(log).toContain(`"${base}/uploads"`)
    expect(log).not.toContain(token)
    expect(log).not.toContain(encodeURIComponent(token))
    expect(log).not.toContain('token=')
  })

  it('redirects plain HTTP to HTTPS', async () => {
    const answer = await new Promise<Answer>((resolve, reject) => {
      httpRequest(`${httpBase}/plugin_routes`, (res) => { res.resume(); resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' }) }).on('error', reject).end()
    })
    expect(answer.status).toBe(301)
    // nginx sends the browser to the same host name on 443.
    expect(answer.headers.location).toBe('https://127.0.0.1/plugin_routes')
  })

  it('forwards the scheme, so a browser session cookie is Secure', async () => {
    const res = await call('POST', '/uploads', { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'text/html' }, `username=stack_artist&token=${String(addon.secret)}`)
    expect(res.status).toBe(303)
    expect(String(res.headers['set-cookie'])).toMatch(/; Secure/)
  })

  it('sets X-Forwarded-Host itself: a client\'s own does not reach Heimdall, which believes the proxy (the page\'s CSP is built from it)', async () => {
    const page = await call('GET', '/', { Accept: 'text/html', 'X-Forwarded-Host': 'evil.example' })
    expect(page.status).toBe(200)
    expect(String(page.headers['content-security-policy'])).not.toContain('evil.example')
  })

  it('streams a 300 MB upload through nginx without nginx or Heimdall holding it', async () => {
    const size = 300 * 1000 * 1000
    const next = kuboDeterministicStream('stack-300mb')
    const stream = (): NodeJS.ReadableStream => Readable.from((function * () { for (let left = size; left > 0; left -= MiB) yield next(Math.min(left, MiB)) })())
    const spooled: string[] = []
    const watch = setInterval(() => { void readdir(join(nginx.prefix, 'body')).then((files) => { spooled.push(...files) }) }, 50)
    try {
      const result = await uploadStream(base, String(addon.secret), { size, stream }, 'large.bin', ca)
      expect(result.status).toBe(200)
    } finally {
      clearInterval(watch)
    }
    expect(spooled).toEqual([])
    console.log(`Heimdall peak RSS through a 300 MB upload via nginx: ${Math.round(heimdall.peakRss() / 1e6)} MB`)
    expect(heimdall.peakRss()).toBeLessThan(300 * 1000 * 1000)
  }, 180_000)

  it('keeps everything listed and served after Heimdall restarts', async () => {
    await heimdall.stop()
    heimdall = await startHeimdallProcess(heimdallEnv)
    const list = await call('GET', '/uploads', { Authorization: `Bearer ${String(addon.secret)}` })
    expect(list.status).toBe(200)
    const uploads = (JSON.parse(list.body) as { uploads: Array<{ name: string, rootCid: string, primaryUrl: string }> }).uploads
    expect(uploads.map((u) => u.name).sort()).toEqual(['BlenderAvatar', 'large'])
    const avatar = uploads.find((u) => u.name === 'BlenderAvatar')
    expect(avatar?.primaryUrl).toBe(`${base}/ipfs/${avatar?.rootCid}/BlenderAvatar.fst`)
    const fst = await call('GET', `/ipfs/${avatar?.rootCid}/BlenderAvatar.fst`)
    expect(fst.status).toBe(200)
    expect(fst.body).toContain('filename = model.fbx')
    const range = await call('GET', `/ipfs/${uploads.find((u) => u.name === 'large')?.rootCid}/large.bin`, { Range: 'bytes=0-99' })
    expect(range.status).toBe(206)
    expect(range.body.length).toBeGreaterThan(0)
  }, 120_000)

  it('puts uploads on the IPFS network: a second Kubo fetches an upload\'s .fst from the stack\'s Kubo over its swarm port', async () => {
    const list = await call('GET', '/uploads', { Authorization: `Bearer ${String(addon.secret)}` })
    const avatar = (JSON.parse(list.body) as { uploads: Array<{ name: string, rootCid: string }>, ipfs: { ipfsNetwork: string } })
    expect(avatar.ipfs.ipfsNetwork).toBe('public')
    const root = avatar.uploads.find((u) => u.name === 'BlenderAvatar')?.rootCid ?? ''
    const other = await startKubo(inject('kuboBin'), undefined, { online: true })
    try {
      await other.cli('swarm', 'connect', kubo.swarm[0] ?? '')
      expect(await other.cli('cat', '--timeout=30s', `/ipfs/${root}/BlenderAvatar.fst`)).toContain('filename = model.fbx')
      // The Pinning Service API names the stack's Kubo as the node to connect to, not Heimdall's own key.
      const pin = await call('POST', '/psa/pins', { Authorization: `Bearer ${String(addon.secret)}`, 'Content-Type': 'application/json' }, JSON.stringify({ cid: root }))
      expect(pin.status).toBe(202)
      const delegates = (JSON.parse(pin.body) as { delegates: string[] }).delegates
      expect(delegates.length).toBeGreaterThan(0)
      for (const d of delegates) expect(d.endsWith(`/p2p/${kubo.peerId}`)).toBe(true)
      expect(delegates).toContain(kubo.swarm[0])
    } finally {
      await other.stop()
    }
  }, 120_000)
})
