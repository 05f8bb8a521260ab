import type { CID } from 'multiformats/cid'
import type { Logger } from 'pino'

export interface ProvidingInit {
  /** What the strategy announces now (pinned roots, pinned blocks, or every block). */
  cids: () => AsyncIterable<CID>
  /** Announces one CID; resolves to how many peers took the record. */
  provide: (cid: CID, signal: AbortSignal) => Promise<number>
  /** Stops re-announcing a CID. */
  cancel: (cid: CID) => Promise<void>
  logger: Logger
  /** Announcements under way at once. */
  concurrency?: number
  /** How long one announcement may take. */
  timeoutMs?: number
}

const DEBOUNCE_MS = 1000
const FIRST_SYNC_MS = 3000
const RETRY_MS = 60_000
const MAX_RETRY_MS = 30 * 60_000

/** Multihash bytes as a map key: the DHT knows content by multihash, whatever the codec. */
const keyOf = (cid: CID): string => Buffer.from(cid.multihash.bytes).toString('base64')

/**
 * Keeps what the DHT announces in line with the provide strategy: new CIDs
 * are announced soon after they are pinned (or stored), CIDs no longer
 * pinned stop being re-announced. Re-announcing on schedule is the DHT's
 * own (see reprovideTimes); an announcement that reached no peer is tried
 * again later, backing off.
 */
export class Providing {
  readonly #init: ProvidingInit
  /** Announced and being re-announced by the DHT. */
  readonly #provided = new Map<string, CID>()
  readonly #controller = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #again = false
  #retry = false
  #retryMs = RETRY_MS

  constructor (init: ProvidingInit) {
    this.#init = init
  }

  start (): void {
    this.#schedule(FIRST_SYNC_MS)
  }

  /** Pins changed: announce what is new, drop what is gone. */
  changed (): void {
    this.#schedule(DEBOUNCE_MS)
  }

  /** How many CIDs are announced now. */
  get size (): number {
    return this.#provided.size
  }

  #schedule (ms: number): void {
    if (this.#controller.signal.aborted) return
    if (this.#running !== undefined) { this.#again = true; return }
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => { void this.sync() }, ms)
    this.#timer.unref()
  }

  /** One pass; concurrent calls share it (and ask for another pass after it). */
  async sync (): Promise<void> {
    if (this.#running !== undefined) { this.#again = true; return this.#running }
    clearTimeout(this.#timer)
    this.#running = this.#sync().catch((err: unknown) => {
      if (!this.#controller.signal.aborted) this.#init.logger.warn({ err }, 'could not bring the DHT announcements up to date')
    }).finally(() => {
      this.#running = undefined
      if (this.#again) { this.#again = false; this.#schedule(DEBOUNCE_MS) } else if (this.#retry) this.#schedule(this.#retryMs)
    })
    return this.#running
  }

  async #sync (): Promise<void> {
    const init = this.#init
    const signal = this.#controller.signal
    const wanted = new Map<string, CID>()
    for await (const cid of init.cids()) {
      signal.throwIfAborted()
      wanted.set(keyOf(cid), cid)
    }
    const gone = [...this.#provided].filter(([key]) => !wanted.has(key))
    for (const [key, cid] of gone) {
      this.#provided.delete(key)
      await init.cancel(cid).catch(() => {})
    }
    const fresh = [...wanted].filter(([key]) => !this.#provided.has(key))
    let failed = 0
    let next = 0
    const worker = async (): Promise<void> => {
      for (let i = next++; i < fresh.length; i = next++) {
        const [key, cid] = fresh[i] as [string, CID]
        try {
          const peers = await init.provide(cid, AbortSignal.any([signal, AbortSignal.timeout(init.timeoutMs ?? 120_000)]))
          if (peers > 0) this.#provided.set(key, cid)
          else failed++
        } catch {
          if (signal.aborted) return
          failed++
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(init.concurrency ?? 8, fresh.length) }, worker))
    signal.throwIfAborted()
    if (fresh.length > 0 || gone.length > 0) {
      init.logger.info({ announced: fresh.length - failed, failed, withdrawn: gone.length, total: this.#provided.size }, 'DHT announcements updated')
    }
    // No peer took some records (the DHT may still be finding its peers): again later, backing off.
    this.#retryMs = this.#retry ? Math.min(MAX_RETRY_MS, this.#retryMs * 2) : RETRY_MS
    this.#retry = failed > 0
    if (!this.#retry) this.#retryMs = RETRY_MS
  }

  async stop (): Promise<void> {
    this.#controller.abort()
    clearTimeout(this.#timer)
    await this.#running
  }
}
