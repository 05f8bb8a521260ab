import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import type { Logger } from 'pino'

/**
 * Content that only disabled identities hold, kept in memory by multihash
 * (any CID version of it) so the gateway can refuse it with a set lookup.
 * Refreshed from the database on a schedule, so an operator's `npm run admin
 * -- disable` (another process) is in force within that, on every instance.
 */
export class SuspendedContent {
  readonly #load: () => Promise<string[]>
  readonly #logger: Logger
  #multihashes = new Set<string>()
  #timer: NodeJS.Timeout | undefined

  constructor (load: () => Promise<string[]>, logger: Logger) {
    this.#load = load
    this.#logger = logger
  }

  async start (intervalMs: number): Promise<void> {
    await this.refresh()
    this.#timer = setInterval(() => { void this.refresh().catch((err: unknown) => { this.#logger.warn({ err }, 'could not refresh the content of disabled identities') }) }, intervalMs)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
  }

  async refresh (): Promise<void> {
    const next = new Set<string>()
    for (const text of await this.#load()) {
      try { next.add(base58btc.baseEncode(CID.parse(text).multihash.bytes)) } catch { /* not a CID: nothing to refuse */ }
    }
    this.#multihashes = next
  }

  /** Whether nothing is suspended: the gateway then checks nothing along a path. */
  get empty (): boolean {
    return this.#multihashes.size === 0
  }

  has (cid: CID): boolean {
    return this.#multihashes.size > 0 && this.#multihashes.has(base58btc.baseEncode(cid.multihash.bytes))
  }
}
