import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { request } from 'node:https'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { askControlSocket, controlSocketPath } from '../../src/control-socket.ts'
import { CSRF_COOKIE, CSRF_FIELD } from '../../src/http/csrf.ts'
import { SESSION_COOKIE } from '../../src/http/session.ts'
import { blockKey, shardOf } from '../../src/ipfs/block-collector.ts'
import type { GcReport } from '../../src/ipfs/ipfs-backend.ts'
import { S3Client } from '../../src/storage/s3-client.ts'
import { runAddonClient } from '../support/addon-client.ts'
import { avatarBundle } from '../support/fixtures.ts'
import { newToken, startHeimdallProcess, uploadStream, type HeimdallProcess, type UploadResult } from '../support/heimdall-process.ts'
import { findNginx, makeCertificate } from '../support/nginx.ts'
import { nginxHasUpstreamResolve, writeScaledNginxConfig } from '../support/nginx-scaled.ts'
import { freePort } from '../support/free-port.ts'
import { createScratchDatabase, findPostgresBinaries, startPostgresServer, type PostgresServer } from '../support/postgres-server.ts'
import { createBucket, startSeaweed, type SeaweedCluster } from '../support/seaweedfs.ts'

const MiB = 1024 * 1024
const nginxBin = findNginx()
const ready = inject('seaweedBin') !== '' && nginxBin !== undefined && findPostgresBinaries() !== undefined
if (!ready) {
  if (process.env.CI === 'true') throw new Error('the scale-out test needs SeaweedFS, PostgreSQL and nginx under CI')
  console.warn('\n!!!!! SKIPPING the scale-out test: it needs SeaweedFS (Go), PostgreSQL and nginx\n')
}

const BUCKET = 'heimdall-scale'
const PREFIX = 'scale/'
const LEASE_TTL_SECONDS = 10
const SECRET_KEY = 'scale-out-test-secret-key-scale-out-test-secret'

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: Buffer }
interface ListedUpload { id: number, name: string, rootCid: string }

