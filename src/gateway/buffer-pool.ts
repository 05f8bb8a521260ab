/**
 * Block-sized buffers used again and again. A new 1 MiB buffer per block
 * read made V8 count a gigabyte of external memory per gigabyte sent and
 * collect its whole heap every few dozen blocks: a fifth of the server's time
 * when serving a large file (measured with --cpu-prof). A buffer comes back
 * only when the socket is done with its bytes.
 */
export class BufferPool {
  readonly size: number
  readonly #kept: number
  readonly #free: Buffer[] = []

  constructor (size: number, kept: number) {
    this.size = size
    this.#kept = kept
  }

  take (): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size)
  }

  give (buffer: Buffer): void {
    if (this.#free.length < this.#kept && buffer.length === this.size) this.#free.push(buffer)
  }
}

/** Buffers of the largest block our profiles write (1 MiB), shared by the readers that fill them; 16 are kept between requests. */
export const BLOCK_BUFFERS = new BufferPool(1024 * 1024, 16)
