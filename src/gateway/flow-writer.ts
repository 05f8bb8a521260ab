import type { Writable } from 'node:stream'

/**
 * Writes into an HTTP response (or any Writable), keeping at most `budget`
 * bytes handed to it and not yet written to the socket, counted by the write
 * callbacks rather than by the stream's highWaterMark: a 16 KiB highWaterMark
 * would say "full" after every 1 MiB block and pause the source on every
 * write. A chunk's `release` runs once the socket is done with its bytes, so
 * its buffer can be reused for the next block.
 */
export class FlowWriter {
  readonly #out: Writable
  readonly #budget: number
  #inFlight = 0
  #first = true
  #closed = false
  #waiters: Array<() => void> = []

  constructor (out: Writable, budget: number) {
    this.#out = out
    this.#budget = budget
    out.once('close', () => { this.#closed = true; this.#wake() })
  }

  /** Hands `chunk` to the stream; false when the budget is spent and the source should wait for `ready`. */
  write (chunk: Uint8Array, release?: () => void): boolean {
    const length = chunk.byteLength
    this.#inFlight += length
    // The response head and the first chunk in one write: a small file is one packet.
    const cork = this.#first
    this.#first = false
    if (cork) this.#out.cork()
    this.#out.write(chunk, () => {
      this.#inFlight -= length
      release?.()
      if (this.#inFlight <= this.#budget / 2) this.#wake()
    })
    if (cork) process.nextTick(() => { this.#out.uncork() })
    return this.#inFlight <= this.#budget
  }

  /** Resolves once half the budget is free again, or the stream is closed (writes then fail through their callbacks). */
  async ready (): Promise<void> {
    if (this.#closed || this.#inFlight <= this.#budget / 2) return
    await new Promise<void>((resolve) => { this.#waiters.push(resolve) })
  }

  #wake (): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const wake of waiters) wake()
  }
}

/** Every chunk of `source` into `out`, with the same backpressure; for sources that only iterate. */
export async function writeChunks (source: AsyncIterable<Uint8Array>, out: Writable, budget: number): Promise<void> {
  const flow = new FlowWriter(out, budget)
  for await (const chunk of source) if (!flow.write(chunk)) await flow.ready()
}
