import { join } from 'node:path'
import type { Knex } from 'knex'
import type { BlockstoreConfig } from '../config.ts'
import { BlockLeaseRepository } from '../db/block-lease-repository.ts'
import { PgPackIndex } from '../db/pack-index-repository.ts'
import { PgPinStore } from '../db/pin-repository.ts'
import type { SharedStore } from '../ipfs/helia-backend.ts'
import { BlockCache } from './block-cache.ts'
import { S3BlockStorage } from './s3-block-storage.ts'
import { S3Client, S3Error } from './s3-client.ts'

/** Why the bucket did not answer, in the configuration's terms (a HEAD answer has no body to quote). */
function bucketUnreachable (config: Extract<BlockstoreConfig, { kind: 's3' }>, err: unknown): Error {
  const where = `bucket "${config.bucket}" at ${config.endpoint}`
  const status = err instanceof S3Error ? err.status : undefined
  const why = status === 403 ? 'refused the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, S3_REGION)'
    : status === 404 ? 'does not exist: create it first (S3_BUCKET; with S3_FORCE_PATH_STYLE=false the store must resolve <bucket>.<host>)'
      : status === 301 ? `is in another region than S3_REGION=${config.region}`
        : `did not answer: ${err instanceof Error ? err.message : String(err)}`
  return new Error(`BLOCKSTORE=s3: the ${where} ${why}`, { cause: err })
}

/**
 * The embedded node's store when instances share it (BLOCKSTORE=s3): blocks
 * in the bucket with a read cache under `dir`, pins and import leases in the
 * database every instance uses. Fails when the bucket does not answer, so a
 * wrong endpoint, bucket or key stops the start with S3's own words.
 */
export async function openSharedStore (config: Extract<BlockstoreConfig, { kind: 's3' }>, options: { db: Knex, dir: string, instance: string }): Promise<SharedStore> {
  const s3 = new S3Client(config)
  try {
    await s3.ping().catch((err: unknown) => { throw bucketUnreachable(config, err) })
    const cache = await BlockCache.open(join(options.dir, 'block-cache'), config.cacheBytes)
    return {
      storage: new S3BlockStorage(s3, { prefix: config.prefix, cache, index: new PgPackIndex(options.db), packBytes: config.packBytes, packMemory: config.packMemory }),
      pins: new PgPinStore(options.db),
      leases: new BlockLeaseRepository(options.db),
      instance: options.instance,
      copies: cache,
      collector: { leaseTtlSeconds: config.leaseTtlSeconds }
    }
  } catch (err) {
    s3.close()
    throw err
  }
}
