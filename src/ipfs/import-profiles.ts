/**
 * The UnixFS import settings we promise, pinned in one place so that every
 * backend produces the CIDs `ipfs add` would for the same bytes.
 *
 * Names and values follow IPIP-499 and Kubo's `Import.*` profiles of the same
 * name: `unixfs-v1-2025` is Kubo ≥ 0.40's modern profile, `unixfs-v0-2015`
 * the classic `ipfs add` default. Both use a balanced DAG and sha2-256.
 */
export const IMPORT_PROFILE_NAMES = ['unixfs-v1-2025', 'unixfs-v0-2015'] as const

export type ImportProfileName = (typeof IMPORT_PROFILE_NAMES)[number]

export interface ImportProfile {
  readonly name: ImportProfileName
  readonly cidVersion: 0 | 1
  readonly rawLeaves: boolean
  readonly chunkSize: number
  readonly maxChildrenPerNode: number
  readonly hash: 'sha2-256'
  readonly layout: 'balanced'
  /**
   * How a flat folder is weighed against the HAMT threshold (Kubo's
   * Import.UnixFSHAMTDirectorySizeEstimation): its encoded block, or its
   * links' names and CIDs alone.
   */
  readonly shardSplitStrategy: 'block-bytes' | 'links-bytes'
}

export const IMPORT_PROFILES: Readonly<Record<ImportProfileName, ImportProfile>> = {
  'unixfs-v1-2025': {
    name: 'unixfs-v1-2025',
    cidVersion: 1,
    rawLeaves: true,
    chunkSize: 1_048_576,
    maxChildrenPerNode: 1024,
    hash: 'sha2-256',
    layout: 'balanced',
    shardSplitStrategy: 'block-bytes'
  },
  'unixfs-v0-2015': {
    name: 'unixfs-v0-2015',
    cidVersion: 0,
    rawLeaves: false,
    chunkSize: 262_144,
    maxChildrenPerNode: 174,
    hash: 'sha2-256',
    layout: 'balanced',
    shardSplitStrategy: 'links-bytes'
  }
}
