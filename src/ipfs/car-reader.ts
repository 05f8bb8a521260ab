import { asyncIterableReader, readBlockHead, readHeader } from '@ipld/car/decoder'
import * as dagPb from '@ipld/dag-pb'
import { varint, type MultihashHasher } from 'multiformats'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { equals } from 'uint8arrays/equals'
import { BadRequestError, HeimdallError, UnprocessableContentError, UnsupportedMediaTypeError } from '../errors.ts'
import type { VerifiedBlock } from './ipfs-backend.ts'

/** The largest block accepted: what Kubo and bitswap move (2 MiB); a section length beyond it is refused before it is buffered. */
export const MAX_BLOCK_BYTES = 2 * 1024 * 1024
const MAX_HEADER_BYTES = 64 * 1024

/** The codecs of a UnixFS DAG, the only ones a CAR may hold here. */
const CODEC_NAMES: Readonly<Record<number, string>> = { [dagPb.code]: 'dag-pb', [raw.code]: 'raw', 0x71: 'dag-cbor', 0x0129: 'dag-json', 0x0200: 'json', 0x51: 'cbor' }
export const codecName = (code: number): string => CODEC_NAMES[code] ?? `codec 0x${code.toString(16)}`

const HASHERS = new Map<number, MultihashHasher>([sha256, sha512].map((hasher) => [hasher.code, hasher]))

/**
 * CARv2's pragma (ipld.io/specs/transport/car/carv2): the varint 10, then
 * `{"version": 2}` in dag-cbor; its fixed header of 40 bytes follows.
 */
const CARV2_PRAGMA = Uint8Array.from([0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02])
const CARV2_HEADER_BYTES = 40

/**
 * A CAR stream, read once: the header first, so that a root that cannot be
 * an upload is refused before a block is read; then `blocks`, each checked
 * against its CID (the bytes hashed with the CID's own multihash) before it
 * is passed on. Identity blocks carry their bytes in the CID and are not
 * passed on. Framing errors are 400, a block that does not match its CID is
 * 422 naming it, a codec or hash function outside a UnixFS DAG 415.
 */
export interface CarStream {
  root: CID
  blocks: AsyncIterable<VerifiedBlock>
}

export async function readCar (source: AsyncIterable<Uint8Array>): Promise<CarStream> {
  const reader = asyncIterableReader(source)
  let root: CID
  /** Where a CARv2's data payload (a CARv1) ends: its index, after it, is not read. */
  let end: number | undefined
  try {
    end = await skipToCarV1(reader)
    const [headerLength] = varint.decode(await reader.upTo(8))
    if (headerLength > MAX_HEADER_BYTES) throw new Error(`its header claims ${headerLength} bytes`)
    const header = await readHeader(reader, 1)
    if (header.roots.length !== 1 || header.roots[0] === undefined) throw new UnsupportedMediaTypeError(`the CAR has ${header.roots.length} roots; an upload is one DAG with a single root`)
    root = header.roots[0]
  } catch (err) {
    throw err instanceof HeimdallError ? err : new BadRequestError('the file is not a readable CAR', [err instanceof Error ? err.message : String(err)])
  }
  if (root.code !== dagPb.code && root.code !== raw.code) {
    throw new UnsupportedMediaTypeError(`the CAR's root ${root.toString()} is ${codecName(root.code)}, not a UnixFS file or directory (dag-pb or raw)`)
  }

  async function * blocks (): AsyncIterable<VerifiedBlock> {
    let index = 0
    for (;;) {
      let block: VerifiedBlock
      try {
        if (end !== undefined && reader.pos === end) { await drain(reader); return }
        if ((await reader.upTo(1)).length === 0) {
          if (end !== undefined) throw new Error(`the file ends ${end - reader.pos} bytes before the end of its data payload`)
          return
        }
        const { cid, blockLength } = await readBlockHead(reader)
        if (blockLength < 0 || blockLength > MAX_BLOCK_BYTES) throw new Error(`block ${index} (${cid.toString()}) claims ${blockLength} bytes; at most ${MAX_BLOCK_BYTES} are allowed`)
        block = { cid, bytes: await reader.exactly(blockLength, true) }
        if (end !== undefined && reader.pos > end) throw new Error(`block ${index} (${cid.toString()}) runs past the end of the data payload`)
      } catch (err) {
        throw new BadRequestError('the CAR is damaged or cut short', [err instanceof Error ? err.message : String(err)])
      }
      index++
      if (await verify(block)) yield block
    }
  }
  return { root, blocks: blocks() }
}

