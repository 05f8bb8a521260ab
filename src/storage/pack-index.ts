/** Where a packed block is: its pack's name, and its bytes' offset and length in that object. */
export interface PackedLocation {
  pack: string
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
   * Records a pack whose object is in the bucket, with its blocks. A block
   * already indexed keeps its older place. Returns how many blocks were
   * indexed here: 0 means the pack holds nothing needed, and it is not kept.
   */
  record: (pack: string, size: number, blocks: readonly PackEntry[]) => Promise<number>
  locate: (key: string) => Promise<PackedLocation | undefined>
  /** Every packed block's key and length, a page at a time. */
  list: () => AsyncIterable<{ key: string, size: number }>
  /** Those of `packs` that have a row (recorded, not yet emptied). */
  recorded: (packs: readonly string[], within?: Within) => Promise<Set<string>>
  /**
   * Forgets blocks; returns the packs that no longer hold any indexed block
   * (their rows are gone too: the caller deletes their objects).
   */
  remove: (keys: readonly string[], within?: Within) => Promise<string[]>
}
