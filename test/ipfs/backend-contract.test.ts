import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { NotFoundError } from '../../src/errors.ts'
import { HeliaBackend } from '../../src/ipfs/helia-backend.ts'
import { KuboBackend } from '../../src/ipfs/kubo-backend.ts'
import { KUBO_VERSION, startKubo } from '../support/kubo.ts'
import { startSharedStore, type SharedStoreFixture } from '../support/shared-store.ts'
import { unixfsBlocks, type Block } from '../support/cars.ts'
import type { ImportCandidate, IpfsBackend } from '../../src/ipfs/ipfs-backend.ts'

interface BackendFactory {
  name: string
  available: boolean
  open: () => Promise<{ backend: IpfsBackend, dispose: () => Promise<void> }>
}

const factories: BackendFactory[] = [
  {
    name: 'embedded Helia',
    available: true,
    open: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'heimdall-helia-'))
      const backend = await HeliaBackend.open(dir)
      return { backend, dispose: async () => { await backend.close(); await rm(dir, { recursive: true, force: true }) } }
    }
  },
  {
    name: 'embedded Helia, blocks in S3 (SeaweedFS), pins in PostgreSQL',
    available: inject('seaweedBin') !== '' && inject('postgresUrl') !== '',
    open: async () => {
      const shared: SharedStoreFixture = await startSharedStore(inject('seaweedBin'), inject('postgresUrl'))
      const dir = await mkdtemp(join(tmpdir(), 'heimdall-helia-s3-'))
      const backend = await HeliaBackend.open(dir, { shared: await shared.open('contract') })
      return { backend, dispose: async () => { await backend.close(); await shared.stop(); await rm(dir, { recursive: true, force: true }) } }
    }
  },
  {
    name: `Kubo ${KUBO_VERSION} over its RPC API`,
    available: inject('kuboBin') !== '',
    open: async () => {
      const kubo = await startKubo(inject('kuboBin'))
      const backend = new KuboBackend(kubo.apiUrl)
      return { backend, dispose: async () => { await backend.close(); await kubo.stop() } }
    }
  }
]

/** The data as a stream of 64 KiB chunks, as an upload arrives. */
function bytes (data: Uint8Array, chunk = 65_536): AsyncIterable<Uint8Array> {
  const chunks: Uint8Array[] = []
  for (let i = 0; i < data.length; i += chunk) chunks.push(data.subarray(i, i + chunk))
  return Readable.from(chunks)
}

const file = (path: string, data: Uint8Array | string): ImportCandidate =>
  ({ path, content: bytes(typeof data === 'string' ? new TextEncoder().encode(data) : data) })

async function collect (source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const chunk of source) chunks.push(chunk)
  return Buffer.concat(chunks)
}

