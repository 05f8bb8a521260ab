import type { Writable } from 'node:stream'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { resolvers } from 'ipfs-unixfs-exporter'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { NotFoundError, UnprocessableContentError } from '../errors.ts'
import { cidKey } from '../ipfs/cid-key.ts'
import { slice } from '../ipfs/unixfs-file-window.ts'
import { BLOCK_BUFFERS as LEAF_BUFFERS } from './buffer-pool.ts'
import { ByteLru } from './byte-lru.ts'
import { FlowWriter } from './flow-writer.ts'
import type { BlockSource, ByteWindow, ContentReader, ListingEntry, ResolvedNode } from './content-reader.ts'

/** Blocks read ahead of the one being sent: enough to keep a disk or Kubo busy, few enough to bound memory (4 MiB at 1 MiB chunks). */
const READ_AHEAD = 4
/** The identity multihash: the block is the digest itself. */
const IDENTITY = 0x00
/** A rough price of an object's bookkeeping in the cache, on top of its bytes. */
const OVERHEAD = 160
/** Raw blocks this small are kept with their decoded node: a texture is then served without touching the disk. */
const SMALL_BLOCK = 64 * 1024
/** Bytes handed to a response and not yet on the socket: two 1 MiB blocks. */
const IN_FLIGHT = 2 * 1024 * 1024
/**
 * Most entries a listing (or a tar, formats/tar.ts) is built of unless
 * gatewayEntryLimit raises it: ten times the largest bundle the default
 * ZIP_MAX_ENTRIES lets in, some 30 MB of entries and page at most.
 * A HAMT's shards can repeat its entries without end in a few small blocks
 * (1,024 links to one sub-shard linking one leaf shard 256 times: 52 M
 * entries, the process out of memory, found by review).
 */
export const LISTING_MAX_ENTRIES = 100_000

/** The entries a listing or a tar may have: ten times ZIP_MAX_ENTRIES, at least LISTING_MAX_ENTRIES, so no folder a bundle may hold is refused. */
export const gatewayEntryLimit = (maxBundleEntries: number): number => Math.max(LISTING_MAX_ENTRIES, 10 * maxBundleEntries)

/** A raw leaf of a file and the part of it `[from, to)` a window wants. */
interface RawLeaf { cid: CID, size: number, from: number, to: number }
/** What a window of a file is made of, in order: bytes at hand, or raw leaves to read. */
type Part = Uint8Array | RawLeaf
/** Bytes ready to send; `release` gives their buffer back once sent. */
interface Loaded { bytes: Uint8Array, release?: () => void }

/** A node decoded once and kept: enough to stat it, walk it, or look a name up in it. */
type Decoded =
  | { kind: 'raw', size: number, bytes?: Uint8Array, symlink?: true }
  | { kind: 'file', size: number, node: dagPb.PBNode, unixfs: UnixFS }
  | { kind: 'directory', node: dagPb.PBNode, byName: Map<string, CID> }
  | { kind: 'sharded', node: dagPb.PBNode, unixfs: UnixFS }

/** A root and path segments as one cache key that no other root and segments give (the root's key is bytes, any of them a "/": its length first). */
const pathKey = (root: CID, path: readonly string[]): string => {
  const rootKey = cidKey(root)
  return path.reduce((key, segment) => `${key}/${segment.replaceAll('%', '%25').replaceAll('/', '%2F')}`, `p:${rootKey.length}:${rootKey}`)
}

const notFound = (what: string): NotFoundError => new NotFoundError(`${what} not found on this node`)

/**
 * Reads UnixFS from blocks, with one byte-bounded cache of path resolutions,
 * decoded nodes and directory listings. What is under /ipfs/ never changes,
 * so nothing in the cache goes stale. The bytes of files are not cached: they
 * stream from the blocks, only the blocks a range needs.
 */
export class UnixfsReader implements ContentReader {
  readonly #blocks: BlockSource
  readonly #cache: ByteLru<CID | Decoded | readonly ListingEntry[]>
  readonly #maxListingEntries: number

