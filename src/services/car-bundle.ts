import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { BadRequestError, PayloadTooLargeError, UnprocessableContentError, UnsupportedMediaTypeError } from '../errors.ts'
import { codecName } from '../ipfs/car-reader.ts'
import { cidKey } from '../ipfs/cid-key.ts'
import { BlockTable, linksOf, NO_LINKS, type BlockInfo, type Links, type ParsedBlock } from './car-block-table.ts'
import type { VerifiedBlock } from '../ipfs/ipfs-backend.ts'
import { pathProblem, type BundleLimits } from './zip-bundle.ts'

/** One file or directory of the CAR's tree; `''` is the root. */
export interface CarEntry {
  path: string
  cid: CID
  isDirectory: boolean
  /** File bytes as the UnixFS node declares them; 0 for directories. */
  size: number
  /** Cumulative DAG size, as `ipfs add` prints it. */
  dagSize: bigint
}

export interface CarTree {
  /** Files before their directories, the root last (path `''`). */
  entries: CarEntry[]
  /** The root is a file, not a directory: `entries` is that one file. */
  rootIsFile: boolean
}

/** How many missing blocks or bad names a refusal lists. */
const MAX_LISTED = 20

/**
 * How many levels a file's DAG may have. Balanced layouts of 174 or more
 * links per node need 5 for a terabyte, trickle ones a few dozen; the
 * gateway's reader nests a generator per level, and a chain of a few
 * thousand single-link nodes (300 KB of CAR) ran it out of stack.
 */
export const MAX_FILE_DEPTH = 256

/**
 * The links all blocks of a CAR may have, kept while it streams (each
 * ~40 bytes packed, its CID's bytes, and its name where it has one): one per
 * 512 bytes the upload may weigh, and at least twice the entries a bundle
 * may have (and 10,000), so ~90 MB at most for MAX_UPLOAD_BYTES' 1 GiB,
 * besides ~95 B per raw block and ~150 B per other, however small (see
 * BlockTable): at most ~440 MB for a CAR of 2 M one-link nodes. A real
 * upload has one per file, folder entry and chunk, and a chunk costs its
 * bytes and ~80 more in the CAR: a 1 GiB file in 256 KiB chunks has ~4,100,
 * one in 1 KiB chunks ~1 M (a 2 KiB bound refused that, found by review),
 * and only chunks under ~450 bytes pass the bound. A CAR of 2 MiB blocks of 262,000 links to the
 * 8-byte identity CID each held ~80 times its size (30 of them ran the
 * server out of memory, found by review).
 */
export function maxCarLinks (maxUploadBytes: number, maxEntries: number): number {
  return Math.max(10_000, 2 * maxEntries, Math.floor(maxUploadBytes / 512))
}

/** Blocks are known by CIDv1 (codec + multihash): a CIDv0 link finds the block its CIDv1 names. */
const keyOf = (cid: CID): string => cidKey(cid.toV1())

/**
 * A CAR as an upload bundle: `record` notes each verified block's links as
 * it streams into the node; `tree` then walks the DAG from the root, in
 * memory, refusing a DAG with missing blocks (422, naming each), nodes that
 * are not UnixFS, unsafe names (400) and trees over the bundle limits (413),
 * as a zip's central directory is checked before its content is read.
 */
export class CarBundle {
  readonly root: CID
  /** The CAR's blocks, described (raw ones by their size alone). */
  readonly #table = new BlockTable()
  /** What reading each file DAG checked so far costs in blocks, by its root: a file named many times is walked once. */
  readonly #fileBlocks = new Map<string, number>()
  /** Blocks walked, and blocks the files' entries will be read back from, against #budget(). */
  #walked = 0
  #readBack = 0
  /** The sizes the checked files' entries declare (their total is bounded by the bundle limits before any read-back). */
  #declared = 0
  #links = 0
  readonly #maxLinks: number