for (const factory of factories) {
  describe.skipIf(!factory.available)(`IPFS backend contract: ${factory.name}`, () => {
    let backend: IpfsBackend
    let dispose: () => Promise<void>
    beforeAll(async () => { ({ backend, dispose } = await factory.open()) }, 120_000)
    afterAll(async () => { await dispose() })

    // `ipfs add` of the 11 bytes "hello world": CIDv1 raw leaf, and the classic CIDv0 dag-pb node.
    it.each([
      ['unixfs-v1-2025', 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e'],
      ['unixfs-v0-2015', 'Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD']
    ] as const)('imports "hello world" with profile %s to the CID ipfs add gives', async (profile, expected) => {
      const nodes = await backend.importTree([file('hello.txt', 'hello world')], { profile })
      expect(nodes.map((n) => n.path)).toEqual(['hello.txt', ''])
      expect(nodes[0]?.cid.toString()).toBe(expected)
      expect(nodes[1]?.cid.version).toBe(profile === 'unixfs-v1-2025' ? 1 : 0)
    })

    it('imports a nested tree, files before their directories and the root last', async () => {
      const nodes = await backend.importTree([
        file('avatar.fst', 'name = a\n'),
        { path: 'textures' },
        file('textures/skin.png', randomBytes(1000)),
        file('textures/deep/normal.png', randomBytes(1000))
      ], { profile: 'unixfs-v1-2025' })
      const paths = nodes.map((n) => n.path)
      expect(paths.at(-1)).toBe('')
      expect(paths.indexOf('textures/deep/normal.png')).toBeLessThan(paths.indexOf('textures/deep'))
      expect(paths.indexOf('textures/deep')).toBeLessThan(paths.indexOf('textures'))
      expect(new Set(paths)).toEqual(new Set(['avatar.fst', 'textures/skin.png', 'textures/deep/normal.png', 'textures/deep', 'textures', '']))
    })

    it('keeps a folder\'s files when its own entry comes after them (a zip may list `d/` after `d/a.txt`), as Kubo does', async () => {
      const a = randomBytes(100)
      const nodes = await backend.importTree([
        file('d/a.txt', a),
        file('top/d/b.txt', 'b'),
        { path: 'top' },
        { path: 'd' },
        { path: 'top/d' },
        { path: 'top/empty' }
      ], { profile: 'unixfs-v1-2025' })
      const root = nodes.at(-1)?.cid as CID
      expect(Buffer.compare(await collect(backend.read(root, ['d', 'a.txt'])), a)).toBe(0)
      expect((await collect(backend.read(root, ['top', 'd', 'b.txt']))).toString()).toBe('b')
      expect(await backend.stat(root, ['top', 'empty'])).toMatchObject({ type: 'directory' })
      // Each path once, the folder with its file (not the empty folder the importer made of a repeated entry).
      const paths = nodes.map((n) => n.path)
      expect(paths.filter((p) => p === 'd')).toHaveLength(1)
      const d = nodes.find((n) => n.path === 'd')
      expect(d?.cid.toString()).toBe((await backend.stat(root, ['d'])).cid.toString())
      expect(new Set(paths)).toEqual(new Set(['d/a.txt', 'top/d/b.txt', 'top/d', 'top', 'top/empty', 'd', '']))
    })

    it('stats, reads, ranges and lists by path below a root', async () => {
      const data = randomBytes(3 * 1024 * 1024 + 17)
      const nodes = await backend.importTree([file('models/big.bin', data), file('a.txt', 'a')], { profile: 'unixfs-v1-2025' })
      const root = nodes.at(-1)?.cid as CID
      expect(await backend.stat(root)).toMatchObject({ type: 'directory', size: 0 })
      expect(await backend.stat(root, ['models', 'big.bin'])).toMatchObject({ type: 'file', size: data.length })
      expect(Buffer.compare(await collect(backend.read(root, ['models', 'big.bin'])), data)).toBe(0)
      const offset = 1024 * 1024 - 5
      const range = await collect(backend.read(root, ['models', 'big.bin'], { offset, length: 100 }))
      expect(Buffer.compare(range, data.subarray(offset, offset + 100))).toBe(0)
      const entries = []
      for await (const entry of backend.list(root)) entries.push({ name: entry.name, type: entry.type, size: entry.size })
      expect(entries.sort((a, b) => a.name.localeCompare(b.name))).toEqual([{ name: 'a.txt', type: 'file', size: 1 }, { name: 'models', type: 'directory', size: 0 }])
    })

    it('lists an empty directory as no entries (kubo-rpc-client answers it with one nameless entry, the directory itself)', async () => {
      const bytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [] }))
      const empty = CID.create(1, dagPb.code, await sha256.digest(bytes))
      const lease = await backend.openLease()
      try {
        await backend.putBlocks([{ cid: empty, bytes }], { lease })
        const entries = []
        for await (const entry of backend.list(empty)) entries.push(entry)
        expect(entries).toEqual([])
        expect(await backend.stat(empty)).toMatchObject({ type: 'directory', size: 0 })
      } finally {
        await lease.discard()
      }
    })

    it('stats and lists a UnixFS symlink as a symlink with its target (kubo-rpc-client\'s ls and @helia/unixfs\'s stat call it a file), and each node\'s mode and mtime', async () => {
      const linkBytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'symlink', data: Buffer.from('sub/real.txt'), mtime: { secs: 1_500_000_000n, nsecs: 5 } }).marshal(), Links: [] }))
      const link = CID.create(1, dagPb.code, await sha256.digest(linkBytes))
      const fileBytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'file', data: Buffer.from('x'), mode: 0o4640 }).marshal(), Links: [] }))
      const file = CID.create(1, dagPb.code, await sha256.digest(fileBytes))
      const dirBytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory', mtime: { secs: 1_600_000_000n } }).marshal(), Links: [{ Name: 'file', Hash: file, Tsize: fileBytes.length }, { Name: 'link', Hash: link, Tsize: linkBytes.length }] }))
      const dir = CID.create(1, dagPb.code, await sha256.digest(dirBytes))
      const lease = await backend.openLease()
      try {
        await backend.putBlocks([{ cid: link, bytes: linkBytes }, { cid: file, bytes: fileBytes }, { cid: dir, bytes: dirBytes }], { lease })
        const symlink = { cid: link, type: 'symlink', size: 12, target: 'sub/real.txt', mode: 0o777, mtime: { secs: 1_500_000_000, nsecs: 5 } }
        expect(await backend.stat(link)).toEqual(symlink)
        expect(await backend.stat(dir, ['link'])).toEqual(symlink)
        expect(await backend.stat(dir)).toEqual({ cid: dir, type: 'directory', size: 0, mode: 0o755, mtime: { secs: 1_600_000_000, nsecs: 0 } })
        const entries = []
        for await (const entry of backend.list(dir)) entries.push(entry)
        expect(entries).toEqual([{ name: 'file', cid: file, type: 'file', size: 1, mode: 0o4640 }, { name: 'link', ...symlink }])
      } finally {
        await lease.discard()
      }
    })

    it('pins idempotently and unpins idempotently', async () => {
      const nodes = await backend.importTree([file('p.txt', randomBytes(64))], { profile: 'unixfs-v1-2025' })
      const root = nodes.at(-1)?.cid as CID
      expect(await backend.isPinned(root)).toBe(false)
      await backend.pin(root)
      await backend.pin(root)
      expect(await backend.isPinned(root)).toBe(true)
      const pins: string[] = []
      for await (const cid of backend.listPins()) pins.push(cid.toString())
      expect(pins).toContain(root.toString())
      await backend.unpin(root)
      await backend.unpin(root)
      expect(await backend.isPinned(root)).toBe(false)
    })

    it('pins an import in the add, under its name, where the node does (importPins: Kubo), finds the pin by that name, and a later pin keeps it rather than walking the DAG again; elsewhere a pin name pins nothing', async () => {
      const data = randomBytes(3 * 1024 * 1024)
      const lease = await backend.openLease()
      const nodes = await backend.importTree([file('named.bin', data)], { profile: 'unixfs-v1-2025', lease, pinName: 'heimdall-import-contract-a' })
      const root = nodes.at(-1)?.cid as CID
      const { importPins } = backend
      if (importPins === undefined) {
        expect(factory.name).not.toMatch(/^Kubo/)
        expect(await backend.isPinned(root)).toBe(false)
        await lease.discard()
        return
      }
      const listed = async (prefix: string): Promise<Array<{ name: string, cid: string }>> => { const pins = []; for await (const pin of importPins.named(prefix)) pins.push({ name: pin.name, cid: pin.cid.toString() }); return pins }
      const named = async (name: string): Promise<string[]> => (await listed(name)).filter((pin) => pin.name === name).map((pin) => pin.cid)
      expect(await backend.isPinned(root)).toBe(true)
      expect(await listed('heimdall-import-contract-')).toEqual([{ name: 'heimdall-import-contract-a', cid: root.toString() }])
      // Kubo's name filter matches any part of a name: only a beginning counts.
      expect(await listed('import-contract-a')).toEqual([])
      // Kubo's pin/add of a root already pinned drops its pin and walks the DAG to pin it anew, without the name.
      await backend.pin(root, { imported: lease })
      expect(await named('heimdall-import-contract-a')).toEqual([root.toString()])
      await lease.release()
      // An unpin since the import's lease opened (a delete of another upload of the same content) may have taken the
      // add's pin: it is made again. The same content imported again: the pin carries the newer name.
      const again = await backend.openLease()
      await backend.importTree([file('named.bin', data)], { profile: 'unixfs-v1-2025', lease: again, pinName: 'heimdall-import-contract-b' })
      expect(await named('heimdall-import-contract-b')).toEqual([root.toString()])
      await backend.unpin(root)
      expect(await named('heimdall-import-contract-b')).toEqual([])
      await backend.pin(root, { imported: again })
      expect(await backend.isPinned(root)).toBe(true)
      await again.release()
      await backend.unpin(root)
      // Without a name nothing is pinned.
      const plain = (await backend.importTree([file('plain.bin', randomBytes(100))], { profile: 'unixfs-v1-2025' })).at(-1)?.cid as CID
      expect(await backend.isPinned(plain)).toBe(false)
    })

    it('answers NotFoundError for content it does not have, without looking elsewhere', async () => {
      const absent = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
      const started = Date.now()
      await expect(backend.stat(absent)).rejects.toBeInstanceOf(NotFoundError)
      await expect(collect(backend.read(absent, []))).rejects.toBeInstanceOf(NotFoundError)
      expect(Date.now() - started).toBeLessThan(2000)
      const nodes = await backend.importTree([file('x.txt', 'x')], { profile: 'unixfs-v1-2025' })
      await expect(backend.stat(nodes.at(-1)?.cid as CID, ['nope'])).rejects.toBeInstanceOf(NotFoundError)
    })

    it('answers ping', async () => {
      await expect(backend.ping()).resolves.toBeUndefined()
    })

    it('collects garbage: what no pin reaches goes, pinned content stays whole; a dry run removes nothing', async () => {
      const keptData = randomBytes(300_000)
      const shared = randomBytes(5000)
      const kept = (await backend.importTree([file('kept.bin', keptData), file('shared.bin', shared)], { profile: 'unixfs-v1-2025' })).at(-1)?.cid as CID
      await backend.pin(kept)
      const dropped = (await backend.importTree([file('dropped.bin', randomBytes(200_000)), file('shared.bin', shared)], { profile: 'unixfs-v1-2025' })).at(-1)?.cid as CID
      await backend.gc() // whatever earlier tests left unpinned

      const again = (await backend.importTree([file('dropped.bin', randomBytes(200_000))], { profile: 'unixfs-v1-2025' })).at(-1)?.cid as CID
      const plan = await backend.gc({ dryRun: true })
      expect(plan).toMatchObject({ dryRun: true })
      expect(plan.blocks).toBeGreaterThanOrEqual(2) // the file and its directory
      expect(plan.bytes).toBeGreaterThanOrEqual(200_000)
      expect((await backend.stat(again, ['dropped.bin'])).size).toBe(200_000)

      const report = await backend.gc()
      expect(report).toMatchObject({ dryRun: false, blocks: plan.blocks })
      expect(report.bytes).toBeGreaterThanOrEqual(200_000)
      await expect(backend.stat(again)).rejects.toBeInstanceOf(NotFoundError)
      await expect(backend.stat(dropped)).rejects.toBeInstanceOf(NotFoundError)
      expect(Buffer.compare(await collect(backend.read(kept, ['kept.bin'])), keptData)).toBe(0)
      expect(Buffer.compare(await collect(backend.read(kept, ['shared.bin'])), shared)).toBe(0)
      expect((await backend.gc({ dryRun: true })).blocks).toBe(0)
    })

    it('puts verified blocks (a CAR) under a lease: readable, pinnable, and a failing source is the error thrown', async () => {
      const data = randomBytes(300_000)
      const { root, blocks } = await unixfsBlocks([{ path: 'car.bin', data }, { path: 'small.json', data: '{}' }], { wrap: true })
      const lease = await backend.openLease()
      // As a CAR arrives: one block at a time, from an async source.
      await backend.putBlocks(Readable.from(blocks), { lease })
      expect(Buffer.compare(await collect(backend.read(root, ['car.bin'])), data)).toBe(0)
      await backend.pin(root)
      await lease.release()
      await backend.gc()
      expect(Buffer.compare(await collect(backend.read(root, ['car.bin'])), data)).toBe(0)
      await backend.unpin(root)

      const refusal = new Error('block 2 does not match its CID')
      const other = await unixfsBlocks([{ path: 'other.bin', data: randomBytes(200_000) }], { wrap: true })
      const failing = await backend.openLease()
      await expect(backend.putBlocks((async function * () { yield await Promise.resolve(other.blocks[0] as Block); throw refusal })(), { lease: failing })).rejects.toBe(refusal)
      await failing.discard()
      await backend.gc()
      await expect(backend.stat(root)).rejects.toBeInstanceOf(NotFoundError)
      expect((await backend.gc({ dryRun: true })).blocks).toBe(0)
    })

    it('pins an import\'s root from its lease: whole, and kept by collections; a root its lease did not write is walked, and a missing block refused', async () => {
      const data = randomBytes(2_500_000) // three 1 MiB leaves below a file node
      const lease = await backend.openLease()
      const root = (await backend.importTree([file('a/big.bin', data), file('b.txt', 'b')], { profile: 'unixfs-v1-2025', lease })).at(-1)?.cid as CID
      await backend.pin(root, { imported: lease })
      expect(await backend.isPinned(root)).toBe(true)
      await lease.release()
      await backend.gc()
      expect(Buffer.compare(await collect(backend.read(root, ['a', 'big.bin'])), data)).toBe(0)
      expect(await collect(backend.read(root, ['b.txt']))).toEqual(Buffer.from('b'))
      await backend.unpin(root)
      await backend.gc()
      await expect(backend.stat(root)).rejects.toBeInstanceOf(NotFoundError)
      // Kubo would look for the missing block on the network until the request gave up.
      if (backend.kind === 'kubo') return
      const partial = await unixfsBlocks([{ path: 'partial.bin', data: randomBytes(2_500_000) }], { wrap: true })
      const leaf = partial.blocks.find((b) => b.cid.code === 0x55) as Block
      const held = await backend.openLease()
      await backend.putBlocks(partial.blocks.filter((b) => b !== leaf), { lease: held })
      // Neither the released lease above nor a live one that wrote none of these: the walk finds the leaf missing.
      const idle = await backend.openLease()
      for (const other of [lease, idle]) await expect(backend.pin(partial.root, { imported: other })).rejects.toBeInstanceOf(NotFoundError)
      expect(await backend.isPinned(partial.root)).toBe(false)
      await idle.release()
      await held.discard()
    })

    it('never collects the blocks of an import whose lease is held; a collection waits for no longer than it must', async () => {
      const data = randomBytes(500_000)
      const lease = await backend.openLease()
      const root = (await backend.importTree([file('leased.bin', data)], { profile: 'unixfs-v1-2025', lease })).at(-1)?.cid as CID
      const collecting = backend.gc()
      if (backend.kind === 'kubo') {
        // Kubo's repo/gc would take unpinned blocks: ours waits until the import is pinned.
        const settled = await Promise.race([collecting.then(() => true), new Promise((resolve) => setTimeout(() => { resolve(false) }, 300))])
        expect(settled).toBe(false)
      }
      await backend.pin(root)
      await lease.release()
      await collecting
      await backend.gc()
      expect(Buffer.compare(await collect(backend.read(root, ['leased.bin'])), data)).toBe(0)
      await backend.unpin(root)
      await backend.gc()
      await expect(backend.stat(root)).rejects.toBeInstanceOf(NotFoundError)
    })
  })
}