  constructor (blocks: BlockSource, options: { cacheBytes: number, maxListingEntries?: number }) {
    this.#blocks = blocks
    this.#cache = new ByteLru(options.cacheBytes)
    this.#maxListingEntries = options.maxListingEntries ?? LISTING_MAX_ENTRIES
  }

  readonly #forgetListeners: Array<() => void> = []

  forget (): void {
    this.#cache.clear()
    for (const listener of this.#forgetListeners) listener()
  }

  onForget (listener: () => void): void {
    this.#forgetListeners.push(listener)
  }

  /** What the cache holds, for tests and metrics. */
  get cached (): { entries: number, bytes: number } {
    return { entries: this.#cache.size, bytes: this.#cache.bytes }
  }

  async #block (cid: CID, signal?: AbortSignal): Promise<Uint8Array> {
    if (cid.multihash.code === IDENTITY) return cid.multihash.digest
    return this.#blocks.getBlock(cid, { signal })
  }

  async #decode (cid: CID, signal?: AbortSignal): Promise<Decoded> {
    const key = `n:${cidKey(cid)}`
    const hit = this.#cache.get(key) as Decoded | undefined
    if (hit !== undefined) return hit
    const block = await this.#block(cid, signal)
    const decoded = decodeNode(cid, block)
    // A directory's name index roughly doubles what its block weighs.
    this.#cache.set(key, decoded, OVERHEAD + (decoded.kind === 'raw' ? decoded.bytes?.length ?? 0 : decoded.kind === 'file' ? block.length : block.length * 3))
    return decoded
  }

  async resolve (root: CID, path: readonly string[], options: { signal?: AbortSignal } = {}): Promise<ResolvedNode> {
    const key = pathKey(root, path)
    let cid = this.#cache.get(key) as CID | undefined
    if (cid === undefined) {
      cid = root
      for (const name of path) {
        options.signal?.throwIfAborted()
        cid = await this.#child(cid, name, options.signal)
      }
      this.#cache.set(key, cid, OVERHEAD + key.length * 2)
    }
    const decoded = await this.#decode(cid, options.signal)
    switch (decoded.kind) {
      case 'raw':
        return { cid, type: decoded.symlink === true ? 'symlink' : 'file', size: decoded.size }
      case 'file':
        return { cid, type: 'file', size: decoded.size }
      case 'directory':
      case 'sharded':
        return { cid, type: 'directory', size: 0 }
    }
  }

  /**
   * The CID of each prefix of `path` below `root`, root first, from one walk
   * along it: as far as the path resolves, shorter at the first name that
   * is not there (any other failure is thrown). Resolving each prefix on its
   * own walked the path again from the root for each, all at once: a URL of
   * 7,000 nested folders kept a core busy for minutes after its client left
   * (found by review).
   */
  async along (root: CID, path: readonly string[], options: { signal?: AbortSignal } = {}): Promise<CID[]> {
    const cids = [root]
    let cid = root
    for (const name of path) {
      options.signal?.throwIfAborted()
      try {
        cid = await this.#child(cid, name, options.signal)
      } catch (err) {
        if (err instanceof NotFoundError) return cids
        throw err
      }
      cids.push(cid)
    }
    return cids
  }

