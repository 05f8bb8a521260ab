import { createHash } from 'node:crypto'
import type { CID } from 'multiformats/cid'

/** The multihash codes we can check, with node:crypto's names for them. */
const ALGORITHMS = new Map<number, string>([[0x12, 'sha256'], [0x13, 'sha512']])

/**
 * Whether `bytes` hash to the CID's multihash (a truncated digest compares its
 * length's worth). False for a hash function we cannot compute: such a block
 * cannot be checked, so it is not trusted.
 */
export function hashMatches (cid: CID, bytes: Uint8Array): boolean {
  const algorithm = ALGORITHMS.get(cid.multihash.code)
  if (algorithm === undefined) return false
  const digest = createHash(algorithm).update(bytes).digest()
  const expected = cid.multihash.digest
  return expected.length <= digest.length && digest.subarray(0, expected.length).equals(expected)
}
