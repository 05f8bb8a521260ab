import { readdirSync, readFileSync } from 'node:fs'

/** Peak resident set size (VmHWM) of a process in bytes, from /proc; 0 for a process gone meanwhile. */
export function peakRss (pid: number | 'self' = 'self'): number {
  let status: string
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return 0
  }
  const kib = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status)?.[1]
  return kib === undefined ? 0 : Number(kib) * 1024
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
