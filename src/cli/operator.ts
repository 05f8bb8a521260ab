import { existsSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join, resolve } from 'node:path'
import type { Config } from '../config.ts'
import { openDatabase, openPostgres, type Database } from '../db/database.ts'

/** Who runs an operator command: the user behind sudo when there is one, else the OS user. */
export function operatorName (): string {
  const sudo = process.env.SUDO_USER
  if (sudo !== undefined && sudo !== '') return sudo
  try {
    return userInfo().username
  } catch {
    return process.env.USER ?? 'unknown'
  }
}

/**
 * The database the running service uses: with the embedded PostgreSQL and
 * the service up, its socket (starting another server there would stop the
 * service's, and its lock refuses to); else DATABASE_URL, or the embedded
 * server started here.
 */
export async function openOperatorDatabase (config: Config): Promise<Database> {
  const dir = resolve(config.dataDir, 'postgres', 'data')
  if (config.databaseUrl === undefined && existsSync(join(dir, '.s.PGSQL.5432'))) {
    const running = openPostgres(`postgres://postgres@${encodeURIComponent(dir)}/heimdall`)
    if (await running.ping().then(() => true, () => false)) return running
    await running.close()
  }
  return openDatabase(config)
}
