/**
 * A least-recently-used map bounded by the bytes its values are said to
 * weigh, not by their count: a 2,000-entry directory weighs what a hundred
 * small ones do. What is under /ipfs/ never changes, so entries never go
 * stale; they only make room.
 */
export class ByteLru<V> {
  readonly #map = new Map<string, { value: V, bytes: number }>()
  readonly #maxBytes: number
  #bytes = 0

  constructor (maxBytes: number) {
    this.#maxBytes = maxBytes
  }

  get bytes (): number { return this.#bytes }
  get size (): number { return this.#map.size }

  get (key: string): V | undefined {
    const entry = this.#map.get(key)
    if (entry === undefined) return undefined
    // Map keeps insertion order: re-inserting makes this the most recent.
    this.#map.delete(key)
    this.#map.set(key, entry)
    return entry.value
  }

  /** Drops every entry. */
  clear (): void {
    this.#map.clear()
    this.#bytes = 0
  }

  /** Stores `value`; one heavier than the whole budget is not kept at all. */
  set (key: string, value: V, bytes: number): void {
    const previous = this.#map.get(key)
    if (previous !== undefined) {
      this.#map.delete(key)
      this.#bytes -= previous.bytes
    }
    if (bytes > this.#maxBytes) return
    this.#map.set(key, { value, bytes })
    this.#bytes += bytes
    for (const [oldest, entry] of this.#map) {
      if (this.#bytes <= this.#maxBytes) break
      this.#map.delete(oldest)
      this.#bytes -= entry.bytes
    }
  }
}
