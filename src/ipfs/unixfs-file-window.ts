import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'

/**
 * The bytes `[start, end)` of a UnixFS file whose root node is `node`, read
 * one block at a time as they are asked for: nothing is read ahead of the
 * consumer, so a slow one holds one block, and a node of many links opens
 * one file at a time. (ipfs-unixfs-exporter's file content reads a node's
 * children all at once into an unbounded queue: a 128 MiB file read by a
 * slow consumer held all 128 MiB, and a node of 20,000 links opened 20,000
 * files, which ran out of descriptors.) Children wholly outside the window
 * are skipped by the sizes their parent records, never read.
 */
export async function * fileWindow (node: dagPb.PBNode, unixfs: UnixFS, start: number, end: number, block: (cid: CID) => Promise<Uint8Array>): AsyncGenerator<Uint8Array> {
  let sent = 0
  for await (const bytes of walk(node, unixfs, 0, start, end, block)) {
    sent += bytes.byteLength
    yield bytes
  }
  const wanted = Math.max(0, Math.min(end, Number(unixfs.fileSize())) - start)
  if (sent !== wanted) throw new Error(`the file holds ${sent} of the ${wanted} bytes its root node promises`)
}

async function * walk (node: dagPb.PBNode, unixfs: UnixFS, nodeStart: number, start: number, end: number, block: (cid: CID) => Promise<Uint8Array>): AsyncGenerator<Uint8Array> {
  let position = nodeStart
  if (unixfs.data !== undefined && unixfs.data.length > 0) {
    yield * slice(unixfs.data, position, start, end)
    position += unixfs.data.length
  }
  if (node.Links.length !== unixfs.blockSizes.length) throw new Error('inconsistent block sizes and links in a UnixFS file node')
  for (const [i, link] of node.Links.entries()) {
    const childStart = position
    position += Number(unixfs.blockSizes[i])
    if (position <= start) continue
    if (childStart >= end) return
    const bytes = await block(link.Hash)
    if (link.Hash.code === raw.code) {
      yield * slice(bytes, childStart, start, end)
      continue
    }
    if (link.Hash.code !== dagPb.code) throw new Error(`a UnixFS file links ${link.Hash.toString()}, neither raw nor dag-pb`)
    const child = dagPb.decode(bytes)
    if (child.Data === undefined) throw new Error(`the file's node ${link.Hash.toString()} has no UnixFS data`)
    yield * walk(child, UnixFS.unmarshal(child.Data), childStart, start, end, block)
  }
}

function * slice (bytes: Uint8Array, at: number, start: number, end: number): Generator<Uint8Array> {
  const from = Math.max(0, start - at)
  const to = Math.min(bytes.length, end - at)
  if (to > from) yield from === 0 && to === bytes.length ? bytes : bytes.subarray(from, to)
}
