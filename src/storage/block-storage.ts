import type { CID } from 'multiformats/cid'
import type { CompactReport } from '../ipfs/ipfs-backend.ts'
import type { Within } from './pack-index.ts'
import type { BatchHooks, BlockBatch } from './pack-writer.ts'

/** A block as a listing names it: its key (see `blockKey`) and size in bytes. */
export interface StoredBlock {
  key: string
  size: number
}

/**
 * Where the embedded node keeps its block bytes: files on the local disk
 * (`fs`, the default) or objects in an S3-compatible bucket (`s3`, shared by
 * every instance). Blocks are immutable and named by their multihash, so a
 * store never holds two versions of one: a put of a block that is there
 * already changes nothing, and a block is never seen half written. What is
 * kept and what is collected is decided above this (the collectors); one
 * contract suite runs against both stores.
 */
export interface BlockStorage {
  readonly kind: 'fs' | 's3'
  put: (cid: CID, bytes: Uint8Array) => Promise<void>
  /**
   * The block's bytes, or undefined when it is not held. `within`: the
   * collector's sweep transaction, for a read made while it holds the sweep
   * lock (a store with an index in the database reads it on that connection).
   */
  get: (cid: CID, within?: Within) => Promise<Uint8Array | undefined>
  /**
   * The block read into `into`: the byte count (less than `into.length` for
   * a shorter block), or undefined when it is not held.
   */
  readInto: (cid: CID, into: Uint8Array) => Promise<number | undefined>
  has: (cid: CID) => Promise<boolean>
  /** Every block held, in no particular order. */
  list: () => AsyncIterable<StoredBlock>
  /**
   * Removes blocks by key; keys not held are skipped. `within`: the
   * collector's sweep transaction, for a store with an index in the database;
   * then what it returns is for `reclaim` once that has committed.
   */
  delete: (keys: readonly string[], within?: Within) => Promise<readonly string[] | undefined>
  /**
   * The writes of one import as a batch (the S3 store packs them into few
   * objects); absent, or undefined, where blocks are written one at a time.
   */
  batch?: (hooks: BatchHooks) => BlockBatch | undefined
  /**
   * After a sweep's deletes are committed: deletes what they left with
   * nothing in it (the S3 store's packs named by `delete`; without names,
   * every empty pack: once a collection, for what a crash left).
   */
  reclaim?: (candidates?: readonly string[]) => Promise<void>
  /** Rewrites what collections left mostly empty (the S3 store's packs); see S3BlockStorage. */
  compact?: (options: { fraction: number, beforeWrite: (name: string) => Promise<void>, locked: (work: (within: Within) => Promise<void>) => Promise<void>, pause: () => Promise<void> }) => Promise<CompactReport>
  /** Resolves when the store takes reads and writes; for readiness probes. */
  ping: () => Promise<void>
  /** A local folder whose free space matters (the blocks, or the read cache). */
  readonly localDir: string
  close: () => Promise<void>
}

/** The identity multihash: the block is the digest itself, held by every store without being stored. */
export const IDENTITY = 0x00

/** An identity block's bytes copied into `into`, as `readInto` answers. */
export function readIdentityInto (cid: CID, into: Uint8Array): number {
  const digest = cid.multihash.digest
  into.set(digest.subarray(0, into.length))
  return Math.min(into.length, digest.length)
}
