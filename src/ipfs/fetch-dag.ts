import * as dagPb from '@ipld/dag-pb'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { PayloadTooLargeError, UnprocessableContentError, UnsupportedMediaTypeError } from '../errors.ts'
import { codecName } from './car-reader.ts'
import type { ImportLease, IpfsBackend, VerifiedBlock } from './ipfs-backend.ts'

export interface FetchDagOptions {
  /** Every block fetched (or found here) is stored under it: a discard removes what the fetch brought. */
  lease: ImportLease
  signal: AbortSignal
  /** The DAG's blocks may add up to this many bytes (the maximum upload size); beyond, the fetch stops. */
  maxBytes: number
  /** Blocks asked for at once. */
  concurrency?: number
}

/** The same block whatever the CID's version: keyed by multihash. */
const keyOf = (cid: CID): string => Buffer.from(cid.multihash.bytes).toString('base64')

/**
 * The UnixFS DAG below `root`, block by block as each arrives: from this
 * node when it holds it, else from the network (`fetchBlock`), several at
 * once, each stored under the lease. Stops at a codec that is not UnixFS
 * (415), a dag-pb node that does not decode (422), or more bytes than
 * `maxBytes` (413); aborting `signal` stops it too. Identity blocks carry
 * their bytes in the CID and are neither fetched nor yielded.
 */
export async function * fetchDag (node: Required<Pick<IpfsBackend, 'fetchBlock'>>, root: CID, options: FetchDagOptions): AsyncIterable<VerifiedBlock> {
  const concurrency = options.concurrency ?? 16
  // Ours to abort: a fetch that stops (an error, or the consumer leaving) cancels the wants still out.
  const controller = new AbortController()
  const signal = AbortSignal.any([controller.signal, options.signal])
  const seen = new Set<string>()
  const queue: CID[] = [root]
  const inFlight = new Map<string, Promise<{ key: string, block: VerifiedBlock }>>()
  let bytes = 0
  try {
    while (queue.length > 0 || inFlight.size > 0) {
      while (queue.length > 0 && inFlight.size < concurrency) {
        const cid = queue.shift() as CID
        const key = keyOf(cid)
        if (seen.has(key)) continue
        seen.add(key)
        if (cid.code !== dagPb.code && cid.code !== raw.code) {
          throw new UnsupportedMediaTypeError(`only UnixFS content (dag-pb and raw blocks) is pinned here, and ${cid.toString()} is ${codecName(cid.code)}`)
        }
        if (cid.multihash.code === identity.code) {
          if (cid.code === dagPb.code) queue.push(...linksOf(cid, cid.multihash.digest))
          continue
        }
        const fetched = node.fetchBlock(cid, { lease: options.lease, signal }).then((data) => ({ key, block: { cid, bytes: data } }))
        fetched.catch(() => {}) // observed through the race below
        inFlight.set(key, fetched)
      }
      if (inFlight.size === 0) continue
      const { key, block } = await Promise.race(inFlight.values())
      inFlight.delete(key)
      bytes += block.bytes.byteLength
      if (bytes > options.maxBytes) throw new PayloadTooLargeError(`the DAG is larger than the maximum upload size (${options.maxBytes} bytes)`)
      if (block.cid.code === dagPb.code) queue.push(...linksOf(block.cid, block.bytes))
      yield block
    }
  } finally {
    controller.abort()
  }
}

function linksOf (cid: CID, bytes: Uint8Array): CID[] {
  try {
    return dagPb.decode(bytes).Links.map((link) => link.Hash)
  } catch (err) {
    throw new UnprocessableContentError(`block ${cid.toString()} is not a valid dag-pb node`, [err instanceof Error ? err.message : String(err)])
  }
}
