import { createHash } from 'node:crypto'
import { blake2b } from '@noble/hashes/blake2b'
import { blake3 } from '@noble/hashes/blake3'
import { base58btc } from 'multiformats/bases/base58'
import * as Digest from 'multiformats/hashes/digest'

/**
 * The hash functions a modern double-hashed denylist item may be written
 * with (its multihash says which). The spec's examples use sha2-256 and
 * blake3; the others cost nothing to support.
 */
const NODE_HASHES = new Map<number, { algorithm: string, size: number }>([
  [0x12, { algorithm: 'sha256', size: 32 }],
  [0x13, { algorithm: 'sha512', size: 64 }],
  [0x14, { algorithm: 'sha3-512', size: 64 }],
  [0x15, { algorithm: 'sha3-384', size: 48 }],
  [0x16, { algorithm: 'sha3-256', size: 32 }],
  [0x17, { algorithm: 'sha3-224', size: 28 }]
])
const BLAKE3 = 0x1e
/** blake2b-8 … blake2b-512: 0xb201 … 0xb240, the code saying the digest's length in bytes. */
const BLAKE2B_FIRST = 0xb201
const BLAKE2B_LAST = 0xb240

export function doubleHashSupported (code: number, size: number): boolean {
  const node = NODE_HASHES.get(code)
  if (node !== undefined) return node.size === size
  if (code === BLAKE3) return size > 0
  return code >= BLAKE2B_FIRST && code <= BLAKE2B_LAST && size === code - 0xb200
}

/** sha2-256 of `text` as lowercase hex: the legacy ("badbits") double hash. */
export function legacyDoubleHash (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/**
 * The modern double hash of `text`: the base58btc multihash of its hash with
 * `code`, written as a denylist writes it. `size` is the digest length the
 * list used (blake3 is extendable).
 */
export function doubleHash (code: number, size: number, text: string): string {
  const bytes = new TextEncoder().encode(text)
  let digest: Uint8Array
  const node = NODE_HASHES.get(code)
  if (node !== undefined) digest = createHash(node.algorithm).update(bytes).digest()
  else if (code === BLAKE3) digest = blake3(bytes, { dkLen: size })
  else digest = blake2b(bytes, { dkLen: size })
  return base58btc.baseEncode(Digest.create(code, digest).bytes)
}
