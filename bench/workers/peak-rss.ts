import { readdirSync, readFileSync } from 'node:fs'

/** A size field of /proc/<pid>/status (VmHWM, VmRSS) in bytes; 0 for a process gone meanwhile. */
function statusBytes (pid: number | 'self', field: 'VmHWM' | 'VmRSS'): number {
  let status: string
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return 0
  }
  const kib = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, 'm').exec(status)?.[1]
  return kib === undefined ? 0 : Number(kib) * 1024
}

/** Peak resident set size (VmHWM) of a process in bytes, from /proc; 0 for a process gone meanwhile. */
export function peakRss (pid: number | 'self' = 'self'): number {
  return statusBytes(pid, 'VmHWM')
}

/** Every process below `pid` (children of all its threads, recursively), as /proc lists them now. */
export function descendants (pid: number): number[] {
  const found: number[] = []
  let tasks: string[]
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return found
  }
  for (const task of tasks) {
    let children: string
    try {
      children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8')
    } catch {
      continue
    }
    for (const child of children.trim().split(/\s+/).filter(Boolean).map(Number)) found.push(child, ...descendants(child))
  }
  return found
}

/**
 * Peak RSS of a process tree: the VmHWM of `pid` and of each of its current
 * descendants, summed. Summing over-counts what processes share (the
 * embedded PostgreSQL's shared buffers, counted once per process that
 * touched them), so the figure is an upper bound.
 */
export function treePeakRss (pid: number): number {
  return [pid, ...descendants(pid)].reduce((sum, id) => sum + peakRss(id), 0)
}

/** Resident set size (VmRSS) of a process now, in bytes; 0 for a process gone meanwhile. */
export function currentRss (pid: number): number {
  return statusBytes(pid, 'VmRSS')
}

/**
 * The largest sum of a process tree's resident sets at one moment, sampled
 * every `intervalMs`: what the tree held at once. Summed peaks (treePeakRss)
 * add each process's own high-water mark, although processes peak at
 * different times and short-lived ones (a database's autovacuum workers)
 * may never have coexisted; this is the figure those bound from above. It
 * can miss a peak shorter than the interval.
 */
export class TreeRssSampler {
  readonly #root: number
  readonly #timer: NodeJS.Timeout
  #peak = 0

  constructor (root: number, intervalMs = 100) {
    this.#root = root
    this.#timer = setInterval(() => { this.sample() }, intervalMs)
    this.#timer.unref()
    this.sample()
  }

  sample (): void {
    const sum = [this.#root, ...descendants(this.#root)].reduce((total, pid) => total + currentRss(pid), 0)
    if (sum > this.#peak) this.#peak = sum
  }

  /** The largest sum seen, in bytes; sampling stops. */
  stop (): number {
    clearInterval(this.#timer)
    this.sample()
    return this.#peak
  }
}
