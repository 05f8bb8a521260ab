import type { CID } from 'multiformats/cid'
import type { Logger } from 'pino'
import { multihashKey } from '../ipfs/cid-forms.ts'

/**
 * Content the gateway refuses, kept in memory by multihash (any CID version
 * of it) so that a request costs a set lookup, not a query: what only
 * disabled identities hold, and the roots denylists took down. Refreshed
 * from the database on a schedule, so an operator's `npm run admin --
 * disable` (another process) or another instance's take-down is in force
 * within that, on every instance; `refresh()` at once for this process's own.
 */
export class SuspendedContent {
  readonly #load: () => Promise<string[]>
  readonly #logger: Logger
  readonly #what: string
  #multihashes = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  /** The load under way, and the one asked for while it runs. */
  #running: Promise<void> | undefined
  #again: Promise<void> | undefined
  /** What `add` put in while a load was under way: that load may have read the database before it was recorded. */
  #addedDuringLoad: Set<string> | undefined

  constructor (load: () => Promise<string[]>, logger: Logger, what = 'the content of disabled identities') {
    this.#load = load
    this.#logger = logger
    this.#what = what
  }

  async start (intervalMs: number): Promise<void> {
    await this.refresh()
    this.#timer = setInterval(() => { void this.refresh().catch((err: unknown) => { this.#logger.warn({ err }, `could not refresh ${this.#what}`) }) }, intervalMs)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
  }

  /** Loads the set again; a refresh asked while one runs waits for that one and then runs once more, never two at once. */
  async refresh (): Promise<void> {
    if (this.#running !== undefined) {
      this.#again ??= this.#running.then(async () => { this.#again = undefined; await this.refresh() })
      return this.#again
    }
    this.#running = this.#reload().finally(() => { this.#running = undefined })
    return this.#running
  }

  async #reload (): Promise<void> {
    const added = this.#addedDuringLoad = new Set<string>()
    try {
      const next = new Set<string>()
      for (const text of await this.#load()) next.add(multihashKey(text))
      for (const key of added) next.add(key)
      this.#multihashes = next
    } finally {
      this.#addedDuringLoad = undefined
    }
  }

  /** Adds one CID at once, ahead of the next refresh (which keeps it if the database does). */
  add (text: string): void {
    const key = multihashKey(text)
    this.#multihashes.add(key)
    this.#addedDuringLoad?.add(key)
  }

  /** Whether nothing is suspended: the gateway then checks nothing along a path. */
  get empty (): boolean {
    return this.#multihashes.size === 0
  }

  has (cid: CID): boolean {
    return this.#multihashes.size > 0 && this.#multihashes.has(multihashKey(cid))
  }
}
