import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { HeliaBackend } from '../../src/ipfs/helia-backend.ts'
import { resolvePeerIdentity } from '../../src/ipfs/peer-identity.ts'
import { AVATAR_FST, avatarBundle, fixture } from '../support/fixtures.ts'
import { blockFiles, createIdentity, makeDataDir, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { startKubo, type KuboNode } from '../support/kubo.ts'

/**
 * The embedded node on the IPFS network, on loopback only: Heimdall with
 * IPFS_NETWORK=private and real Kubo daemons whose swarm listens on
 * 127.0.0.1, with no bootstrap peers and no DHT (Routing.Type=none). Nothing
 * here can reach, or be reached from, beyond this machine.
 */
describe.skipIf(inject('kuboBin') === '')('the embedded node on a private IPFS network, with a real Kubo as its peer', () => {
  let kubo: KuboNode
  /** A Kubo that is not in IPFS_PEERS: reached only through a pin request's origins. */
  let stranger: KuboNode
  let t: TestHeimdall
  let token: string
  let work: string

  const waitFor = async (check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> => {
    const deadline = Date.now() + ms
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('timed out')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  /** Adds a folder of files to a Kubo; its root CID. */
  const addFolder = async (node: KuboNode, files: Record<string, string | Buffer>): Promise<string> => {
    const dir = await mkdtemp(join(work, 'folder-'))
    for (const [path, data] of Object.entries(files)) {
      await mkdir(join(dir, path, '..'), { recursive: true })
      await writeFile(join(dir, path), data)
    }
    return (await node.cli('add', '-r', '-Q', dir)).trim()
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'heimdall-network-'))
    kubo = await startKubo(inject('kuboBin'), undefined, { online: true })
    stranger = await startKubo(inject('kuboBin'), undefined, { online: true })
    t = await startTestHeimdall({
      IPFS_NETWORK: 'private',
      IPFS_LISTEN: '/ip4/127.0.0.1/tcp/0',
      IPFS_PEERS: kubo.swarm[0] ?? '',
      PSA_FETCH_TIMEOUT_SECONDS: '30'
    })
    token = (await createIdentity(t.request)).token
    const network = t.heimdall.backend.network
    if (network === undefined) throw new Error('the node is not on the network')
    await waitFor(async () => (await kubo.cli('swarm', 'peers')).includes(network.peerId))
  }, 120_000)

  afterAll(async () => {
    await t?.close()
    await kubo?.stop()
    await stranger?.stop()
    await rm(work, { recursive: true, force: true })
  })

  it('serves an upload over Bitswap: `ipfs cat /ipfs/<root>/<name>.fst` in Kubo returns its bytes', async () => {
    const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', await avatarBundle(), 'avatar.zip').expect(200)
    const root = (res.body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
    expect(await kubo.cli('cat', '--timeout=20s', `/ipfs/${root}/avatar.fst`)).toBe(AVATAR_FST)
    // The whole DAG, model and texture too.
    const model = await kubo.cli('cat', '--timeout=20s', `/ipfs/${root}/box.fbx`)
    expect(Buffer.from(model, 'latin1').length).toBeGreaterThan(0)
    expect((await kubo.cli('refs', '-r', '--timeout=20s', root)).trim().split('\n').length).toBeGreaterThanOrEqual(4)
  })

  it('says where content can be fetched: the footer and the JSON list name the peers, not the public network', async () => {
    const page = await t.request.get('/').expect(200)
    expect(page.text).toContain('to the IPFS nodes it is connected to')
    const list = await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)
    expect(list.body.ipfs).toMatchObject({ ipfsNetwork: 'peers', gateway: expect.stringMatching(/\/ipfs\/$/) })
    expect(list.body.uploads).toHaveLength(1)
  })

  it('fetches a DAG only its peer holds for a pin request (`ipfs pin remote add`), checks it as an upload, pins it', async () => {
    const root = await addFolder(kubo, {
      'remote.fst': AVATAR_FST.replace('TestAvatar', 'RemoteAvatar'),
      'box.fbx': fixture('fbx/box-binary.fbx'),
      'textures/skin.png': fixture('gltf/BoxTextured/CesiumLogoFlat.png')
    })
    const { url } = await t.listen()
    await kubo.cli('pin', 'remote', 'service', 'add', 'heimdall', `${url}/psa`, token)
    // Without --background, Kubo waits until the request is pinned (or failed).
    const added = JSON.parse(await kubo.cli('pin', 'remote', 'add', '--service=heimdall', '--name=remote avatar', '--enc=json', root)) as { Status: string }
    expect(added.Status).toBe('pinned')
    expect(await t.heimdall.backend.isPinned(CID.parse(root))).toBe(true)
    const fst = await t.request.get(`/ipfs/${root}/remote.fst`).expect(200)
    expect(fst.text).toContain('RemoteAvatar')

    const status = (await t.request.get('/psa/pins?status=pinned').set('Authorization', `Bearer ${token}`).expect(200)).body as { results: Array<{ info: { status_details?: string }, delegates: string[] }> }
    expect(status.results[0]?.info.status_details).toMatch(/^fetched from the IPFS network: \d+ blocks, 3 files, \d+ bytes/)
    // The delegates are the addresses the node really listens on, under its own peer id.
    const network = t.heimdall.backend.network
    expect(status.results[0]?.delegates).toEqual(expect.arrayContaining(network?.addresses() ?? ['?']))

    // Listed among the person's uploads, page and JSON.
    const list = await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)
    expect(list.body.pinRequests).toEqual([expect.objectContaining({ cid: root, name: 'remote avatar', status: 'pinned', url: expect.stringContaining(root) })])
    expect(list.body.pinRequestTotal).toBe(1)
    const browser = t.browser()
    await browser.post('/uploads').type('form').set('Accept', 'text/html').send({ username: list.body.username, token }).expect(303)
    const page = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
    expect(page.text).toContain('Pin requests')
    expect(page.text).toContain('remote avatar')
    expect(page.text).toContain('pin-pinned')
  })

  it('dials a pin request\'s origins: content only a node outside IPFS_PEERS holds', async () => {
    const root = await addFolder(stranger, { 'origin.glb': fixture('glb/BoxTextured.glb') })
    // Not connected to the stranger until the request names it.
    expect((t.heimdall.backend as HeliaBackend).libp2p?.getConnections().some((c) => c.remotePeer.toString() === stranger.peerId)).toBe(false)
    const origins = stranger.swarm
    const added = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid: root, name: 'from origin', origins }).expect(202)).body as { requestid: string }
    await waitFor(async () => ((await t.request.get(`/psa/pins/${added.requestid}`).set('Authorization', `Bearer ${token}`)).body as { status: string }).status === 'pinned')
    expect(await t.heimdall.backend.isPinned(CID.parse(root))).toBe(true)
  })

  it('content that fails the checks: the request fails with the reasons, and the fetched blocks are gone', async () => {
    // Whatever earlier work left unpinned goes first, so that the count below is of pinned blocks only.
    await t.heimdall.collector.run()
    const before = await blockFiles(t.dataDir)
    const pinsBefore: string[] = []
    for await (const cid of t.heimdall.backend.listPins()) pinsBefore.push(cid.toString())
    const fake = await addFolder(kubo, {
      'model.glb': Buffer.from('this is not a glTF binary, whatever its name says '.repeat(20)),
      'readme.png': randomBytes(300_000)
    })
    const refusedType = await addFolder(kubo, { 'tool.exe': Buffer.from('MZ'.padEnd(5000, 'x')) })
    const ids: string[] = []
    for (const cid of [fake, refusedType]) {
      const added = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid, name: 'bad' }).expect(202)).body as { requestid: string }
      ids.push(added.requestid)
    }
    const details: string[] = []
    for (const id of ids) {
      await waitFor(async () => ((await t.request.get(`/psa/pins/${id}`).set('Authorization', `Bearer ${token}`)).body as { status: string }).status === 'failed')
      details.push(((await t.request.get(`/psa/pins/${id}`).set('Authorization', `Bearer ${token}`)).body as { info: { status_details: string } }).info.status_details)
    }
    expect(details[0]).toMatch(/^content refused: the content of some files does not match their type: model\.glb .*readme\.png /)
    expect(details[1]).toMatch(/^content refused: the content has files of types that are not accepted: tool\.exe/)
    for (const cid of [fake, refusedType]) expect(await t.heimdall.backend.isPinned(CID.parse(cid))).toBe(false)
    const pinsAfter: string[] = []
    for await (const cid of t.heimdall.backend.listPins()) pinsAfter.push(cid.toString())
    expect(pinsAfter.sort()).toEqual(pinsBefore.sort())
    // Nothing left behind: the discard removed every block the fetches brought.
    expect((await blockFiles(t.dataDir)).files).toBe(before.files)
    const [journal] = await t.heimdall.database.knex('pin_intents').count<Array<{ n: string | number }>>({ n: '*' })
    expect(Number(journal?.n)).toBe(0)
  })

  it('fetches IPFS_MAX_FETCHES requests at once; the others wait queued; content nobody has fails in time', async () => {
    const narrow = await startTestHeimdall({
      IPFS_NETWORK: 'private',
      IPFS_LISTEN: '/ip4/127.0.0.1/tcp/0',
      IPFS_PEERS: kubo.swarm[0] ?? '',
      IPFS_MAX_FETCHES: '1',
      PSA_FETCH_TIMEOUT_SECONDS: '8'
    })
    try {
      const owner = (await createIdentity(narrow.request)).token
      const unknown = async (): Promise<string> => CID.create(1, 0x55, await sha256.digest(randomBytes(32))).toString()
      const ids: string[] = []
      for (const cid of [await unknown(), await unknown()]) {
        ids.push(((await narrow.request.post('/psa/pins').set('Authorization', `Bearer ${owner}`).send({ cid }).expect(202)).body as { requestid: string }).requestid)
      }
      const get = async (id: string): Promise<{ status: string, info: { status_details?: string } }> => (await narrow.request.get(`/psa/pins/${id}`).set('Authorization', `Bearer ${owner}`)).body as { status: string, info: { status_details?: string } }
      await waitFor(async () => (await get(ids[0] ?? '')).status === 'pinning' && (await get(ids[1] ?? '')).status === 'queued', 7000)
      expect((await get(ids[0] ?? '')).info.status_details).toMatch(/^fetching from the IPFS network \(private: \d+ peers connected\) until /)
      expect((await get(ids[1] ?? '')).info.status_details).toMatch(/^waiting for a turn to fetch from the IPFS network \(at most 1 at once\)/)
      await waitFor(async () => (await get(ids[0] ?? '')).status === 'failed' && (await get(ids[1] ?? '')).status === 'failed', 20_000)
      expect((await get(ids[0] ?? '')).info.status_details).toMatch(/^not found in time: neither this node nor its peers provided all of \S+ within 8 s \(0 blocks arrived\)$/)
      // Its turn comes when the first gives up, a moment before its own deadline: either way, not found in time.
      expect((await get(ids[1] ?? '')).info.status_details).toMatch(/^not found in time: (this node did not get its turn to fetch \S+ within 8 s|neither this node nor its peers provided all of \S+ within 8 s \(0 blocks arrived\))$/)
    } finally {
      await narrow.close()
    }
  })

  it('a DAG larger than the maximum upload size is refused while it is fetched', async () => {
    const small = await startTestHeimdall({
      IPFS_NETWORK: 'private',
      IPFS_LISTEN: '/ip4/127.0.0.1/tcp/0',
      IPFS_PEERS: kubo.swarm[0] ?? '',
      MAX_UPLOAD_BYTES: '100000'
    })
    try {
      const owner = (await createIdentity(small.request)).token
      const big = await addFolder(kubo, { 'big.png': randomBytes(60_000), 'big2.png': randomBytes(60_000) })
      const before = await blockFiles(small.dataDir)
      const added = (await small.request.post('/psa/pins').set('Authorization', `Bearer ${owner}`).send({ cid: big }).expect(202)).body as { requestid: string }
      await waitFor(async () => ((await small.request.get(`/psa/pins/${added.requestid}`).set('Authorization', `Bearer ${owner}`)).body as { status: string }).status === 'failed')
      const failed = (await small.request.get(`/psa/pins/${added.requestid}`).set('Authorization', `Bearer ${owner}`)).body as { info: { status_details: string } }
      expect(failed.info.status_details).toBe('content refused: the DAG is larger than the maximum upload size (100000 bytes)')
      expect((await blockFiles(small.dataDir)).files).toBe(before.files)
    } finally {
      await small.close()
    }
  })
})

