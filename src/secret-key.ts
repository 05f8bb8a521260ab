import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'

/**
 * SECRET_KEY keys the forms' CSRF tokens. Unset, one is generated at first
 * start and kept (mode 0600) under DATA_DIR, so a form a browser holds is
 * still accepted after a restart.
 */
export async function resolveSecretKey (configured: string | undefined, dataDir: string, logger: Logger): Promise<string> {
  if (configured !== undefined) return configured
  const file = join(dataDir, 'secret-key')
  try {
    const stored = (await readFile(file, 'utf8')).trim()
    if (stored.length >= 32) return stored
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const key = randomBytes(32).toString('hex')
  await writeFile(file, `${key}\n`, { mode: 0o600, flag: 'w' })
  logger.warn({ file }, 'SECRET_KEY is not set: generated one and stored it under DATA_DIR; set SECRET_KEY in production')
  return key
}
