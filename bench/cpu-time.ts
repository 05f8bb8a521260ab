import { readdirSync, readFileSync, realpathSync } from 'node:fs'
import { descendants } from './workers/peak-rss.ts'

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on Linux). */
const TICKS = 100

/** CPU seconds (user + system) a process has used so far; 0 for one gone meanwhile. */
export function cpuSeconds (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS
  } catch {
    return 0
  }
}

/** CPU seconds of a process and everything below it, as /proc lists them now. */
export function treeCpuSeconds (pid: number): number {
  return [pid, ...descendants(pid)].reduce((sum, p) => sum + cpuSeconds(p), 0)
}

/** The processes running `bin` (e.g. the weed binary), each with its first argument (`volume`, `s3`, `filer`, `master`). */
export function processesOf (bin: string): Array<{ pid: number, role: string }> {
  const target = realpathSync(bin)
  const found: Array<{ pid: number, role: string }> = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (realpathSync(`/proc/${entry}/exe`) !== target) continue
      found.push({ pid: Number(entry), role: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')[1] ?? '?' })
    } catch { /* gone, or not ours to read */ }
  }
  return found
}

/** CPU seconds used by each role of `processes` while `work` runs. */
export async function cpuDuring<T> (processes: Record<string, () => number[]>, work: () => Promise<T>): Promise<{ result: T, seconds: Record<string, number> }> {
  const read = (): Record<string, number> => Object.fromEntries(Object.entries(processes).map(([role, pids]) => [role, pids().reduce((sum, pid) => sum + cpuSeconds(pid), 0)]))
  const before = read()
  const result = await work()
  const after = read()
  return { result, seconds: Object.fromEntries(Object.keys(processes).map((role) => [role, (after[role] ?? 0) - (before[role] ?? 0)])) }
}
