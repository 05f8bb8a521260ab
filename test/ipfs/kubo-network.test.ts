import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { ServiceUnavailableError } from '../../src/errors.ts'
import { KuboBackend } from '../../src/ipfs/kubo-backend.ts'
import { AVATAR_FST, fixture } from '../support/fixtures.ts'
import { createIdentity, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { startKubo, type KuboNode } from '../support/kubo.ts'

/**
 * Pin requests over the Kubo backend (the compose stack's shape), on
 * loopback only: Heimdall's Kubo and another Kubo that alone holds the
 * content, both online with their swarms on 127.0.0.1, no bootstrap peers,
 * no DHT. The request's origins name the holder; Heimdall's Kubo fetches.
 */
describe.skipIf(inject('kuboBin') === '')('pin requests fetched through an online Kubo backend', () => {
  let backend: KuboNode
  let holder: KuboNode
  let t: TestHeimdall
  let token: string
  let work: string

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'heimdall-kubo-net-'))
    ;[backend, holder] = await Promise.all([startKubo(inject('kuboBin'), 'unixfs-v1-2025', { online: true }), startKubo(inject('kuboBin'), 'unixfs-v1-2025', { online: true })])
    t = await startTestHeimdall({ IPFS_API_URL: backend.apiUrl, IPFS_GATEWAY_URL: backend.gatewayUrl, PSA_FETCH_TIMEOUT_SECONDS: '30' })
    token = (await createIdentity(t.request)).token
  })
  afterAll(async () => {
    await t.close()
    await Promise.all([backend.stop(), holder.stop()])
    await rm(work, { recursive: true, force: true })
  })

  const addFolder = async (files: Record<string, string | Buffer>): Promise<string> => {
    const dir = await mkdtemp(join(work, 'folder-'))
    for (const [path, data] of Object.entries(files)) {
      await mkdir(join(dir, path, '..'), { recursive: true })
      await writeFile(join(dir, path), data)
    }
    return (await holder.cli('add', '-r', '-Q', '--cid-version=1', '--raw-leaves', dir)).trim()
  }
  const statusOf = async (requestId: string): Promise<{ status: string, info: { status_details?: string } }> =>
    (await t.request.get(`/psa/pins/${requestId}`).set('Authorization', `Bearer ${token}`).expect(200)).body as { status: string, info: { status_details?: string } }

  it('a pin of a DAG with a block no peer has fails with 503 once its count of nodes stands still past the bound (Kubo looks for it forever)', async () => {
    const missing = CID.createV1(raw.code, await sha256.digest(randomBytes(64)))
    const folder = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [{ Name: 'gone.bin', Hash: missing, Tsize: 64 }] }))
    const root = CID.createV1(dagPb.code, await sha256.digest(folder))
    const body = new FormData()
    body.append('data', new Blob([folder]))
    const put = await fetch(`${backend.apiUrl}/api/v0/block/put?cid-codec=dag-pb`, { method: 'POST', body })
    expect(put.status).toBe(200)
    const started = Date.now()
    const err = await new KuboBackend(backend.apiUrl, { pinIdleMs: 1500 }).pin(root).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ServiceUnavailableError)
    expect((err as Error).message).toMatch(/without walking a block further/)
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(await new KuboBackend(backend.apiUrl).isPinned(root)).toBe(false)
  })

  it('knows its Kubo is on the network, and names Kubo in the delegates', () => {
    expect(t.heimdall.backend.network?.peerId).toBe(backend.peerId)
  })

  it('fetches content only the origin holds, checks it as an upload, and has Kubo pin it', async () => {
    const root = await addFolder({
      'fetched.fst': AVATAR_FST.replace('TestAvatar', 'ThroughKubo'),
      'box.fbx': fixture('fbx/box-binary.fbx'),
      'textures/skin.png': fixture('gltf/BoxTextured/CesiumLogoFlat.png')
    })
    // A read never makes Kubo look for what it lacks: an unknown block is a quick 404, online or not.
    const started = Date.now()
    await expect(t.heimdall.backend.getBlock(CID.parse(root))).rejects.toThrow(/not found/)
    await t.request.get(`/ipfs/${root}/fetched.fst`).expect(404)
    expect(Date.now() - started).toBeLessThan(5000)
    const added = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid: root, name: 'through kubo', origins: holder.swarm }).expect(202)).body as { requestid: string }
    await expect.poll(async () => (await statusOf(added.requestid)).status, { timeout: 30_000, interval: 300 }).toBe('pinned')
    expect((await statusOf(added.requestid)).info.status_details).toMatch(/^fetched from the IPFS network: \d+ blocks, 3 files/)
    expect(await t.heimdall.backend.isPinned(CID.parse(root))).toBe(true)
    expect((await t.request.get(`/ipfs/${root}/fetched.fst`).expect(200)).text).toContain('ThroughKubo')
  })

  it('dials no DNS origin: Kubo would resolve `/dns4/localhost/…` and knock on a port of this machine; the request says so', async () => {
    // A service of this machine's that is no IPFS node (a database, say): it counts who knocks.
    let knocks = 0
    const service = createServer((socket) => { knocks++; socket.destroy() })
    service.listen(0, '127.0.0.1')
    await once(service, 'listening')
    try {
      const dnsOrigin = `/dns4/localhost/tcp/${(service.address() as AddressInfo).port}/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq`
      // Content nobody has: the request stays `pinning`, its details naming the origin not dialed.
      const nowhere = CID.createV1(raw.code, await sha256.digest(randomBytes(64))).toString()
      const waiting = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid: nowhere, origins: [dnsOrigin] }).expect(202)).body as { requestid: string }
      await expect.poll(async () => (await statusOf(waiting.requestid)).info.status_details, { timeout: 10_000, interval: 200 })
        .toContain(`origins not dialed: ${dnsOrigin} (a DNS name`)
      // Content the holder has, beside the same name: pinned once every origin's dial has ended, the service never knocked on.
      const root = await addFolder({ 'beside.glb': fixture('glb/BoxTextured.glb'), 'note.txt': randomBytes(8).toString('hex') })
      const added = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid: root, origins: [dnsOrigin, ...holder.swarm] }).expect(202)).body as { requestid: string }
      await expect.poll(async () => (await statusOf(added.requestid)).status, { timeout: 30_000, interval: 300 }).toBe('pinned')
      expect(knocks).toBe(0)
      await t.request.delete(`/psa/pins/${waiting.requestid}`).set('Authorization', `Bearer ${token}`).expect(202)
    } finally {
      service.close()
    }
  })

  it('fails content that does not pass an upload\'s checks, with the reasons, and pins nothing', async () => {
    const root = await addFolder({ 'tool.exe': Buffer.from('MZ not an asset') })
    const added = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid: root, origins: holder.swarm }).expect(202)).body as { requestid: string }
    await expect.poll(async () => (await statusOf(added.requestid)).status, { timeout: 30_000, interval: 300 }).toBe('failed')
    expect((await statusOf(added.requestid)).info.status_details).toMatch(/exe/)
    expect(await t.heimdall.backend.isPinned(CID.parse(root))).toBe(false)
  })
})
