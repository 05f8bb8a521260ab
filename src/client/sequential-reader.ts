import { Readable } from 'node:stream'

/**
 * Hands out consecutive byte ranges of a source that is cheap to read
 * forward and costly to reopen (a bundle is zipped again from its start):
 * the range that follows the last one continues the open stream; any other
 * reopens it at that offset. Nothing is held but the part of one chunk that
 * the last range did not take.
 */
export class SequentialReader {
  readonly #open: (start: number) => Readable
  #stream: Readable | undefined
  #iterator: AsyncIterator<Buffer> | undefined
  #leftover: Buffer | undefined
  #position = 0

  constructor (open: (start: number) => Readable) {
    this.#open = open
  }

  /**
   * Bytes `start` to `end` (exclusive) as a stream. A range that does not
   * start where the bytes taken so far end (a request that failed part-way,
   * resumed from the server's offset) reopens the source there.
   */
  range (start: number, end: number): Readable {
    if (this.#iterator === undefined || start !== this.#position) this.#reopen(start)
    let left = end - start
    const next = async (): Promise<Buffer | null> => {
      if (left <= 0) return null
      let chunk = this.#leftover
      this.#leftover = undefined
      if (chunk === undefined) {
        const step = await (this.#iterator as AsyncIterator<Buffer>).next()
        if (step.done === true) throw new Error(`the source ended ${left} bytes early: did a file change while it was sent?`)
        chunk = step.value
      }
      if (chunk.length > left) {
        this.#leftover = chunk.subarray(left)
        chunk = chunk.subarray(0, left)
      }
      left -= chunk.length
      this.#position += chunk.length
      return chunk
    }
    return Readable.from((async function * () {
      for (let chunk = await next(); chunk !== null; chunk = await next()) yield chunk
    })(), { objectMode: false })
  }

  #reopen (start: number): void {
    this.close()
    this.#stream = this.#open(start)
    this.#iterator = this.#stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>
    this.#position = start
  }

  close (): void {
    this.#stream?.destroy()
    this.#stream = undefined
    this.#iterator = undefined
    this.#leftover = undefined
  }
}
