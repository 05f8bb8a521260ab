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
 * A CARv1 stream, read once: the header first, so that a root that cannot be
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
  try {
    const [headerLength] = varint.decode(await reader.upTo(8))
    if (headerLength > MAX_HEADER_BYTES) throw new Error(`its header claims ${headerLength} bytes`)
    const header = await readHeader(reader)
    if (header.version !== 1) throw new UnsupportedMediaTypeError('the file is a CARv2; send a CARv1 (what `ipfs dag export` writes)')
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
        if ((await reader.upTo(1)).length === 0) return
        const { cid, blockLength } = await readBlockHead(reader)
        if (blockLength < 0 || blockLength > MAX_BLOCK_BYTES) throw new Error(`block ${index} (${cid.toString()}) claims ${blockLength} bytes; at most ${MAX_BLOCK_BYTES} are allowed`)
        block = { cid, bytes: await reader.exactly(blockLength, true) }
      } catch (err) {
        throw new BadRequestError('the CAR is damaged or cut short', [err instanceof Error ? err.message : String(err)])
      }
      index++
      if (await verify(block)) yield block
    }
  }
  return { root, blocks: blocks() }
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
