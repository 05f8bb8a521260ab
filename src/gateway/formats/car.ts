import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import type { Block } from '../dag-walk.ts'

/** An unsigned LEB128 varint, as CAR frames its header and blocks. */
function varint (value: number): Uint8Array {
  const bytes: number[] = []
  let rest = value
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80)
    rest = Math.floor(rest / 0x80)
  }
  bytes.push(rest)
  return Uint8Array.from(bytes)
}

/**
 * A CARv1 stream (ipld.io/specs/transport/car/carv1): the header with its
 * roots, then each block framed as `varint(len) | CID | bytes`, written as
 * the blocks come.
 */
export async function * carV1 (roots: readonly CID[], blocks: AsyncIterable<Block> | Iterable<Block>): AsyncGenerator<Uint8Array> {
  const header = dagCbor.encode({ roots: [...roots], version: 1 })
  yield varint(header.byteLength)
  yield header
  for await (const block of blocks) {
    const cid = block.cid.bytes
    yield varint(cid.byteLength + block.bytes.byteLength)
    yield cid
    yield block.bytes
  }
}
