/** Where a packed block is: its pack's name and size, and its bytes' offset and length in that object. */
export interface PackedLocation {
  pack: string
  packSize: number
  offset: number
  length: number
}

/** A block of a pack being recorded. */
export interface PackEntry {
  key: string
  offset: number
  length: number
}

/**
 * A database transaction (the collector's sweep batch) that index changes
 * must run on: a second pool connection taken while the sweep lock is held
 * could wait behind registrations that wait for that lock.
 */
export type Within = unknown

/**
 * The index of packed blocks (table packed_blocks, shared by every
 * instance): which pack holds each block. The S3 store asks it where a block
 * is, and the collector removes what it sweeps through it.
 */
export interface PackIndex {
  /**
   * Records a pack whose object is in the bucket, with its blocks, if an
   * import lease still holds its name (else throws LeaseLostError: a
   * collection may have taken the object already). A block already indexed
   * keeps its older place. Returns how many blocks were indexed here: 0
   * means the pack holds nothing needed, and it is not kept.
   */
  record: (pack: string, size: number, blocks: readonly PackEntry[]) => Promise<number>
  locate: (key: string, within?: Within) => Promise<PackedLocation | undefined>
  /** Every packed block's key and length, a page at a time. */
  list: () => AsyncIterable<{ key: string, size: number }>
  /** Those of `packs` that have a row (recorded, not yet emptied). */
  recorded: (packs: readonly string[], within?: Within) => Promise<Set<string>>
  /** Forgets blocks, and returns the packs they were in (their objects stay until `emptied`). */
  remove: (keys: readonly string[], within?: Within) => Promise<string[]>
  /**
   * Drops the rows of packs left with no block (of `candidates`; without
   * them, of every pack) and returns their names: the caller deletes their
   * objects, after the rows are gone (an object is never missing while a
   * row names it).
   */
  emptied: (candidates?: readonly string[]) => Promise<string[]>
  /** Up to `limit` packs whose indexed blocks fill less than `fraction` of them, emptiest first. */
  sparse: (fraction: number, limit: number) => Promise<Array<{ name: string, size: number, live: number }>>
  /** A pack's indexed blocks, in offset order. */
  blocksOf: (pack: string, within?: Within) => Promise<PackEntry[]>
  /**
   * Records `to`, a pack whose object holds copies of blocks of other packs
   * (`entries`: where each is in `to`, and `from`, the pack it was in), and
   * points those blocks' rows at it; a block no longer in `from` (collected
   * meanwhile) is left out. `within`: the sweep lock's transaction.
   */
  move: (to: string, size: number, entries: ReadonlyArray<PackEntry & { from: string }>, within?: Within) => Promise<void>
}

/** A pack's lease ended before its rows were written (its instance stalled past GC_LEASE_TTL_SECONDS). */
export class LeaseLostError extends Error {
  constructor (pack: string) {
    super(`the import lease on ${pack} ended before the pack was recorded; the upload must be made again`)
    this.name = 'LeaseLostError'
  }
}
