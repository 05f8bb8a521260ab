import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { BlockLeaseRepository } from '../../src/db/block-lease-repository.ts'
import { PgPackIndex } from '../../src/db/pack-index-repository.ts'
import { blockKey } from '../../src/ipfs/block-collector.ts'
import { BlockCache } from '../../src/storage/block-cache.ts'
import type { BlockBatch } from '../../src/storage/pack-writer.ts'
import { LeaseLostError } from '../../src/storage/pack-index.ts'
import { CorruptBlockError, S3BlockStorage } from '../../src/storage/s3-block-storage.ts'
import { S3Client } from '../../src/storage/s3-client.ts'
import { startSharedStore, type SharedStoreFixture } from '../support/shared-store.ts'

const available = inject('seaweedBin') !== '' && inject('postgresUrl') !== ''
if (!available) console.warn('\n!!!!! SKIPPING the S3 pack tests: they need SeaweedFS and PostgreSQL (see the setup\'s message)\n')

async function block (bytes: Uint8Array): Promise<{ cid: CID, bytes: Uint8Array }> {
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

/**
 * The S3 store's packs (S3_PACK_BYTES): an import's blocks sent a few MiB
 * to an object, with the index in PostgreSQL. What is asserted about the
 * bucket is read from the bucket and the index tables directly.
 */
describe.skipIf(!available)('S3 block store: packs', () => {
  let shared: SharedStoreFixture
  const dirs: string[] = []
  const stores: S3BlockStorage[] = []
  let n = 0

  /** A store as one instance opens it: its own empty read cache, the shared bucket (prefix per test) and index. */
  async function open (prefix: string, options: { packBytes?: number, cacheBytes?: number, packMemory?: number } = {}): Promise<S3BlockStorage> {
    const dir = await mkdtemp(join(tmpdir(), 'heimdall-packs-'))
    dirs.push(dir)
    const s3 = new S3Client({ endpoint: shared.seaweed.endpoint, bucket: shared.bucket, region: shared.seaweed.region, forcePathStyle: true, accessKeyId: shared.seaweed.accessKeyId, secretAccessKey: shared.seaweed.secretAccessKey })
    const store = new S3BlockStorage(s3, { prefix, cache: await BlockCache.open(dir, options.cacheBytes ?? 0), index: new PgPackIndex(shared.db.knex), packBytes: options.packBytes ?? 256 * 1024, ...(options.packMemory === undefined ? {} : { packMemory: options.packMemory }) })
    stores.push(store)
    return store
  }

  let leases: BlockLeaseRepository
  /** Leases a pack's name as the collector's writer does: a pack is recorded only while a lease holds it. */
  async function lease (name: string): Promise<void> {
    await leases.register(await leases.open('packs-test'), [name])
  }

  function batchOf (store: S3BlockStorage, leased: string[] = [], written: CID[] = []): BlockBatch {
    const batch = store.batch({ beforeWrite: async (name) => { leased.push(name); await lease(name) }, written: (cids) => { written.push(...cids) } })
    if (batch === undefined) throw new Error('the store does not pack')
    return batch
  }

  async function packObjects (prefix: string): Promise<Map<string, number>> {
    const packs = new Map<string, number>()
    for await (const object of shared.s3.listObjects(`${prefix}packs/`)) packs.set(object.key.slice(`${prefix}packs/`.length), object.size)
    return packs
  }

  const prefix = (): string => `packs-${++n}/`

  beforeAll(async () => {
    shared = await startSharedStore(inject('seaweedBin'), inject('postgresUrl'))
    leases = new BlockLeaseRepository(shared.db.knex)
  }, 180_000)
  afterAll(async () => {
    for (const store of stores) await store.close()
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
    await shared.stop()
  })

  it('sends an import\'s blocks as few objects, each leased before it is written, readable at once and from another instance', async () => {
    const p = prefix()
    const store = await open(p)
    const blocks = await Promise.all(Array.from({ length: 40 }, async () => block(randomBytes(20_000))))
    const leased: string[] = []
    const written: CID[] = []
    const batch = batchOf(store, leased, written)
    for (const b of blocks) await batch.put(b.cid, b.bytes)
    // Taken, not yet all sent: readable from the pack in memory already.
    expect(Buffer.compare(Buffer.from(await store.get(blocks[39]?.cid as CID) as Uint8Array), blocks[39]?.bytes as Uint8Array)).toBe(0)
    await batch.flush()
    expect(written.map(String).sort()).toEqual(blocks.map((b) => b.cid.toString()).sort())
    const packs = await packObjects(p)
    // 800 kB in packs of 256 KiB: 4 objects, not 40.
    expect(packs.size).toBe(4)
    expect([...packs.keys()].sort()).toEqual([...leased].sort())
    const rows = await shared.db.knex<{ block_key: string, pack: string, offset: string, length: number }>('packed_blocks').whereIn('block_key', blocks.map((b) => blockKey(b.cid))).select('pack', 'offset', 'length')
    expect(rows).toHaveLength(40)
    for (const row of rows) expect(Number(row.offset) + row.length).toBeLessThanOrEqual(packs.get(row.pack) ?? 0)
    // Another instance, with nothing cached, reads them from the bucket through the index.
    const other = await open(p)
    for (const b of blocks) {
      expect(await other.has(b.cid)).toBe(true)
      expect(Buffer.compare(Buffer.from(await other.get(b.cid) as Uint8Array), b.bytes)).toBe(0)
      const into = new Uint8Array(b.bytes.length + 10)
      expect(await other.readInto(b.cid, into)).toBe(b.bytes.length)
      expect(Buffer.compare(Buffer.from(into.subarray(0, b.bytes.length)), b.bytes)).toBe(0)
    }
  })

  it('lists packed blocks with their sizes; a pack goes with its last block', async () => {
    const p = prefix()
    const store = await open(p, { packBytes: 64 * 1024 })
    const blocks = await Promise.all(Array.from({ length: 6 }, async () => block(randomBytes(30_000))))
    const batch = batchOf(store)
    for (const b of blocks) await batch.put(b.cid, b.bytes)
    await batch.flush()
    expect((await packObjects(p)).size).toBe(3) // two blocks to a 64 KiB pack
    const listed = new Map<string, number>()
    for await (const b of store.list()) listed.set(b.key, b.size)
    for (const b of blocks) expect(listed.get(blockKey(b.cid))).toBe(30_000)
    // One block of the first pack: the pack stays, for the other.
    const [first, second] = blocks as [typeof blocks[0], typeof blocks[0]]
    await store.delete([blockKey(first.cid)])
    expect(await store.get(first.cid)).toBeUndefined()
    expect(await store.has(first.cid)).toBe(false)
    expect((await packObjects(p)).size).toBe(3)
    expect(Buffer.compare(Buffer.from(await store.get(second.cid) as Uint8Array), second.bytes)).toBe(0)
    // Its last block: the object goes too.
    await store.delete([blockKey(second.cid)])
    expect((await packObjects(p)).size).toBe(2)
    await store.delete(blocks.map((b) => blockKey(b.cid)))
    expect((await packObjects(p)).size).toBe(0)
    expect(await shared.db.knex('packed_blocks').whereIn('block_key', blocks.map((b) => blockKey(b.cid))).count({ n: '*' }).first()).toEqual({ n: '0' })
  })

  it('a block indexed in another pack first keeps its place; a pack of nothing new is not kept', async () => {
    const p = prefix()
    const store = await open(p)
    const shared1 = await block(randomBytes(10_000))
    const only = await block(randomBytes(10_000))
    const first = batchOf(store)
    await first.put(shared1.cid, shared1.bytes)
    await first.flush()
    const before = await packObjects(p)
    const again = batchOf(store)
    await again.put(shared1.cid, shared1.bytes)
    await again.flush()
    expect(await packObjects(p)).toEqual(before)
    const mixed = batchOf(store)
    await mixed.put(shared1.cid, shared1.bytes)
    await mixed.put(only.cid, only.bytes)
    await mixed.flush()
    expect((await packObjects(p)).size).toBe(2)
    const where = await shared.db.knex<{ block_key: string, pack: string }>('packed_blocks').where({ block_key: blockKey(shared1.cid) }).first('pack')
    expect(before.has(where?.pack ?? '')).toBe(true)
  })

  /** A block stored in a pack of its own, whose object is then overwritten with someone else's bytes. */
  async function corruptedPack (p: string): Promise<{ cid: CID, bytes: Uint8Array }> {
    const store = await open(p)
    const b = await block(randomBytes(5000))
    const batch = batchOf(store)
    await batch.put(b.cid, b.bytes)
    await batch.flush()
    const [name] = [...(await packObjects(p)).keys()]
    await shared.s3.putObject(`${p}packs/${name ?? ''}`, randomBytes(5000))
    return b
  }

  it('refuses bytes in a pack that do not hash to the block, and caches nothing of them', async () => {
    const p = prefix()
    const b = await corruptedPack(p)
    const reader = await open(p, { cacheBytes: 1024 * 1024 })
    await expect(reader.get(b.cid)).rejects.toBeInstanceOf(CorruptBlockError)
    expect(reader.cache.has(b.cid)).toBe(false)
  })

  it('names a pack object the index does not know (an import that never finished), deletes it by that name, and never a recorded one', async () => {
    const p = prefix()
    const store = await open(p)
    await shared.s3.putObject(`${p}packs/pack-unfinished`, randomBytes(3000))
    const b = await block(randomBytes(4000))
    const batch = batchOf(store)
    await batch.put(b.cid, b.bytes)
    await batch.flush()
    const listed: string[] = []
    for await (const s of store.list()) listed.push(s.key)
    expect(listed).toContain('pack-unfinished')
    expect(listed.filter((k) => k.startsWith('pack-'))).toEqual(['pack-unfinished'])
    const recorded = [...(await packObjects(p)).keys()].filter((k) => k !== 'pack-unfinished')
    await store.delete(['pack-unfinished', ...recorded])
    expect([...(await packObjects(p)).keys()]).toEqual(recorded)
    expect(Buffer.compare(Buffer.from(await store.get(b.cid) as Uint8Array), b.bytes)).toBe(0)
  })

  it('a failed pack fails the flush, and the import can be aborted with nothing left pending', async () => {
    const p = prefix()
    const store = await open(p, { packBytes: 16 * 1024 })
    const b = await block(randomBytes(10_000))
    const failing = store.batch({ beforeWrite: async () => { await Promise.reject(new Error('the lease could not be recorded')) }, written: () => {} }) as BlockBatch
    await failing.put(b.cid, b.bytes)
    await expect(failing.flush()).rejects.toThrow('the lease could not be recorded')
    await failing.abort()
    expect(await store.has(b.cid)).toBe(false)
    expect((await packObjects(p)).size).toBe(0)
  })

  it('compacts a pack most of whose blocks were collected: the live ones move to a new pack, the old object goes, reads find the new place', async () => {
    const p = prefix()
    const store = await open(p)
    const blocks = await Promise.all(Array.from({ length: 8 }, async () => block(randomBytes(25_000))))
    const batch = batchOf(store)
    for (const b of blocks) await batch.put(b.cid, b.bytes)
    await batch.flush()
    const [old] = [...(await packObjects(p)).keys()]
    // A reader that cached nothing, opened before the move.
    const reader = await open(p)
    const kept = blocks.slice(0, 2)
    await store.delete(blocks.slice(2).map((b) => blockKey(b.cid)))
    const leased: string[] = []
    const report = await store.compact({
      fraction: 0.5,
      beforeWrite: async (name) => { leased.push(name); await Promise.resolve() },
      locked: async (work) => { await shared.db.knex.transaction(async (trx) => { await work(trx) }) },
      pause: async () => {}
    })
    expect(report).toEqual({ packs: 1, bytes: 6 * 25_000 })
    const packs = await packObjects(p)
    expect([...packs.keys()]).toEqual(leased)
    expect(packs.has(old ?? '')).toBe(false)
    expect([...packs.values()]).toEqual([50_000])
    for (const b of kept) {
      expect(Buffer.compare(Buffer.from(await reader.get(b.cid) as Uint8Array), b.bytes)).toBe(0)
    }
    for (const b of blocks.slice(2)) expect(await reader.has(b.cid)).toBe(false)
    // Nothing more to do: the new pack is all live.
    expect(await store.compact({ fraction: 0.5, beforeWrite: async () => {}, locked: async (work) => { await work(undefined) }, pause: async () => {} })).toEqual({ packs: 0, bytes: 0 })
  })

  it('leaves a pack whose object lost bytes as it is when compacting: its blocks are not spread into the new pack, the healthy pack beside it moves whole', async () => {
    const p = prefix()
    const store = await open(p)
    const packOf = async (): Promise<{ name: string, blocks: Array<{ cid: CID, bytes: Uint8Array }> }> => {
      const before = new Set((await packObjects(p)).keys())
      const blocks = await Promise.all(Array.from({ length: 8 }, async () => block(randomBytes(25_000))))
      const batch = batchOf(store)
      for (const b of blocks) await batch.put(b.cid, b.bytes)
      await batch.flush()
      const name = [...(await packObjects(p)).keys()].find((key) => !before.has(key)) ?? ''
      await store.delete(blocks.slice(2).map((b) => blockKey(b.cid)))
      return { name, blocks: blocks.slice(0, 2) }
    }
    const damaged = await packOf()
    const healthy = await packOf()
    // The damaged pack's object cut inside its second live block (bytes 25,000–50,000).
    const object = await shared.s3.getObject(`${p}packs/${damaged.name}`) as Uint8Array
    await shared.s3.putObject(`${p}packs/${damaged.name}`, object.subarray(0, 40_000))
    const report = await store.compact({ fraction: 0.5, beforeWrite: async (name) => { await lease(name) }, locked: async (work) => { await shared.db.knex.transaction(async (trx) => { await work(trx) }) }, pause: async () => {} })
    expect(report).toEqual({ packs: 1, bytes: 6 * 25_000, damaged: [damaged.name] })
    const packs = await packObjects(p)
    expect(packs.get(damaged.name)).toBe(40_000)
    expect(packs.has(healthy.name)).toBe(false)
    const reader = await open(p)
    for (const b of healthy.blocks) expect(Buffer.compare(Buffer.from(await reader.get(b.cid) as Uint8Array), b.bytes)).toBe(0)
    // Where it was: the intact block still reads, the cut one is refused as damaged, as before the compaction.
    expect(Buffer.compare(Buffer.from(await reader.get(damaged.blocks[0]?.cid as CID) as Uint8Array), damaged.blocks[0]?.bytes as Uint8Array)).toBe(0)
    await expect(reader.get(damaged.blocks[1]?.cid as CID)).rejects.toThrow(CorruptBlockError)
  })

  it('a cold read with a read cache takes the whole pack in one GET and caches its neighbours, checked', async () => {
    const p = prefix()
    const store = await open(p)
    const blocks = await Promise.all(Array.from({ length: 10 }, async () => block(randomBytes(20_000))))
    const batch = batchOf(store)
    for (const b of blocks) await batch.put(b.cid, b.bytes)
    await batch.flush()
    expect((await packObjects(p)).size).toBe(1)
    const reader = await open(p, { cacheBytes: 1024 * 1024 })
    expect(Buffer.compare(Buffer.from(await reader.get(blocks[3]?.cid as CID) as Uint8Array), blocks[3]?.bytes as Uint8Array)).toBe(0)
    for (const b of blocks) expect(reader.cache.has(b.cid)).toBe(true)
    // Served from the cache now: the bucket is not asked again (the pack could be gone).
    await shared.s3.deleteObjects([`${p}packs/${[...(await packObjects(p)).keys()][0] ?? ''}`])
    for (const b of blocks) expect(Buffer.compare(Buffer.from(await reader.get(b.cid) as Uint8Array), b.bytes)).toBe(0)
  })

  it('an abort drops the open pack unsent: nothing is PUT, nothing stays readable', async () => {
    const p = prefix()
    const store = await open(p)
    const b = await block(randomBytes(10_000))
    const leased: string[] = []
    const batch = batchOf(store, leased)
    await batch.put(b.cid, b.bytes)
    expect(await store.has(b.cid)).toBe(true) // pending, in memory
    await batch.abort()
    expect(leased).toEqual([])
    expect(await store.has(b.cid)).toBe(false)
    expect((await packObjects(p)).size).toBe(0)
    await expect(batch.put(b.cid, b.bytes)).rejects.toThrow(/aborted/)
  })

  it('does not record a pack whose lease ended before its rows were written (a collection may have taken it)', async () => {
    const p = prefix()
    const store = await open(p)
    const b = await block(randomBytes(10_000))
    // beforeWrite leases nothing: as if the lease had expired between the PUT and the rows.
    const batch = store.batch({ beforeWrite: async () => {}, written: () => {} }) as BlockBatch
    await batch.put(b.cid, b.bytes)
    await expect(batch.flush()).rejects.toBeInstanceOf(LeaseLostError)
    expect(await shared.db.knex('packed_blocks').where({ block_key: blockKey(b.cid) }).first()).toBeUndefined()
    expect(await store.has(b.cid)).toBe(false)
  })

  it('refuses corrupt pack bytes on the ranged read too (a store without a read cache)', async () => {
    const p = prefix()
    const b = await corruptedPack(p)
    const reader = await open(p) // no cache: a ranged GET of the block
    await expect(reader.get(b.cid)).rejects.toBeInstanceOf(CorruptBlockError)
  })

  it('holds at most the open pack and the packs in flight of an import in memory', async () => {
    const p = prefix()
    const store = await open(p, { packBytes: 64 * 1024 })
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => { release = resolve })
    const leased: string[] = []
    const batch = store.batch({ beforeWrite: async (name) => { leased.push(name); await gate; await lease(name) }, written: () => {} }) as BlockBatch
    const blocks = await Promise.all(Array.from({ length: 12 }, async () => block(randomBytes(60_000))))
    let taken = 0
    const putting = (async () => { for (const b of blocks) { await batch.put(b.cid, b.bytes); taken++ } })()
    await new Promise((resolve) => setTimeout(resolve, 300))
    // Two packs in flight (held at the gate) and one open and full: the fourth block waits.
    expect(leased).toHaveLength(2)
    expect(taken).toBe(3)
    release()
    await putting
    await batch.flush()
    expect((await packObjects(p)).size).toBe(12)
  })

  it('keeps the pack buffers of all imports within S3_PACK_MEMORY: past it packs are sent smaller, and nothing waits', async () => {
    const p = prefix()
    const budget = 1024 * 1024
    const store = await open(p, { packBytes: 512 * 1024, packMemory: budget })
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => { release = resolve })
    const imports = await Promise.all(Array.from({ length: 3 }, async () => Promise.all(Array.from({ length: 24 }, async () => block(randomBytes(60_000))))))
    // The PUTs are held at the gate, so each import fills its open pack and two in flight: 1.5 MiB each without the budget.
    const batches = imports.map(() => store.batch({ beforeWrite: async (name) => { await gate; await lease(name) }, written: () => {} }) as BlockBatch)
    const putting = imports.map(async (blocks, i) => { for (const b of blocks) await batches[i]?.put(b.cid, b.bytes) })
    await new Promise((resolve) => setTimeout(resolve, 300))
    // Beyond the budget, at most one block per pack: three imports of three packs.
    const bound = budget + 3 * 3 * 60_000
    expect(store.packMemory.held).toBeLessThanOrEqual(bound)
    expect(store.packMemory.held).toBeGreaterThan(0)
    release()
    await Promise.all(putting)
    await Promise.all(batches.map(async (batch) => batch.flush()))
    expect(store.packMemory.peak).toBeLessThanOrEqual(bound)
    expect(store.packMemory.held).toBe(0)
    // Smaller packs than 512 KiB (8 blocks): more of them than the 9 the pack size alone would give.
    expect((await packObjects(p)).size).toBeGreaterThan(9)
    for (const b of imports.flat()) expect(Buffer.from(await store.get(b.cid) ?? new Uint8Array())).toEqual(Buffer.from(b.bytes))
  })

  it('an import alone under S3_PACK_MEMORY sends packs of S3_PACK_BYTES and gives every byte back', async () => {
    const p = prefix()
    const store = await open(p, { packBytes: 512 * 1024, packMemory: 8 * 1024 * 1024 })
    const batch = batchOf(store)
    for (const b of await Promise.all(Array.from({ length: 24 }, async () => block(randomBytes(60_000))))) await batch.put(b.cid, b.bytes)
    await batch.flush()
    expect([...(await packObjects(p)).values()].sort((a, b) => b - a)).toEqual([480_000, 480_000, 480_000])
    expect(store.packMemory.held).toBe(0)
  })
})
