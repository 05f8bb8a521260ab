/**
 * Imports share the gate; a garbage collection has it alone. For a node that
 * collects by itself (Kubo's `repo/gc` knows nothing of our imports between
 * add and pin): a collection waits for imports under way, and imports that
 * start meanwhile wait for it (writer first, so a stream of uploads cannot
 * starve it).
 */
export class GcGate {
  #imports = 0
  #collecting: Promise<void> | undefined
  #drained: (() => void) | undefined

  /** Enters as an import; the returned function leaves (once). */
  async enter (): Promise<() => void> {
    while (this.#collecting !== undefined) await this.#collecting
    this.#imports++
    let left = false
    return () => {
      if (left) return
      left = true
      this.#imports--
      if (this.#imports === 0) this.#drained?.()
    }
  }

  /** Runs `work` with no import inside, one collection at a time. */
  async exclusive<T> (work: () => Promise<T>): Promise<T> {
    while (this.#collecting !== undefined) await this.#collecting
    let done!: () => void
    this.#collecting = new Promise<void>((resolve) => { done = resolve })
    try {
      if (this.#imports > 0) await new Promise<void>((resolve) => { this.#drained = resolve })
      return await work()
    } finally {
      this.#drained = undefined
      this.#collecting = undefined
      done()
    }
  }
}
