import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openPostgres, type Database } from '../../src/db/database.ts'
import type { SharedStore } from '../../src/ipfs/helia-backend.ts'
import { openSharedStore } from '../../src/storage/open-shared-store.ts'
import { S3Client } from '../../src/storage/s3-client.ts'
import { createScratchDatabase } from './postgres-server.ts'
import { createBucket, startSeaweed, type SeaweedCluster } from './seaweedfs.ts'

/** A SeaweedFS bucket and a migrated scratch database: what instances sharing a block store share. */
export interface SharedStoreFixture {
  seaweed: SeaweedCluster
  db: Database
  /** Where `db` is, for a process of its own (DATABASE_URL). */
  databaseUrl: string
  bucket: string
  /** A client of the bucket, for looking at what is in it. */
  s3: S3Client
  /** What one instance opens: its own read cache (`cacheBytes`, default 64 MiB) under `cacheDir` (default a temp folder). */
  open: (instance: string, options?: { cacheBytes?: number, cacheDir?: string, collector?: SharedStore['collector'], packBytes?: number }) => Promise<SharedStore>
  /** Blocks in the bucket now: objects of their own, and blocks the pack index places in a pack object that is there. */
  blockCount: () => Promise<number>
  /** Every object under the store's prefix (packs and blocks), and their bytes. */
  objects: () => Promise<{ count: number, bytes: number }>
  stop: () => Promise<void>
}

let buckets = 0

export async function startSharedStore (seaweedBin: string, postgresUrl: string): Promise<SharedStoreFixture> {
  const seaweed = await startSeaweed(seaweedBin)
  const scratch = await createScratchDatabase(postgresUrl)
  const db = openPostgres(scratch.url)
  await db.migrate()
  const bucket = `heimdall-test-${process.pid}-${++buckets}`
  await createBucket(seaweed, bucket)
  const options = { endpoint: seaweed.endpoint, bucket, region: seaweed.region, forcePathStyle: true, accessKeyId: seaweed.accessKeyId, secretAccessKey: seaweed.secretAccessKey }
  const s3 = new S3Client(options)
  const dirs: string[] = []
  return {
    seaweed,
    db,
    databaseUrl: scratch.url,
    bucket,
    s3,
    open: async (instance, o = {}) => {
      const dir = o.cacheDir ?? await mkdtemp(join(tmpdir(), 'heimdall-s3-cache-'))
      if (o.cacheDir === undefined) dirs.push(dir)
      // As the service opens it (its read cache in dir/block-cache), with the test's prefix and timings.
      const store = await openSharedStore(
        { kind: 's3', ...options, prefix: 'test/', sessionToken: undefined, cacheBytes: o.cacheBytes ?? 64 * 1024 ** 2, packBytes: o.packBytes ?? 8 * 1024 ** 2, packMemory: 64 * 1024 ** 2, leaseTtlSeconds: o.collector?.leaseTtlSeconds ?? 300 },
        { db: db.knex, dir, instance }
      )
      return o.collector === undefined ? store : { ...store, collector: o.collector }
    },
    blockCount: async () => {
      let n = 0
      for await (const object of s3.listObjects('test/blocks/')) if (object.key.endsWith('.data')) n++
      const packs = new Set<string>()
      for await (const object of s3.listObjects('test/packs/')) packs.add(object.key.slice('test/packs/'.length))
      const rows = await db.knex<{ pack: string }>('packed_blocks').select('pack')
      return n + rows.filter((row) => packs.has(row.pack)).length
    },
    objects: async () => {
      let count = 0
      let bytes = 0
      for await (const object of s3.listObjects('test/')) { count++; bytes += object.size }
      return { count, bytes }
    },
    stop: async () => {
      s3.close()
      await db.close()
      await scratch.drop()
      await seaweed.stop()
      for (const dir of dirs) await rm(dir, { recursive: true, force: true })
    }
  }
}
