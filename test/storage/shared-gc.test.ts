import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { BlockLeaseRepository } from '../../src/db/block-lease-repository.ts'
import { HeliaBackend } from '../../src/ipfs/helia-backend.ts'
import type { ImportCandidate } from '../../src/ipfs/ipfs-backend.ts'
import { startSharedStore, type SharedStoreFixture } from '../support/shared-store.ts'

const available = inject('seaweedBin') !== '' && inject('postgresUrl') !== ''
if (!available) console.warn('\n!!!!! SKIPPING the shared block store collection tests: they need SeaweedFS and PostgreSQL (see the setup\'s message)\n')

/** The data as 64 KiB chunks, as an upload arrives. */
const file = (path: string, data: Uint8Array): ImportCandidate => ({
  path,
  content: Readable.from(Array.from({ length: Math.ceil(data.length / 65_536) }, (_, i) => data.subarray(i * 65_536, (i + 1) * 65_536)))
})

async function readAll (backend: HeliaBackend, root: CID, path: string[]): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const chunk of backend.read(root, path)) chunks.push(chunk)
  return Buffer.concat(chunks)
}

/**
 * Instances sharing one bucket and one database, each a HeliaBackend with
 * its own repo folder and read cache: what one collects must never take
 * what another is importing, and what nothing pins goes from the bucket.
 */