describe('the embedded node\'s dial policy, with a peer in IPFS_PEERS that is not up', () => {
  it('a named peer\'s id written after another address, or a name, opens nothing: judged without a dial, and a pin request\'s such origins are not dialed', async () => {
    const NAMED = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf'
    // A service of this machine's that is no IPFS node (a database, say): it counts who knocks.
    let knocks = 0
    const service = createServer((socket) => { knocks++; socket.destroy() })
    service.listen(0, '127.0.0.1')
    await once(service, 'listening')
    // The named peer's port, closed: not connected, a dial to its id is a new dial (one to a connected peer would reuse that connection).
    const closed = createServer().listen(0, '127.0.0.1')
    await once(closed, 'listening')
    const peerPort = (closed.address() as AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    const t = await startTestHeimdall({
      IPFS_NETWORK: 'private',
      IPFS_LISTEN: '/ip4/127.0.0.1/tcp/0',
      IPFS_PEERS: `/ip4/127.0.0.1/tcp/${peerPort}/p2p/${NAMED}`,
      PSA_FETCH_TIMEOUT_SECONDS: '3'
    })
    try {
      const libp2p = (t.heimdall.backend as HeliaBackend).libp2p
      // isDialable asks the connection gater, and dials nothing.
      const dialable = async (address: string): Promise<boolean | undefined> => libp2p?.isDialable(multiaddr(address))
      expect(await dialable(`/ip4/10.0.0.5/tcp/6379/p2p/${NAMED}`)).toBe(false)
      expect(await dialable(`/ip6/fd00::5/tcp/6379/p2p/${NAMED}`)).toBe(false)
      expect(await dialable(`/dns4/postgres/tcp/5432/p2p/${NAMED}`)).toBe(false)
      expect(await dialable(`/dns4/localhost/tcp/${peerPort}/p2p/${NAMED}`)).toBe(false)
      // The address the operator named, and loopback (the scope this node listens in).
      expect(await dialable(`/ip4/127.0.0.1/tcp/${peerPort}/p2p/${NAMED}`)).toBe(true)
      expect(await dialable(`/ip4/127.0.0.1/tcp/4001/p2p/${NAMED}`)).toBe(true)

      const token = (await createIdentity(t.request)).token
      const origin = `/dns4/localhost/tcp/${(service.address() as AddressInfo).port}/p2p/${NAMED}`
      const cid = CID.create(1, 0x55, await sha256.digest(randomBytes(32))).toString()
      const added = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid, origins: [origin] }).expect(202)).body as { requestid: string }
      const status = async (): Promise<{ status: string, info: { status_details?: string } }> => (await t.request.get(`/psa/pins/${added.requestid}`).set('Authorization', `Bearer ${token}`).expect(200)).body as { status: string, info: { status_details?: string } }
      await expect.poll(async () => (await status()).info.status_details, { timeout: 5000, interval: 100 }).toContain(`origins not dialed: ${origin} (a DNS name`)
      // Failed when nobody provided it, long after a dial would have knocked.
      await expect.poll(async () => (await status()).status, { timeout: 10_000, interval: 200 }).toBe('failed')
      expect(knocks).toBe(0)
    } finally {
      await t.close()
      service.close()
    }
  })
})

