import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { NotFoundError } from '../errors.ts'
import type { NodeStat } from './ipfs-backend.ts'

/** UnixFS's default permissions for a node that stores none (or stores zero), boxo's UnixPermsOrDefault. */
const DEFAULT_FILE_MODE = 0o644
const DEFAULT_DIRECTORY_MODE = 0o755
const SYMLINK_MODE = 0o777

/** A raw block: a file of its length, with no metadata. */
export function rawStat (cid: CID, size: number): NodeStat {
  return { cid, type: 'file', size, mode: DEFAULT_FILE_MODE }
}

/**
 * What a UnixFS node is, from its own data, as boxo reads it: a directory
 * (or HAMT), a symlink (its target is its data, never followed), or a file;
 * its mode and mtime as boxo's FSNode takes them (UnixFS 1.5).
 */
export function unixfsStat (cid: CID, unixfs: UnixFS): NodeStat {
  // ipfs-unixfs gives its default (0644, directories 0755) for a node with no mode; one that stores 0 means the same.
  const perms = unixfs.mode ?? 0
  const mtime = mtimeOf(unixfs)
  const times = mtime === undefined ? {} : { mtime }
  switch (unixfs.type) {
    case 'directory':
    case 'hamt-sharded-directory':
      return { cid, type: 'directory', size: 0, mode: perms === 0 ? DEFAULT_DIRECTORY_MODE : perms, ...times }
    case 'symlink': {
      const target = unixfs.data ?? new Uint8Array(0)
      return { cid, type: 'symlink', size: target.byteLength, target: new TextDecoder().decode(target), mode: SYMLINK_MODE, ...times }
    }
    default:
      return { cid, type: 'file', size: Number(unixfs.fileSize()), mode: perms === 0 ? DEFAULT_FILE_MODE : perms, ...times }
  }
}

/**
 * The node's mtime as boxo's FSNode.ModTime reads it: nanoseconds left out
 * are 0, but nanoseconds outside 1…999,999,999 (0 written out included)
 * make no time at all.
 */
function mtimeOf (unixfs: UnixFS): NodeStat['mtime'] {
  if (unixfs.mtime === undefined) return undefined
  const { secs, nsecs } = unixfs.mtime
  if (nsecs !== undefined && (nsecs < 1 || nsecs > 999_999_999)) return undefined
  return { secs: Number(secs), nsecs: nsecs ?? 0 }
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
