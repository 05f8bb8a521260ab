import { bases } from 'multiformats/basics'
import type { MultibaseDecoder } from 'multiformats/bases/interface'
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

/** Every multibase multiformats knows (base16, base64…), beyond the base32, base36 and base58btc CID.parse reads alone. */
const DECODERS = Object.values(bases).map((base) => base.decoder)
const ANY_BASE: MultibaseDecoder<string> = {
  decode: (text: string): Uint8Array<ArrayBuffer> => {
    const decoder = DECODERS.find((d) => text.startsWith(d.prefix))
    if (decoder === undefined) throw new Error('no multibase has this prefix')
    return decoder.decode(text)
  }
}

/**
 * A CID from a URL segment; a malformed one is the client's error (400):
 * anything multiformats cannot decode (multibase, varints, multihash length),
 * and a digest whose length no node would accept. `anyBase`: in any
 * multibase, as Kubo parses a CID it is given (the gateway's paths keep to
 * the three CID.parse reads).
 */
export function parseCid (value: string, options: { anyBase?: boolean } = {}): CID {
  let cid: CID
  try {
    cid = options.anyBase === true ? CID.parse(value, ANY_BASE) : CID.parse(value)
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