describe.skipIf(inject('kuboBin') === '')('the embedded node\'s peer identity', () => {
  it('is DATA_DIR/peer-key\'s, the same across restarts and whether or not the node is on the network', async () => {
    const kubo = await startKubo(inject('kuboBin'), undefined, { online: true })
    const dataDir = await makeDataDir()
    try {
      const env = { IPFS_NETWORK: 'private', IPFS_LISTEN: '/ip4/127.0.0.1/tcp/0', IPFS_PEERS: kubo.swarm[0] ?? '' }
      let t = await startTestHeimdall(env, dataDir)
      const first = t.heimdall.backend.network?.peerId
      const key = await readFile(join(dataDir, 'peer-key'))
      expect(first).toBe((await resolvePeerIdentity(dataDir)).peerId)
      await t.close({ keepData: true })

      t = await startTestHeimdall(env, dataDir)
      expect(t.heimdall.backend.network?.peerId).toBe(first)
      // Kubo sees the same peer as before: it is connected to it under that id.
      const deadline = Date.now() + 20_000
      while (!(await kubo.cli('swarm', 'peers')).includes(first ?? '?') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
      expect(await kubo.cli('swarm', 'peers')).toContain(first)
      await t.close({ keepData: true })

      // Off the network: no libp2p node at all, and the delegates still carry the same id.
      t = await startTestHeimdall({}, dataDir)
      expect(t.heimdall.backend.network).toBeUndefined()
      expect((t.heimdall.backend as HeliaBackend).libp2p).toBeUndefined()
      const owner = (await createIdentity(t.request)).token
      const res = await t.request.post('/psa/pins').set('Authorization', `Bearer ${owner}`).send({ cid: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' }).expect(202)
      expect((res.body as { delegates: string[] }).delegates[0]).toMatch(new RegExp(`/p2p/${first ?? '?'}$`))
      expect(t.logs.some((line) => line.includes('IPFS_NETWORK=off: content is stored and served on this node only'))).toBe(true)
      await t.close({ keepData: true })
      expect(await readFile(join(dataDir, 'peer-key'))).toEqual(key)
    } finally {
      await kubo.stop()
      await rm(dataDir, { recursive: true, force: true })
    }
  })
})

/**
 * `public` mode, proven on loopback only: the DHT here is made of two Kubo
 * daemons on 127.0.0.1 (Routing.Type=dhtserver, no bootstrap peers but each
 * other; the test profile keeps loopback addresses on the LAN DHT) and
 * Heimdall, whose only bootstrap peer is the first Kubo. A second Kubo that
 * knows only the first finds Heimdall as a provider and fetches through it.
 */
describe.skipIf(inject('kuboBin') === '')('the embedded node in public mode, on a DHT of loopback nodes', () => {
  let first: KuboNode
  let second: KuboNode
  let t: TestHeimdall

  afterAll(async () => {
    await t?.close()
    await second?.stop()
    await first?.stop()
  })

  it('announces a pinned root in the DHT: `ipfs routing findprovs` in a Kubo that knows only another Kubo finds it, and `ipfs cat` fetches through it', async () => {
    first = await startKubo(inject('kuboBin'), undefined, { online: true, routing: 'dhtserver' })
    const entry = first.swarm[0] ?? ''
    t = await startTestHeimdall({
      IPFS_NETWORK: 'public',
      IPFS_LISTEN: '/ip4/127.0.0.1/tcp/0',
      IPFS_BOOTSTRAP: entry,
      IPFS_PROVIDE_STRATEGY: 'roots'
    })
    // Whatever it dials stays on this machine.
    const libp2p = (t.heimdall.backend as HeliaBackend).libp2p
    const token = (await createIdentity(t.request)).token
    const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', await avatarBundle(), 'announced.zip').expect(200)
    const root = (res.body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
    const peerId = t.heimdall.backend.network?.peerId ?? '?'

    // The record went to a peer of the DHT (the first Kubo took it: no other node is there yet).
    const announced = (): boolean => t.logs.some((line) => line.includes('DHT announcements updated') && /"announced":[1-9]/.test(line))
    const until = Date.now() + 30_000
    while (!announced() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 200))
    expect(announced()).toBe(true)
    expect(await first.cli('routing', 'findprovs', '--num-providers=1', '--timeout=10s', root)).toContain(peerId)

    // The second knows only the first; it reaches Heimdall through what the DHT tells it.
    second = await startKubo(inject('kuboBin'), undefined, { online: true, routing: 'dhtserver', bootstrap: [entry] })
    expect(JSON.parse(await second.cli('config', 'Bootstrap'))).toEqual([entry])
    // Its DHT may have met Heimdall (a DHT server) while the daemon was starting, before its Bitswap
    // listened for connections: boxo's Bitswap never learns of such a connection and never asks that
    // peer for blocks (a Kubo quirk, Kubo to Kubo alike). Dropped, the peer is found and dialed afresh.
    const early = (await second.cli('swarm', 'peers')).split('\n').find((line) => line.endsWith(`/p2p/${peerId}`))
    if (early !== undefined) await second.cli('swarm', 'disconnect', early)
    let providers = ''
    const deadline = Date.now() + 60_000
    while (!providers.includes(peerId) && Date.now() < deadline) {
      providers = await second.cli('routing', 'findprovs', '--num-providers=1', '--timeout=5s', root).catch(() => '')
      if (!providers.includes(peerId)) await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    expect(providers.trim().split('\n')).toContain(peerId)
    expect(await second.cli('cat', '--timeout=30s', `/ipfs/${root}/avatar.fst`)).toBe(AVATAR_FST)
    for (const connection of libp2p?.getConnections() ?? []) expect(connection.remoteAddr.toString()).toMatch(/^\/ip4\/127\.0\.0\.1\//)
    // The pages say so.
    expect((await t.request.get('/').expect(200)).text).toContain('published on the IPFS network')
  }, 150_000)
})

describe.skipIf(inject('kuboBin') === '')('the embedded node\'s bandwidth cap', () => {
  it('IPFS_MAX_BYTES_PER_SECOND holds what a peer fetches to the cap', async () => {
    const kubo = await startKubo(inject('kuboBin'), undefined, { online: true })
    const rate = 256 * 1024
    const t = await startTestHeimdall({ IPFS_NETWORK: 'private', IPFS_LISTEN: '/ip4/127.0.0.1/tcp/0', IPFS_PEERS: kubo.swarm[0] ?? '', IPFS_MAX_BYTES_PER_SECOND: String(rate) })
    try {
      const token = (await createIdentity(t.request)).token
      const size = 1024 * 1024
      // A .bin (a model's buffer) may hold any bytes.
      const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', randomBytes(size), 'big.bin').expect(200)
      const root = (res.body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
      const name = 'big.bin'
      const peerId = t.heimdall.backend.network?.peerId ?? '?'
      const deadline = Date.now() + 20_000
      while (!(await kubo.cli('swarm', 'peers')).includes(peerId) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
      const started = Date.now()
      const out = await kubo.cli('cat', '--timeout=60s', `/ipfs/${root}/${name}`)
      const seconds = (Date.now() - started) / 1000
      console.log(`1 MiB to Kubo at a cap of ${rate} bytes/s: ${seconds.toFixed(1)} s`)
      expect(out.length).toBeGreaterThan(0)
      // One second's worth may go at once; the rest at the cap.
      expect(seconds).toBeGreaterThan((size - rate) / rate * 0.8)
      expect(seconds).toBeLessThan(30)
    } finally {
      await t.close()
      await kubo.stop()
    }
  }, 120_000)
})