describe.skipIf(!available)('garbage collection of a block store shared by instances', () => {
  let shared: SharedStoreFixture
  const opened: Array<{ backend: HeliaBackend, dir: string }> = []
  async function instance (name: string, options: { cacheBytes?: number, cacheDir?: string, leaseTtlSeconds?: number } = {}): Promise<HeliaBackend> {
    const dir = await mkdtemp(join(tmpdir(), `heimdall-shared-${name}-`))
    const backend = await HeliaBackend.open(dir, {
      shared: await shared.open(name, {
        cacheBytes: options.cacheBytes ?? 0,
        ...(options.cacheDir === undefined ? {} : { cacheDir: options.cacheDir }),
        collector: { heartbeatSeconds: 1, leaseTtlSeconds: options.leaseTtlSeconds ?? 300, pauseMs: 0, syncSeconds: 0.2 }
      })
    })
    opened.push({ backend, dir })
    return backend
  }
  let a: HeliaBackend
  let b: HeliaBackend

  beforeAll(async () => {
    shared = await startSharedStore(inject('seaweedBin'), inject('postgresUrl'))
    a = await instance('a')
    b = await instance('b')
    // The first write into a new bucket waits for SeaweedFS to grow its volumes.
    await a.importTree([file('warm.bin', randomBytes(10))], { profile: 'unixfs-v1-2025' })
    await b.gc()
  }, 180_000)
  afterAll(async () => {
    for (const { backend, dir } of opened) { await backend.close().catch(() => {}); await rm(dir, { recursive: true, force: true }) }
    await shared.stop()
  })

  it('never collects what an import on another instance holds; pinned, it is readable everywhere; unpinned, the bucket shrinks back', async () => {
    const before = await shared.blockCount()
    const objectsBefore = await shared.objects()
    const data = randomBytes(3 * 1024 * 1024 + 5)
    const lease = await a.openLease()
    const nodes = await a.importTree([file('avatar.fbx', data)], { profile: 'unixfs-v1-2025', lease })
    const root = nodes.at(-1)?.cid as CID
    const written = await shared.blockCount()
    expect(written).toBe(before + 6) // 4 leaves of 1 MiB (unixfs-v1-2025), the file node, the directory
    expect((await shared.objects()).count).toBe(objectsBefore.count + 1) // in one pack (S3_PACK_BYTES 8 MiB)
    // Not pinned yet: only the lease keeps it.
    const report = await b.gc()
    expect(report.blocks).toBe(0)
    expect(await shared.blockCount()).toBe(written)
    await a.pin(root)
    await lease.release()
    expect(await b.gc()).toMatchObject({ blocks: 0 })
    expect(Buffer.compare(await readAll(b, root, ['avatar.fbx']), data)).toBe(0)
    expect(await b.isPinned(root)).toBe(true)
    await b.unpin(root)
    const collected = await a.gc()
    expect(collected.blocks).toBe(written - before)
    expect(collected.bytes).toBeGreaterThan(data.length)
    expect(await shared.blockCount()).toBe(before)
    expect(await shared.objects()).toEqual(objectsBefore)
  })

  it('npm run gc with the instance stopped collects the bucket, not a local folder: what nothing pins goes, what is pinned stays', async () => {
    const before = await shared.blockCount()
    const kept = randomBytes(1_500_000)
    const keptRoot = (await a.importTree([file('kept.bin', kept)], { profile: 'unixfs-v1-2025' })).at(-1)?.cid as CID
    await a.pin(keptRoot)
    await a.importTree([file('lost.bin', randomBytes(2_500_000))], { profile: 'unixfs-v1-2025' }) // unpinned, its lease released
    const withGarbage = await shared.blockCount()
    expect(withGarbage).toBe(before + 4 + 5) // kept: 2 leaves, file node, directory; lost: 3 leaves, file node, directory
    const dataDir = await mkdtemp(join(tmpdir(), 'heimdall-gc-cli-'))
    const env = {
      PATH: process.env.PATH,
      DATA_DIR: dataDir,
      SECRET_KEY: 'x'.repeat(40),
      DATABASE_URL: shared.databaseUrl,
      BLOCKSTORE: 's3',
      S3_ENDPOINT: shared.seaweed.endpoint,
      S3_BUCKET: shared.bucket,
      S3_PREFIX: 'test/',
      S3_REGION: shared.seaweed.region,
      AWS_ACCESS_KEY_ID: shared.seaweed.accessKeyId,
      AWS_SECRET_ACCESS_KEY: shared.seaweed.secretAccessKey
    }
    // In the data folder, as an operator would run it there: no .env of this checkout's is read.
    const gc = async (...args: string[]): Promise<string> => (await promisify(execFile)(process.execPath, [fileURLToPath(new URL('../../src/cli/gc.ts', import.meta.url)), ...args], { env, cwd: dataDir })).stdout
    try {
      expect(await gc('--dry-run')).toMatch(new RegExp(`^dry run \\(the shared store \\(bucket ${shared.bucket}\\)\\): would free 5 blocks, 25\\d{5} bytes`))
      expect(await shared.blockCount()).toBe(withGarbage)
      expect(await gc()).toMatch(/^garbage collected \(the shared store \(bucket [\w-]+\)\): freed 5 blocks/)
      expect(await shared.blockCount()).toBe(before + 4)
      expect(Buffer.compare(await readAll(b, keptRoot, ['kept.bin']), kept)).toBe(0)
      // And npm run admin -- usage counts the store's objects in the bucket (not other data under the prefix, nor a local folder).
      await shared.s3.putObject('test/not-ours.txt', Buffer.from('other data'))
      const objects = await shared.objects()
      const usage = (await promisify(execFile)(process.execPath, [fileURLToPath(new URL('../../src/cli/admin.ts', import.meta.url)), 'usage'], { env, cwd: dataDir })).stdout
      await shared.s3.deleteObjects(['test/not-ours.txt'])
      expect(usage).toContain(`S3 block store ${shared.bucket}/test/: ${objects.count - 1} objects (packs and blocks), `)
    } finally {
      await a.unpin(keptRoot)
      await b.gc()
      await rm(dataDir, { recursive: true, force: true })
    }
  }, 120_000)

  it('a refused import takes its blocks back at once, but not those another instance\'s import holds', async () => {
    const before = await shared.blockCount()
    const objectsBefore = await shared.objects()
    const mine = randomBytes(600_000)
    const common = randomBytes(600_000)
    const leaseA = await a.openLease()
    const leaseB = await b.openLease()
    const nodesA = await a.importTree([file('common.bin', common)], { profile: 'unixfs-v1-2025', lease: leaseA })
    await b.importTree([file('common.bin', common), file('mine.bin', mine)], { profile: 'unixfs-v1-2025', lease: leaseB })
    await leaseB.discard()
    // What only B wrote is gone; what A's import holds stays, and A pins it whole.
    const rootA = nodesA.at(-1)?.cid as CID
    await a.pin(rootA)
    await leaseA.release()
    expect(Buffer.compare(await readAll(a, rootA, ['common.bin']), common)).toBe(0)
    expect(await shared.blockCount()).toBe(before + 2) // common.bin (one raw leaf) and A's directory
    await a.unpin(rootA)
    await b.gc()
    expect(await shared.blockCount()).toBe(before)
    expect(await shared.objects()).toEqual(objectsBefore)
  })

  it('the leases of an instance that died mid-import expire, and its blocks are collected', async () => {
    const before = await shared.blockCount()
    const objectsBefore = await shared.objects()
    const doomed = await instance('doomed', { leaseTtlSeconds: 2 })
    const lease = await doomed.openLease()
    await doomed.importTree([file('half.bin', randomBytes(700_000))], { profile: 'unixfs-v1-2025', lease })
    expect(await shared.blockCount()).toBeGreaterThan(before)
    // Its process "dies": no release, no more heartbeats.
    await doomed.close()
    expect(await b.gc()).toMatchObject({ blocks: 0 }) // b's TTL is 300 s: the lease is alive to it
    const c = await instance('c', { leaseTtlSeconds: 2 })
    await sleep(2500)
    const report = await c.gc()
    expect(report.blocks).toBeGreaterThan(0)
    expect(await shared.blockCount()).toBe(before)
    expect(await shared.objects()).toEqual(objectsBefore)
  })

  it('an import whose lease another instance expired (its heartbeats missed) is refused, not pinned over what that instance swept', async () => {
    const before = await shared.blockCount()
    const lease = await a.openLease()
    const root = (await a.importTree([file('stalled.bin', randomBytes(700_000))], { profile: 'unixfs-v1-2025', lease })).at(-1)?.cid as CID
    // What another instance's collection does to the lease of one that missed its heartbeats for longer than the TTL.
    await shared.db.knex('block_leases').where({ instance: 'a' }).delete()
    await b.gc()
    expect(await shared.blockCount()).toBe(before)
    await expect(a.pin(root, { imported: lease })).rejects.toMatchObject({ status: 503, message: expect.stringMatching(/lease expired/) })
    expect(await a.isPinned(root)).toBe(false)
    await lease.discard()
    // Settled by the refusal: the blocks it wrote are no longer vouched for without asking the store.
    expect(await a.pin(root).catch((err: unknown) => err)).toBeInstanceOf(Error)
  })

  it('collections on two instances, over and over, during concurrent imports on both never take a block of one', async () => {
    let collecting = true
    const collections = [a, b].map(async (backend) => {
      let runs = 0
      while (collecting) { await backend.gc(); runs++ }
      return runs
    })
    const imports = Array.from({ length: 16 }, async (_, i) => {
      const backend = i % 2 === 0 ? a : b
      const data = randomBytes(200_000 + i * 50_000)
      const lease = await backend.openLease()
      // Half of them share their bytes with another import.
      const nodes = await backend.importTree([file('model.glb', i % 4 < 2 ? data : Buffer.alloc(300_000, i % 2))], { profile: 'unixfs-v1-2025', lease })
      const root = nodes.at(-1)?.cid as CID
      // Long enough between write and pin for sweeps on both instances to list the blocks.
      await sleep(400)
      await backend.pin(root)
      await lease.release()
      return root
    })
    const roots = await Promise.all(imports)
    collecting = false
    const runs = await Promise.all(collections)
    expect(runs.every((n) => n > 0)).toBe(true)
    await a.gc()
    for (const root of roots) {
      const other = Math.random() < 0.5 ? a : b
      expect((await readAll(other, root, ['model.glb'])).length).toBeGreaterThan(0)
    }
    for (const root of roots) await a.unpin(root)
  })

  it('a pack an instance sent but never indexed (killed between the two) is kept while its lease lives, then collected', async () => {
    await a.gc() // what earlier tests left to collect
    const objectsBefore = await shared.objects()
    const leases = new BlockLeaseRepository(shared.db.knex)
    const lease = await leases.open('killed-mid-pack')
    await leases.register(lease, ['pack-sent-not-indexed'])
    await shared.s3.putObject('test/packs/pack-sent-not-indexed', randomBytes(50_000))
    expect(await a.gc()).toMatchObject({ blocks: 0 })
    expect((await shared.objects()).count).toBe(objectsBefore.count + 1)
    await leases.close(lease)
    expect(await a.gc()).toMatchObject({ blocks: 1, bytes: 50_000 })
    expect(await shared.objects()).toEqual(objectsBefore)
  })

  it('an import of content the bucket holds already writes nothing again; a pack left mostly dead by a delete is compacted', async () => {
    await a.gc()
    const kept = randomBytes(1024 * 1024)
    const dropped = randomBytes(3 * 1024 * 1024)
    const leaseA = await a.openLease()
    const rootA = (await a.importTree([file('kept.bin', kept), file('dropped.bin', dropped)], { profile: 'unixfs-v1-2025', lease: leaseA })).at(-1)?.cid as CID
    await a.pin(rootA)
    await leaseA.release()
    const afterA = await shared.objects()
    // The same bytes again on another instance: every block is found stored, no object is written.
    const leaseB = await b.openLease()
    const again = (await b.importTree([file('kept.bin', kept), file('dropped.bin', dropped)], { profile: 'unixfs-v1-2025', lease: leaseB })).at(-1)?.cid as CID
    expect(again.equals(rootA)).toBe(true)
    expect(await shared.objects()).toEqual(afterA)
    await b.pin(again) // its walk finds every block (held under the lease, stored in A's pack)
    await leaseB.release()
    // Only kept.bin under another root: one new pack, for the new directory alone.
    const leaseC = await b.openLease()
    const rootC = (await b.importTree([file('kept.bin', kept)], { profile: 'unixfs-v1-2025', lease: leaseC })).at(-1)?.cid as CID
    await b.pin(rootC)
    await leaseC.release()
    expect((await shared.objects()).count).toBe(afterA.count + 1)
    // Deleting A leaves A's pack a quarter live: the collection moves kept.bin's block to a new pack and deletes A's.
    await a.unpin(rootA)
    const report = await b.gc()
    expect(report.compacted?.packs).toBeGreaterThanOrEqual(1)
    expect(report.compacted?.bytes).toBeGreaterThanOrEqual(dropped.length)
    const now = await shared.objects()
    expect(now.bytes).toBeLessThan(afterA.bytes - dropped.length + 10_000)
    expect(Buffer.compare(await readAll(a, rootC, ['kept.bin']), kept)).toBe(0)
    await b.unpin(rootC)
    await a.gc()
  })

  it('what one instance collects, another stops serving from its read cache at once, and after a restart too', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'heimdall-shared-cache-'))
    let told = 0
    let cached = await instance('cached', { cacheBytes: 64 * 1024 ** 2, cacheDir })
    cached.onSharedCollection(() => { told++ })
    const first = (await a.importTree([file('one.bin', randomBytes(300_000))], { profile: 'unixfs-v1-2025' })).at(-1)?.cid as CID
    const second = (await a.importTree([file('two.bin', randomBytes(300_000))], { profile: 'unixfs-v1-2025' })).at(-1)?.cid as CID
    await a.pin(first)
    await a.pin(second)
    expect((await readAll(cached, first, ['one.bin'])).length).toBe(300_000) // now in its read cache
    expect((await readAll(cached, second, ['two.bin'])).length).toBe(300_000)
    await a.unpin(first)
    await a.gc()
    await expect.poll(async () => readAll(cached, first, ['one.bin']).then(() => 'served', (err: unknown) => (err as Error).name), { timeout: 5000 }).toBe('NotFoundError')
    expect(told).toBeGreaterThan(0)
    // Away while another instance collects: at its next start it forgets what went meanwhile.
    await cached.close()
    await a.unpin(second)
    await a.gc()
    cached = await instance('cached', { cacheBytes: 64 * 1024 ** 2, cacheDir })
    await expect(readAll(cached, second, ['two.bin'])).rejects.toMatchObject({ name: 'NotFoundError' })
    await rm(cacheDir, { recursive: true, force: true })
  })
})
