import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'

/** A file node being read: its links, and where the next one to look at begins. */
interface Frame { node: dagPb.PBNode, unixfs: UnixFS, next: number, position: number }

/**
 * The bytes `[start, end)` of a UnixFS file whose root node is `node`, read
 * one block at a time as they are asked for: nothing is read ahead of the
 * consumer, so a slow one holds one block, and a node of many links opens
 * one file at a time. (ipfs-unixfs-exporter's file content reads a node's
 * children all at once into an unbounded queue: a 128 MiB file read by a
 * slow consumer held all 128 MiB, and a node of 20,000 links opened 20,000
 * files, which ran out of descriptors.) Children wholly outside the window
 * are skipped by the sizes their parent records, never read. One loop over
 * a stack of nodes, however deep the DAG: generators nested per level ran
 * out of stack at a few thousand levels.
 */
export async function * fileWindow (node: dagPb.PBNode, unixfs: UnixFS, start: number, end: number, block: (cid: CID) => Promise<Uint8Array>): AsyncGenerator<Uint8Array> {
  let sent = 0
  const stack: Frame[] = []
  const enter = function * (child: dagPb.PBNode, data: UnixFS, position: number): Generator<Uint8Array> {
    if (child.Links.length !== data.blockSizes.length) throw new Error('inconsistent block sizes and links in a UnixFS file node')
    const own = data.data ?? new Uint8Array(0)
    for (const bytes of slice(own, position, start, end)) yield bytes
    stack.push({ node: child, unixfs: data, next: 0, position: position + own.length })
  }
  const emit = (bytes: Uint8Array): Uint8Array => { sent += bytes.byteLength; return bytes }
  for (const bytes of enter(node, unixfs, 0)) yield emit(bytes)
  for (let frame = stack.at(-1); frame !== undefined; frame = stack.at(-1)) {
    const i = frame.next++
    const link = frame.node.Links[i]
    if (link === undefined || frame.position >= end) { stack.pop(); continue }
    const childStart = frame.position
    frame.position += Number(frame.unixfs.blockSizes[i])
    if (frame.position <= start) continue
    const bytes = await block(link.Hash)
    if (link.Hash.code === raw.code) {
      for (const part of slice(bytes, childStart, start, end)) yield emit(part)
      continue
    }
    if (link.Hash.code !== dagPb.code) throw new Error(`a UnixFS file links ${link.Hash.toString()}, neither raw nor dag-pb`)
    const child = dagPb.decode(bytes)
    if (child.Data === undefined) throw new Error(`the file's node ${link.Hash.toString()} has no UnixFS data`)
    for (const part of enter(child, UnixFS.unmarshal(child.Data), childStart)) yield emit(part)
  }
  const wanted = Math.max(0, Math.min(end, Number(unixfs.fileSize())) - start)
  if (sent !== wanted) throw new Error(`the file holds ${sent} of the ${wanted} bytes its root node promises`)
}

/** The part of `bytes`, which begin at `at` in a file, that falls in `[start, end)`: none, all of it, or a view into it. */
export function * slice (bytes: Uint8Array, at: number, start: number, end: number): Generator<Uint8Array> {
  const from = Math.max(0, start - at)
  const to = Math.min(bytes.length, end - at)
  if (to > from) yield from === 0 && to === bytes.length ? bytes : bytes.subarray(from, to)
}
