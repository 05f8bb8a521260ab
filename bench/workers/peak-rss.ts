import { readFileSync } from 'node:fs'

/** Peak resident set size (VmHWM) of a process in bytes, from /proc. */
export function peakRss (pid: number | 'self' = 'self'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status)?.[1]
  return kib === undefined ? Number.NaN : Number(kib) * 1024
}
