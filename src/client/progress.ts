/** How far an upload is, for a person at a terminal or for a log. */
export interface Progress {
  /** Bytes the server has (or the connection has taken) so far. */
  update: (sent: number) => void
  /** A line of its own (resuming, retrying), without breaking the bar. */
  note: (message: string) => void
  /** The upload is done (its last line, if the bytes did not say so). */
  finish: () => void
}

export interface ProgressOptions {
  total: number
  /** Written to: the standard error, so that standard output carries the result alone. */
  out: NodeJS.WritableStream & { isTTY?: boolean, columns?: number }
  /** `now()` in milliseconds; tests and rates. */
  now?: () => number
}

export function formatBytes (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit] ?? ''}`
}

export function formatDuration (seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--'
  const s = Math.max(0, Math.round(seconds))
  const h = Math.floor(s / 3600)
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0')
  const ss = String(s % 60).padStart(2, '0')
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`
}

/**
 * The rate over the last few seconds (bytes per second), so that a stall or
 * a resumed upload's first jump does not skew the ETA for long.
 */
class Rate {
  readonly #window: Array<{ at: number, sent: number }> = []

  add (at: number, sent: number): void {
    this.#window.push({ at, sent })
    while (this.#window.length > 2 && at - (this.#window[0]?.at ?? at) > 5000) this.#window.shift()
  }

  /** After a resume the bytes jump to the server's offset: the window starts again there. */
  reset (): void { this.#window.length = 0 }

  /** `final`: the last figure, from whatever span there was (a small file may take less than the 250 ms asked of a running figure). */
  perSecond (final = false): number {
    const first = this.#window[0]
    const last = this.#window.at(-1)
    if (first === undefined || last === undefined || last.at - first.at < (final ? 1 : 250)) return Number.NaN
    return ((last.sent - first.sent) * 1000) / (last.at - first.at)
  }
}

/**
 * On a terminal, one line redrawn at most ten times a second: percent, bytes
 * of total, rate, time left. Otherwise plain lines a log keeps: the start,
 * every 10 %, the end.
 */
export function createProgress (options: ProgressOptions): Progress {
  const { total, out } = options
  const now = options.now ?? (() => performance.now())
  const rate = new Rate()
  const tty = out.isTTY === true
  let last = -1
  let drawnAt = 0
  let decile = -1
  let lineOpen = false

  const describe = (sent: number): string => {
    const percent = total === 0 ? 100 : Math.floor((sent / total) * 100)
    const speed = rate.perSecond(sent >= total)
    const eta = Number.isNaN(speed) || speed <= 0 ? Number.NaN : (total - sent) / speed
    return `${String(percent).padStart(3)} % ${formatBytes(sent)} of ${formatBytes(total)}, ${Number.isNaN(speed) ? '…' : `${formatBytes(speed)}/s`}, ${Number.isNaN(eta) ? 'ETA --:--' : `ETA ${formatDuration(eta)}`}`
  }

  /**
   * The line fits the terminal, one column short of its width: a longer one
   * wraps, and the carriage return then redraws only its last row, leaving
   * a trail of half lines. The bar shrinks first (30 columns down to 10),
   * then goes, then the text is cut.
   */
  const draw = (sent: number): void => {
    const text = describe(sent)
    // A terminal that reports no width (0, as a pseudo-terminal without a size does) is taken as 80 columns.
    const room = (out.columns !== undefined && out.columns > 0 ? out.columns : 80) - 1
    const width = Math.min(30, room - text.length - 3)
    let line = text.slice(0, Math.max(0, room))
    if (width >= 10) {
      const filled = total === 0 ? width : Math.round((sent / total) * width)
      line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}`
    }
    out.write(`\r${line}\x1b[K`)
    lineOpen = true
  }

  const endLine = (): void => {
    if (lineOpen) out.write('\n')
    lineOpen = false
  }

  let allSent = false
  /** Once every byte is out: the last line, then what the wait that follows is (the server checks and imports before it answers). */
  const sentAll = (): void => {
    if (allSent) return
    allSent = true
    if (tty) { draw(total); endLine() }
    out.write('sent; the server is checking the upload and adding it to IPFS…\n')
  }

  return {
    update: (sent) => {
      if (allSent) return
      const at = now()
      if (sent < last) rate.reset()
      rate.add(at, sent)
      last = sent
      if (tty) {
        if (sent >= total) sentAll()
        else if (at - drawnAt >= 100) { drawnAt = at; draw(sent) }
        return
      }
      const reached = total === 0 ? 10 : Math.floor((sent / total) * 10)
      if (reached > decile) {
        decile = reached
        out.write(`${describe(sent)}\n`)
      }
      if (sent >= total) sentAll()
    },
    note: (message) => {
      endLine()
      out.write(`${message}\n`)
      rate.reset()
      decile = -1
    },
    finish: sentAll
  }
}
