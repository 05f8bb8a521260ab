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

/**
 * The bytes the pack buffers of every import of a store hold at once
 * (S3_PACK_MEMORY). Past the budget no buffer grows: packs are sent at the
 * size they have, so many imports at once send smaller packs rather than
 * hold three full ones each. Nothing ever waits on it: past the budget a new
 * pack's buffer is its first block alone, taken whatever the budget, so
 * every import goes on (holding at most one block per pack beyond the
 * budget), and a pack that cannot grow is sent.
 */
export class PackMemory {
  readonly budget: number
  #held = 0
  #peak = 0

  constructor (budget: number) {
    this.budget = budget
  }

  /** Bytes held now, and the most held at once. */
  get held (): number { return this.#held }
  get peak (): number { return this.#peak }

  /** Takes `bytes` if they fit in what the budget has left. */
  tryTake (bytes: number): boolean {
    if (this.#held + bytes > this.budget) return false
    this.take(bytes)
    return true
  }

  /** Takes `bytes` whatever the budget (a pack's first buffer). */
  take (bytes: number): void {
    this.#held += bytes
    this.#peak = Math.max(this.#peak, this.#held)
  }

  give (bytes: number): void {
    this.#held -= bytes
  }
}

/** A buffer of `size` bytes whose `taken` bytes were taken from `memory`: given back if the allocation fails. */
function allocated (memory: PackMemory, size: number, taken: number): Buffer {
  try {
    return Buffer.allocUnsafeSlow(size)
  } catch (err) {
    memory.give(taken)
    throw err
  }
}

/** A pack being filled: its blocks back to back in one buffer. */
export class Pack {
  readonly name = `pack-${randomUUID()}`
  readonly entries: Array<PackEntry & { cid: CID }> = []
  readonly #capacity: number
  readonly #memory: PackMemory
  #buffer: Buffer
  #used = 0
  #released = false

  constructor (capacity: number, memory: PackMemory, first = 0) {
    this.#capacity = capacity
    this.#memory = memory
    // Past the budget, a pack's buffer is its first block alone: taken whatever the budget, so the import goes on.
    let length = Math.min(capacity, Math.max(FIRST_BUFFER, first))
    if (!memory.tryTake(length)) {
      length = first
      memory.take(length)
    }
    this.#buffer = allocated(memory, length, length)
  }

  get size (): number { return this.#used }
  get full (): boolean { return this.#used >= this.#capacity }

  /**
   * Whether `length` more bytes go in: within the pack's size, and within
   * its buffer, grown if need be as far as the store's pack memory allows
   * (an empty pack always takes its first block). 'grew' when the buffer
   * was replaced: the views of earlier blocks handed out by `view` are of
   * the old one.
   */
  room (length: number): 'no' | 'yes' | 'grew' {
    const needed = this.#used + length
    if (needed > this.#capacity && this.entries.length > 0) return 'no'
    if (needed <= this.#buffer.length) return 'yes'
    const grown = Math.max(needed, Math.min(this.#capacity, 2 * this.#buffer.length))
    let size = grown
    if (!this.#memory.tryTake(grown - this.#buffer.length)) {
      // Only what this block needs, if even that is left; an empty pack takes it anyway.
      size = needed
      if (this.entries.length === 0) this.#memory.take(needed - this.#buffer.length)
      else if (!this.#memory.tryTake(needed - this.#buffer.length)) return 'no'
    }
    const buffer = allocated(this.#memory, size, size - this.#buffer.length)
    this.#buffer.copy(buffer, 0, 0, this.#used)
    this.#buffer = buffer
    return 'grew'
  }

  /** Copies a block in, after `room` said it goes. */
  add (cid: CID, key: string, bytes: Uint8Array): void {
    const offset = this.#used
    this.#buffer.set(bytes, offset)
    this.#used += bytes.length
    this.entries.push({ cid, key, offset, length: bytes.length })
  }

  /** Gives the buffer's bytes back to the store's pack memory (once the pack is stored or dropped); idempotent. */
  release (): void {
    if (this.#released) return
    this.#released = true
    this.#memory.give(this.#buffer.length)
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
  /** What the packs of all the store's imports may hold at once. */
  memory: PackMemory
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
 * holds at most `inFlight + 1` packs; and a pack is full early when the
 * store's pack memory has no room for its buffer to grow.
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
        this.#open = new Pack(Math.max(this.#sink.packBytes, bytes.length), this.#sink.memory, bytes.length)
        continue
      }
      const room = open.room(bytes.length)
      if (room !== 'no') {
        open.add(cid, key, bytes)
        // After a growth, every pending view moves to the new buffer: the old one is not kept alive by them.
        for (const entry of room === 'grew' ? open.entries : open.entries.slice(-1)) this.#sink.pending(entry.key, open, open.view(entry))
        if (open.full && this.#sending.size < this.#sink.inFlight) this.#seal()
        return
      }
      // The open pack is full (or may not grow): sent when there is room, while the next one fills.
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
    if (this.#open !== undefined) this.#discard(this.#open)
    this.#open = undefined
    while (this.#sending.size > 0) await Promise.all(this.#sending)
  }

  #seal (): void {
    const pack = this.#open
    this.#open = undefined
    if (pack === undefined) return
    if (pack.entries.length === 0 || this.#aborted) {
      this.#discard(pack)
      return
    }
    // Never rejects: a failure is kept for the next put or flush to throw.
    const sent: Promise<void> = this.#sink.store(pack)
      .then(() => { this.#hooks.written(pack.entries.map((e) => e.cid)) })
      .catch((error: unknown) => { this.#failure ??= { error } })
      .finally(() => { this.#sending.delete(sent); pack.release() })
    this.#sending.add(sent)
  }

  /** A pack that will not be sent: its pending blocks and its memory go. */
  #discard (pack: Pack): void {
    this.#sink.drop(pack)
    pack.release()
  }

  #throwIfFailed (): void {
    if (this.#failure !== undefined) throw this.#failure.error
    if (this.#aborted) throw new Error('the import was aborted')
  }
}