  constructor (root: CID, options: { maxLinks: number }) {
    this.root = root
    this.#maxLinks = options.maxLinks
  }

  /**
   * Passes the blocks on, noting each; refuses (413) a CAR whose blocks link
   * more than `maxLinks` times (see maxCarLinks), or that has more blocks
   * than that and its root: in a DAG every block but the root is linked, and
   * each block noted costs 95–150 B however small (a 1 GiB CAR of 14 M blocks
   * of 40 bytes that nothing links would have held 2 GB).
   */
  async * record (blocks: AsyncIterable<VerifiedBlock>): AsyncIterable<VerifiedBlock> {
    for await (const block of blocks) {
      if (this.#table.size > this.#maxLinks) {
        throw new PayloadTooLargeError(`the CAR has more than ${this.#maxLinks + 1} blocks`, [`a DAG has a block for its root and one for each block it links, at most ${this.#maxLinks} here`])
      }
      if (block.cid.code === raw.code) {
        this.#table.addLeaf(keyOf(block.cid), block.bytes.byteLength)
        yield block
        continue
      }
      const parsed = describe(block)
      this.#links += parsed.links.length
      if (this.#links > this.#maxLinks) {
        throw new PayloadTooLargeError(`the CAR's blocks have more than ${this.#maxLinks} links`, [`a real upload has one per file, folder entry and chunk of a file; block ${block.cid.toString()} brought the count to ${this.#links}`])
      }
      this.#table.add(keyOf(block.cid), parsed)
      yield block
    }
  }

  /**
   * The tree below the root. With `limits`, names are checked as zip entry
   * paths are and the bundle limits apply; without (an operator's import),
   * only the DAG's completeness and shape are.
   */
  tree (limits?: BundleLimits): CarTree {
    const missing: string[] = []
    const unsafe: string[] = []
    const rootInfo = this.#info(this.root)
    if (rootInfo === undefined) throw new UnprocessableContentError(`the CAR holds no block for its root ${this.root.toString()}`, [this.root.toString()])
    const rootKind = kindOf(this.root, rootInfo)
    if (rootKind === 'file') {
      this.#checkFile(this.root, '', missing, limits)
      if (missing.length > 0) throw missingBlocks(missing)
      return { entries: [this.#fileEntry('', this.root, rootInfo)], rootIsFile: true }
    }
    if (rootKind !== 'directory') throw new UnsupportedMediaTypeError(`the CAR's root ${this.root.toString()} is ${rootKind}, not a UnixFS file or directory`)

    const files: CarEntry[] = []
    const directories: CarEntry[] = []
    const seen = new Map<string, string>()
    /** Entries refused by name: counted against maxEntries as the others, and only the first MAX_LISTED described. */
    let rejected = 0
    const refuse = (why: string): void => { if (unsafe.length < MAX_LISTED) unsafe.push(why) }
    const stack: Array<{ cid: CID, path: string, info: BlockInfo }> = [{ cid: this.root, path: '', info: rootInfo }]
    for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
      for (const child of this.#children(dir.cid, dir.info, dir.path, missing, limits !== undefined)) {
        const path = dir.path === '' ? child.name : `${dir.path}/${child.name}`
        if (limits !== undefined) {
          // Refused names count too: 50,000 links of one name in a folder named 300 times kept 2.7 GB of reasons (found by review).
          if (files.length + directories.length + rejected >= limits.maxEntries) {
            throw new PayloadTooLargeError(`the CAR's tree has more than ${limits.maxEntries} entries; at most ${limits.maxEntries} are allowed`)
          }
          const problem = child.name === '' ? 'has an empty name' : child.name.includes('/') ? 'has a "/" in its name' : pathProblem(path)
          if (problem !== undefined) { rejected++; refuse(`${JSON.stringify(path)} ${problem}`); continue }
          const other = seen.get(path.toLowerCase())
          if (other !== undefined) { rejected++; refuse(`${path} collides with ${other} (paths must differ in more than letter case)`); continue }
          seen.set(path.toLowerCase(), path)
        }
        const info = this.#info(child.cid)
        if (info === undefined) { missing.push(`${path}: block ${child.cid.toString()} is missing`); continue }
        const kind = kindOf(child.cid, info)
        if (kind === 'file') {
          this.#checkFile(child.cid, path, missing, limits)
          files.push(this.#fileEntry(path, child.cid, info))
        } else if (kind === 'directory') {
          directories.push({ path, cid: child.cid, isDirectory: true, size: 0, dagSize: dagSizeOf(info) })
          stack.push({ cid: child.cid, path, info })
        } else {
          refuse(`${path} is ${kind}`)
        }
      }
    }
    if (missing.length > 0) throw missingBlocks(missing)
    if (unsafe.length > 0) throw new BadRequestError('the CAR has unsafe entries', unsafe.slice(0, MAX_LISTED))
    if (files.length === 0) throw new BadRequestError('the CAR has no files')
    // Deepest directories first, so that each comes after everything inside it, as `ipfs add` prints them.
    directories.sort((a, b) => b.path.split('/').length - a.path.split('/').length)
    return { entries: [...files, ...directories, { path: '', cid: this.root, isDirectory: true, size: 0, dagSize: dagSizeOf(rootInfo) }], rootIsFile: false }
  }

  #info (cid: CID): BlockInfo | undefined {
    // An identity CID is its own block: never in the CAR's sections, always present.
    if (cid.multihash.code === identity.code) {
      const parsed = describe({ cid, bytes: cid.multihash.digest })
      return { ...parsed, links: linksOf(parsed.links) }
    }
    return this.#table.info(keyOf(cid))
  }

  #fileEntry (path: string, cid: CID, info: BlockInfo): CarEntry {
    return { path, cid, isDirectory: false, size: Number(info.fileSize ?? BigInt(info.size)), dagSize: dagSizeOf(info) }
  }

