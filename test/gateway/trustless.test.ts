import { Readable } from 'node:stream'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CarBlockIterator } from '@ipld/car'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { extract } from 'tar-stream'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { appBackends } from '../support/backends.ts'
import { INDEX_HTML, noise, startGatewayContent } from '../support/gateway-content.ts'
import { asBytes, type TestHeimdall } from '../support/heimdall-harness.ts'
import { startKubo, type KuboNode } from '../support/kubo.ts'

const BIG = noise(2_621_440 + 13, 7) // 2.5 MiB and a bit: three raw leaves under one dag-pb node


/** Every block of a CAR, each checked against its CID (sha2-256 or identity). */
async function readCar (bytes: Buffer): Promise<{ roots: CID[], blocks: Array<{ cid: CID, bytes: Uint8Array }> }> {
  const iterator = await CarBlockIterator.fromBytes(bytes)
  const blocks = []
  for await (const block of iterator) {
    const digest = block.cid.multihash.code === identity.code ? identity.digest(block.bytes) : await sha256.digest(block.bytes)
    expect(Buffer.compare(Buffer.from(digest.bytes), Buffer.from(block.cid.multihash.bytes))).toBe(0)
    blocks.push({ cid: block.cid, bytes: block.bytes })
  }
  return { roots: await iterator.getRoots(), blocks }
}

const kuboBin = inject('kuboBin')

