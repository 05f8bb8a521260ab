import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { murmur3128 } from '@multiformats/murmur3'
import * as cborg from 'cborg'
import * as cborgJson from 'cborg/json'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { AbsentPathError, NotFoundError, NotImplementedError } from '../errors.ts'
import { cidKey } from '../ipfs/cid-key.ts'
import type { IpfsBackend } from '../ipfs/ipfs-backend.ts'
import type { CarParams } from './format.ts'

/** Where the trustless answers get blocks: this node only, a missing block is a NotFoundError. */
export type BlockGetter = Pick<IpfsBackend, 'getBlock'>

export interface Block { cid: CID, bytes: Uint8Array }

/** A request's path, resolved block by block as a verifying client would. */
export interface ResolvedPath {
  /** Every block read to walk from the root to the terminal, in order (root first, HAMT shards included), terminal excluded. */
  pathBlocks: Block[]
  /**
   * `X-Ipfs-Roots`: the root, then one CID per segment of the path, as boxo's
   * getPathRoots resolves each prefix of the URL: the CID a link leads to, or
   * for a key or an index inside a dag-cbor or dag-json block, that block's.
   * The terminal's last.
   */
  roots: CID[]
  terminal: Block
}

/**
 * Asked of every CID an answer reaches (along the path, and each block or
 * entry it then writes): throws (a ContentBlockedError) for content this
 * node does not serve, a denylist's or a disabled identity's.
 */
export type Gate = (cid: CID) => void

/**
 * Lets every block of a file through `gate`: its root, and the links of each
 * inner dag-pb node, leaves included (only inner nodes are read). For
 * answers whose bytes are read elsewhere (a tar from the node's own reader).
 * `gated` holds the CIDs already let through (share it across the files of
 * one answer): each is asked and read once, however often the DAG links
 * it. Walked per link, a file of 256 links to one node of 1,024 links cost
 * 256 reads and 262,144 checks (found by review).
 */
export async function gateFileBlocks (source: BlockGetter, cid: CID, gate: Gate, signal?: AbortSignal, gated = new Set<string>()): Promise<void> {
  const key = cidKey(cid)
  if (gated.has(key)) return
  gated.add(key)
  gate(cid)
  if (cid.code !== dagPb.code) return
  const node = dagPb.decode((await fetchBlock(source, cid, signal)).bytes)
  for (const link of node.Links) {
    signal?.throwIfAborted()
    await gateFileBlocks(source, link.Hash, gate, signal, gated)
  }
}

/** Blocks read ahead of the one being written: bounded memory, and Kubo's per-block round trips overlap. */
const READ_AHEAD = 8

async function fetchBlock (source: BlockGetter, cid: CID, signal?: AbortSignal): Promise<Block> {
  // Identity CIDs carry their bytes: nothing to look up (and the embedded blockstore holds none).
  if (cid.multihash.code === identity.code) return { cid, bytes: cid.multihash.digest }
  return { cid, bytes: await source.getBlock(cid, { signal }) }
}

function decodeUnixFS (node: dagPb.PBNode): UnixFS | undefined {
  if (node.Data === undefined) return undefined
  try {
    return UnixFS.unmarshal(node.Data)
  } catch {
    return undefined
  }
}

/** The HAMT bucket index bits of a name, consumed most significant first (go-unixfs: murmur3 x64 128, first 64 bits). */
class HashBits {
  #bits: string
  constructor (digest: Uint8Array) {
    this.#bits = Array.from(digest.subarray(0, 8), (byte) => byte.toString(2).padStart(8, '0')).join('')
  }

