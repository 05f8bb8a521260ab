import { existsSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join, resolve } from 'node:path'
import { config as loadDotenv } from 'dotenv'
import { ConfigError, loadConfig, type Config } from '../config.ts'
import { openDatabase, openPostgres, type Database } from '../db/database.ts'
import { IdentityRepository } from '../db/identity-repository.ts'
import { QuotaRepository } from '../db/quota-repository.ts'
import { HeimdallError } from '../errors.ts'
import { formatBytes } from '../http/format.ts'
import { QuotaService } from '../services/quota-service.ts'

const USAGE = `usage: npm run admin -- quota <username> [--bytes N|default] [--uploads N|default]
  without --bytes or --uploads: shows the identity's usage and quota
  N: a count, or bytes with an optional K, M, G or T (binary: 10G = 10 GiB); default: the configured QUOTA_BYTES / QUOTA_UPLOADS`

class UsageError extends Error {}

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }

function parseAmount (flag: string, text: string | undefined, withUnits: boolean): number | null {
  if (text === 'default') return null
  const match = /^(\d+)([KMGT]?)(?:i?B)?$/i.exec(text ?? '')
  const unit = (match?.[2] ?? '').toUpperCase()
  if (match === null || (!withUnits && unit !== '')) throw new UsageError(`${flag} takes ${withUnits ? 'bytes (e.g. 500M, 10G)' : 'a count'} or "default"`)
  const value = Number(match[1]) * (UNITS[unit] ?? 1)
  if (!Number.isSafeInteger(value)) throw new UsageError(`${flag} is too large`)
  return value
}

/**
 * The database the running service uses: with the embedded PostgreSQL and
 * the service up, its socket (starting another server there would stop the
 * service's); else DATABASE_URL, or the embedded server started here.
 */
async function open (config: Config): Promise<Database> {
  const dir = resolve(config.dataDir, 'postgres', 'data')
  if (config.databaseUrl === undefined && existsSync(join(dir, '.s.PGSQL.5432'))) {
    const running = openPostgres(`postgres://postgres@${encodeURIComponent(dir)}/heimdall`)
    if (await running.ping().then(() => true, () => false)) return running
    await running.close()
  }
  return openDatabase(config)
}

async function quota (config: Config, args: string[]): Promise<void> {
  const [username, ...flags] = args
  if (username === undefined || username.startsWith('--')) throw new UsageError('name the identity')
  const change: { bytes?: number | null, uploads?: number | null } = {}
  for (let i = 0; i < flags.length; i += 2) {
    const flag = flags[i]
    if (flag === '--bytes') change.bytes = parseAmount(flag, flags[i + 1], true)
    else if (flag === '--uploads') change.uploads = parseAmount(flag, flags[i + 1], false)
    else throw new UsageError(`unknown option ${flag ?? ''}`)
  }
  const db = await open(config)
  try {
    await db.migrate()
    const quotas = new QuotaService(new QuotaRepository(db.knex), config.defaultQuota)
    if (Object.keys(change).length > 0) {
      await quotas.set(username, change)
      console.log(`${new Date().toISOString()} ${userInfo().username} set the quota of ${username}: ${JSON.stringify(change)} (null: the default)`)
    }
    const identity = await new IdentityRepository(db.knex).findByUsername(username)
    if (identity === undefined) throw new UsageError(`no identity named "${username}"`)
    const { usage, quota: q } = await quotas.status(identity)
    console.log(`${identity.username}: ${formatBytes(usage.bytes)} of ${formatBytes(q.bytes)} (${usage.bytes} of ${q.bytes} bytes), ${usage.uploads} of ${q.uploads} uploads`)
  } finally {
    await db.close()
  }
}

loadDotenv({ quiet: true })
try {
  const [command, ...args] = process.argv.slice(2)
  if (command !== 'quota') throw new UsageError(command === undefined ? 'name a command' : `unknown command ${command}`)
  await quota(loadConfig(process.env), args)
} catch (err) {
  if (err instanceof ConfigError) {
    for (const issue of err.issues) console.error(`configuration error: ${issue}`)
  } else if (err instanceof UsageError) {
    console.error(`${err.message}\n${USAGE}`)
  } else {
    console.error('admin command failed:', err instanceof HeimdallError || err instanceof Error ? err.message : err)
  }
  process.exit(1)
}