type CarReader = ReturnType<typeof asyncIterableReader>

/**
 * A CARv2 (what go-car's `car create`, Boost and Lotus write) holds a CARv1
 * as its data payload: its header says where, and the reader is moved there
 * (padding skipped as it streams). Returns where the payload ends, or
 * undefined for a CARv1, left where it starts. @ipld/car's readHeader would
 * read a CARv2's inner header without the size limit (a claimed length is
 * buffered whole), hence this.
 */
async function skipToCarV1 (reader: CarReader): Promise<number | undefined> {
  if (!equals(await reader.upTo(CARV2_PRAGMA.byteLength), CARV2_PRAGMA)) return undefined
  reader.seek(CARV2_PRAGMA.byteLength)
  const header = await reader.exactly(CARV2_HEADER_BYTES, true)
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength)
  // After the characteristics (16 bytes): the payload's offset and size, then the index's offset.
  const offset = view.getBigUint64(16, true)
  const size = view.getBigUint64(24, true)
  const start = BigInt(CARV2_PRAGMA.byteLength + CARV2_HEADER_BYTES)
  if (offset < start || size === 0n || offset + size > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`its CARv2 header places the data payload at ${offset} (${size} bytes)`)
  if (!await skip(reader, Number(offset) - reader.pos)) throw new Error(`the file ends before its data payload (at ${offset})`)
  return Number(offset + size)
}

/**
 * Reads `bytes` (a CARv2's padding or index) keeping none of them; false if
 * the file ends first. In steps: the reader's own seek past what it holds
 * keeps every chunk it then passes over until its next read (a padding of
 * 500 MB was 500 MB of memory, found by review).
 */
async function skip (reader: CarReader, bytes: number): Promise<boolean> {
  for (let left = bytes; left > 0;) {
    const chunk = await reader.upTo(Math.min(left, 64 * 1024))
    if (chunk.length === 0) return false
    reader.seek(chunk.length)
    left -= chunk.length
  }
  return true
}

/** Reads what follows a CARv2's payload (its index) to the end, keeping none of it. */
async function drain (reader: CarReader): Promise<void> {
  while (await skip(reader, 64 * 1024));
}

/** Whether the block is to be stored (false for identity blocks); throws when it may not be. */
async function verify ({ cid, bytes }: VerifiedBlock): Promise<boolean> {
  const name = cid.toString()
  if (cid.code !== dagPb.code && cid.code !== raw.code) {
    throw new UnsupportedMediaTypeError(`block ${name} is ${codecName(cid.code)}; a CAR upload holds a UnixFS DAG: dag-pb and raw blocks only`, [name])
  }
  if (cid.multihash.code === identity.code) {
    if (!equals(cid.multihash.digest, bytes)) throw new UnprocessableContentError(`block ${name} does not match its CID`, [name])
    return false
  }
  const hasher = HASHERS.get(cid.multihash.code)
  if (hasher === undefined) {
    throw new UnsupportedMediaTypeError(`block ${name} uses hash function 0x${cid.multihash.code.toString(16)}, which this node does not verify (sha2-256 and sha2-512 only)`, [name])
  }
  const digest = (await hasher.digest(bytes)).digest
  // A truncated multihash keeps the digest's first bytes.
  if (cid.multihash.size > digest.byteLength || !equals(digest.subarray(0, cid.multihash.size), cid.multihash.digest)) {
    throw new UnprocessableContentError(`block ${name} does not match its CID: its bytes hash to something else`, [name])
  }
  return true
}