  /** Named links of a directory, following the shards of a HAMT-sharded one. */
  #children (cid: CID, info: BlockInfo, path: string, missing: string[], bounded: boolean): Array<{ name: string, cid: CID }> {
    if (info.type !== 'hamt-sharded-directory') return Array.from({ length: info.links.length }, (_, i) => ({ name: info.links.name(i), cid: info.links.cid(i) }))
    const children: Array<{ name: string, cid: CID }> = []
    const shards = [{ cid, info }]
    // A shard holds the names whose hashes start with its own prefix, so one directory never links one shard twice. A
    // CAR that did (each shard's 256 links to one sub-shard, a few levels down) grew the walk as 256^depth: 47 KB held
    // the event loop 400 s (found by review).
    const seen = new Set([keyOf(cid)])
    for (let shard = shards.pop(); shard !== undefined; shard = shards.pop()) {
      const padLength = ((shard.info.fanout ?? 256n) - 1n).toString(16).length
      for (let i = 0; i < shard.info.links.length; i++) {
        const name = shard.info.links.name(i)
        const child = shard.info.links.cid(i)
        if (name.length > padLength) { children.push({ name: name.slice(padLength), cid: child }); continue }
        const where = path === '' ? '(root)' : path
        const key = keyOf(child)
        if (seen.has(key)) throw new BadRequestError(`the CAR's directory ${where} links one of its shards more than once`, [child.toString()])
        seen.add(key)
        // A sharded directory named many times is walked for each name: its shards count against the budget, as a file's blocks.
        if (bounded && ++this.#walked > this.#budget()) throw this.#tooMuch()
        const sub = this.#info(child)
        if (sub === undefined) { missing.push(`${where}: directory shard ${child.toString()} is missing`); continue }
        if (sub.type !== 'hamt-sharded-directory') throw new BadRequestError(`the CAR's directory ${where} has a shard link to something that is not a shard`, [child.toString()])
        shards.push({ cid: child, info: sub })
      }
    }
    return children
  }

