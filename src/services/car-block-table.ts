import type * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { PayloadTooLargeError } from '../errors.ts'

/** A block's links, by index, wherever they are kept. */
export interface Links {
  readonly length: number
  name: (i: number) => string
  cid: (i: number) => CID
}

export const NO_LINKS: Links = {
  length: 0,
  name: () => '',
  cid: (i) => { throw new RangeError(`no link ${i}`) }
}

/** What the tree walk knows of a block: enough to walk the tree, never file data. */
export interface BlockInfo {
  size: number
  links: Links
  /** The links' Tsizes added up: with `size`, the node's cumulative DAG size. */
  linkedSize: bigint
  /** UnixFS type of a dag-pb node, or the codec of another; undefined for a raw block or a dag-pb node without UnixFS data. */
  type?: string
  fileSize?: bigint
  fanout?: bigint
}

/** A block's description as parsed, its links as the decoder gave them. */
export interface ParsedBlock extends Omit<BlockInfo, 'links'> {
  links: readonly dagPb.PBLink[]
}

/** The links of a parsed block, as they are. */
export function linksOf (links: readonly dagPb.PBLink[]): Links {
  if (links.length === 0) return NO_LINKS
  return { length: links.length, name: (i) => links[i]?.Name ?? '', cid: (i) => (links[i] as dagPb.PBLink).Hash }
}

const INITIAL_ROWS = 64
/** In a number column: no value. */
const ABSENT = -1
/** In a number column: a value past 2^53, kept exactly in #exact. */
const LARGE = -2
const MAX_UINT32 = 0xffff_ffff

type Column = Uint32Array | Uint8Array | Float64Array

function grown<T extends Column> (column: T, length: number): T {
  if (length <= column.length) return column
  const next = new (column.constructor as new (n: number) => T)(Math.max(length, column.length * 2))
  next.set(column)
  return next
}

/**
 * What a CAR upload keeps of each block while the CAR streams past
 * (CarBundle), in columns rather than an object per block: a raw block by
 * its size alone, any other in a row of typed arrays, and every link's CID
 * bytes end to end in one array. An object per block, with a pair of typed
 * arrays for its links, cost ~760 B for a node of one link (measured over
 * 50,000 and 100,000), so a 260 MB CAR of 2 M such nodes, within the
 * links' bound of a 1 GiB upload, would have held 1.5 GB. In columns a row
 * costs ~40 B besides its key and map entry (~90 B), and a link its CID's
 * bytes and 4 more: ~220 B for that node in all.
 */
export class BlockTable {
  /** Raw blocks: their size. */
  readonly #leaves = new Map<string, number>()
  /** Other blocks: their row. */
  readonly #rows = new Map<string, number>()
  #count = 0
  #size = new Uint32Array(INITIAL_ROWS)
  #firstLink = new Uint32Array(INITIAL_ROWS)
  #linkCount = new Uint32Array(INITIAL_ROWS)
  #type = new Uint8Array(INITIAL_ROWS)
  #linkedSize = new Float64Array(INITIAL_ROWS)
  #fileSize = new Float64Array(INITIAL_ROWS)
  #fanout = new Float64Array(INITIAL_ROWS)
  /** Values past 2^53 (a hostile Tsize), by row: exact, as the walk adds them up. */
  readonly #exact = new Map<number, Partial<Record<'linkedSize' | 'fileSize' | 'fanout', bigint>>>()
  /** The types met, by code; 0 is none. */
  readonly #types: Array<string | undefined> = [undefined]
  #cidBytes = new Uint8Array(INITIAL_ROWS * 40)
  #cidBytesUsed = 0
  /** Where each link's CID ends in #cidBytes. */
  #cidEnds = new Uint32Array(INITIAL_ROWS)
  #links = 0
  /** Names of the links that have one, by link (a file's chunks have none). */
  readonly #names = new Map<number, string>()

  /** Blocks noted. */
  get size (): number {
    return this.#leaves.size + this.#rows.size
  }

  addLeaf (key: string, size: number): void {
    this.#leaves.set(key, size)
  }

