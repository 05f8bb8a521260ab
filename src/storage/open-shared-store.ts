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

/** What the key needs, as an IAM policy names it. */
const PERMISSIONS = 's3:ListBucket on the bucket; s3:GetObject, s3:PutObject and s3:DeleteObject on its objects'

/** Why the bucket did not answer, in the configuration's terms, from the store's error code where it gave one. */
function bucketUnreachable (config: Extract<BlockstoreConfig, { kind: 's3' }>, err: unknown): Error {
  const where = `bucket "${config.bucket}" at ${config.endpoint}`
  const s3 = err instanceof S3Error ? err : undefined
  const code = s3?.code ?? ''
  const region = s3?.region ?? /expecting '([\w-]+)'/.exec(s3?.message ?? '')?.[1]
  const why = region !== undefined || code === 'AuthorizationHeaderMalformed' || code === 'PermanentRedirect' || s3?.status === 301
    ? `is in ${region === undefined ? 'another region' : `region ${region}`}, not S3_REGION=${config.region}${region === undefined ? '' : `: set S3_REGION=${region}`}`
    : code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch' || code === 'InvalidToken' || code === 'ExpiredToken'
      ? `refused the credentials (${code}: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY${code.endsWith('Token') ? ' / AWS_SESSION_TOKEN' : ''})`
      : code === 'RequestTimeTooSkewed'
        ? 'refused the request\'s time: this machine\'s clock is more than 15 minutes off'
        : code === 'NoSuchBucket' || s3?.status === 404
          ? 'does not exist: create it first (S3_BUCKET; with S3_FORCE_PATH_STYLE=false the store must resolve <bucket>.<host>)'
          : s3?.status === 403
            ? `refused the credentials or their rights (${code === '' ? '403' : code}: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; the key needs ${PERMISSIONS})`
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
    // A listing, not HeadBucket: its refusals come with the store's code, and collection lists anyway.
    await s3.checkAccess(config.prefix).catch((err: unknown) => { throw bucketUnreachable(config, err) })
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
