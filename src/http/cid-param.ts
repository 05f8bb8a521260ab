import { CID } from 'multiformats/cid'
import { identity } from 'multiformats/hashes/identity'
import { BadRequestError } from '../errors.ts'

/** Kubo's limits on a digest (boxo verifcid): at most 128 bytes (the blockstores refuse longer identity ones), at least 20 for a real hash. */
export const MAX_DIGEST_BYTES = 128
const MIN_HASH_DIGEST_BYTES = 20

/** Whether the CID's bytes are the content itself (an identity multihash): nothing of it was stored here. */
export function isIdentity (cid: CID): boolean {
  return cid.multihash.code === identity.code
}

/**
 * A CID from a URL segment; a malformed one is the client's error (400):
 * anything multiformats cannot decode (multibase, varints, multihash length),
 * and a digest whose length no node would accept.
 */
export function parseCid (value: string): CID {
  let cid: CID
  try {
    cid = CID.parse(value)
  } catch {
    throw new BadRequestError(`"${value}" is not a valid CID`)
  }
  const size = cid.multihash.size
  if (size > MAX_DIGEST_BYTES) {
    throw new BadRequestError(`"${value.slice(0, 64)}…" is not a valid CID: its ${isIdentity(cid) ? 'identity ' : ''}digest is ${size} bytes, over ${MAX_DIGEST_BYTES}`)
  }
  if (!isIdentity(cid) && size < MIN_HASH_DIGEST_BYTES) {
    throw new BadRequestError(`"${value}" is not a valid CID: its digest is ${size} bytes, under ${MIN_HASH_DIGEST_BYTES}`)
  }
  return cid
}