for (const backend of appBackends()) describe.skipIf(!backend.available)(`trustless gateway over ${backend.name}`, () => {
  let t: TestHeimdall
  let stop: () => Promise<void>
  /** The avatar upload's root and its files' CIDs by path (`hero/avatar.fst`). */
  let hero: string
  let heroFiles: Map<string, string>
  let tokenOfHero: string
  /** A wrapping directory holding big/data.bin (2.5 MiB) and site/index.html. */
  let tree: string
  let bigCid: string

  beforeAll(async () => {
    const content = await startGatewayContent(backend, { big: BIG, index: true })
    ;({ t, stop, hero, heroFiles, tree, bigCid, token: tokenOfHero } = content)
  })
  afterAll(async () => { await stop() })

  const get = (url: string): ReturnType<TestHeimdall['request']['get']> => t.request.get(url).buffer(true).parse(asBytes)

  describe('raw blocks', () => {
    it('?format=raw answers the block, with its headers', async () => {
      const fst = heroFiles.get('hero/avatar.fst') ?? ''
      const res = await get(`/ipfs/${hero}/avatar.fst?format=raw`).expect(200)
      const cid = CID.parse(fst)
      expect(Buffer.from((await sha256.digest(res.body as Buffer)).bytes)).toEqual(Buffer.from(cid.multihash.bytes))
      expect(res.headers).toMatchObject({
        'content-type': 'application/vnd.ipld.raw',
        'content-disposition': `attachment; filename="${fst}.bin"; filename*=UTF-8''${fst}.bin`,
        etag: `"${fst}.raw"`,
        'x-ipfs-path': `/ipfs/${hero}/avatar.fst`,
        'x-ipfs-roots': `${hero},${fst}`,
        'cache-control': 'public, max-age=29030400, immutable',
        'access-control-allow-origin': '*',
        'x-content-type-options': 'nosniff',
        'content-length': String((res.body as Buffer).length)
      })
      expect(res.headers['content-location']).toBeUndefined()
    })

    it('Accept: application/vnd.ipld.raw answers the same, naming ?format=raw in Content-Location', async () => {
      const res = await get(`/ipfs/${hero}`).set('Accept', 'application/vnd.ipld.raw').expect(200)
      expect(res.headers['content-type']).toBe('application/vnd.ipld.raw')
      expect(res.headers['content-location']).toBe(`/ipfs/${hero}?format=raw`)
      expect(res.headers.vary).toMatch(/Accept/)
      expect(dagPb.decode(res.body as Buffer).Links.length).toBeGreaterThan(0)
    })

    it('?format wins over Accept', async () => {
      const res = await get(`/ipfs/${hero}?format=raw`).set('Accept', 'application/vnd.ipld.car').expect(200)
      expect(res.headers['content-type']).toBe('application/vnd.ipld.raw')
    })

    it('the empty identity CID is a 200 with no body: the probe clients send first', async () => {
      const res = await get('/ipfs/bafkqaaa?format=raw').expect(200)
      expect((res.body as Buffer).length).toBe(0)
      expect(res.headers['content-length']).toBe('0')
      await t.request.head('/ipfs/bafkqaaa?format=raw').expect(200)
    })

    it('a CID this node does not hold is a quick 404', async () => {
      const started = Date.now()
      await t.request.get('/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy?format=raw').expect(404)
      await t.request.get('/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy?format=car').expect(404)
      expect(Date.now() - started).toBeLessThan(2000)
    })
  })

  describe('CAR', () => {
    it('streams the whole DAG depth-first, every block verified, with boxo\'s headers', async () => {
      const res = await get(`/ipfs/${hero}?format=car`).expect(200)
      expect(res.headers['content-type']).toBe('application/vnd.ipld.car; version=1; order=dfs; dups=n')
      expect(res.headers['content-disposition']).toMatch(new RegExp(`^attachment; filename="${hero}\\.car"`))
      expect(res.headers.etag).toMatch(new RegExp(`^W/"${hero}\\.car\\.[0-9a-v]+"$`))
      expect(res.headers['accept-ranges']).toBe('none')
      const car = await readCar(res.body as Buffer)
      expect(car.roots.map(String)).toEqual([hero])
      expect(car.blocks[0]?.cid.toString()).toBe(hero)
      const cids = new Set(car.blocks.map((b) => b.cid.toString()))
      for (const cid of heroFiles.values()) expect(cids.has(cid)).toBe(true)
      expect(cids.size).toBe(car.blocks.length) // dups=n
    })

    it('never writes the block of an identity CID, whose bytes are in its CID (the spec\'s MUST; gateway-conformance\'s "identity CID")', async () => {
      const id = 'bafkqaf3imvwgy3zaneqgc3janfxgy2lomvscay3jmqfa'
      for (const query of ['format=car', 'format=car&dups=y', 'format=car&dag-scope=block']) {
        const car = await readCar((await get(`/ipfs/${id}?${query}`).expect(200)).body as Buffer)
        expect(car.roots.map(String), query).toEqual([id])
        expect(car.blocks, query).toEqual([])
      }
    })

    it('pathing: the blocks that prove the path come first; dag-scope=block stops at the terminal block', async () => {
      const png = heroFiles.get('hero/textures/skin.png') ?? ''
      const res = await get(`/ipfs/${hero}/textures/skin.png?format=car&dag-scope=block`).expect(200)
      const car = await readCar(res.body as Buffer)
      expect(car.blocks.map((b) => b.cid.toString())).toEqual([hero, heroFiles.get('hero/textures') ?? '', png])
      expect(res.headers['x-ipfs-roots']).toBe(`${hero},${heroFiles.get('hero/textures') ?? ''},${png}`)
      expect(res.headers['content-disposition']).toContain(`filename="${hero}_skin.png.car"`)
    })

    it('a path naming something that is not there is 200 and a CAR of the blocks read looking for it, rooted at the empty identity CID (as Kubo; compared with Kubo in kubo-parity.test.ts)', async () => {
      const textures = heroFiles.get('hero/textures') ?? ''
      for (const [path, blocks] of [['nothing-here', [hero]], ['textures/index.html', [hero, textures]], ['avatar.fst/x', [hero, heroFiles.get('hero/avatar.fst') ?? '']]] as const) {
        for (const query of ['format=car', 'format=car&dag-scope=entity', 'format=car&dag-scope=block&car-dups=y']) {
          const res = await get(`/ipfs/${hero}/${path}?${query}`).expect(200)
          const car = await readCar(res.body as Buffer)
          expect(car.roots.map(String), `${path}?${query}`).toEqual(['bafkqaaa'])
          expect(car.blocks.map((b) => b.cid.toString()), `${path}?${query}`).toEqual(blocks)
          expect(res.headers).toMatchObject({ 'x-ipfs-roots': hero, 'x-ipfs-path': `/ipfs/${hero}/${path}`, 'content-length': String((res.body as Buffer).length) })
          expect(res.headers['content-type']).toMatch(/^application\/vnd\.ipld\.car; version=1; order=dfs; dups=[yn]$/)
        }
      }
      const head = await t.request.head(`/ipfs/${hero}/nothing-here?format=car`).expect(200)
      expect(head.headers['content-length']).toBe(String((await get(`/ipfs/${hero}/nothing-here?format=car`)).body.length))
      // Only a CAR carries the proof: every other answer is a 404.
      await t.request.get(`/ipfs/${hero}/nothing-here?format=raw`).expect(404)
      await t.request.get(`/ipfs/${hero}/nothing-here`).expect(404)
      // A block this node does not have is no proof of anything: still a 404, before any CAR.
      const missing = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
      const dirBytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [{ Name: 'gone', Hash: missing, Tsize: 1 }] }))
      const dir = { cid: CID.create(1, dagPb.code, await sha256.digest(dirBytes)), bytes: dirBytes }
      const lease = await t.heimdall.backend.openLease()
      try {
        await t.heimdall.backend.putBlocks([dir], { lease })
        await t.request.get(`/ipfs/${dir.cid.toString()}/gone?format=car`).expect(404)
        await t.request.get(`/ipfs/${dir.cid.toString()}/gone/x?format=car`).expect(404)
        const proof = await readCar((await get(`/ipfs/${dir.cid.toString()}/other?format=car`).expect(200)).body as Buffer)
        expect(proof.blocks.map((b) => b.cid.toString())).toEqual([dir.cid.toString()])
        // A dag-pb node without UnixFS data is no directory this walk reads (boxo follows its links by name): a proof
        // that its named link is absent would be false, so a plain 404.
        const plainBytes = dagPb.encode(dagPb.prepare({ Links: [{ Name: 'a.txt', Hash: missing, Tsize: 1 }] }))
        const plain = { cid: CID.create(1, dagPb.code, await sha256.digest(plainBytes)), bytes: plainBytes }
        await t.heimdall.backend.putBlocks([plain], { lease })
        await t.request.get(`/ipfs/${plain.cid.toString()}/a.txt?format=car`).expect(404)
      } finally {
        await lease.discard()
      }
    })

    it('dag-scope=entity of a directory is its block alone; of a file, all its blocks', async () => {
      const dir = await readCar((await get(`/ipfs/${tree}?format=car&dag-scope=entity`).expect(200)).body as Buffer)
      expect(dir.blocks.map((b) => b.cid.toString())).toEqual([tree])
      const file = await readCar((await get(`/ipfs/${tree}/big/data.bin?format=car&dag-scope=entity`).expect(200)).body as Buffer)
      expect(file.blocks).toHaveLength(2 + 1 + 3) // tree, big/, the file node, three leaves
      expect(Buffer.compare(Buffer.concat(file.blocks.slice(3).map((b) => b.bytes)), BIG)).toBe(0) // toEqual on MiBs takes seconds
    })

    it.each([
      ['0:*', [0, 1, 2]],
      ['0:99', [0]],
      ['1048576:1048577', [1]],
      ['1048575:1048576', [0, 1]],
      ['-5:*', [2]],
      ['-1048600:-1048590', [1]],
      ['0:-1572864', [0, 1]],
      ['3000000:*', []]
    ])('entity-bytes=%s carries only the leaves that hold those bytes', async (range, leaves) => {
      const res = await get(`/ipfs/${bigCid}?format=car&dag-scope=entity&entity-bytes=${range}`).expect(200)
      const car = await readCar(res.body as Buffer)
      const node = dagPb.decode(car.blocks[0]?.bytes ?? new Uint8Array())
      expect(UnixFS.unmarshal(node.Data ?? new Uint8Array()).type).toBe('file')
      expect(car.blocks.slice(1).map((b) => b.cid.toString())).toEqual(leaves.map((i) => node.Links[i]?.Hash.toString()))
    })

    it('entity-bytes alone implies dag-scope=entity (the spec): the range\'s blocks, not the whole DAG', async () => {
      const alone = await get(`/ipfs/${bigCid}?format=car&entity-bytes=0:99`).expect(200)
      const entity = await get(`/ipfs/${bigCid}?format=car&dag-scope=entity&entity-bytes=0:99`).expect(200)
      expect(Buffer.compare(alone.body as Buffer, entity.body as Buffer)).toBe(0)
      expect((await readCar(alone.body as Buffer)).blocks).toHaveLength(2) // the file node and its first leaf, of three
      expect(alone.headers.etag).toBe(entity.headers.etag)
    })

    it('dups=y repeats a block each time the DAG links it; ETags differ per parameter', async () => {
      const a = await get(`/ipfs/${tree}?format=car`).expect(200)
      const b = await get(`/ipfs/${tree}?format=car&car-dups=y`).expect(200)
      const c = await get(`/ipfs/${tree}`).set('Accept', 'application/vnd.ipld.car; version=1; order=dfs; dups=y').expect(200)
      expect(b.headers['content-type']).toBe('application/vnd.ipld.car; version=1; order=dfs; dups=y')
      expect(c.headers['content-type']).toBe('application/vnd.ipld.car; version=1; order=dfs; dups=y')
      expect(c.headers['content-location']).toBe(`/ipfs/${tree}?format=car&car-version=1&car-order=dfs&car-dups=y`)
      expect(new Set([a.headers.etag, b.headers.etag, (await get(`/ipfs/${tree}?format=car&dag-scope=entity`)).headers.etag]).size).toBe(3)
      expect(b.headers.etag).toBe(c.headers.etag)
    })
  })

  describe('conditional requests', () => {
    it('If-None-Match (exact, list, weak, *) is 304 for every format', async () => {
      const fst = heroFiles.get('hero/avatar.fst') ?? ''
      const car = await get(`/ipfs/${hero}?format=car`).expect(200)
      for (const [url, etag] of [[`/ipfs/${hero}/avatar.fst?format=raw`, `"${fst}.raw"`], [`/ipfs/${hero}?format=car`, car.headers.etag ?? ''], [`/ipfs/${hero}?format=tar`, `W/"${hero}.x-tar"`], [`/ipfs/${hero}/avatar.fst`, `"${fst}"`]] as const) {
        await t.request.get(url).set('If-None-Match', etag).expect(304)
        await t.request.get(url).set('If-None-Match', `"other", ${etag}`).expect(304)
        await t.request.get(url).set('If-None-Match', `W/${etag.replace(/^W\//, '')}`).expect(304)
        await t.request.get(url).set('If-None-Match', '*').expect(304)
        await t.request.get(url).set('If-None-Match', '"other"').expect(200)
      }
    })

    it('Cache-Control: only-if-cached is 412 for content not held, 200 otherwise', async () => {
      await t.request.get('/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy').set('Cache-Control', 'only-if-cached').expect(412)
      await t.request.head('/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy').set('Cache-Control', 'only-if-cached').expect(412)
      await t.request.head(`/ipfs/${hero}/avatar.fst`).set('Cache-Control', 'only-if-cached').expect(200)
      await t.request.get(`/ipfs/${hero}/avatar.fst?format=raw`).set('Cache-Control', 'only-if-cached').expect(200)
    })
  })

  describe('other formats and options', () => {
    it('?format=tar streams a directory named by its CID', async () => {
      const res = await get(`/ipfs/${hero}?format=tar`).expect(200)
      expect(res.headers['content-type']).toBe('application/x-tar')
      expect(res.headers.etag).toBe(`W/"${hero}.x-tar"`)
      const names: string[] = []
      const sizes = new Map<string, number>()
      const reader = extract()
      reader.on('entry', (header, body, done) => { names.push(header.name); let n = 0; body.on('data', (c: unknown) => { n += (c as Buffer).length }); body.on('end', () => { sizes.set(header.name, n); done() }) })
      await new Promise<void>((resolve, reject) => { reader.on('finish', () => { resolve() }); reader.on('error', reject); Readable.from([res.body as Buffer]).pipe(reader) })
      // Directories named as boxo names them, with no slash after.
      expect(names).toContain(hero)
      expect(names).toContain(`${hero}/textures`)
      expect(names).toContain(`${hero}/avatar.fst`)
      expect(names).toContain(`${hero}/textures/skin.png`)
    })

    it('?format=tar names entries as boxo does, normalising link names: a name that stays inside is written there, one that leads out is a 400 before any byte', async () => {
      const block = async (node: dagPb.PBNode): Promise<{ cid: CID, bytes: Uint8Array }> => {
        const bytes = dagPb.encode(dagPb.prepare(node))
        return { cid: CID.create(1, dagPb.code, await sha256.digest(bytes)), bytes }
      }
      const dir = async (links: Array<[string, CID]>): Promise<{ cid: CID, bytes: Uint8Array }> => block({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: links.map(([Name, Hash]) => ({ Name, Hash })) })
      const leafBytes = Buffer.from('I am inside\n')
      const leaf = { cid: CID.create(1, raw.code, await sha256.digest(leafBytes)), bytes: leafBytes }
      const empty = await dir([])
      const foobar = await dir([['directory', empty.cid], ['directory/../file', leaf.cid]])
      const inside = await dir([['foobar', foobar.cid]])
      const outside = await dir([['../escape', leaf.cid]])
      const lease = await t.heimdall.backend.openLease()
      try {
        await t.heimdall.backend.putBlocks([leaf, empty, foobar, inside, outside], { lease })
        const res = await get(`/ipfs/${inside.cid.toString()}?format=tar`).expect(200)
        const files = new Map<string, string>()
        const reader = extract()
        reader.on('entry', (header, body, done) => { const chunks: Buffer[] = []; body.on('data', (c: unknown) => { chunks.push(c as Buffer) }); body.on('end', () => { files.set(header.name, Buffer.concat(chunks).toString()); done() }) })
        await new Promise<void>((resolve, reject) => { reader.on('finish', () => { resolve() }); reader.on('error', reject); Readable.from([res.body as Buffer]).pipe(reader) })
        const top = inside.cid.toString()
        expect([...files.keys()]).toEqual([top, `${top}/foobar`, `${top}/foobar/directory`, `${top}/foobar/file`])
        expect(files.get(`${top}/foobar/file`)).toBe('I am inside\n')
        const refused = await t.request.get(`/ipfs/${outside.cid.toString()}?format=tar`).expect(400)
        expect(refused.body.error).toMatch(/leads out of the archive's folder/)
        // A HEAD answers as the GET does.
        await t.request.head(`/ipfs/${outside.cid.toString()}?format=tar`).expect(400)
        await t.request.head(`/ipfs/${inside.cid.toString()}?format=tar`).expect(200)
      } finally {
        await lease.discard()
      }
    })

    it('serves a UnixFS symlink as its target path, never following it, as boxo (gateway-conformance\'s "Test the symlink")', async () => {
      const linkBytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'symlink', data: Buffer.from('foo') }).marshal(), Links: [] }))
      const link = { cid: CID.create(1, dagPb.code, await sha256.digest(linkBytes)), bytes: linkBytes }
      const dirBytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [{ Name: 'bar', Hash: link.cid, Tsize: linkBytes.length }] }))
      const dir = { cid: CID.create(1, dagPb.code, await sha256.digest(dirBytes)), bytes: dirBytes }
      const lease = await t.heimdall.backend.openLease()
      try {
        await t.heimdall.backend.putBlocks([link, dir], { lease })
        const res = await get(`/ipfs/${dir.cid.toString()}/bar`).expect(200)
        expect((res.body as Buffer).toString()).toBe('foo')
        expect(res.headers['content-length']).toBe('3')
        expect(res.headers['content-type']).toBe('inode/symlink')
      } finally {
        await lease.discard()
      }
    })

    it('paths through dag-cbor and dag-json as boxo: keys and indexes to a link, which is followed; 501 ending on a value that is not a link', async () => {
      const leafBytes = Buffer.from('single file\n')
      const leaf = { cid: CID.create(1, raw.code, await sha256.digest(leafBytes)), bytes: leafBytes }
      const dirBytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [{ Name: 'single', Hash: leaf.cid, Tsize: leafBytes.length }] }))
      const dir = { cid: CID.create(1, dagPb.code, await sha256.digest(dirBytes)), bytes: dirBytes }
      const jsonBytes = dagJson.encode({ hello: 'this is not a link' })
      const json = { cid: CID.create(1, dagJson.code, await sha256.digest(jsonBytes)), bytes: jsonBytes }
      const cborBytes = dagCbor.encode({ foo: { bar: 'not a link', link: json.cid }, list: [json.cid], files: dir.cid })
      const cbor = { cid: CID.create(1, dagCbor.code, await sha256.digest(cborBytes)), bytes: cborBytes }
      const lease = await t.heimdall.backend.openLease()
      try {
        await t.heimdall.backend.putBlocks([leaf, dir, json, cbor], { lease })
        const root = cbor.cid.toString()
        const linked = await get(`/ipfs/${root}/foo/link?format=dag-json`).expect(200)
        expect(Buffer.compare(linked.body as Buffer, Buffer.from(jsonBytes))).toBe(0)
        await get(`/ipfs/${root}/foo/link`).expect(200).expect('Content-Type', 'application/vnd.ipld.dag-json')
        await get(`/ipfs/${root}/list/0?format=dag-json`).expect(200)
        const notLink = await t.request.get(`/ipfs/${root}/foo/bar?format=dag-cbor`).expect(501)
        expect(notLink.body.error).toMatch(/not a link/)
        await t.request.get(`/ipfs/${root}/foo?format=dag-cbor`).expect(501)
        await t.request.get(`/ipfs/${root}/nothing?format=dag-cbor`).expect(404)
        await t.request.get(`/ipfs/${root}/list/1?format=dag-cbor`).expect(404)
        // The trustless formats follow the path to UnixFS content; the UnixFS answer (no format) paths over dag-pb only, as its reader does.
        expect(((await get(`/ipfs/${root}/files/single?format=raw`).expect(200)).body as Buffer).toString()).toBe('single file\n')
        await t.request.get(`/ipfs/${root}/files/single`).expect(404)
        // A block that does not decode is no path: 404, not a 500.
        const broken = CID.create(1, dagCbor.code, identity.digest(Uint8Array.of(0xff))).toString()
        await t.request.get(`/ipfs/${broken}/x?format=raw`).expect(404)
        // A UnixFS file on a path with DAG-CBOR as the root: the CAR proves the path, then the file.
        const car = await readCar((await get(`/ipfs/${root}/files/single?format=car`).expect(200)).body as Buffer)
        expect(car.blocks.map((b) => b.cid.toString())).toEqual([root, dir.cid.toString(), leaf.cid.toString()])
      } finally {
        await lease.discard()
      }
    })

    it('dag-json and dag-cbor for their codecs, 406 when the block is of another', async () => {
      const doc = dagJson.encode({ hello: 'world' })
      const cid = CID.create(1, dagJson.code, identity.digest(doc)).toString()
      const res = await get(`/ipfs/${cid}?format=dag-json`).expect(200)
      expect(res.headers['content-type']).toBe('application/vnd.ipld.dag-json')
      expect(res.headers.etag).toBe(`"${cid}.dag-json"`)
      expect(Buffer.compare(res.body as Buffer, Buffer.from(doc))).toBe(0)
      await get(`/ipfs/${cid}`).expect(200).expect('Content-Type', 'application/vnd.ipld.dag-json')
      await t.request.get(`/ipfs/${cid}?format=dag-cbor`).expect(406)
      await t.request.get(`/ipfs/${hero}?format=dag-json`).expect(406)
      // Plain JSON asked of UnixFS: the file as usual, as boxo does.
      await t.request.get(`/ipfs/${hero}/avatar.fst?format=json`).expect(200).expect('Content-Type', 'text/plain; charset=utf-8')
      // Asked by Accept, the answer is still the file, so it names no ?format=json location.
      const byAccept = await t.request.get(`/ipfs/${hero}/avatar.fst`).set('Accept', 'application/json').expect(200)
      expect(byAccept.headers['content-type']).toBe('text/plain; charset=utf-8')
      expect(byAccept.headers['content-location']).toBeUndefined()
    })

    it('?filename= and ?download=true name the download, in UTF-8 too', async () => {
      const inline = await t.request.get(`/ipfs/${hero}/avatar.fst?filename=${encodeURIComponent('héros.fst')}`).expect(200)
      expect(inline.headers['content-disposition']).toBe("inline; filename=\"h_ros.fst\"; filename*=UTF-8''h%C3%A9ros.fst")
      const attachment = await t.request.get(`/ipfs/${hero}/textures/skin.png?filename=a.png&download=true`).expect(200)
      expect(attachment.headers['content-disposition']).toMatch(/^attachment; filename="a\.png"/)
    })

    it('the upload\'s page links its CAR ("Download as CAR")', async () => {
      const { id } = await t.heimdall.database.knex('uploads').where({ root_cid: hero }).first() as { id: string }
      const token = tokenOfHero
      const page = await t.request.get(`/uploads/${id}`).set('Authorization', `Bearer ${token}`).set('Accept', 'text/html').expect(200)
      expect(page.text).toContain(`href="/ipfs/${hero}?format=car"`)
      expect(page.text).toContain('Download as CAR')
    })

    it('a directory with an index.html is served as that page', async () => {
      const res = await t.request.get(`/ipfs/${tree}/site/`).expect(200)
      expect(res.text).toBe(INDEX_HTML.toString())
      expect(res.headers['content-type']).toMatch(/^text\/html/)
    })
  })

  describe('hostile input is 400, never 500, and keeps the CORS headers', () => {
    it.each([
      '?format=xyz', '?format=car&dag-scope=xyz', '?format=car&entity-bytes=abc', '?format=car&entity-bytes=5:1',
      '?format=car&entity-bytes=1:2:3', '?format=car&entity-bytes=99999999999999999999:*', '?format=car&entity-bytes=-1:-5',
      '?format=car&car-version=2', '?format=car&car-order=bfs', '?format=car&car-dups=maybe', '?format=ipns-record'
    ])('%s', async (query) => {
      const res = await t.request.get(`/ipfs/${hero}${query}`).expect(400)
      expect(res.headers['access-control-allow-origin']).toBe('*')
      expect(res.headers['x-content-type-options']).toBe('nosniff')
      expect(res.headers.etag ?? '').not.toMatch(/baf/)
    })
    it('a malformed Accept or an unknown vendor type', async () => {
      await t.request.get(`/ipfs/${hero}`).set('Accept', 'application/vnd.ipld.car; =x').expect(400)
      await t.request.get(`/ipfs/${hero}`).set('Accept', 'application/vnd.ipld.nope').expect(400)
    })
  })

  describe.skipIf(kuboBin === '')('real clients', () => {
    let reference: KuboNode
    beforeAll(async () => {
      reference = await startKubo(kuboBin)
      const dir = await mkdtemp(join(tmpdir(), 'heimdall-car-'))
      try {
        for (const root of [hero, tree]) {
          const car = (await get(`/ipfs/${root}?format=car`).expect(200)).body as Buffer
          await writeFile(join(dir, `${root}.car`), car)
          const imported = await reference.cli('dag', 'import', '--pin-roots', join(dir, `${root}.car`))
          expect(imported).toContain(`Pinned root\t${root}\tsuccess`)
        }
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })
    afterAll(async () => { await reference.stop() })

    it('ipfs dag import of our CAR gives the same root, and ipfs cat of each file the same bytes', async () => {
      for (const [path, cid] of heroFiles) {
        const type = (await reference.cli('files', 'stat', '--format=<type>', `/ipfs/${cid}`)).trim()
        if (type !== 'file') continue
        const ours = (await get(`/ipfs/${hero}/${path.split('/').slice(1).join('/')}`).expect(200)).body as Buffer
        const theirs = await reference.cli('cat', `/ipfs/${hero}/${path.split('/').slice(1).join('/')}`)
        expect(Buffer.from(theirs, 'latin1').length).toBeGreaterThan(0)
        expect(createHash(ours)).toBe(createHash(Buffer.from(await catBytes(reference, `/ipfs/${cid}`))))
      }
      expect(Buffer.compare(Buffer.from(await catBytes(reference, `/ipfs/${tree}/big/data.bin`)), BIG)).toBe(0)
    })
  })
})

function createHash (bytes: Buffer): string {
  return Buffer.from(bytes).toString('base64').slice(0, 64) + String(bytes.length)
}

async function catBytes (kubo: KuboNode, path: string): Promise<Uint8Array> {
  const res = await fetch(`${kubo.gatewayUrl}${path}`)
  return new Uint8Array(await res.arrayBuffer())
}