  take (count: number): number {
    if (this.#bits.length < count) throw new NotFoundError('HAMT deeper than its hash')
    const value = parseInt(this.#bits.slice(0, count), 2)
    this.#bits = this.#bits.slice(count)
    return value
  }
}

/**
 * One segment into a decoded dag-cbor or dag-json value: a map's key or a
 * list's index; undefined when there is none.
 */
function step (value: unknown, segment: string): unknown {
  if (Array.isArray(value)) return /^(0|[1-9]\d*)$/.test(segment) ? value[Number(segment)] : undefined
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array || CID.asCID(value) !== null) return undefined
  return Object.hasOwn(value, segment) ? (value as Record<string, unknown>)[segment] : undefined
}

/**
 * Resolves `segments` below `root`: over dag-pb (UnixFS directories, HAMT
 * shards read by the name's hash: only the shards on the way) each segment
 * names a link; through a dag-cbor or dag-json block, segments walk its
 * maps and lists until they reach a link, which is followed, as boxo paths
 * through IPLD. A name that is not there (in a directory, a HAMT, a map or
 * a list, or below a file or a raw block) is an AbsentPathError with the
 * blocks read to find so; a block this node does not have, or one that
 * does not decode, is a plain NotFoundError; a path that ends inside a
 * block on a value that is not a link is boxo's 501.
 */
export async function resolvePath (source: BlockGetter, root: CID, segments: readonly string[], signal?: AbortSignal, gate?: Gate): Promise<ResolvedPath> {
  const pathBlocks: Block[] = []
  const roots: CID[] = [root]
  gate?.(root)
  let current = await fetchBlock(source, root, signal)
  // Written once: built at each segment, a long path cost its length squared.
  const where = `/ipfs/${[root.toString(), ...segments].join('/')}`
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] ?? ''
    if (current.cid.code === dagCbor.code || current.cid.code === dagJson.code) {
      pathBlocks.push(current)
      let value: unknown
      try {
        value = current.cid.code === dagCbor.code ? dagCbor.decode(current.bytes) : dagJson.decode(current.bytes)
      } catch {
        throw new NotFoundError(`${where} not found: block ${current.cid.toString()} is not valid ${current.cid.code === dagCbor.code ? 'dag-cbor' : 'dag-json'}, so no path goes through it`)
      }
      for (;;) {
        value = step(value, segments[i] ?? '')
        if (value === undefined) throw new AbsentPathError(`${where} not found: no "${segments[i] ?? ''}" in block ${current.cid.toString()}`, pathBlocks)
        const link = CID.asCID(value)
        if (link !== null) {
          gate?.(link)
          current = await fetchBlock(source, link, signal)
          roots.push(link)
          break
        }
        if (i === segments.length - 1) throw new NotImplementedError(`${where} ends inside block ${current.cid.toString()} on a value that is not a link: only links can be served`)
        // A segment that stays inside the block resolves to it (`/ipfs/<cbor>/a/b/0` is <cbor>,<cbor>,<cbor>,<link>).
        roots.push(current.cid)
        i++
      }
      continue
    }
    const belowFile = `${where} not found: "${segment}" is below ${current.cid.toString()}, which is not a directory`
    // A raw block's bytes name nothing: read, it shows so (Kubo's proof holds it). Other codecs are not pathed through here.
    if (current.cid.code === raw.code) throw new AbsentPathError(belowFile, [...pathBlocks, current])
    if (current.cid.code !== dagPb.code) throw new NotFoundError(belowFile)
    pathBlocks.push(current)
    const node = dagPb.decode(current.bytes)
    const data = decodeUnixFS(node)
    let next: CID | undefined
    if (data?.type === 'directory') {
      next = node.Links.find((link) => link.Name === segment)?.Hash
    } else if (data?.type === 'hamt-sharded-directory') {
      const fanout = Number(data.fanout ?? 256n)
      const bitsPerLevel = Math.log2(fanout)
      const pad = (fanout - 1).toString(16).length
      const hash = new HashBits((await murmur3128.digest(new TextEncoder().encode(segment))).digest)
      let shard = node
      for (;;) {
        const prefix = hash.take(bitsPerLevel).toString(16).toUpperCase().padStart(pad, '0')
        const link = shard.Links.find((l) => l.Name === prefix + segment) ?? shard.Links.find((l) => l.Name === prefix)
        if (link === undefined) break
        if (link.Name !== prefix) { next = link.Hash; break }
        const sub = await fetchBlock(source, link.Hash, signal)
        pathBlocks.push(sub)
        shard = dagPb.decode(sub.bytes)
      }
    }
    // A dag-pb node without UnixFS data names nothing this walk reads as absent (boxo resolves its links by name, where
    // a proof would claim a link it has is missing: found by review): a plain not found, as before proofs.
    if (next === undefined) {
      if (data === undefined) throw new NotFoundError(`${where} not found: ${current.cid.toString()} is a dag-pb node without UnixFS data, whose links are not followed by name here`)
      throw new AbsentPathError(data.type === 'directory' || data.type === 'hamt-sharded-directory' ? `${where} not found: no "${segment}" in directory ${current.cid.toString()}` : belowFile, pathBlocks)
    }
    gate?.(next)
    current = await fetchBlock(source, next, signal)
    roots.push(next)
  }
  return { pathBlocks, roots, terminal: current }
}

/**
 * The CIDs a block links to, in the order its bytes hold them, as Kubo walks
 * them: a dag-pb node's links, a dag-cbor or dag-json block's links in
 * encoded order (lists in order, maps in the order their keys are written,
 * nested values depth-first). A client such as boxo's remote CAR backend
 * checks a CAR's order block by block against its own walk: a sorted walk
 * (or a JavaScript object's, which puts integer-like keys such as "9" and
 * "10" first) made it stop after the root.
 */
