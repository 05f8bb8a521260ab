/**
 * XXH64 (seed 0) over a few bytes: what boxo (cespare/xxhash) hashes a CAR
 * request into its ETag with. BigInt is plenty for a path and a few params.
 */
const MASK = (1n << 64n) - 1n
const P1 = 11400714785074694791n
const P2 = 14029467366897019727n
const P3 = 1609587929392839161n
const P4 = 9650029242287828579n
const P5 = 2870177450012600261n

const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & MASK
const round = (acc: bigint, lane: bigint): bigint => (rotl((acc + lane * P2) & MASK, 31n) * P1) & MASK
const merge = (acc: bigint, v: bigint): bigint => (((acc ^ round(0n, v)) * P1) + P4) & MASK

export function xxhash64 (input: Uint8Array): bigint {
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength)
  const length = input.byteLength
  let offset = 0
  let h: bigint
  if (length >= 32) {
    let v1 = (P1 + P2) & MASK
    let v2 = P2
    let v3 = 0n
    let v4 = (MASK + 1n - P1) & MASK
    for (; offset + 32 <= length; offset += 32) {
      v1 = round(v1, view.getBigUint64(offset, true))
      v2 = round(v2, view.getBigUint64(offset + 8, true))
      v3 = round(v3, view.getBigUint64(offset + 16, true))
      v4 = round(v4, view.getBigUint64(offset + 24, true))
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & MASK
    h = merge(merge(merge(merge(h, v1), v2), v3), v4)
  } else {
    h = P5
  }
  h = (h + BigInt(length)) & MASK
  for (; offset + 8 <= length; offset += 8) {
    h ^= round(0n, view.getBigUint64(offset, true))
    h = (rotl(h, 27n) * P1 + P4) & MASK
  }
  if (offset + 4 <= length) {
    h ^= (BigInt(view.getUint32(offset, true)) * P1) & MASK
    h = (rotl(h, 23n) * P2 + P3) & MASK
    offset += 4
  }
  for (; offset < length; offset++) {
    h ^= (BigInt(view.getUint8(offset)) * P5) & MASK
    h = (rotl(h, 11n) * P1) & MASK
  }
  h ^= h >> 33n
  h = (h * P2) & MASK
  h ^= h >> 29n
  h = (h * P3) & MASK
  h ^= h >> 32n
  return h
}
