import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { NotFoundError } from '../errors.ts'
import type { NodeStat } from './ipfs-backend.ts'

/**
 * What a UnixFS node is, from its own data, as boxo reads it: a directory
 * (or HAMT), a symlink (its target is its data, never followed), or a file.
 */
export function unixfsStat (cid: CID, unixfs: UnixFS): NodeStat {
  switch (unixfs.type) {
    case 'directory':
    case 'hamt-sharded-directory':
      return { cid, type: 'directory', size: 0 }
    case 'symlink': {
      const target = unixfs.data ?? new Uint8Array(0)
      return { cid, type: 'symlink', size: target.byteLength, target: new TextDecoder().decode(target) }
    }
    default:
      return { cid, type: 'file', size: Number(unixfs.fileSize()) }
  }
}

/** `unixfsStat` of a dag-pb block; a NotFoundError when the block is no UnixFS node. */
export function unixfsStatOfBlock (cid: CID, block: Uint8Array): NodeStat {
  let unixfs: UnixFS
  try {
    const node = dagPb.decode(block)
    if (node.Data === undefined) throw new Error('no UnixFS data')
    unixfs = UnixFS.unmarshal(node.Data)
  } catch {
    throw new NotFoundError(`no UnixFS file, directory or symlink at ${cid.toString()}`)
  }
  return unixfsStat(cid, unixfs)
}
