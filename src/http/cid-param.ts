import { CID } from 'multiformats/cid'
import { BadRequestError } from '../errors.ts'

/** A CID from a URL segment; a malformed one is the client's error (400). */
export function parseCid (value: string): CID {
  try {
    return CID.parse(value)
  } catch {
    throw new BadRequestError(`"${value}" is not a valid CID`)
  }
}