  async #child (parent: CID, name: string, signal?: AbortSignal): Promise<CID> {
    const decoded = await this.#decode(parent, signal)
    if (decoded.kind === 'directory') {
      const child = decoded.byName.get(name)
      if (child === undefined) throw notFound(`"${name}" under ${parent.toString()}`)
      return child
    }
    if (decoded.kind === 'sharded') return this.#shardedChild(parent, name, signal)
    throw notFound(`"${name}" under the file ${parent.toString()}`)
  }

  /** Hash-based lookup (ipfs-unixfs-exporter's): reads only the shards on the way to `name`. */
  async #shardedChild (parent: CID, name: string, signal?: AbortSignal): Promise<CID> {
    const resolveDagPb = resolvers[dagPb.code]
    if (resolveDagPb === undefined) throw new Error('ipfs-unixfs-exporter has no dag-pb resolver')
    const blocks = { get: (cid: CID, opts?: { signal?: AbortSignal }) => (async function * (read: (c: CID, s?: AbortSignal) => Promise<Uint8Array>) { yield await read(cid, opts?.signal ?? signal) })(this.#block.bind(this)) }
    try {
      for await (const result of resolveDagPb(parent, [name], blocks, { signal })) {
        if (result.name === name && result.rest.length === 0) return result.cid
      }
    } catch (err) {
      if (!(err instanceof Error && err.name === 'NotFoundError')) throw err
    }
    throw notFound(`"${name}" under ${parent.toString()}`)
  }

  async * read (node: ResolvedNode, window: ByteWindow): AsyncIterable<Uint8Array> {
    const { length, signal } = window
    if (length <= 0) return
    const pending: Array<Promise<Loaded>> = []
    let sent = 0
    try {
      for await (const part of this.#parts(node, window)) {
        pending.push(this.#load(part, false, signal))
        // Raw leaves are read ahead of the one being sent, in order.
        if (pending.length < READ_AHEAD) continue
        const { bytes } = await (pending.shift() as Promise<Loaded>)
        sent += bytes.length
        yield bytes
      }
      while (pending.length > 0) {
        const { bytes } = await (pending.shift() as Promise<Loaded>)
        sent += bytes.length
        yield bytes
      }
    } finally {
      for (const read of pending) read.catch(() => {}) // a reader that stops early must not leave them unhandled
    }
    if (sent !== length) throw new Error(`the file ${node.cid.toString()} holds ${sent} of the ${length} bytes its root promises`)
  }

  /** Whether a file's bytes are in the cache (a small raw block kept at its resolution): no block store needs asking. */
  holds (node: ResolvedNode): boolean {
    const decoded = this.#cache.get(`n:${cidKey(node.cid)}`) as Decoded | undefined
    return decoded?.kind === 'raw' && decoded.bytes !== undefined
  }

  /**
   * Whether a file's bytes are its node's own (a small raw block, a
   * symlink's target): from the cache, else by decoding the node again. A
   * reader that sends other files' bytes from elsewhere (Kubo's gateway or
   * `cat`, which refuses a symlink) serves these from here.
   */
  async inline (node: ResolvedNode, signal?: AbortSignal): Promise<boolean> {
    if (this.holds(node)) return true
    const decoded = await this.#decode(node.cid, signal)
    return decoded.kind === 'raw' && decoded.bytes !== undefined
  }

  async writeTo (node: ResolvedNode, window: ByteWindow, out: Writable): Promise<void> {
    const { length, signal } = window
    if (length <= 0) return
    const flow = new FlowWriter(out, IN_FLIGHT)
    const parts = this.#parts(node, window)[Symbol.asyncIterator]()
    const pending: Array<Promise<Loaded>> = []
    let more = true
    let sent = 0
    try {
      for (;;) {
        // Raw leaves are read ahead into pooled buffers while earlier ones are on the wire.
        while (more && pending.length < READ_AHEAD) {
          const next = await parts.next()
          if (next.done === true) { more = false; break }
          const load = this.#load(next.value, true, signal)
          load.catch(() => {}) // awaited below, in order
          pending.push(load)
        }
        const load = pending.shift()
        if (load === undefined) break
        const { bytes, release } = await load
        signal?.throwIfAborted()
        sent += bytes.length
        if (!flow.write(bytes, release)) await flow.ready()
      }
    } finally {
      // What was read ahead and will not be sent goes back to the pool.
      for (const load of pending) load.then((loaded) => loaded.release?.(), () => {})
      if (more) await parts.return?.(undefined)
    }
    if (sent !== length) throw new Error(`the file ${node.cid.toString()} holds ${sent} of the ${length} bytes its root promises`)
  }

  /** A part's bytes: a raw leaf read from its block, into a pooled buffer when `pooled` and the source can. */
  async #load (part: Part, pooled: boolean, signal?: AbortSignal): Promise<Loaded> {
    if (part instanceof Uint8Array) return { bytes: part }
    const { cid, size, from, to } = part
    const readInto = this.#blocks.readBlockInto
    if (pooled && readInto !== undefined && size <= LEAF_BUFFERS.size && cid.multihash.code !== IDENTITY) {
      const buffer = LEAF_BUFFERS.take()
      try {
        const read = await readInto.call(this.#blocks, cid, buffer.subarray(0, size), { signal })
        if (read !== size) throw new Error(`the block ${cid.toString()} holds ${read} of the ${size} bytes its parent records`)
      } catch (err) {
        LEAF_BUFFERS.give(buffer)
        throw err
      }
      return { bytes: buffer.subarray(from, to), release: () => { LEAF_BUFFERS.give(buffer) } }
    }
    const block = await this.#block(cid, signal)
    if (block.length !== size) throw new Error(`the block ${cid.toString()} holds ${block.length} of the ${size} bytes its parent records`)
    return { bytes: block.subarray(from, to) }
  }

  /** The window of a resolved file as parts: bytes the nodes hold, and the raw leaves that hold the rest. */
  async * #parts (node: ResolvedNode, window: ByteWindow): AsyncGenerator<Part> {
    const { offset, length, signal, gate } = window
    const end = offset + length
    gate?.(node.cid)
    const decoded = await this.#decode(node.cid, signal)
    if (decoded.kind === 'raw') {
      if (decoded.bytes !== undefined) yield * slice(decoded.bytes, 0, offset, end)
      else yield { cid: node.cid, size: decoded.size, from: offset, to: Math.min(end, decoded.size) }
      return
    }
    if (decoded.kind !== 'file') throw notFound(`a file at ${node.cid.toString()}`)
    yield * this.#walk(decoded.node, decoded.unixfs, 0, offset, end, signal, gate)
  }

  /**
   * Lets every block of the window through `window.gate` without reading
   * the leaves: for readers whose bytes come from elsewhere (Kubo's gateway
   * or `cat`), before their first byte. Reads the file's inner nodes.
   */
  async checkWindow (node: ResolvedNode, window: ByteWindow): Promise<void> {
    if (window.gate === undefined || window.length <= 0) return
    for await (const part of this.#parts(node, window)) void part
  }

  /**
   * The parts of `[start, end)` below one file node that begins at `nodeStart`:
   * children wholly outside the window are skipped by the sizes the node
   * records, never read. Raw leaves are left to the caller to read; dag-pb
   * children are read here, a few ahead.
   */
  async * #walk (node: dagPb.PBNode, unixfs: UnixFS, nodeStart: number, start: number, end: number, signal?: AbortSignal, gate?: ByteWindow['gate']): AsyncGenerator<Part> {
    let position = nodeStart
    if (unixfs.data !== undefined && unixfs.data.length > 0) {
      yield * slice(unixfs.data, position, start, end)
      position += unixfs.data.length
    }
    if (node.Links.length !== unixfs.blockSizes.length) throw new Error('inconsistent block sizes and links in a UnixFS file node')
    const wanted: Array<{ cid: CID, start: number, size: number }> = []
    for (const [i, link] of node.Links.entries()) {
      const childStart = position
      const size = Number(unixfs.blockSizes[i])
      position += size
      if (position > start && childStart < end) wanted.push({ cid: link.Hash, start: childStart, size })
      if (position >= end) break
    }
    // Every block the window reads, before any of them is: a refusal leaves nothing of this node's part sent.
    if (gate !== undefined) for (const child of wanted) gate(child.cid)
    const nodes = wanted.filter((child) => child.cid.code !== raw.code)
    const pending: Array<Promise<Uint8Array>> = []
    let next = 0
    for (const child of wanted) {
      if (child.cid.code === raw.code) {
        const from = Math.max(0, start - child.start)
        const to = Math.min(child.size, end - child.start)
        if (to > from) yield { cid: child.cid, size: child.size, from, to }
        continue
      }
      while (pending.length < READ_AHEAD && next < nodes.length) {
        const read = this.#block((nodes[next++] as { cid: CID }).cid, signal)
        read.catch(() => {}) // awaited below, in order; a reader that stops early must not leave it unhandled
        pending.push(read)
      }
      const childNode = dagPb.decode(await (pending.shift() as Promise<Uint8Array>))
      yield * this.#walk(childNode, unixfsOf(childNode, child.cid), child.start, start, end, signal, gate)
    }
  }

  async list (node: ResolvedNode, options: { signal?: AbortSignal } = {}): Promise<readonly ListingEntry[]> {
    const key = `l:${cidKey(node.cid)}`
    const hit = this.#cache.get(key) as readonly ListingEntry[] | undefined
    if (hit !== undefined) return hit
    const decoded = await this.#decode(node.cid, options.signal)
    let entries: ListingEntry[]
    if (decoded.kind === 'directory') {
      // One block holds these links: as many as its bytes can (a 1 MiB block some 26,000), read once.
      entries = decoded.node.Links.map((link) => entryOf(link, link.Name ?? ''))
    } else if (decoded.kind === 'sharded') {
      entries = await this.#shardEntries(decoded.node, decoded.unixfs, options.signal)
    } else {
      throw notFound(`a directory at ${node.cid.toString()}`)
    }
    this.#cache.set(key, entries, OVERHEAD + entries.reduce((sum, e) => sum + OVERHEAD + e.name.length * 2, 0))
    return entries
  }

  /**
   * A sharded directory's entries: its shards are read (they are the
   * directory), its children are not. Each shard is read once: a real HAMT
   * never links one shard twice (its buckets hold different names), so a
   * repeat is a malformed directory, refused rather than listed again.
   */
  async #shardEntries (node: dagPb.PBNode, unixfs: UnixFS, signal?: AbortSignal, walk: { entries: ListingEntry[], shards: Set<string> } = { entries: [], shards: new Set() }): Promise<ListingEntry[]> {
    const padLength = (Number(unixfs.fanout ?? 256n) - 1).toString(16).length
    for (const link of node.Links) {
      signal?.throwIfAborted()
      const name = link.Name ?? ''
      if (name.length === padLength) {
        const key = link.Hash.toString()
        if (walk.shards.has(key)) throw new UnprocessableContentError(`the sharded directory links its shard ${key} more than once: it is malformed, and not listed`)
        walk.shards.add(key)
        const shard = dagPb.decode(await this.#block(link.Hash, signal))
        await this.#shardEntries(shard, unixfsOf(shard, link.Hash), signal, walk)
      } else {
        if (walk.entries.length >= this.#maxListingEntries) throw new UnprocessableContentError(`the directory has more than ${this.#maxListingEntries} entries: too many to list here; its files are served by name`)
        walk.entries.push(entryOf(link, name.slice(padLength)))
      }
    }
    return walk.entries
  }
}

function entryOf (link: dagPb.PBLink, name: string): ListingEntry {
  return { name, cid: link.Hash, type: link.Hash.code === raw.code ? 'file' : 'unknown', size: link.Tsize ?? 0 }
}

function unixfsOf (node: dagPb.PBNode, cid: CID): UnixFS {
  if (node.Data === undefined) throw notFound(`UnixFS data in ${cid.toString()}`)
  try {
    return UnixFS.unmarshal(node.Data)
  } catch {
    throw notFound(`UnixFS data in ${cid.toString()}`)
  }
}

function decodeNode (cid: CID, block: Uint8Array): Decoded {
  if (cid.code === raw.code) return block.length <= SMALL_BLOCK ? { kind: 'raw', size: block.length, bytes: block } : { kind: 'raw', size: block.length }
  if (cid.code !== dagPb.code) throw notFound(`a UnixFS node at ${cid.toString()}`)
  let node: dagPb.PBNode
  try {
    node = dagPb.decode(block)
  } catch {
    throw notFound(`a UnixFS node at ${cid.toString()}`)
  }
  const unixfs = unixfsOf(node, cid)
  switch (unixfs.type) {
    case 'file':
    case 'raw':
      return { kind: 'file', size: Number(unixfs.fileSize()), node, unixfs }
    case 'directory':
      return { kind: 'directory', node, byName: new Map(node.Links.map((link) => [link.Name ?? '', link.Hash])) }
    case 'hamt-sharded-directory':
      return { kind: 'sharded', node, unixfs }
    case 'symlink':
      // Served as its target path, the link's own bytes, as boxo serves one (never followed).
      return { kind: 'raw', size: unixfs.data?.length ?? 0, bytes: unixfs.data ?? new Uint8Array(0), symlink: true }
    default:
      throw notFound(`a file or directory at ${cid.toString()}`)
  }
}