function linksOf (block: Block): CID[] {
  switch (block.cid.code) {
    case dagPb.code: return dagPb.decode(block.bytes).Links.map((link) => link.Hash)
    // The codec's own rules, with maps as Maps: they keep the encoded order.
    case dagCbor.code: return collectCids(cborg.decode(block.bytes, { ...dagCbor.decodeOptions, useMaps: true }), (value) => CID.asCID(value))
    case dagJson.code:
      // @ipld/dag-json reads the block as the codec does (a block it refuses fails the walk as before) but gives objects; its
      // links are read again from the JSON as Maps, `{"/": "<cid>"}` being dag-json's link.
      dagJson.decode(block.bytes)
      return collectCids(cborgJson.decode(block.bytes, { useMaps: true }), dagJsonLink)
    default: return []
  }
}

function dagJsonLink (value: unknown): CID | null {
  if (!(value instanceof Map) || value.size !== 1) return null
  const link: unknown = value.get('/')
  return typeof link === 'string' ? CID.parse(link) : null
}

/** The links in `value`, decoded with its maps as Maps, in the order they were decoded. */
function collectCids (value: unknown, asLink: (value: unknown) => CID | null, found: CID[] = []): CID[] {
  const link = asLink(value)
  if (link !== null) { found.push(link); return found }
  if (Array.isArray(value)) for (const item of value) collectCids(item, asLink, found)
  else if (value instanceof Map) for (const item of value.values()) collectCids(item, asLink, found)
  return found
}

/**
 * Yields the blocks of `cids` in order, each with its index, with up to
 * READ_AHEAD reads in flight. A CID `written` names when its read would be
 * started is neither read nor yielded: the caller would skip it (what was
 * written stays written), and reading first cost a read per link: a 1 MB
 * node of 26,000 links to one 1 MiB leaf read 26 GiB for a CAR of 2 MB
 * (found by review). A CID repeated among the reads in flight is read once.
 */
async function * inOrder (source: BlockGetter, cids: readonly CID[], signal?: AbortSignal, written?: (cid: CID, index: number) => boolean): AsyncGenerator<{ block: Block, index: number }> {
  const pending: Array<{ cid: CID, index: number, read: Promise<Block> }> = []
  let next = 0
  const fill = (): void => {
    while (pending.length < READ_AHEAD && next < cids.length) {
      const index = next++
      const cid = cids[index]
      if (cid === undefined) break
      if (written?.(cid, index) === true) continue
      const read = pending.find((p) => p.cid.equals(cid))?.read ?? fetchBlock(source, cid, signal)
      read.catch(() => {}) // awaited in turn below; one failing early must not go unhandled
      pending.push({ cid, index, read })
    }
  }
  fill()
  for (let first = pending.shift(); first !== undefined; first = pending.shift()) {
    const block = await first.read
    fill()
    yield { block, index: first.index }
  }
}

/** Absolute, inclusive byte bounds of `entity-bytes` over a file of `size` bytes (boxo's rules); null when nothing is asked. */
function byteBounds (range: CarParams['range'], size: number): { first: number, last: number } | null {
  const from = range === undefined ? 0 : range.from < 0 ? Math.max(size + range.from, 0) : range.from
  const to = range?.to === null || range === undefined ? size - 1 : range.to < 0 ? size + range.to : Math.min(range.to, size - 1)
  return to < from || from >= size ? null : { first: from, last: to }
}

/**
 * The blocks of a CAR for a resolved path, depth-first: the blocks that
 * verify the path, then the terminal entity per `dag-scope` (and
 * `entity-bytes` for a file: only the blocks holding those bytes). Blocks
 * are read as they are written: nothing beyond READ_AHEAD blocks is held.
 * Blocks with an identity multihash are walked through but never written:
 * their CID is their content, and the trustless gateway spec says they MUST
 * NOT appear as blocks.
 */
export async function * carBlocks (source: BlockGetter, resolved: ResolvedPath, params: CarParams, signal?: AbortSignal, gate?: Gate): AsyncGenerator<Block> {
  for await (const block of walkCarBlocks(source, resolved, params, signal)) {
    // Every block is let through the gate before it is written: refused, the CAR ends there, without it.
    gate?.(block.cid)
    if (block.cid.multihash.code !== identity.code) yield block
  }
}

/**
 * The blocks of a CAR that shows a path's name is not there: those read
 * looking for it, in the order read (as boxo's GetCAR writes them), each
 * through the gate; identity blocks are left out, as from every CAR.
 */
export function absenceBlocks (walked: readonly Block[], gate?: Gate): Block[] {
  for (const block of walked) gate?.(block.cid)
  return walked.filter((block) => block.cid.multihash.code !== identity.code)
}

