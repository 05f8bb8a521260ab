import { randomUUID } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { blockKey } from '../ipfs/block-collector.ts'
import { IDENTITY } from './block-storage.ts'
import type { PackEntry } from './pack-index.ts'

/** What the writer of an import is told about its packs (the collector's lease). */
export interface BatchHooks {
  /** A pack's name, before its object is written: recorded under the import's lease, so no sweep takes it half done. */
  beforeWrite: (name: string) => Promise<void>
  /** Blocks now in the bucket and in the index. */
  written: (cids: readonly CID[]) => void
}

/**
 * The writes of one import, made durable together: `put` takes a block (its
 * bytes are copied, so the caller may use its buffer again) and returns as
 * soon as there is room, `flush` resolves once every block put so far is
 * stored, or rejects with the first failure.
 */
export interface BlockBatch {
  put: (cid: CID, bytes: Uint8Array) => Promise<void>
  flush: () => Promise<void>
  /** Drops what is not yet sent and waits for what is being sent (after a failed import, before its lease is swept). */
  abort: () => Promise<void>
}

/** The first buffer of a pack; it doubles as blocks come, up to the pack's size (a small upload holds little). */
const FIRST_BUFFER = 256 * 1024

/** A pack being filled: its blocks back to back in one buffer. */
export class Pack {
  readonly name = `pack-${randomUUID()}`
  readonly entries: Array<PackEntry & { cid: CID }> = []
  readonly #capacity: number
  #buffer: Buffer
  #used = 0

  constructor (capacity: number) {
    this.#capacity = capacity
    this.#buffer = Buffer.allocUnsafeSlow(Math.min(capacity, FIRST_BUFFER))
  }

  get size (): number { return this.#used }
  get full (): boolean { return this.#used >= this.#capacity }
  fits (length: number): boolean { return this.#used + length <= this.#capacity }

  /**
   * Copies the block in; returns whether the buffer had to grow (then the
   * views of earlier blocks handed out by `view` are of the old one).
   */
  add (cid: CID, key: string, bytes: Uint8Array): boolean {
    const offset = this.#used
    let grew = false
    if (offset + bytes.length > this.#buffer.length) {
      const grown = Buffer.allocUnsafeSlow(Math.min(this.#capacity, Math.max(2 * this.#buffer.length, offset + bytes.length)))
      this.#buffer.copy(grown, 0, 0, offset)
      this.#buffer = grown
      grew = true
    }
    this.#buffer.set(bytes, offset)
    this.#used += bytes.length
    this.entries.push({ cid, key, offset, length: bytes.length })
    return grew
  }

  /** An entry's bytes in the pack (read back until the pack is indexed). */
  view (entry: PackEntry): Uint8Array {
    return this.#buffer.subarray(entry.offset, entry.offset + entry.length)
  }

  get bytes (): Buffer { return this.#buffer.subarray(0, this.#used) }
}

export interface PackSink {
  /** Packs are sealed at this size (a larger block is a pack of its own). */
  packBytes: number
  /** Packs of one import sent at once; with the one being filled, what an import holds in memory. */
  inFlight: number
  /** A block just copied into a pack, readable from there until its pack is stored. */
  pending: (key: string, pack: Pack, bytes: Uint8Array) => void
  /** Stores a sealed pack (object, then index) and lets its pending blocks go. */
  store: (pack: Pack) => Promise<void>
  /** A pack that will not be stored: its pending blocks go. */
  drop: (pack: Pack) => void
}

/**
 * Packs the blocks of one import into objects of about `packBytes`: one
 * PUT per pack rather than per block. Memory is bounded: a put waits while
 * `inFlight` packs are being sent and the open one is full, so an import
 * holds at most `inFlight + 1` packs.
 */
export class PackWriter implements BlockBatch {
  readonly #sink: PackSink
  readonly #hooks: BatchHooks
  readonly #keys = new Set<string>()
  readonly #sending = new Set<Promise<void>>()
  #open: Pack | undefined
  #failure: { error: unknown } | undefined
  #aborted = false

  constructor (sink: PackSink, hooks: BatchHooks) {
    this.#sink = sink
    this.#hooks = hooks
  }

  async put (cid: CID, bytes: Uint8Array): Promise<void> {
    this.#throwIfFailed()
    if (cid.multihash.code === IDENTITY) return
    const key = blockKey(cid)
    // An import writes a repeated chunk (a run of zeros, a texture in two folders) once.
    if (this.#keys.has(key)) return
    this.#keys.add(key)
    for (;;) {
      const open = this.#open
      if (open === undefined) {
        this.#open = new Pack(Math.max(this.#sink.packBytes, bytes.length))
        continue
      }
      if (open.fits(bytes.length)) {
        // After a growth, every pending view moves to the new buffer: the old one is not kept alive by them.
        const grew = open.add(cid, key, bytes)
        for (const entry of grew ? open.entries : open.entries.slice(-1)) this.#sink.pending(entry.key, open, open.view(entry))
        if (open.full && this.#sending.size < this.#sink.inFlight) this.#seal()
        return
      }
      // The open pack is full: sent when there is room, while the next one fills.
      if (this.#sending.size < this.#sink.inFlight) {
        this.#seal()
        continue
      }
      await Promise.race(this.#sending)
      this.#throwIfFailed()
    }
  }

  async flush (): Promise<void> {
    this.#seal()
    while (this.#sending.size > 0) await Promise.all(this.#sending)
    this.#throwIfFailed()
  }

  async abort (): Promise<void> {
    this.#aborted = true
    if (this.#open !== undefined) this.#sink.drop(this.#open)
    this.#open = undefined
    while (this.#sending.size > 0) await Promise.all(this.#sending)
  }

  #seal (): void {
    const pack = this.#open
    this.#open = undefined
    if (pack === undefined || pack.entries.length === 0 || this.#aborted) return
    // Never rejects: a failure is kept for the next put or flush to throw.
    const sent: Promise<void> = this.#sink.store(pack)
      .then(() => { this.#hooks.written(pack.entries.map((e) => e.cid)) })
      .catch((error: unknown) => { this.#failure ??= { error } })
      .finally(() => { this.#sending.delete(sent) })
    this.#sending.add(sent)
  }

  #throwIfFailed (): void {
    if (this.#failure !== undefined) throw this.#failure.error
    if (this.#aborted) throw new Error('the import was aborted')
  }
}
