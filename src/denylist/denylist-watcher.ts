import { mkdir, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { readDenylistFile, type DenylistFile } from './denylist-file.ts'
import type { Denylist } from './denylist.ts'

interface Loaded {
  /** What the file looked like when read: any change reads it again. */
  version: string
  file: DenylistFile
}

export interface DenylistWatcherOptions {
  dir: string
  denylist: Denylist
  logger: Logger
  /** How often the folder is looked at. A few seconds at most, as operators expect. */
  intervalMs: number
  /** Told after the lists changed (added, edited, removed), once they are in force. */
  onChange?: (denylist: Denylist) => Promise<void> | void
}

/**
 * Keeps `denylist` equal to the `*.deny` files in one folder: added, edited
 * and removed files are in force within `intervalMs`. The folder is polled
 * (a `readdir` and a `stat` per file) rather than watched: `fs.watch` misses
 * changes on network and container-mounted folders, which is where shared
 * lists live. A file that cannot be read keeps its last good version in
 * force, so a half-edited list never unblocks content.
 */
export class DenylistWatcher {
  readonly #options: DenylistWatcherOptions
  readonly #loaded = new Map<string, Loaded>()
  #timer: NodeJS.Timeout | undefined
  #scanning: Promise<void> | undefined
  /** A scan asked for while one ran: it starts when that one ends, and serves every ask meanwhile. */
  #rescan: Promise<void> | undefined
  /** The lists changed but applying them failed: the next scan applies them again. */
  #unapplied = false

  constructor (options: DenylistWatcherOptions) {
    this.#options = options
  }

  /** Loads the lists once (creating the folder), then watches. */
  async start (): Promise<void> {
    await mkdir(this.#options.dir, { recursive: true })
    await this.scan()
    this.#timer = setInterval(() => { void this.scan() }, this.#options.intervalMs)
    this.#timer.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#rescan
    await this.#scanning
  }

  /**
   * Looks at the folder now: what it returns settles after a scan that began
   * after the call, so a change made before it is seen. A scan already
   * running may have read the folder before the change; calls meanwhile share
   * one scan queued behind it.
   */
  async scan (): Promise<void> {
    if (this.#scanning === undefined) {
      this.#scanning = this.#scan().finally(() => { this.#scanning = undefined })
      return this.#scanning
    }
    this.#rescan ??= this.#scanning.catch(() => {}).then(async () => {
      this.#rescan = undefined
      return this.scan()
    })
    return this.#rescan
  }

  async #scan (): Promise<void> {
    const { dir, denylist, logger } = this.#options
    let names: string[]
    try {
      names = (await readdir(dir)).filter((name) => name.endsWith('.deny'))
    } catch (err) {
      logger.error({ err, dir }, 'denylist folder unreadable: the lists loaded before stay in force')
      return
    }
    let changed = false
    for (const name of [...this.#loaded.keys()]) {
      if (!names.includes(name)) {
        this.#loaded.delete(name)
        logger.info({ denylist: name }, 'denylist removed')
        changed = true
      }
    }
    for (const name of names) {
      const path = join(dir, name)
      let version: string
      try {
        const info = await stat(path)
        if (!info.isFile()) continue
        version = `${info.ino}:${info.size}:${info.mtimeMs}`
      } catch {
        continue // removed meanwhile: the next scan says so
      }
      if (this.#loaded.get(name)?.version === version) continue
      try {
        const file = await readDenylistFile(path, name)
        for (const problem of file.problems) logger.warn({ denylist: name, line: problem.line }, `denylist item skipped: ${problem.message}`)
        this.#loaded.set(name, { version, file })
        logger.info({ denylist: name, rules: file.counts, skipped: file.problems.length }, 'denylist loaded')
        changed = true
      } catch (err) {
        logger.error({ err, denylist: name }, 'denylist unreadable: its last good version stays in force')
      }
    }
    if (changed) denylist.replace([...this.#loaded.values()].map((loaded) => loaded.file))
    if (!changed && !this.#unapplied) return
    try {
      await this.#options.onChange?.(denylist)
      this.#unapplied = false
    } catch (err) {
      this.#unapplied = true
      logger.error({ err }, 'applying the changed denylists failed; the next scan tries again')
    }
  }
}
