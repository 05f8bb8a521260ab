import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest'
import { maxCarLinks } from '../../src/services/car-bundle.ts'
import { appBackends } from '../support/backends.ts'
import { carV2, dagCborBlock, rawBlock, unixfsBlocks, unixfsNode, writeCar, type Block } from '../support/cars.ts'
import { AVATAR_FST, avatarBundle, fixture } from '../support/fixtures.ts'
import { asBytes, createIdentity, expectNothingLeftBehind, leftovers, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { startKubo, type KuboNode } from '../support/kubo.ts'

interface Item { Name: string, Hash: string, Size: string, kind?: string, primary?: string | null }

/** The avatar bundle's files, as avatarBundle() packs them. */
const AVATAR_FILES = [
  { path: 'avatar.fst', data: AVATAR_FST },
  { path: 'box.fbx', data: fixture('fbx/box-binary.fbx') },
  { path: 'textures' },
  { path: 'textures/skin.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }
]

/** `ipfs dag export` over Kubo's RPC: the same command, its CAR bytes unchanged. */
async function dagExport (kubo: KuboNode, cid: string): Promise<Buffer> {
  const res = await fetch(`${kubo.apiUrl}/api/v0/dag/export?arg=${cid}`, { method: 'POST' })
  if (res.status !== 200) throw new Error(`dag export: ${res.status} ${await res.text()}`)
  return Buffer.from(await res.arrayBuffer())
}

for (const backend of appBackends()) {
  describe.skipIf(!backend.available)(`POST /upload of a CAR, over ${backend.name}`, () => {
    let t: TestHeimdall
    let stopBackend: () => Promise<void>
    let alice: { username: string, token: string }
    let before: Awaited<ReturnType<typeof leftovers>>
    beforeAll(async () => {
      const started = await backend.start()
      stopBackend = started.stop
      t = await startTestHeimdall({ ...started.env, MAX_UPLOAD_BYTES: String(2 * 1024 * 1024), ZIP_MAX_UNCOMPRESSED_BYTES: String(4 * 1024 * 1024) })
      alice = await createIdentity(t.request, 'alice')
    })
    afterAll(async () => { await t.close(); await stopBackend() })
    beforeEach(async () => { before = await leftovers(t) })

    const post = (car: Buffer, name: string) => t.request.post('/upload').set('Authorization', `Bearer ${alice.token}`).attach('file', car, name)

    it('imports a CAR of the avatar files: the same root as the zip of them, the same answer shape, served', async () => {
      const zipRoot = ((await post(await avatarBundle(), 'AsZip.zip').expect(200)).body as Item[]).at(-1)?.Hash
      const { root, blocks } = await unixfsBlocks(AVATAR_FILES, { wrap: true })
      const res = await post(await writeCar([root], blocks), 'MyAvatar.car').expect(200)
      const items = res.body as Item[]
      // The importer wraps the files in a directory exactly as the zip upload's import does: same profile, same root.
      expect(root.toString()).toBe(zipRoot)
      expect(items.at(-1)).toMatchObject({ Name: 'MyAvatar', Hash: root.toString(), kind: 'avatar', primary: `http://localhost:8080/ipfs/${root.toString()}/avatar.fst` })
      expect(items.map((i) => i.Name).sort()).toEqual(['MyAvatar', 'MyAvatar/avatar.fst', 'MyAvatar/box.fbx', 'MyAvatar/textures', 'MyAvatar/textures/skin.png'])
      for (const item of items) expect(item.Size).toMatch(/^\d+$/)
      expect(await t.heimdall.backend.isPinned(root)).toBe(true)
      const png = await t.request.get(`/ipfs/${root.toString()}/textures/skin.png`).buffer(true).parse(asBytes).expect(200)
      expect(Buffer.compare(png.body as Buffer, fixture('gltf/BoxTextured/CesiumLogoFlat.png'))).toBe(0)
      const [upload] = await t.heimdall.database.knex('uploads').where({ root_cid: root.toString(), name: 'MyAvatar' })
      expect(upload).toMatchObject({ kind: 'avatar', is_avatar: true, primary_path: 'avatar.fst' })
      expect((await leftovers(t)).tmpFiles).toEqual([])
    })

    it('streams a CAR sent after the credentials, and reads one from the temp file when they come after it', async () => {
      const { root, blocks } = await unixfsBlocks([{ path: 'a.json', data: '{"a": 1}' }, { path: 'b.json', data: '{"b": 2}' }], { wrap: true })
      const car = await writeCar([root], blocks)
      const after = await t.request.post('/upload').attach('file', car, 'late.car').field('username', alice.username).field('token', alice.token).expect(200)
      expect((after.body as Item[]).at(-1)?.Hash).toBe(root.toString())
      const first = await t.request.post('/upload').field('username', alice.username).field('token', alice.token).attach('file', car, 'early.car').expect(200)
      expect((first.body as Item[]).at(-1)).toMatchObject({ Name: 'early', Hash: root.toString() })
      expect((await leftovers(t)).tmpFiles).toEqual([])
    })

    it('wraps a CAR whose root is one file in a directory named after the CAR, as a single upload of that file', async () => {
      const direct = ((await post(fixture('glb/BoxTextured.glb'), 'BoxTextured.glb').expect(200)).body as Item[])
      const { root, blocks } = await unixfsBlocks([{ path: 'BoxTextured.glb', data: fixture('glb/BoxTextured.glb') }], { wrap: false })
      const items = (await post(await writeCar([root], blocks), 'BoxTextured.glb.car').expect(200)).body as Item[]
      expect(items.map((i) => i.Name)).toEqual(['BoxTextured/BoxTextured.glb', 'BoxTextured'])
      expect(items[0]?.Hash).toBe(root.toString())
      expect(items).toEqual(direct)
    })

    it('refuses a single-file CAR not named after its file', async () => {
      const { root, blocks } = await unixfsBlocks([{ path: 'x.glb', data: fixture('glb/BoxTextured.glb') }], { wrap: false })
      const res = await post(await writeCar([root], blocks), 'thing.car').expect(415)
      expect(res.body.error).toMatch(/name the CAR after it/)
      await expectNothingLeftBehind(t, before)
    })

    it('refuses a CAR with a corrupted block, naming it; nothing is left', async () => {
      const { root, blocks } = await unixfsBlocks([{ path: 'avatar.fst', data: AVATAR_FST }, { path: 'noise.bin', data: randomBytes(300_000) }], { wrap: true })
      const victim = blocks.find((b) => b.bytes.byteLength === 300_000) as Block
      const corrupted = blocks.map((b) => b === victim ? { cid: b.cid, bytes: Uint8Array.from(b.bytes, (x, i) => i === 1000 ? x ^ 1 : x) } : b)
      const res = await post(await writeCar([root], corrupted), 'bad.car').expect(422)
      expect(res.body).toMatchObject({ error: expect.stringContaining(victim.cid.toString()) as unknown, details: [victim.cid.toString()] })
      await expectNothingLeftBehind(t, before)
    })

    it('refuses a CAR missing a block with 422 naming it and where it was needed; nothing is left', async () => {
      const { root, blocks } = await unixfsBlocks([{ path: 'avatar.fst', data: AVATAR_FST }, { path: 'textures/skin.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }], { wrap: true })
      const png = blocks.find((b) => b.bytes.byteLength === fixture('gltf/BoxTextured/CesiumLogoFlat.png').byteLength) as Block
      const res = await post(await writeCar([root], blocks.filter((b) => b !== png)), 'holey.car').expect(422)
      expect(res.body.error).toMatch(/missing/)
      expect(res.body.details).toEqual([`textures/skin.png: block ${png.cid.toString()} is missing`])
      await expectNothingLeftBehind(t, before)
    })

    it('refuses a CAR whose root is dag-cbor before reading its blocks', async () => {
      const block = await dagCborBlock({ hello: 'world' })
      const res = await post(await writeCar([block.cid], [block]), 'cbor.car').expect(415)
      expect(res.body.error).toMatch(/dag-cbor, not a UnixFS file or directory/)
      await expectNothingLeftBehind(t, before)
    })

    it('refuses what is not a CAR, and a CAR with two roots', async () => {
      await post(Buffer.from('not a car at all'), 'fake.car').expect(400)
      const a = await unixfsBlocks([{ path: 'a.json', data: '{}' }], { wrap: true })
      const b = await unixfsBlocks([{ path: 'b.json', data: '[]' }], { wrap: true })
      const res = await post(await writeCar([a.root, b.root], [...a.blocks, ...b.blocks]), 'two.car').expect(415)
      expect(res.body.error).toMatch(/2 roots/)
      await expectNothingLeftBehind(t, before)
    })

    it('imports a CARv2 (go-car\'s, with its index) as the CARv1 it holds: the same root, served, the index read past', async () => {
      const car = await readFile(new URL('../fixtures/car/avatar-v2.car', import.meta.url))
      const root = 'bafybeih6e3goxdiehohuwe3yb6vdzu3rhr66fxi5z4k6mpfv42ptmitksi'
      const items = (await post(car, 'avatar.car').expect(200)).body as Item[]
      expect(items.at(-1)).toMatchObject({ Name: 'avatar', Hash: root, kind: 'avatar' })
      expect(items.map((i) => i.Name).sort()).toEqual(['avatar', 'avatar/avatar.fbx', 'avatar/avatar.fst', 'avatar/textures', 'avatar/textures/skin.png'])
      expect((await t.request.get(`/ipfs/${root}/textures/skin.png`).expect(200)).body).toEqual(await readFile(new URL('../fixtures/blender/avatar/textures/skin.png', import.meta.url)))
    })

    it('reads a CARv2\'s payload after padding up to its end, and refuses one cut short, a block running past its end, or a payload placed inside the header', async () => {
      const { root, blocks } = await unixfsBlocks(AVATAR_FILES, { wrap: true })
      const v1 = await writeCar([root], blocks)
      const padded = (await post(carV2(v1, { padding: 13, trailer: randomBytes(5000) }), 'Padded.car').expect(200)).body as Item[]
      expect(padded.at(-1)?.Hash).toBe(root.toString())
      before = await leftovers(t)
      await post(carV2(v1).subarray(0, 51 + v1.length - 10), 'cut.car').expect(400)
      const short = await post(carV2(v1, { size: v1.length + 10 }), 'short.car').expect(400)
      expect(short.body.details).toEqual(['the file ends 10 bytes before the end of its data payload'])
      const over = await post(carV2(v1, { size: v1.length - 10, trailer: Buffer.alloc(0) }), 'over.car').expect(400)
      expect(over.body.details[0]).toMatch(/runs past the end of the data payload/)
      const early = await post(carV2(v1, { offset: 20 }), 'early.car').expect(400)
      expect(early.body.details).toEqual(['its CARv2 header places the data payload at 20 (' + String(v1.length) + ' bytes)'])
      // The payload's own header is held to the same limit as a CARv1's, not buffered at whatever length it claims.
      const claim = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])
      expect((await post(carV2(Buffer.concat([claim, randomBytes(64)])), 'claim.car').expect(400)).body.details[0]).toMatch(/its header claims/)
      await expectNothingLeftBehind(t, before)
    })

    it('refuses a CAR holding an .html file, or a file whose bytes do not match its extension, with 415 like a zip', async () => {
      const html = await unixfsBlocks([{ path: 'avatar.fst', data: AVATAR_FST }, { path: 'docs/readme.html', data: '<script>alert(1)</script>' }], { wrap: true })
      const refused = await post(await writeCar([html.root], html.blocks), 'html.car').expect(415)
      expect(refused.body).toMatchObject({ error: 'the CAR has files of types that are not accepted', details: ['docs/readme.html'] })
      const fake = await unixfsBlocks([{ path: 'skin.png', data: 'no image at all, just words' }], { wrap: true })
      const mismatch = await post(await writeCar([fake.root], fake.blocks), 'fake-png.car').expect(415)
      expect(mismatch.body.details).toEqual([expect.stringMatching(/^skin\.png is not a PNG image/) as unknown])
      await expectNothingLeftBehind(t, before)
    })

    it('refuses an avatar whose .fst names a model the CAR does not hold, with 422 like a zip', async () => {
      const { root, blocks } = await unixfsBlocks([{ path: 'avatar.fst', data: AVATAR_FST }], { wrap: true })
      const res = await post(await writeCar([root], blocks), 'nomodel.car').expect(422)
      expect(res.body.details).toEqual([expect.stringContaining('box.fbx') as unknown])
      await expectNothingLeftBehind(t, before)
    })

    it('refuses unsafe names inside the CAR', async () => {
      const { root, blocks } = await unixfsBlocks([{ path: 'ok.json', data: '{}' }, { path: 'Textures/a.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }, { path: 'textures/A.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }, { path: 'bell\u0007.json', data: '{}' }], { wrap: true })
      const res = await post(await writeCar([root], blocks), 'unsafe.car').expect(400)
      expect(res.body.details).toEqual(expect.arrayContaining([expect.stringContaining('control character') as unknown, expect.stringContaining('collides') as unknown]))
      await expectNothingLeftBehind(t, before)
    })

    it('413 for a CAR over MAX_UPLOAD_BYTES', async () => {
      const { root, blocks } = await unixfsBlocks([{ path: 'big.bin', data: randomBytes(3 * 1024 * 1024) }], { wrap: true })
      const res = await post(await writeCar([root], blocks), 'big.car').expect(413)
      expect(res.body.error).toMatch(/larger than 2097152 bytes/)
      await expectNothingLeftBehind(t, before)
    })

    it('413 for a small CAR whose file repeats one block past ZIP_MAX_UNCOMPRESSED_BYTES', async () => {
      const chunk = await unixfsBlocks([{ path: 'c.bin', data: randomBytes(600_000) }], { wrap: false })
      // A file node that links the same 600 kB block eight times: 4.8 MB of file from 0.6 MB of CAR.
      const links = Array.from({ length: 8 }, () => ({ Hash: chunk.root, Tsize: 600_000 }))
      const fileBytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'file', blockSizes: links.map(() => 600_000n) }).marshal(), Links: links }))
      const file = { cid: CID.createV1(dagPb.code, await sha256.digest(fileBytes)), bytes: fileBytes }
      const dirBytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [{ Name: 'many.bin', Hash: file.cid, Tsize: 4_800_000 + fileBytes.byteLength }] }))
      const dir = { cid: CID.createV1(dagPb.code, await sha256.digest(dirBytes)), bytes: dirBytes }
      const res = await post(await writeCar([dir.cid], [...chunk.blocks, file, dir]), 'bomb.car').expect(413)
      expect(res.body.details).toEqual([`the files add up to 4800000 bytes; at most ${4 * 1024 * 1024} are allowed`])
      await expectNothingLeftBehind(t, before)
    })

    it('413 for a small CAR that names one file of many blocks under many names: walks and reads stay within a few times its blocks', async () => {
      // A file of 5,000 one-byte identity leaves (no block of their own), named 700 times: 3.5 M blocks to check and read back,
      // from a CAR of two blocks and 3.5 MB of files (under the bundle's limit).
      const leaves = Array.from({ length: 5000 }, (_, i) => ({ Hash: CID.createV1(0x55, { code: 0, size: 1, digest: Uint8Array.of(i & 0xff), bytes: Uint8Array.of(0, 1, i & 0xff) }), Tsize: 1 }))
      const fileBytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'file', blockSizes: leaves.map(() => 1n) }).marshal(), Links: leaves }))
      const file = { cid: CID.createV1(dagPb.code, await sha256.digest(fileBytes)), bytes: fileBytes }
      const names = Array.from({ length: 700 }, (_, i) => ({ Name: `t${String(i).padStart(4, '0')}.bin`, Hash: file.cid, Tsize: 5000 + fileBytes.byteLength }))
      const dirBytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: names }))
      const dir = { cid: CID.createV1(dagPb.code, await sha256.digest(dirBytes)), bytes: dirBytes }
      const res = await post(await writeCar([dir.cid], [file, dir]), 'names.car').expect(413)
      expect(res.body.error).toBe('the CAR\'s files would cost too much to check')
      await expectNothingLeftBehind(t, before)
    })

    it('a CAR whose blocks cost far more expanded than stored: one leaf linked 262,144 times is 413, one shard linked twice 400', async () => {
      // Three blocks: a 1-byte leaf, a node linking it 1,024 times, a file linking that node 256 times (a 256 KiB file).
      const leaf = await rawBlock(Uint8Array.of(7))
      const mid = await unixfsNode(new UnixFS({ type: 'file', blockSizes: Array.from({ length: 1024 }, () => 1n) }), Array.from({ length: 1024 }, () => ({ Hash: leaf.cid, Tsize: 1 })))
      const file = await unixfsNode(new UnixFS({ type: 'file', blockSizes: Array.from({ length: 256 }, () => 1024n) }), Array.from({ length: 256 }, () => ({ Hash: mid.cid, Tsize: 1024 })))
      const dir = await unixfsNode(new UnixFS({ type: 'directory' }), [{ Name: 'data.bin', Hash: file.cid, Tsize: 262_144 }])
      const started = Date.now()
      const res = await post(await writeCar([dir.cid], [leaf, mid, file, dir]), 'expanded.car').expect(413)
      expect(res.body.error).toBe('the CAR\'s files would cost too much to check')
      // Before, the read-back went through all 262,144 leaves: 52 s.
      expect(Date.now() - started).toBeLessThan(20_000)

      // A sharded directory whose two shard links lead to one shard: a valid HAMT never does; 256 such links per level grew as 256^depth.
      const entry = await unixfsNode(new UnixFS({ type: 'hamt-sharded-directory', fanout: 256n, hashType: 0x22n }), [{ Name: '00data.bin', Hash: file.cid, Tsize: 1 }])
      const root = await unixfsNode(new UnixFS({ type: 'hamt-sharded-directory', fanout: 256n, hashType: 0x22n }), [{ Name: '00', Hash: entry.cid, Tsize: 1 }, { Name: '01', Hash: entry.cid, Tsize: 1 }])
      const twice = await post(await writeCar([root.cid], [leaf, mid, file, entry, root]), 'shards.car').expect(400)
      expect(twice.body.error).toBe('the CAR\'s directory (root) links one of its shards more than once')
      await expectNothingLeftBehind(t, before)
    })

    it('413 for a CAR whose blocks link more than one link per 512 bytes of MAX_UPLOAD_BYTES (or twice ZIP_MAX_ENTRIES) in all, before its tree is walked: links to the 8-byte identity CID were kept at ~80 times their bytes', async () => {
      const limit = maxCarLinks(2 * 1024 * 1024, 10_000)
      expect(limit).toBe(20_000)
      const empty = CID.createV1(0x55, identity.digest(new Uint8Array(0)))
      // Two blocks of 11,000 links each, 220 KB: 22,000 links. Before, 30 blocks of 262,000 (63 MB) ran the server out of memory.
      const dense = await Promise.all([0, 1].map(async (i) => unixfsNode(new UnixFS({ type: 'file', data: Uint8Array.of(i) }), Array.from({ length: 11_000 }, () => ({ Hash: empty, Tsize: 0 })))))
      const dir = await unixfsNode(new UnixFS({ type: 'directory' }), dense.map((block, i) => ({ Name: `d${i}.bin`, Hash: block.cid, Tsize: 0 })))
      const refused = await post(await writeCar([dir.cid], [...dense, dir]), 'dense.car').expect(413)
      expect(refused.body.error).toBe(`the CAR's blocks have more than ${limit} links`)
      await expectNothingLeftBehind(t, before)
    })

    it('sizes, names and shards count as they are met: a single file declaring 2^40-byte parts, refused names past the entry limit, a sharded folder named many times', async () => {
      const leaf = await rawBlock(Uint8Array.of(7))
      // A CAR whose root is one file: its declared size raised the read budget and was never held to the bundle limit.
      const claims = await unixfsNode(new UnixFS({ type: 'file', blockSizes: [2n ** 40n, 2n ** 40n] }), [{ Hash: leaf.cid, Tsize: 1 }, { Hash: leaf.cid, Tsize: 1 }])
      const big = await post(await writeCar([claims.cid], [leaf, claims]), 'claims.bin.car').expect(413)
      expect(big.body.details).toEqual([`the files add up to ${2 * 2 ** 40} bytes; at most ${4 * 1024 * 1024} are allowed`])

      // 10,001 links named alike: each refused name is an entry, so the entry limit ends the walk (not a list of them all).
      const small = await unixfsNode(new UnixFS({ type: 'file', blockSizes: [1n] }), [{ Hash: leaf.cid, Tsize: 1 }])
      const alike = await unixfsNode(new UnixFS({ type: 'directory' }), Array.from({ length: 10_001 }, () => ({ Name: 'a.bin', Hash: small.cid, Tsize: 2 })))
      const names = await post(await writeCar([alike.cid], [leaf, small, alike]), 'alike.car').expect(413)
      expect(names.body.error).toBe('the CAR\'s tree has more than 10000 entries; at most 10000 are allowed')

      // A sharded folder of 257 shards named 60 times: 15,420 shard visits for a CAR of 260 blocks.
      const subShards = await Promise.all(Array.from({ length: 256 }, async (_, i) => unixfsNode(new UnixFS({ type: 'hamt-sharded-directory', fanout: 256n, hashType: 0x22n, mtime: { secs: BigInt(i) } }), [])))
      const sharded = await unixfsNode(new UnixFS({ type: 'hamt-sharded-directory', fanout: 256n, hashType: 0x22n }), subShards.map((shard, i) => ({ Name: i.toString(16).toUpperCase().padStart(2, '0'), Hash: shard.cid, Tsize: 1 })))
      const folder = await unixfsNode(new UnixFS({ type: 'directory' }), [{ Name: 'a.bin', Hash: small.cid, Tsize: 2 }, ...Array.from({ length: 60 }, (_, i) => ({ Name: `f${String(i).padStart(2, '0')}`, Hash: sharded.cid, Tsize: 1 }))])
      const shards = await post(await writeCar([folder.cid], [leaf, small, ...subShards, sharded, folder]), 'shards.car').expect(413)
      expect(shards.body.error).toBe('the CAR\'s files would cost too much to check')
      await expectNothingLeftBehind(t, before)
    })

    it.skipIf(inject('kuboBin') === '')('imports what a real Kubo exports: `ipfs add -r` of the folder gives the zip root, `-w` one level above it', async () => {
      const kubo = await startKubo(inject('kuboBin'))
      const folder = join(await mkdtemp(join(tmpdir(), 'heimdall-car-')), 'MyAvatar')
      try {
        for (const file of AVATAR_FILES) {
          const path = join(folder, file.path)
          if (file.data === undefined) { await mkdir(path, { recursive: true }); continue }
          await mkdir(dirname(path), { recursive: true })
          await writeFile(path, file.data)
        }
        const zipRoot = ((await post(await avatarBundle(), 'Zipped.zip').expect(200)).body as Item[]).at(-1)?.Hash
        // The same profile (unixfs-v1-2025) on both sides: the folder's own node is the directory our zip import wraps the files in.
        const folderRoot = (await kubo.cli('add', '-r', '-Q', folder)).trim()
        expect(folderRoot).toBe(zipRoot)
        const plain = (await post(await dagExport(kubo, folderRoot), 'FromKubo.car').expect(200)).body as Item[]
        expect(plain.at(-1)).toMatchObject({ Name: 'FromKubo', Hash: zipRoot, kind: 'avatar' })
        // `-w` wraps the folder itself: a root one level up, whose MyAvatar entry is the zip's root.
        const wrappedRoot = (await kubo.cli('add', '-r', '-w', '-Q', folder)).trim()
        expect(wrappedRoot).not.toBe(zipRoot)
        const wrapped = (await post(await dagExport(kubo, wrappedRoot), 'Wrapped.car').expect(200)).body as Item[]
        expect(wrapped.at(-1)?.Hash).toBe(wrappedRoot)
        expect(wrapped.find((i) => i.Name === 'Wrapped/MyAvatar')?.Hash).toBe(zipRoot)
        // The avatar's .fst is found below the top, as in a zip with a folder inside.
        expect(wrapped.at(-1)).toMatchObject({ kind: 'avatar', primary: `http://localhost:8080/ipfs/${wrappedRoot}/MyAvatar/avatar.fst` })
      } finally {
        await kubo.stop()
        await rm(dirname(folder), { recursive: true, force: true })
      }
    })
  })
}
