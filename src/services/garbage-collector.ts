import type { Logger } from 'pino'
import type { GcReport, IpfsBackend } from '../ipfs/ipfs-backend.ts'

export interface GarbageCollectorOptions {
  backend: Pick<IpfsBackend, 'gc'>
  logger: Logger
  /** Seconds between scheduled collections; 0 = none (collections after deletes still run). */
  intervalSeconds: number
  /** Told after a collection removed blocks (the gateway's caches forget what they remembered). */
  onCollected?: (report: GcReport) => void
}

/**
 * When the IPFS node collects garbage: after deletes, on a schedule, and on
 * request (the control socket). Requests coalesce: while a collection runs,
 * any number of requests make one more run after it, never two at once.
 */
export class GarbageCollector {
  readonly #options: GarbageCollectorOptions
  #running: Promise<void> | undefined
  #again = false
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor (options: GarbageCollectorOptions) {
    this.#options = options
  }

  /** A first collection right away, for what a crash left behind; then the schedule, if there is one. */
  start (): void {
    this.request('start-up')
    const seconds = this.#options.intervalSeconds
    if (seconds <= 0) return
    this.#timer = setInterval(() => { this.request('schedule') }, seconds * 1000)
    this.#timer.unref()
  }

  /** Asks for a collection soon; returns at once. */
  request (reason: string): void {
    if (this.#closed) return
    if (this.#running !== undefined) { this.#again = true; return }
    this.#running = this.#loop(reason).finally(() => { this.#running = undefined })
  }

  /** One collection now (after any under way), with its report; `dryRun` removes nothing. */
  async run (options: { dryRun?: boolean } = {}): Promise<GcReport> {
    const report = await this.#options.backend.gc(options)
    this.#collected(report)
    this.#log(report, options.dryRun === true ? 'dry run' : 'request')
    return report
  }

  /** Whatever runs now and whatever was asked for before close. */
  async idle (): Promise<void> {
    while (this.#running !== undefined) await this.#running
  }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    await this.idle()
  }

  async #loop (reason: string): Promise<void> {
    for (let why = reason; ; why = 'coalesced requests') {
      this.#again = false
      try {
        const report = await this.#options.backend.gc()
        this.#collected(report)
        this.#log(report, why)
      } catch (err) {
        this.#options.logger.warn({ err, reason: why }, 'garbage collection failed')
      }
      if (!this.#again || this.#closed) return
    }
  }

  #collected (report: GcReport): void {
    if (!report.dryRun && report.blocks > 0) this.#options.onCollected?.(report)
  }

  #log (report: GcReport, reason: string): void {
    const damaged = report.compacted?.damaged ?? []
    if (damaged.length > 0) this.#options.logger.warn({ packs: damaged.slice(0, 20), count: damaged.length }, 'packs in the bucket no longer hold the bytes their blocks were indexed with: left as they are, not compacted; their blocks read as damaged')
    const level = report.blocks > 0 || report.records > 0 || (report.compacted?.packs ?? 0) > 0 ? 'info' : 'debug'
    this.#options.logger[level]({ reason, ...report }, report.dryRun ? 'garbage collection (dry run)' : 'garbage collected')
  }
}