const v1 = (cid: string): string => CID.parse(cid).toV1().toString()
const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')
const rootOf = (result: UploadResult): string => (result.body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''

/**
 * Three Heimdall instances sharing one PostgreSQL and one SeaweedFS bucket
 * (BLOCKSTORE=s3), behind nginx running nginx/heimdall-scaled.conf.template:
 * every program real, on loopback. The PostgreSQL is this file's own (not the
 * suite's), because one test stops and restarts it.
 */
describe.skipIf(!ready)('scale-out: three instances on one PostgreSQL and one S3 bucket, behind nginx', () => {
  let work: string
  let postgres: PostgresServer
  let dbUrl: string
  let db: pg.Client
  let seaweed: SeaweedCluster
  let s3: S3Client
  let nginx: ChildProcess | undefined
  let nginxPrefix: string
  let base: string
  let ca: Buffer
  let caFile: string
  const envs: Array<Record<string, string>> = []
  const instances: HeimdallProcess[] = []
  let startedTogetherMs = 0

  /** One request over https through nginx, trusting the test certificate. */
  async function viaNginx (method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request(`${base}${path}`, { method, headers, ca }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }) })
      })
      req.on('error', reject)
      req.end(body)
    })
  }

  async function list (url: string, token: string): Promise<ListedUpload[]> {
    const res = await fetch(`${url}/uploads`, { headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } })
    expect(res.status).toBe(200)
    return ((await res.json()) as { uploads: ListedUpload[] }).uploads
  }

  async function read (url: string, root: string, path: string): Promise<Buffer> {
    const res = await fetch(`${url}/ipfs/${root}/${path}`)
    const bytes = Buffer.from(await res.arrayBuffer())
    if (res.status !== 200) throw new Error(`GET ${url}/ipfs/${root}/${path} answered ${res.status}: ${bytes.toString().slice(0, 300)}`)
    return bytes
  }

  async function remove (url: string, token: string, id: number): Promise<void> {
    const res = await fetch(`${url}/uploads/${id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } })
    expect(res.status).toBe(204)
  }

  /** A collection on instance `i`, asked as `npm run gc` asks it (its control socket). */
  async function collect (i: number, dryRun = false): Promise<GcReport> {
    const answer = await askControlSocket(controlSocketPath(envs[i]?.DATA_DIR ?? ''), 'POST', `/gc${dryRun ? '?dryRun=1' : ''}`)
    if (answer.status !== 200) throw new Error(`gc on instance ${i} answered ${answer.status}: ${JSON.stringify(answer.body)}`)
    return answer.body as GcReport
  }

  const objectKey = (key: string): string => `${PREFIX}blocks/${shardOf(key)}/${key}`

  /** The pack index (S3_PACK_BYTES): block key → pack, offset, length. */
  async function packIndex (): Promise<Map<string, { pack: string, offset: number, length: number }>> {
    const rows = (await db.query<{ block_key: string, pack: string, offset: string, length: number }>('select block_key, pack, "offset", length from packed_blocks')).rows
    return new Map(rows.map((r) => [r.block_key, { pack: r.pack, offset: Number(r.offset), length: r.length }]))
  }

  /**
   * What the bucket holds, by name: block objects of their own, blocks the
   * pack index places in a pack object that is there, and pack objects the
   * index does not know (an unfinished import's).
   */
  async function bucketKeys (): Promise<Set<string>> {
    const keys = new Set<string>()
    for await (const object of s3.listObjects(`${PREFIX}blocks/`)) keys.add(object.key.slice(object.key.lastIndexOf('/') + 1))
    const packs = new Set<string>()
    for await (const object of s3.listObjects(`${PREFIX}packs/`)) packs.add(object.key.slice(object.key.lastIndexOf('/') + 1))
    const index = await packIndex()
    for (const [key, at] of index) if (packs.has(at.pack)) keys.add(key)
    const recorded = new Set((await db.query<{ name: string }>('select name from block_packs')).rows.map((r) => r.name))
    for (const pack of packs) if (!recorded.has(pack)) keys.add(pack)
    return keys
  }

  /** What `roots` reach, walked here from the bucket's own objects (dag-pb links), independently of the app's collector. */
  async function reachable (roots: Iterable<string>): Promise<{ keys: Set<string>, missing: string[] }> {
    const keys = new Set<string>()
    const missing: string[] = []
    const index = await packIndex()
    const stack = [...roots].map((r) => CID.parse(r))
    for (let cid = stack.pop(); cid !== undefined; cid = stack.pop()) {
      if (cid.multihash.code === 0x00) continue // identity: inline, never stored
      const key = blockKey(cid)
      if (keys.has(key)) continue
      keys.add(key)
      const at = index.get(key)
      const bytes = at === undefined ? await s3.getObject(objectKey(key)) : await s3.getRange(`${PREFIX}packs/${at.pack}`, at.offset, at.length)
      if (bytes === undefined) { missing.push(cid.toString()); continue }
      if (cid.code === dagPb.code) for (const link of dagPb.decode(bytes).Links) stack.push(link.Hash)
    }
    return { keys, missing }
  }

  async function pins (): Promise<Set<string>> {
    return new Set((await db.query<{ cid: string }>('select cid from ipfs_pins')).rows.map((r) => v1(r.cid)))
  }

  async function uploadRoots (): Promise<string[]> {
    return (await db.query<{ root_cid: string }>('select root_cid from uploads')).rows.map((r) => v1(r.root_cid))
  }

  /** Every upload row's root is pinned, and every pin is some upload's (nothing else pins here). */
  async function expectPinsMatchUploads (): Promise<void> {
    const pinned = await pins()
    const roots = new Set(await uploadRoots())
    expect([...roots].filter((r) => !pinned.has(r)), 'upload rows whose root is not pinned').toEqual([])
    expect([...pinned].filter((p) => !roots.has(p)), 'pins no upload references').toEqual([])
  }

  /** No orphan block: every object in the bucket is reached from a pin, and every block a pin reaches is there. */
  async function expectBucketIsExactlyThePins (): Promise<void> {
    const { keys, missing } = await reachable(await pins())
    expect(missing, 'blocks a pin reaches that the bucket lacks').toEqual([])
    const stored = await bucketKeys()
    expect([...stored].filter((k) => !keys.has(k)), 'orphan blocks in the bucket').toEqual([])
  }

  async function readyz (i: number): Promise<number> {
    return fetch(`${instances[i]?.url ?? ''}/readyz`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.status, () => 0)
  }

  async function until (what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!await check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await sleep(200)
    }
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'heimdall-scale-out-'))
    const certificate = await makeCertificate(join(work, 'tls'))
    ca = certificate.cert
    caFile = join(certificate.dir, 'fullchain.pem')
    ;[postgres, seaweed] = await Promise.all([startPostgresServer(), startSeaweed(inject('seaweedBin'))])
    dbUrl = (await createScratchDatabase(postgres.url)).url
    db = new pg.Client({ connectionString: dbUrl })
    db.on('error', () => {}) // the PostgreSQL restart test ends this session; queries after it reconnect (see reconnectDb)
    await db.connect()
    await createBucket(seaweed, BUCKET)
    s3 = new S3Client({ endpoint: seaweed.endpoint, bucket: BUCKET, region: seaweed.region, forcePathStyle: true, accessKeyId: seaweed.accessKeyId, secretAccessKey: seaweed.secretAccessKey })

    const ports = [await freePort(), await freePort(), await freePort()]
    const [httpPort, httpsPort] = [await freePort(), await freePort()]
    base = `https://localhost:${httpsPort}`
    for (const [i, port] of ports.entries()) {
      envs.push({
        PORT: String(port),
        DATA_DIR: join(work, `heimdall-${i + 1}`),
        DATABASE_URL: dbUrl,
        SECRET_KEY,
        PUBLIC_URL: base,
        TRUST_PROXY: 'loopback',
        BLOCKSTORE: 's3',
        S3_ENDPOINT: seaweed.endpoint,
        S3_BUCKET: BUCKET,
        S3_PREFIX: PREFIX,
        S3_REGION: seaweed.region,
        S3_FORCE_PATH_STYLE: 'true',
        AWS_ACCESS_KEY_ID: seaweed.accessKeyId,
        AWS_SECRET_ACCESS_KEY: seaweed.secretAccessKey,
        GC_LEASE_TTL_SECONDS: String(LEASE_TTL_SECONDS),
        GC_INTERVAL_SECONDS: '0',
        IDENTITIES_PER_HOUR: '10000',
        UPLOADS_PER_HOUR: '10000',
        // The third instance keeps nothing locally: every read of it goes to the bucket.
        ...(i === 2 ? { S3_CACHE_BYTES: '0', GATEWAY_CACHE_BYTES: '0' } : {})
      })
    }
    // All three at the same moment: their migrations race on one empty database.
    const started = Date.now()
    instances.push(...await Promise.all(envs.map(async (env) => start(env))))
    startedTogetherMs = Date.now() - started

    nginxPrefix = join(work, 'nginx')
    const bin = nginxBin ?? 'nginx'
    const withoutResolve = !await nginxHasUpstreamResolve(bin)
    if (withoutResolve) console.warn('\n!!!!! nginx here is older than 1.27.3: the scaled site runs WITHOUT the servers\' `resolve` parameter\n')
    const conf = await writeScaledNginxConfig(nginxPrefix, {
      upstreams: [`127.0.0.1:${ports[0]}`, `127.0.0.1:${ports[1]}`, `127.0.0.1:${ports[2]}`],
      httpListen: `127.0.0.1:${httpPort}`,
      httpsListen: `127.0.0.1:${httpsPort}`,
      certDir: certificate.dir,
      domain: 'localhost',
      maxUploadBytes: 400 * MiB
    }, { withoutResolve })
    nginx = spawn(bin, ['-p', nginxPrefix, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'inherit', 'inherit'] })
    await until('nginx to listen', 15_000, async () => {
      if (nginx?.exitCode !== null) throw new Error(`nginx exited: ${await readFile(join(nginxPrefix, 'logs/error.log'), 'utf8').catch(() => '')}`)
      return new Promise<boolean>((resolve) => {
        const socket = connect(httpsPort, '127.0.0.1')
        socket.once('connect', () => { socket.destroy(); resolve(true) })
        socket.once('error', () => { resolve(false) })
      })
    })
  }, 180_000)

  afterAll(async () => {
    if (nginx !== undefined && nginx.exitCode === null) {
      const exited = new Promise((resolve) => nginx?.once('exit', resolve))
      nginx.kill('SIGQUIT')
      await exited
    }
    await Promise.all(instances.map(async (instance) => instance.stop()))
    await db?.end().catch(() => {})
    s3?.close()
    await seaweed?.stop()
    await postgres?.stop()
    await rm(work, { recursive: true, force: true })
  }, 60_000)

  /** An instance; one that exits without being asked says so (a crash is what the fault tests look for). */
  async function start (env: Record<string, string>): Promise<HeimdallProcess> {
    const instance = await startHeimdallProcess(env)
    instance.child.once('exit', (code, signal) => { console.warn(`!!! heimdall on port ${env.PORT ?? '?'} (pid ${instance.child.pid ?? '?'}) exited: ${code ?? signal ?? '?'}`) })
    return instance
  }

  /** Restarts an instance an earlier test left dead (a failed fault test), so later tests fail only for their own reasons. */
  async function ensureAllRunning (): Promise<void> {
    for (const [i, instance] of instances.entries()) {
      if (instance.child.exitCode !== null || instance.child.signalCode !== null) instances[i] = await start(envs[i] ?? {})
    }
  }

  /** The test's own session after PostgreSQL restarted. */
  async function reconnectDb (): Promise<void> {
    await db.end().catch(() => {})
    db = new pg.Client({ connectionString: dbUrl })
    db.on('error', () => {})
    await db.connect()
  }

  it('starts three instances at the same moment on one empty database: all ready, each migration applied once', async () => {
    console.log(`three instances started together, all ready in ${startedTogetherMs} ms`)
    for (let i = 0; i < 3; i++) expect(await readyz(i)).toBe(200)
    const { rows } = await db.query<{ name: string, n: string }>('select name, count(*) as n from knex_migrations group by name having count(*) > 1')
    expect(rows).toEqual([])
    expect((await db.query('select 1 from knex_migrations')).rowCount).toBeGreaterThan(10)
  })

  it('serves and lists an upload made through any instance from the other two, and a delete through another removes it everywhere, blocks and all', async () => {
    for (let i = 0; i < 3; i++) {
      const [self, other, third] = [instances[i], instances[(i + 1) % 3], instances[(i + 2) % 3]] as [HeimdallProcess, HeimdallProcess, HeimdallProcess]
      const token = await newToken(self.url, `scale_user_${i}`)
      const bytes = randomBytes(300 * 1024 + i)
      const uploaded = await uploadStream(self.url, token, bytes, `file-${i}.bin`)
      expect(uploaded.status).toBe(200)
      const root = rootOf(uploaded)
      const [a, b, listA, listB] = await Promise.all([
        read(other.url, root, `file-${i}.bin`), read(third.url, root, `file-${i}.bin`),
        list(other.url, token), list(third.url, token)
      ])
      expect(sha(a)).toBe(sha(bytes))
      expect(sha(b)).toBe(sha(bytes))
      expect(listA.map((u) => u.rootCid)).toEqual([root])
      expect(listB.map((u) => u.rootCid)).toEqual([root])
      const { keys, missing } = await reachable([root])
      expect(missing).toEqual([])
      expect(keys.size).toBeGreaterThan(1) // 300 KiB: a file of several chunks under a directory

      await remove(other.url, token, listA[0]?.id ?? 0)
      for (const instance of instances) expect(await list(instance.url, token)).toEqual([])
      expect((await pins()).has(v1(root))).toBe(false)
      const report = await collect(i)
      expect(report.blocks).toBeGreaterThanOrEqual(0)
      const stored = await bucketKeys()
      expect([...keys].filter((k) => stored.has(k)), 'blocks of the deleted upload still in the bucket').toEqual([])
      // And the other instances no longer serve it (the one with no cache has nothing to fall back on).
      expect((await fetch(`${instances[2]?.url ?? ''}/ipfs/${root}/file-${i}.bin`, { signal: AbortSignal.timeout(20_000) }).catch(() => undefined))?.status).not.toBe(200)
    }
    await expectPinsMatchUploads()
  }, 120_000)

  it('accepts a browser session made through one instance on the others (one SECRET_KEY, sessions in PostgreSQL)', async () => {
    const token = await newToken(instances[0]?.url ?? '', 'scale_browser')
    const signIn = await fetch(`${instances[0]?.url ?? ''}/uploads`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'text/html' },
      body: `username=scale_browser&token=${encodeURIComponent(token)}`
    })
    expect(signIn.status).toBe(303)
    const cookie = signIn.headers.getSetCookie().map((c) => c.split(';')[0] ?? '').find((c) => c.startsWith(`${SESSION_COOKIE}=`))
    expect(cookie).toBeDefined()
    for (const instance of instances.slice(1)) {
      const res = await fetch(`${instance.url}/uploads`, { headers: { Cookie: cookie ?? '', Accept: 'application/json' } })
      expect(res.status).toBe(200)
      expect(((await res.json()) as { username: string }).username).toBe('scale_browser')
    }
    // Signed out through the second with the CSRF token a page of the first handed out (an HMAC under the shared SECRET_KEY): the third no longer takes the cookie.
    const page = await fetch(`${instances[0]?.url ?? ''}/uploads`, { headers: { Cookie: cookie ?? '', Accept: 'text/html' } })
    const csrfCookie = page.headers.getSetCookie().map((c) => c.split(';')[0] ?? '').find((c) => c.startsWith(`${CSRF_COOKIE}=`))
    const csrfToken = new RegExp(`name="${CSRF_FIELD}" value="([^"]+)"`).exec(await page.text())?.[1]
    expect(csrfCookie).toBeDefined()
    expect(csrfToken).toBeDefined()
    const out = await fetch(`${instances[1]?.url ?? ''}/signout`, { method: 'POST', redirect: 'manual', headers: { Cookie: `${cookie ?? ''}; ${csrfCookie ?? ''}`, Accept: 'text/html', 'X-CSRF-Token': csrfToken ?? '' } })
    expect(out.status).toBe(303)
    expect((await fetch(`${instances[2]?.url ?? ''}/uploads`, { headers: { Cookie: cookie ?? '', Accept: 'application/json' } })).status).toBe(401)
  }, 60_000)

  it('runs the Blender add-on round trip through nginx', async () => {
    const addon = await runAddonClient(base, 'scale_artist', caFile)
    expect(addon).toMatchObject({ routes_status: 200, new_user_status: 201, upload_status: 200, fst_status: 200, texture_status: 200, texture_matches: true })
    expect(addon.fst).toContain('filename = model.fbx')
    await expectPinsMatchUploads()
  }, 120_000)

  it('keeps a bundle pinned exactly while some upload references it: two instances upload it while a third deletes an older upload of it', async () => {
    const zip = await avatarBundle()
    const [tA, tB, tC] = await Promise.all(['race_a', 'race_b', 'race_c'].map(async (name, i) => newToken(instances[i]?.url ?? '', name)))
    const [i0, i1, i2] = instances.map((i) => i.url) as [string, string, string]
    const uploadOf = async (url: string, token: string): Promise<string> => {
      const res = await uploadStream(url, token, zip, 'avatar.zip')
      expect(res.status).toBe(200)
      return v1(rootOf(res))
    }
    const idOf = async (token: string): Promise<number> => (await list(i0, token ?? ''))[0]?.id ?? 0
    const rowsFor = async (root: string): Promise<number> => (await uploadRoots()).filter((r) => r === root).length
    for (let round = 0; round < 3; round++) {
      const root = await uploadOf(i2, tA ?? '')
      const older = await idOf(tA ?? '')
      await Promise.all([uploadOf(i0, tB ?? ''), uploadOf(i1, tC ?? ''), remove(i2, tA ?? '', older)])
      expect(await rowsFor(root)).toBe(2)
      expect((await pins()).has(root)).toBe(true)
      // The last two deletes race a new upload of the same bundle.
      const [idB, idC] = await Promise.all([idOf(tB ?? ''), idOf(tC ?? '')])
      await Promise.all([remove(i0, tB ?? '', idB), remove(i1, tC ?? '', idC), uploadOf(i2, tA ?? '')])
      expect(await rowsFor(root)).toBe(1)
      expect((await pins()).has(root)).toBe(true)
      expect((await read(i1, root, 'avatar.fst')).length).toBeGreaterThan(0)
      await remove(i0, tA ?? '', await idOf(tA ?? ''))
      expect(await rowsFor(root)).toBe(0)
      expect((await pins()).has(root)).toBe(false)
    }
    await expectPinsMatchUploads()
  }, 120_000)

  it('survives kill -9 of an instance during 20 concurrent uploads: what was acknowledged is whole everywhere, nothing half-recorded, no orphan block after the lease TTL', async () => {
    const victim = 0
    const tokens = await Promise.all([0, 1, 2, 3].map(async (u) => newToken(instances[1]?.url ?? '', `crash_user_${u}`)))
    const size = 24 * MiB
    const files = Array.from({ length: 20 }, (_, n) => ({ n, token: tokens[n % 4] ?? '', bytes: randomBytes(size), name: `crash-${n}.bin` }))
    // Sent slowly (256 KiB every 25 ms, ~2.4 s at best), so the kill lands while uploads are in flight on every instance. The
    // importer writes a file's 1 MiB leaves ten at a time (ipfs-unixfs-importer's blockWriteConcurrency): 24 MiB files.
    const slowly = (bytes: Buffer) => ({ size: bytes.length, stream: () => Readable.from((async function * () { for (let o = 0; o < bytes.length; o += 256 * 1024) { yield bytes.subarray(o, o + 256 * 1024); await sleep(25) } })()) })
    const targets = files.map((f) => f.n % 2 === 0 ? base : instances[(f.n >> 1) % 3]?.url ?? '')
    const uploads = Promise.allSettled(files.map(async (f, k) => uploadStream(targets[k] ?? '', f.token, slowly(f.bytes), f.name, ca)))
    // The kill lands once a fifth of all the leaves are in the bucket: every instance's uploads are well under way.
    const before = (await bucketKeys()).size
    await until('uploads to have written a fifth of their leaves', 30_000, async () => (await bucketKeys()).size >= before + 96)
    const killedAt = Date.now()
    instances[victim]?.child.kill('SIGKILL')
    const results = await uploads
    const acked = files.filter((_, k) => { const r = results[k]; return r?.status === 'fulfilled' && r.value.status >= 200 && r.value.status < 300 })
    console.log(`kill -9 during 20 uploads: ${acked.length} acknowledged; the others: ${results.filter((r) => r.status === 'rejected' || r.value.status >= 300).map((r) => r.status === 'rejected' ? String(r.reason).slice(0, 60) : r.value.status).join(', ')}`)
    expect(acked.length).toBeGreaterThan(0)
    expect(acked.length).toBeLessThan(20) // the kill did land in the middle

    const live = [instances[1], instances[2]] as [HeimdallProcess, HeimdallProcess]
    for (const f of acked) {
      const root = rootOf((results[f.n] as PromiseFulfilledResult<UploadResult>).value)
      const [a, b] = await Promise.all(live.map(async (instance) => read(instance.url, root, f.name)))
      expect(sha(a ?? Buffer.alloc(0))).toBe(sha(f.bytes))
      expect(sha(b ?? Buffer.alloc(0))).toBe(sha(f.bytes))
      for (const instance of live) expect((await list(instance.url, f.token)).filter((u) => v1(u.rootCid) === v1(root))).toHaveLength(1)
    }
    const pinned = await pins()
    expect((await uploadRoots()).filter((r) => !pinned.has(r)), 'upload rows whose root is not pinned').toEqual([])

    // What the dead instance's unfinished uploads wrote: in the bucket, reached by no pin, held by its leases until they run out.
    const orphans = async (): Promise<string[]> => { const { keys } = await reachable(await pins()); return [...await bucketKeys()].filter((k) => !keys.has(k)) }
    const left = await orphans()
    console.log(`blocks the killed instance's unfinished uploads left: ${left.length}`)
    expect(left.length, 'the unfinished uploads of the killed instance had written blocks').toBeGreaterThan(0)
    if (Date.now() < killedAt + (LEASE_TTL_SECONDS - 3) * 1000) {
      await collect(1)
      expect(await orphans(), 'a collection within the lease TTL keeps the leased blocks').toEqual(left)
    }
    // After the TTL, a collection on a live instance takes them.
    await sleep(Math.max(0, killedAt + (LEASE_TTL_SECONDS + 2) * 1000 - Date.now()))
    const report = await collect(1)
    console.log(`collection after the lease TTL: ${report.blocks} blocks, ${report.bytes} bytes`)
    expect(report.blocks).toBeGreaterThanOrEqual(left.length)
    expect((await collect(2, true)).blocks).toBe(0)
    await expectBucketIsExactlyThePins()

    // Back on the same port and data dir: nginx takes it back, and it recovers whatever it left.
    instances[victim] = await start(envs[victim] ?? {})
    await expectPinsMatchUploads()
    await expectBucketIsExactlyThePins()
  }, 120_000)

  it('reports a PostgreSQL outage on /readyz of every instance, recovers without a restart, and takes uploads afterwards', async () => {
    await ensureAllRunning()
    const pids = instances.map((i) => i.child.pid)
    await postgres.pause()
    try {
      await until('every /readyz to answer 503', 30_000, async () => (await Promise.all([0, 1, 2].map(readyz))).every((s) => s === 503))
    } finally {
      await postgres.resume()
    }
    await until('every /readyz to answer 200 again', 60_000, async () => (await Promise.all([0, 1, 2].map(readyz))).every((s) => s === 200))
    expect(instances.map((i) => i.child.pid)).toEqual(pids)
    expect(instances.every((i) => i.child.exitCode === null)).toBe(true)
    await reconnectDb()
    const token = await newToken(instances[0]?.url ?? '', 'after_outage')
    const bytes = randomBytes(200 * 1024)
    const uploaded = await uploadStream(base, token, bytes, 'after.bin', ca)
    expect(uploaded.status).toBe(200)
    for (const instance of instances) expect(sha(await read(instance.url, rootOf(uploaded), 'after.bin'))).toBe(sha(bytes))
    await expectPinsMatchUploads()
  }, 120_000)

  it('goes on serving stored content when one SeaweedFS volume server is killed', async () => {
    await ensureAllRunning()
    const token = await newToken(instances[0]?.url ?? '', 'volume_fault')
    const bytes = randomBytes(1 * MiB)
    const uploaded = await uploadStream(instances[0]?.url ?? '', token, bytes, 'replicated.bin')
    expect(uploaded.status).toBe(200)
    const root = rootOf(uploaded)
    seaweed.volumes[0]?.kill()
    // The third instance has no read cache and never read this: every block comes from the bucket, i.e. the surviving replica.
    expect(sha(await read(instances[2]?.url ?? '', root, 'replicated.bin'))).toBe(sha(bytes))
    expect(sha(await read(instances[1]?.url ?? '', root, 'replicated.bin'))).toBe(sha(bytes))
    // And an upload from before, read through nginx.
    const listed = await list(instances[1]?.url ?? '', token)
    expect(listed.map((u) => u.rootCid)).toEqual([root])
    const res = await viaNginx('GET', `/ipfs/${root}/replicated.bin`)
    expect(res.status).toBe(200)
    expect(sha(res.body)).toBe(sha(bytes))
  }, 90_000)
})
