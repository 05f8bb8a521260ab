import type { ContentLock } from './content-lock.ts'

/**
 * Serialises async work per key within this process: two identical uploads
 * finishing at once must not interleave "pin, record" with "unpin on failure".
 */
export class KeyedLock implements ContentLock {
  readonly #tails = new Map<string, Promise<void>>()

  async run<T> (key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const current = new Promise<void>((resolve) => { release = resolve })
    const tail = previous.then(async () => current)
    this.#tails.set(key, tail)
    await previous
    try {
      return await work()
    } finally {
      release()
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }
}