async function * walkCarBlocks (source: BlockGetter, resolved: ResolvedPath, params: CarParams, signal?: AbortSignal): AsyncGenerator<Block> {
  const seen = new Set<string>()
  /** Whether to write this block: every time with dups=y, else once. */
  const fresh = (cid: CID): boolean => {
    if (params.dups) return true
    const key = cidKey(cid)
    if (seen.has(key)) return false
    seen.add(key)
    return true
  }
  /** Whether this block was written and will not be again (dups=n): decided before it is read, so a repeat costs no read. */
  const written = (cid: CID): boolean => !params.dups && seen.has(cidKey(cid))
  for (const block of resolved.pathBlocks) if (fresh(block.cid)) yield block
  const terminal = resolved.terminal
  if (fresh(terminal.cid)) yield terminal
  if (params.scope === 'block') return

  if (params.scope === 'all') {
    yield * everything(source, terminal, fresh, written, signal)
    return
  }
  // dag-scope=entity: a file's blocks (those for entity-bytes), a sharded directory's shards; anything else is its block.
  if (terminal.cid.code !== dagPb.code) return
  const node = dagPb.decode(terminal.bytes)
  const data = decodeUnixFS(node)
  if (data?.type === 'file' || data?.type === 'raw') {
    const bounds = byteBounds(params.range, Number(data.fileSize()))
    if (bounds === null) return
    yield * fileBlocks(source, node, data, 0, bounds, fresh, written, params.dups ? undefined : new Set(), signal)
  } else if (data?.type === 'hamt-sharded-directory') {
    const pad = (Number(data.fanout ?? 256n) - 1).toString(16).length
    yield * shards(source, node, pad, fresh, written, signal)
  }
}

async function * everything (source: BlockGetter, block: Block, fresh: (cid: CID) => boolean, written: (cid: CID) => boolean, signal?: AbortSignal): AsyncGenerator<Block> {
  const children = linksOf(block)
  for await (const { block: child } of inOrder(source, children, signal, written)) {
    // With dups=n, a subtree met before was written whole the first time.
    if (!fresh(child.cid)) continue
    yield child
    yield * everything(source, child, fresh, written, signal)
  }
}

async function * shards (source: BlockGetter, node: dagPb.PBNode, pad: number, fresh: (cid: CID) => boolean, written: (cid: CID) => boolean, signal?: AbortSignal): AsyncGenerator<Block> {
  const subShards = node.Links.filter((link) => link.Name?.length === pad).map((link) => link.Hash)
  for await (const { block: shard } of inOrder(source, subShards, signal, written)) {
    if (!fresh(shard.cid)) continue
    yield shard
    yield * shards(source, dagPb.decode(shard.bytes), pad, fresh, written, signal)
  }
}

/**
 * The children of a file node that hold bytes in `bounds` (the file's own
 * offsets), depth-first. With dups=n, `walked` holds each subtree already
 * walked with the part of it the range covered: a repeated subtree is
 * walked again only for another part of it. A file linking one subtree
 * many times (three blocks, 262,144 links to one leaf) otherwise cost a
 * walk per link for a CAR of three blocks: 11.7 s (found by review).
 */
async function * fileBlocks (source: BlockGetter, node: dagPb.PBNode, data: UnixFS, start: number, bounds: { first: number, last: number }, fresh: (cid: CID) => boolean, written: (cid: CID) => boolean, walked: Set<string> | undefined, signal?: AbortSignal): AsyncGenerator<Block> {
  let offset = start + (data.data?.byteLength ?? 0)
  const wanted: Array<{ cid: CID, start: number, size: number }> = []
  node.Links.forEach((link, i) => {
    const size = Number(data.blockSizes[i] ?? 0n)
    if (offset <= bounds.last && offset + size - 1 >= bounds.first) wanted.push({ cid: link.Hash, start: offset, size })
    offset += size
  })
  /** The part of a child's subtree the range covers, as `walked` keys it. */
  const partOf = ({ cid, start: childStart, size }: { cid: CID, start: number, size: number }): string => `${cid.toString()} ${Math.max(bounds.first - childStart, 0)} ${Math.min(bounds.last - childStart, size - 1)}`
  // Not read: a child written before whose subtree (if any) was walked for this part already.
  const done = (cid: CID, index: number): boolean => written(cid) && (cid.code !== dagPb.code || walked?.has(partOf(wanted[index] as { cid: CID, start: number, size: number })) === true)
  for await (const { block: child, index } of inOrder(source, wanted.map((w) => w.cid), signal, done)) {
    const want = wanted[index] as { cid: CID, start: number, size: number }
    // A repeated chunk is written once with dups=n, but its subtree may hold other bytes of the range: walk it for those.
    if (fresh(child.cid)) yield child
    if (child.cid.code !== dagPb.code) continue
    if (walked !== undefined) {
      const part = partOf(want)
      if (walked.has(part)) continue
      walked.add(part)
    }
    const childNode = dagPb.decode(child.bytes)
    const childData = decodeUnixFS(childNode)
    if (childData !== undefined && childNode.Links.length > 0) yield * fileBlocks(source, childNode, childData, want.start, bounds, fresh, written, walked, signal)
  }
}
