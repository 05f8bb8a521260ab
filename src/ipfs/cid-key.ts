import type { CID } from 'multiformats/cid'

/**
 * A CID as a Map or Set key: its bytes as a one-byte string (~36 characters
 * for a sha2-256 CIDv1, ~80 B on V8's heap), equal exactly when the CIDs are
 * (version, codec and multihash, as their text). Not `cid.toString()`:
 * multiformats builds the base32 text one character at a time, a string V8
 * keeps as ~60 linked pieces once it is a key, 1.7 KB per key (measured,
 * 200,000 keys): a set of a DAG's blocks cost that per block.
 */
export function cidKey (cid: CID): string {
  const { bytes } = cid
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}
