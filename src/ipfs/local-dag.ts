import * as dagPb from '@ipld/dag-pb'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { NotFoundError } from '../errors.ts'
import { cidKey } from './cid-key.ts'
import type { IpfsBackend } from './ipfs-backend.ts'

export type LocalDag =
  | { state: 'complete', blocks: number, bytes: number }
  | { state: 'missing', missing: CID }
  | { state: 'too-large', bytes: number }
  | { state: 'unsupported', cid: CID }

/**
 * Whether this node holds every block of the DAG below `root`, asking the
 * node only (a missing block is an answer, never a fetch). UnixFS DAGs only
 * (dag-pb and raw blocks), which is what both backends pin. The walk stops
 * once the blocks add up to more than `maxBytes`.
 */
export async function inspectLocalDag (node: Pick<IpfsBackend, 'getBlock'>, root: CID, maxBytes: number, signal?: AbortSignal): Promise<LocalDag> {
  const seen = new Set<string>()
  const stack: CID[] = [root]
  let bytes = 0
  while (stack.length > 0) {
    const cid = stack.pop() as CID
    const key = cidKey(cid)
    if (seen.has(key)) continue
    seen.add(key)
    signal?.throwIfAborted()
    if (cid.code !== dagPb.code && cid.code !== raw.code) return { state: 'unsupported', cid }
    let block: Uint8Array
    try {
      block = cid.multihash.code === identity.code ? cid.multihash.digest : await node.getBlock(cid, { signal })
    } catch (err) {
      if (err instanceof NotFoundError) return { state: 'missing', missing: cid }
      throw err
    }
    bytes += block.byteLength
    if (bytes > maxBytes) return { state: 'too-large', bytes }
    if (cid.code === dagPb.code) {
      for (const link of dagPb.decode(block).Links) stack.push(link.Hash)
    }
  }
  return { state: 'complete', blocks: seen.size, bytes }
}