  /**
   * A few times the CAR's own blocks, and a block per 16 KiB of the files'
   * declared sizes (a large file of repeated chunks, zeros, reads one leaf
   * many times; the sizes are bounded by the bundle limit as they are
   * added): what walking the files' DAGs and sharded directories and
   * reading the files back may cost. A directory naming one file of 10,000 blocks 2,000 times
   * (a 257 KB CAR) cost 12 minutes of reads.
   */
  #budget (): number {
    return 10 * this.#table.size + 10_000 + Math.floor(this.#declared / 16_384)
  }

  /**
   * Every block of a file's DAG is present, and each is part of a file.
   * With `limits` (an upload), the sizes the files declare stay within the
   * bundle limit as they are added (before they raise the budget: a root
   * file declaring 2^32-byte children once passed, found by review), and
   * the walks and the read-back the entry will cost within #budget().
   */
  #checkFile (root: CID, path: string, missing: string[], limits: BundleLimits | undefined): void {
    const info = this.#info(root)
    this.#declared += info === undefined ? 0 : Number(info.fileSize ?? BigInt(info.size))
    if (limits !== undefined && this.#declared > limits.maxUncompressedBytes) {
      throw new PayloadTooLargeError('the CAR\'s files are too large', [`the files add up to ${this.#declared} bytes; at most ${limits.maxUncompressedBytes} are allowed`])
    }
    const bounded = limits !== undefined
    let blocks = this.#fileBlocks.get(keyOf(root))
    if (blocks === undefined) this.#fileBlocks.set(keyOf(root), blocks = this.#walkFile(root, path, missing, bounded))
    this.#readBack += blocks
    if (bounded && this.#readBack > this.#budget()) throw this.#tooMuch()
  }

  #tooMuch (): PayloadTooLargeError {
    return new PayloadTooLargeError('the CAR\'s files would cost too much to check', [`their entries name DAGs of more than ${this.#budget()} blocks in all (a file or a sharded folder linked under many names, or DAGs linking blocks many times)`])
  }

  /**
   * The blocks of a file's DAG, each checked present and part of a file;
   * how many blocks reading the file takes. That counts a block once for
   * each place it is linked from, as a read goes through it each time: a
   * 57 KB CAR of 3 blocks linking one leaf 262,144 times took 52 s to read
   * back (found by review).
   */
  #walkFile (root: CID, path: string, missing: string[], bounded: boolean): number {
    const stack = [root]
    const visited = new Set<string>()
    for (let cid = stack.pop(); cid !== undefined; cid = stack.pop()) {
      const key = keyOf(cid)
      if (visited.has(key)) continue
      visited.add(key)
      if (bounded && ++this.#walked > this.#budget()) throw this.#tooMuch()
      const info = this.#info(cid)
      if (info === undefined) { missing.push(`${path === '' ? '(root)' : path}: block ${cid.toString()} is missing`); continue }
      if (kindOf(cid, info) !== 'file') throw new BadRequestError(`the CAR's file ${path === '' ? '(root)' : path} links to something that is not part of a file`, [cid.toString()])
      for (const cid of cidsOf(info.links)) stack.push(cid)
      if (missing.length >= MAX_LISTED) return visited.size
    }
    return missing.length > 0 ? visited.size : this.#readCost(root, path)
  }

  /**
   * Blocks a read of the complete file DAG under `root` goes through: each
   * block, once per link to it (memoised per block, so the sum costs one
   * pass). Refuses (400) a DAG deeper than MAX_FILE_DEPTH levels.
   */
  #readCost (root: CID, path: string): number {
    const cost = new Map<string, number>()
    const height = new Map<string, number>()
    const stack: Array<{ cid: CID, expanded: boolean }> = [{ cid: root, expanded: false }]
    for (let top = stack.at(-1); top !== undefined; top = stack.at(-1)) {
      const key = keyOf(top.cid)
      const links = this.#info(top.cid)?.links ?? NO_LINKS
      if (cost.has(key)) { stack.pop(); continue }
      if (!top.expanded) {
        // Children first; a DAG of hashes has no cycles.
        top.expanded = true
        for (const cid of cidsOf(links)) if (!cost.has(keyOf(cid))) stack.push({ cid, expanded: false })
        continue
      }
      let sum = 1
      let below = 0
      for (const cid of cidsOf(links)) {
        const child = keyOf(cid)
        sum += cost.get(child) ?? 0
        below = Math.max(below, height.get(child) ?? 0)
      }
      if (below + 1 > MAX_FILE_DEPTH) throw new BadRequestError(`the CAR's file ${path === '' ? '(root)' : path} is a DAG deeper than ${MAX_FILE_DEPTH} levels`, [`no UnixFS layout builds one: ${top.cid.toString()} is ${below + 1} levels above its leaves`])
      cost.set(key, sum)
      height.set(key, below + 1)
      stack.pop()
    }
    return cost.get(keyOf(root)) ?? 1
  }
}

