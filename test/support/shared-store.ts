import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openPostgres, type Database } from '../../src/db/database.ts'
import { BlockLeaseRepository } from '../../src/db/block-lease-repository.ts'
import { PgPinStore } from '../../src/db/pin-repository.ts'
import type { SharedStore } from '../../src/ipfs/helia-backend.ts'
import { BlockCache } from '../../src/storage/block-cache.ts'
import { S3BlockStorage } from '../../src/storage/s3-block-storage.ts'
import { S3Client } from '../../src/storage/s3-client.ts'
import { createScratchDatabase } from './postgres-server.ts'
import { createBucket, startSeaweed, type SeaweedCluster } from './seaweedfs.ts'

/** A SeaweedFS bucket and a migrated scratch database: what instances sharing a block store share. */
export interface SharedStoreFixture {
  seaweed: SeaweedCluster
  db: Database
  bucket: string
  /** A client of the bucket, for looking at what is in it. */
  s3: S3Client
  /** What one instance opens: its own read cache (`cacheBytes`, default 64 MiB) in a temp folder. */
  open: (instance: string, options?: { cacheBytes?: number, cacheDir?: string, collector?: SharedStore['collector'] }) => Promise<SharedStore>
  /** Block objects in the bucket now. */
  blockCount: () => Promise<number>
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
    bucket,
    s3,
    open: async (instance, o = {}) => {
      const dir = o.cacheDir ?? await mkdtemp(join(tmpdir(), 'heimdall-s3-cache-'))
      if (o.cacheDir === undefined) dirs.push(dir)
      const cache = await BlockCache.open(dir, o.cacheBytes ?? 64 * 1024 ** 2)
      return {
        storage: new S3BlockStorage(new S3Client(options), { prefix: 'test/', cache }),
        pins: new PgPinStore(db.knex),
        leases: new BlockLeaseRepository(db.knex),
        instance,
        copies: cache,
        ...(o.collector === undefined ? {} : { collector: o.collector })
      }
    },
    blockCount: async () => {
      let n = 0
      for await (const object of s3.listObjects('test/blocks/')) if (object.key.endsWith('.data')) n++
      return n
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
