import { statfs } from 'node:fs/promises'

/** Free bytes for an unprivileged writer on the file system that holds `dir`. */
export async function freeBytes (dir: string): Promise<number> {
  const stats = await statfs(dir)
  return stats.bavail * stats.bsize
}

/**
 * A readiness check: 'low' when any of `dirs` has fewer than `minFreeBytes`
 * free. Uploads would fail there with 507; the probe says so before they do.
 */
export function diskSpaceCheck (dirs: readonly string[], minFreeBytes: number): () => Promise<{ state: 'ok' | 'low', detail?: string }> {
  return async () => {
    for (const dir of dirs) {
      const free = await freeBytes(dir)
      if (free < minFreeBytes) return { state: 'low', detail: `${free} bytes free under ${dir}, fewer than MIN_FREE_BYTES (${minFreeBytes})` }
    }
    return { state: 'ok' }
  }
}