/**
 * The directory `ipfs add -w` would wrap a single file in: one link, named
 * `name`, no mode or mtime, so the same file gives the same root as a plain
 * upload of it.
 */
export async function wrapInDirectory (name: string, file: CarEntry, cidVersion: 0 | 1): Promise<{ block: VerifiedBlock, dagSize: bigint }> {
  const bytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [{ Name: name, Hash: file.cid, Tsize: Number(file.dagSize) }] }))
  const digest = await sha256.digest(bytes)
  const cid = cidVersion === 0 ? CID.createV0(digest) : CID.createV1(dagPb.code, digest)
  return { block: { cid, bytes }, dagSize: BigInt(bytes.byteLength) + file.dagSize }
}

function describe ({ cid, bytes }: VerifiedBlock): ParsedBlock {
  if (cid.code === raw.code) return { size: bytes.byteLength, links: [], linkedSize: 0n }
  if (cid.code !== dagPb.code) return { size: bytes.byteLength, links: [], linkedSize: 0n, type: codecName(cid.code) }
  try {
    const node = dagPb.decode(bytes)
    // Views into the block: the table copies the links' CIDs out, so nothing keeps the block (up to 2 MiB) alive.
    const links = node.Links
    let linkedSize = 0n
    for (const link of node.Links) linkedSize += BigInt(link.Tsize ?? 0)
    if (node.Data === undefined) return { size: bytes.byteLength, links, linkedSize }
    const unixfs = UnixFS.unmarshal(node.Data)
    return { size: bytes.byteLength, links, linkedSize, type: unixfs.type, fileSize: unixfs.type === 'file' || unixfs.type === 'raw' ? unixfs.fileSize() : undefined, fanout: unixfs.fanout }
  } catch (err) {
    throw new UnprocessableContentError(`block ${cid.toString()} is not a valid dag-pb node`, [`${cid.toString()}: ${err instanceof Error ? err.message : String(err)}`])
  }
}

/** What a node is to the tree walk: 'file', 'directory', or a description of why it is neither. */
function kindOf (cid: CID, info: BlockInfo): string {
  if (cid.code === raw.code) return 'file'
  switch (info.type) {
    case 'file':
    case 'raw': return 'file'
    case 'directory':
    case 'hamt-sharded-directory': return 'directory'
    case 'symlink': return 'a symbolic link'
    case undefined: return 'a dag-pb node without UnixFS data'
    default: return `a UnixFS ${info.type} node`
  }
}

function * cidsOf (links: Links): Iterable<CID> {
  for (let i = 0; i < links.length; i++) yield links.cid(i)
}

function dagSizeOf (info: BlockInfo): bigint {
  return BigInt(info.size) + info.linkedSize
}

function missingBlocks (missing: string[]): UnprocessableContentError {
  return new UnprocessableContentError('the CAR does not hold the whole DAG of its root: blocks are missing', missing.slice(0, MAX_LISTED))
}
