import { appendFile, mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { base58btc } from 'multiformats/bases/base58'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PinIntentRepository } from '../../src/db/pin-intent-repository.ts'
import { UploadRepository } from '../../src/db/upload-repository.ts'
import { doubleHash } from '../../src/denylist/double-hash.ts'
import { appBackends } from '../support/backends.ts'
import { unixfsBlocks, writeCar } from '../support/cars.ts'
import { avatarBundle, fixture, makeZip } from '../support/fixtures.ts'
import { asBytes, createIdentity, expectNothingLeftBehind, leftovers, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

interface Added { Name: string, Hash: string }

for (const backend of appBackends()) {
  describe.skipIf(!backend.available)(`denylists (IPIP-383), over ${backend.name}`, () => {
    let t: TestHeimdall
    let stopBackend: () => Promise<void>
    let denyDir: string
    let token: string
    let username: string
    /** The upload the first test takes down. */
    let takenDown = ''
    beforeAll(async () => {
      const started = await backend.start()
      stopBackend = started.stop
      t = await startTestHeimdall({ ...started.env, DENYLIST_POLL_SECONDS: '1' })
      denyDir = join(t.dataDir, 'denylists')
      const identity = await createIdentity(t.request)
      username = identity.username
      token = identity.token
    })
    afterAll(async () => { await t.close(); await stopBackend() })

    const upload = async (data: Buffer, name: string, status = 200): Promise<Added[]> => {
      const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', data, name).expect(status)
      return res.body as Added[]
    }
    const hashOf = (added: Added[], suffix: string): string => added.find((item) => item.Name.endsWith(suffix))?.Hash ?? ''
    /** The wrapping directory: the last item, as `ipfs add -w` prints it. */
    const rootOf = (added: Added[]): string => added.at(-1)?.Hash ?? ''
    const pinned = async (cid: string): Promise<boolean> => t.heimdall.backend.isPinned(CID.parse(cid))
    /** The gateway's status for a path, once the list has had time to be read. */
    const eventually = async (path: string, status: number): Promise<void> => {
      await expect.poll(async () => (await t.request.get(path)).status, { timeout: 8000, interval: 200 }).toBe(status)
    }
    const uploadRow = async (rootCid: string): Promise<{ id: number, blocked?: boolean } | undefined> => {
      const res = await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)
      return (res.body.uploads as Array<{ id: number, rootCid: string, blocked?: boolean }>).find((u) => u.rootCid === rootCid)
    }

    it('blocks a file by CID on the gateway, through any path, and takes its upload down', async () => {
      const added = await upload(await avatarBundle(), 'blocked-avatar.zip')
      const root = rootOf(added)
      takenDown = root
      const skin = hashOf(added, 'textures/skin.png')
      await t.request.get(`/ipfs/${root}/textures/skin.png`).expect(200)

      await mkdir(denyDir, { recursive: true })
      await appendFile(join(denyDir, 'custom.deny'), `/ipfs/${skin}\n`)
      await eventually(`/ipfs/${root}/textures/skin.png`, 410)
      const direct = await t.request.get(`/ipfs/${skin}`).expect(410)
      expect((direct.body as { error: string }).error).toMatch(/blocked/)
      await t.request.head(`/ipfs/${CID.parse(skin).toV1().toString()}?format=raw`).expect(410)
      // Already stored: unpinned, and listed as blocked to its owner.
      await expect.poll(async () => pinned(root), { timeout: 8000 }).toBe(false)
      expect((await uploadRow(root))?.blocked).toBe(true)
      const browser = t.browser()
      await browser.get(`/uploads?username=${username}&token=${token}`).set('Accept', 'text/html').expect(303)
      expect((await browser.get('/uploads').set('Accept', 'text/html').expect(200)).text).toContain('taken down')
      expect((await browser.get(`/uploads/${(await uploadRow(root))?.id ?? -1}`).set('Accept', 'text/html').expect(200)).text).toMatch(/Taken down: the operator of this node blocked this content/)
      // Its blocks collected, every path below it is gone, not merely unknown.
      await t.heimdall.collector.run()
      await t.request.get(`/ipfs/${root}/avatar.fst`).expect(410)
      await t.request.get(`/ipfs/${root}/textures/skin.png`).expect(410)
    })

    it('blocks content reached through a dag-cbor block on the path (an identity CID anyone can write), as the trustless handlers follow it', async () => {
      // A block held under a lease (no upload holds it, so no take-down removes it while this runs).
      const bytes = Buffer.from('held, then listed')
      const held = CID.create(1, raw.code, await sha256.digest(bytes))
      const lease = await t.heimdall.backend.openLease()
      try {
        await t.heimdall.backend.putBlocks([{ cid: held, bytes }], { lease })
        const wrapper = CID.create(1, dagCbor.code, identity.digest(dagCbor.encode({ a: held }))).toString()
        await t.request.get(`/ipfs/${wrapper}/a?format=raw`).expect(200)
        await mkdir(denyDir, { recursive: true })
        await appendFile(join(denyDir, 'custom.deny'), `/ipfs/${held.toString()}\n`)
        await eventually(`/ipfs/${held.toString()}?format=raw`, 410)
        for (const format of ['raw', 'car', 'dag-json']) await t.request.get(`/ipfs/${wrapper}/a?format=${format}`).expect(410)
        await t.request.get(`/ipfs/${wrapper}/a`).expect(410)
        // Below the path too: a directory (an identity CID, so anyone can write one) that holds it.
        const dirOf = (links: Array<[string, CID]>): string => CID.create(1, dagPb.code, identity.digest(dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: links.map(([Name, Hash]) => ({ Name, Hash })) })))).toString()
        const holder = dirOf([['f', held]])
        await t.request.get(`/ipfs/${holder}?format=tar`).expect(410)
        await t.request.head(`/ipfs/${holder}?format=tar`).expect(410)
        const car = await t.request.get(`/ipfs/${holder}?format=car`).buffer(true).parse(asBytes).then((res) => res.body as Buffer, () => Buffer.alloc(0))
        expect(car.includes(bytes)).toBe(false)
        // A file whose leaf it is (no block needed: an identity CID), served whole, by range, as tar, as a directory's index page.
        const fileOf = (leaf: CID, size: number): CID => CID.create(1, dagPb.code, identity.digest(dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'file', blockSizes: [BigInt(size)] }).marshal(), Links: [{ Name: '', Hash: leaf, Tsize: size }] }))))
        const file = fileOf(held, bytes.length)
        for (const headers of [{}, { Range: 'bytes=0-4' }, { 'Cache-Control': 'only-if-cached' }]) await t.request.get(`/ipfs/${file.toString()}`).set(headers).expect(410)
        await t.request.get(`/ipfs/${file.toString()}?format=tar`).expect(410)
        await t.request.get(`/ipfs/${dirOf([['index.html', held]])}/`).expect(410)
        await t.request.get(`/ipfs/${dirOf([['index.html', file]])}/`).expect(410)
        await t.request.get(`/ipfs/${dirOf([['f', file]])}/f`).expect(410)
        // Two links of one name: each handler is checked on the link it follows.
        const clean = CID.create(1, raw.code, identity.digest(Buffer.from('clean')))
        await t.request.get(`/ipfs/${dirOf([['f', held], ['f', clean]])}/f?format=raw`).expect(410)
        await t.request.get(`/ipfs/${dirOf([['f', clean], ['f', held]])}/f`).expect(410)
      } finally {
        await lease.discard()
      }
    })

    it('refuses an upload of blocked content before anything is kept', async () => {
      const glb = fixture('glb/BoxTextured.glb')
      const before = await leftovers(t)
      // Blocked by a path below the content's root, the way a gateway URL names it.
      const probe = await upload(glb, 'probe.glb')
      const root = rootOf(probe)
      await t.request.delete(`/uploads/${(await uploadRow(root))?.id ?? -1}`).set('Authorization', `Bearer ${token}`).expect(204)
      await t.heimdall.collector.run()
      await writeFile(join(denyDir, 'paths.deny'), `/ipfs/${root}/probe.glb\n`)
      await eventually(`/ipfs/${root}/probe.glb`, 410)
      const refused = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', glb, 'probe.glb').expect(403)
      expect((refused.body as { error: string }).error).toMatch(/blocked/)
      await expectNothingLeftBehind(t, before)
      // Under another name it is other content (another root), and the file's own CID is not listed.
      await upload(glb, 'other-name.glb')
      await rm(join(denyDir, 'paths.deny'))
    })

    it('honours gateway_status hints, exceptions and double-hashed entries', async () => {
      const added = await upload(fixture('glb/BoxTextured.glb'), 'hinted.glb')
      const root = rootOf(added)
      const multihash = base58btc.baseEncode(CID.parse(root).multihash.bytes)
      await writeFile(join(denyDir, 'hints.deny'), [
        'version: 1',
        'hints:',
        '  gateway_status: 451',
        '---',
        `/ipfs/${root}/h*`,
        `!/ipfs/${root}/hinted.glb`,
        // Modern double hash (sha2-256) of "<multihash of the root>/secret.txt": blocks that path without naming it.
        `//${doubleHash(0x12, 32, `${multihash}/secret.txt`)} gateway_status:410`
      ].join('\n') + '\n')
      await eventually(`/ipfs/${root}/hidden.png`, 451)
      await t.request.get(`/ipfs/${root}/secret.txt`).expect(410)
      // The exception keeps the upload's only file allowed: served, and the upload stays up.
      await t.request.get(`/ipfs/${root}/hinted.glb`).expect(200)
      await t.request.get(`/ipfs/${root}/`).expect(200)
      expect(await pinned(root)).toBe(true)
      expect((await uploadRow(root))?.blocked).toBe(false)
      await rm(join(denyDir, 'hints.deny'))
      await eventually(`/ipfs/${root}/hidden.png`, 404)
    })

    it('a root taken down by a path rule answers 410 at the root itself too, in every format', async () => {
      const root = rootOf(await upload(Buffer.from('// dave\n'), 'dave.js'))
      await writeFile(join(denyDir, 'dave.deny'), `/ipfs/${root}/dave.js\n`)
      await eventually(`/ipfs/${root}/dave.js`, 410)
      await expect.poll(async () => pinned(root), { timeout: 8000 }).toBe(false)
      for (const path of [`/ipfs/${root}`, `/ipfs/${root}/`, `/ipfs/${root}?format=raw`, `/ipfs/${root}?format=car`]) {
        expect((await t.request.get(path)).status, path).toBe(410)
      }
      await rm(join(denyDir, 'dave.deny'))
    })

    it('a taken-down root answers 410 though another upload still holds its blocks', async () => {
      // Found by review: the 410 came only once the blocks were collected, so a folder another upload shares was listed,
      // and its CAR and tar served the bytes.
      const data = Buffer.from('// shared by two uploads\n')
      const root = rootOf(await upload(data, 'shared.js'))
      await upload(await makeZip([{ path: 'inner/shared.js', data }]), 'holder.zip')
      await writeFile(join(denyDir, 'shared.deny'), `/ipfs/${root}/shared.js\n`)
      await eventually(`/ipfs/${root}/shared.js`, 410)
      // The path rule is in force at once; the root's take-down follows (over Kubo, after an RPC or two): once it is
      // unpinned, the gateway refuses it already (it enters the gateway's set before the unpin).
      await expect.poll(async () => pinned(root), { timeout: 8000 }).toBe(false)
      await t.request.get(`/ipfs/${root}/`).expect(410)
      await t.heimdall.collector.run()
      await t.request.get(`/ipfs/${root}/`).expect(410)
      // Its node under a raw CID (same multihash) too: the directory's names and links are not served that way either.
      const asRaw = CID.createV1(raw.code, CID.parse(root).multihash).toString()
      for (const path of [`/ipfs/${root}`, `/ipfs/${root}?format=raw`, `/ipfs/${root}?format=car`, `/ipfs/${root}?format=tar`, `/ipfs/${asRaw}`, `/ipfs/${asRaw}?format=raw`]) {
        expect((await t.request.get(path)).status, path).toBe(410)
      }
      await rm(join(denyDir, 'shared.deny'))
    })

    it('an operator\'s CAR imported without an owner holds its content as an upload does, and take-downs see it', async () => {
      // Found by review: such a pin was recorded nowhere, so deleting someone's upload of the same DAG unpinned it, a
      // denylist never took it down, and a taken-down root could be imported again.
      const built = await unixfsBlocks([{ path: 'operator.js', data: '// moved from another node\n' }], { wrap: true })
      const root = built.root.toString()
      const car = Buffer.from(await writeCar([built.root], built.blocks))
      const report = await t.heimdall.importCar(Readable.from([car]), { fileName: 'moved.car', actor: 'tester' })
      expect(report.rootCid).toBe(root)
      await upload(car, 'same.car')
      const row = await uploadRow(root)
      await t.request.delete(`/uploads/${row?.id ?? 0}`).set('Authorization', `Bearer ${token}`).expect(204)
      await t.heimdall.collector.run({})
      expect(await pinned(root)).toBe(true)
      await t.request.get(`/ipfs/${root}/operator.js`).expect(200)

      // A path no upload has, in the same list: 410 while the list is in force, 404 once it is gone.
      const sentinel = `/ipfs/${rootOf(await upload(Buffer.from('// sentinel\n'), 'sentinel.js'))}/absent.js`
      await writeFile(join(denyDir, 'operator.deny'), `/ipfs/${root}\n${sentinel}\n`)
      await eventually(`/ipfs/${root}/operator.js`, 410)
      // The list refuses at once; the take-down (unpin) follows as the enforcer gets to it.
      await expect.poll(async () => pinned(root), { timeout: 8000 }).toBe(false)
      await rm(join(denyDir, 'operator.deny'))
      await eventually(sentinel, 404)
      // Taken down, it is not pinned again by an import, as by a pin request: only an upload restores it.
      await expect(t.heimdall.importCar(Readable.from([car]), { fileName: 'moved.car', actor: 'tester' })).rejects.toThrow(/taken down/)
      expect(await pinned(root)).toBe(false)
    })

    it('refuses pin requests of blocked content, and fails the requests of content it takes down', async () => {
      const root = rootOf(await upload(Buffer.from('// pinned through the Pinning Service API\n'), 'pinned.js'))
      const request = await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid: root, name: 'to be taken down' }).expect(202)
      expect((request.body as { status: string }).status).toBe('pinned')
      await writeFile(join(denyDir, 'pins.deny'), `/ipfs/${root}\n`)
      await eventually(`/ipfs/${root}/pinned.js`, 410)
      const refused = await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid: root }).expect(403)
      expect(refused.body).toEqual({ error: { reason: 'CONTENT_BLOCKED', details: 'this content is blocked on this node by its operator' } })
      const requestId = (request.body as { requestid: string }).requestid
      await expect.poll(async () => ((await t.request.get(`/psa/pins/${requestId}`).set('Authorization', `Bearer ${token}`)).body as { status: string }).status, { timeout: 8000 }).toBe('failed')
      const failed = (await t.request.get(`/psa/pins/${requestId}`).set('Authorization', `Bearer ${token}`).expect(200)).body as { info: { status_details?: string } }
      expect(failed.info.status_details).toMatch(/blocked/)
      // The request is failed before the content is unpinned, in the same take-down: the unpin may come a moment later.
      await expect.poll(async () => pinned(root), { timeout: 8000 }).toBe(false)
      await rm(join(denyDir, 'pins.deny'))
    })

    it('a take-down of a root held under both spellings (an upload\'s CIDv1, a pin request\'s CIDv0) is lifted whole by a new upload: the content then stays while uploads hold it', async () => {
      // Found by review: the lift cleared one spelling, the other stayed blocked, and a blocked root counts as held by
      // no one, so deleting one of two uploads unpinned the content and the next collection took it.
      const data = Buffer.from('// both spellings of one root\n')
      const root = rootOf(await upload(data, 'spellings.js'))
      const v0 = CID.parse(root).toV0().toString()
      expect((await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid: v0 }).expect(202)).body).toMatchObject({ status: 'pinned' })
      await writeFile(join(denyDir, 'spellings.deny'), `/ipfs/${root}\n`)
      await eventually(`/ipfs/${root}/spellings.js`, 410)
      // Gone under either spelling on the gateway too.
      await t.request.get(`/ipfs/${v0}/spellings.js`).expect(410)
      // The take-down is recorded by the enforcement that follows the list (over Kubo, after an RPC or two).
      await expect.poll(async () => (await t.heimdall.database.knex('blocked_roots').whereIn('root_cid', [root, v0]).select('root_cid')).length, { timeout: 8000 }).toBeGreaterThanOrEqual(1)
      await rm(join(denyDir, 'spellings.deny'))
      // The list's removal read (polled every second): the take-down, not the list, answers now, under either spelling.
      await new Promise((resolve) => setTimeout(resolve, 2500))
      await t.request.get(`/ipfs/${root}/spellings.js`).expect(410)
      await t.request.get(`/ipfs/${v0}/spellings.js`).expect(410)
      // The same file under the same name: the same root, whose record lifts the take-down.
      await expect.poll(async () => (await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', data, 'spellings.js')).status, { timeout: 8000, interval: 300 }).toBe(200)
      expect(await t.heimdall.database.knex('blocked_roots').whereIn('root_cid', [root, v0]).select('root_cid')).toEqual([])
      // Someone else uploads it too, then deletes theirs: the first upload still holds it.
      const other = await createIdentity(t.request)
      expect(rootOf((await t.request.post('/upload').set('Authorization', `Bearer ${other.token}`).attach('file', data, 'spellings.js').expect(200)).body as Added[])).toBe(root)
      const theirs = (await t.request.get('/uploads').set('Authorization', `Bearer ${other.token}`).expect(200)).body.uploads[0].id as number
      await t.request.delete(`/uploads/${theirs}`).set('Authorization', `Bearer ${other.token}`).expect(204)
      expect(await pinned(root)).toBe(true)
      await t.heimdall.collector.run()
      await t.request.get(`/ipfs/${root}/spellings.js`).expect(200)
    })

    it('a pin request does not pin taken-down content again (only an upload restores it), even with its blocks back under another upload', async () => {
      // Found by review: the request answered pinned while a taken-down root counts as held by no one, so deleting any
      // other request of it unpinned it under the first, which still said pinned.
      const data = Buffer.from('// taken down, then held inside another upload\n')
      const root = rootOf(await upload(data, 'inner.js'))
      await writeFile(join(denyDir, 'inner.deny'), `/ipfs/${root}\n`)
      await eventually(`/ipfs/${root}/inner.js`, 410)
      await rm(join(denyDir, 'inner.deny'))
      // Once the list's removal is read: a request for it, its content gone (nothing to fetch it from here, but on the
      // network it would come), fails at once rather than waiting to fetch and pin it (found by review).
      await new Promise((resolve) => setTimeout(resolve, 2500))
      const early = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid: root }).expect(202)).body as { requestid: string, status: string, info: { status_details?: string } }
      expect(early.status).toBe('failed')
      expect(early.info.status_details).toMatch(/taken down on this node/)
      // The same folder inside a bundle, accepted once the list's removal is read: its blocks are here again.
      const bundle = await makeZip([{ path: 'sub/inner.js', data }])
      await expect.poll(async () => (await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', bundle, 'outer.zip')).status, { timeout: 8000, interval: 300 }).toBe(200)
      const request = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid: root }).expect(202)).body as { requestid: string, status: string }
      await expect.poll(async () => ((await t.request.get(`/psa/pins/${request.requestid}`).set('Authorization', `Bearer ${token}`)).body as { status: string }).status, { timeout: 8000 }).toBe('failed')
      const failed = (await t.request.get(`/psa/pins/${request.requestid}`).set('Authorization', `Bearer ${token}`).expect(200)).body as { info: { status_details?: string } }
      expect(failed.info.status_details).toMatch(/taken down on this node/)
      expect(await pinned(root)).toBe(false)
    })

    it('takes down a root held only as what a pending replacement replaced', async () => {
      // Found by review: such a root was never checked against the lists, and stayed served after one named it.
      const root = rootOf(await upload(Buffer.from('// held only by a replaced request\n'), 'replaced.js'))
      const request = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid: root }).expect(202)).body as { requestid: string }
      const id = (await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)).body.uploads.find((u: { rootCid: string }) => u.rootCid === root).id as number
      await t.request.delete(`/uploads/${id}`).set('Authorization', `Bearer ${token}`).expect(204)
      // Replaced by content no node has: the replacement waits, and keeps the replaced root meanwhile.
      await t.request.post(`/psa/pins/${request.requestid}`).set('Authorization', `Bearer ${token}`).send({ cid: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy' }).expect(202)
      expect(await pinned(root)).toBe(true)
      await writeFile(join(denyDir, 'replaced.deny'), `/ipfs/${root}\n`)
      await expect.poll(async () => pinned(root), { timeout: 8000, interval: 200 }).toBe(false)
      expect((await t.heimdall.database.knex('blocked_roots').where({ root_cid: root }).select('root_cid')).length).toBe(1)
      await rm(join(denyDir, 'replaced.deny'))
    })

    it('a take-down removes the journal rows other work left for the root: a record of it given up on (503) that still commits then fails, and cannot lift the block', async () => {
      const added = await upload(Buffer.from('fenced by a take-down'), 'fenced.bin')
      const root = rootOf(added)
      const journal = new PinIntentRepository(t.heimdall.database.knex)
      // What an upload of the same content whose record was given up on leaves: its row, its statement still running.
      const late = await journal.add(root, 'another-instance')
      await mkdir(denyDir, { recursive: true })
      await writeFile(join(denyDir, 'fence.deny'), `/ipfs/${root}\n`)
      await eventually(`/ipfs/${root}/fenced.bin`, 410)
      await expect.poll(async () => (await t.heimdall.database.knex('pin_intents').where({ id: late })).length, { timeout: 8000 }).toBe(0)
      const owner = await t.heimdall.database.knex('identities').where({ username }).first() as { id: number }
      const uploads = new UploadRepository(t.heimdall.database.knex)
      await expect(uploads.insert({ identityId: owner.id, name: 'late', rootCid: root, kind: 'model', size: 1, isAvatar: false, primaryPath: 'fenced.bin', warnings: [], avatarReport: null, entries: [] }, { settles: late, alsoLifts: [root] })).rejects.toMatchObject({ code: '55000' })
      expect(await t.heimdall.database.knex('blocked_roots').where({ root_cid: root })).toHaveLength(1)
      await rm(join(denyDir, 'fence.deny'))
    })

    it('keeps taken-down content gone after its list is removed, until it is uploaded again', async () => {
      await rm(join(denyDir, 'custom.deny'))
      const root = takenDown
      await t.request.get(`/ipfs/${root}/avatar.fst`).expect(410)
      // Refused while the list is in force, accepted once its removal is read.
      const bundle = await avatarBundle()
      await expect.poll(async () => (await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', bundle, 'blocked-avatar.zip')).status, { timeout: 8000, interval: 300 }).toBe(200)
      expect(rootOf(await upload(bundle, 'blocked-avatar.zip'))).toBe(root)
      expect(await pinned(root)).toBe(true)
      expect((await uploadRow(root))?.blocked).toBe(false)
      await t.request.get(`/ipfs/${root}/textures/skin.png`).expect(200)
    })
  })
}