  add (key: string, block: ParsedBlock): void {
    if (this.#rows.has(key)) return
    const row = this.#count++
    if (row >= this.#size.length) this.#grow(row + 1)
    this.#size[row] = block.size
    this.#firstLink[row] = this.#links
    this.#linkCount[row] = block.links.length
    this.#type[row] = this.#typeCode(block.type)
    this.#linkedSize[row] = this.#number(row, 'linkedSize', block.linkedSize)
    this.#fileSize[row] = this.#number(row, 'fileSize', block.fileSize)
    this.#fanout[row] = this.#number(row, 'fanout', block.fanout)
    for (const link of block.links) this.#addLink(link)
    this.#rows.set(key, row)
  }

  info (key: string): BlockInfo | undefined {
    const leaf = this.#leaves.get(key)
    if (leaf !== undefined) return { size: leaf, links: NO_LINKS, linkedSize: 0n }
    const row = this.#rows.get(key)
    if (row === undefined) return undefined
    const info: BlockInfo = {
      size: this.#size[row] as number,
      links: this.#linksOf(row),
      linkedSize: this.#value(row, 'linkedSize', this.#linkedSize) ?? 0n
    }
    const type = this.#types[this.#type[row] as number]
    if (type !== undefined) info.type = type
    const fileSize = this.#value(row, 'fileSize', this.#fileSize)
    if (fileSize !== undefined) info.fileSize = fileSize
    const fanout = this.#value(row, 'fanout', this.#fanout)
    if (fanout !== undefined) info.fanout = fanout
    return info
  }

  #linksOf (row: number): Links {
    const first = this.#firstLink[row] as number
    const length = this.#linkCount[row] as number
    if (length === 0) return NO_LINKS
    return {
      length,
      name: (i) => this.#names.get(first + i) ?? '',
      cid: (i) => {
        const link = first + i
        // A copy: a CID kept after the walk (an entry's) must not hold every link's bytes.
        return CID.decode(this.#cidBytes.slice(link === 0 ? 0 : this.#cidEnds[link - 1], this.#cidEnds[link]))
      }
    }
  }

  #addLink (link: dagPb.PBLink): void {
    const bytes = link.Hash.bytes
    const end = this.#cidBytesUsed + bytes.byteLength
    if (end > MAX_UINT32) throw new PayloadTooLargeError('the CAR\'s blocks have too many links to check')
    this.#cidBytes = grown(this.#cidBytes, end)
    this.#cidBytes.set(bytes, this.#cidBytesUsed)
    this.#cidBytesUsed = end
    this.#cidEnds = grown(this.#cidEnds, this.#links + 1)
    if (link.Name !== undefined && link.Name !== '') this.#names.set(this.#links, link.Name)
    this.#cidEnds[this.#links++] = end
  }

  #grow (rows: number): void {
    this.#size = grown(this.#size, rows)
    this.#firstLink = grown(this.#firstLink, rows)
    this.#linkCount = grown(this.#linkCount, rows)
    this.#type = grown(this.#type, rows)
    this.#linkedSize = grown(this.#linkedSize, rows)
    this.#fileSize = grown(this.#fileSize, rows)
    this.#fanout = grown(this.#fanout, rows)
  }

  #typeCode (type: string | undefined): number {
    let code = this.#types.indexOf(type)
    if (code === -1) {
      // A few UnixFS types, and the codecs a CAR's other blocks have: never near 256, but a bound all the same.
      if (this.#types.length === 256) throw new PayloadTooLargeError('the CAR\'s blocks have too many kinds')
      code = this.#types.push(type) - 1
    }
    return code
  }

  #number (row: number, field: 'linkedSize' | 'fileSize' | 'fanout', value: bigint | undefined): number {
    if (value === undefined) return ABSENT
    if (value >= 0n && value <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(value)
    this.#exact.set(row, { ...this.#exact.get(row), [field]: value })
    return LARGE
  }

  #value (row: number, field: 'linkedSize' | 'fileSize' | 'fanout', column: Float64Array): bigint | undefined {
    const value = column[row] as number
    if (value === ABSENT) return undefined
    if (value === LARGE) return this.#exact.get(row)?.[field]
    return BigInt(value)
  }
}
