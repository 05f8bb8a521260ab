import type { Writable } from 'node:stream'
import type { CID } from 'multiformats/cid'

/** What a path under /ipfs/ names, once resolved. */
export interface ResolvedNode {
  /** The CID the path ends at (a file's own CID names its bytes, whatever path led to it). */
  cid: CID
  /** A UnixFS symlink's bytes are its target path, read as a file's but never followed. */
  type: 'file' | 'directory' | 'symlink'
  /** File content length in bytes (a symlink's: its target's); 0 for directories. */
  size: number
}

/**
 * One link of a directory, as its parent records it: nothing is read from the
 * child. A raw child is a file and its size is exact; a dag-pb child may be a
 * file or a directory (`unknown`) and its size is the DAG's (`Tsize`), as in
 * Kubo's listings.
 */
export interface ListingEntry {
  name: string
  cid: CID
  type: 'file' | 'unknown'
  size: number
}

export interface ByteWindow {
  offset: number
  length: number
  signal?: AbortSignal
  /**
   * Asked of every block the window's bytes come from (each node and leaf
   * below the file's root) before any is read: throws for content this node
   * does not serve, as a blocked block fails under Kubo's NOpfs.
   */
  gate?: (cid: CID) => void
}

/**
 * The gateway's side of the IPFS node: reading only. Resolve a request's path
 * once, then read the node it names. Unknown content and paths are a
 * NotFoundError, always answered from what this node holds.
 */
export interface ContentReader {
  resolve: (root: CID, path: readonly string[], options?: { signal?: AbortSignal }) => Promise<ResolvedNode>
  /**
   * The CID each prefix of `path` resolves to, root first (`X-Ipfs-Roots`,
   * the denylist's check of every node a path passes), from one walk: as far
   * as the path goes, shorter at the first name that is not there.
   */
  along: (root: CID, path: readonly string[], options?: { signal?: AbortSignal }) => Promise<CID[]>
  /** The bytes `[offset, offset + length)` of a resolved file, reading only the blocks that hold them. */
  read: (node: ResolvedNode, window: ByteWindow) => AsyncIterable<Uint8Array>
  /**
   * The same bytes written straight into `out` (an HTTP response), with
   * backpressure, without the per-chunk stream machinery of `read`. Resolves
   * once every byte is handed to `out`; it does not end it. An error before
   * the first byte (a block or the node gone) leaves `out` untouched.
   */
  writeTo: (node: ResolvedNode, window: ByteWindow, out: Writable) => Promise<void>
  /** A resolved directory's links, in the order its node holds them (sharded directories: shard order). */
  list: (node: ResolvedNode, options?: { signal?: AbortSignal }) => Promise<readonly ListingEntry[]>
  /**
   * Drops everything cached. Content never changes, but it can leave this
   * node: after a garbage collection removed blocks, a cached resolution or
   * listing would go on serving a deleted upload. Listeners given to
   * `onForget` (caches built on the reader's answers) are told.
   */
  forget: () => void
  onForget: (listener: () => void) => void
}

/** Where a reader gets blocks. A block this node does not hold is a NotFoundError. */
export interface BlockSource {
  getBlock: (cid: CID, options?: { signal?: AbortSignal }) => Promise<Uint8Array>
  /**
   * Reads the block `cid`, whose length is `into.length`, into `into`; the
   * number of bytes read (less means the block is shorter than its parent
   * says). Where a source has it, file bytes are read into reused buffers.
   */
  readBlockInto?: (cid: CID, into: Uint8Array, options?: { signal?: AbortSignal }) => Promise<number>
}
