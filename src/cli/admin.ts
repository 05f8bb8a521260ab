import { join, resolve } from 'node:path'
import { config as loadDotenv } from 'dotenv'
import { ConfigError, loadConfig, type Config } from '../config.ts'
import type { Database } from '../db/database.ts'
import { IdentityRepository } from '../db/identity-repository.ts'
import { QuotaRepository } from '../db/quota-repository.ts'
import { HeimdallError } from '../errors.ts'
import { formatBytes } from '../http/format.ts'
import { QuotaService } from '../services/quota-service.ts'
import { AdminActionRepository } from '../db/admin-action-repository.ts'
import { BlockedContentRepository } from '../db/blocked-content-repository.ts'
import { UploadRepository } from '../db/upload-repository.ts'
import { OperatorPinRepository } from '../db/operator-pin-repository.ts'
import { appendOperatorItem } from '../denylist/operator-list.ts'
import { askControlSocket, controlSocketPath } from '../control-socket.ts'
import { S3Client } from '../storage/s3-client.ts'
import { openOperatorDatabase, operatorName } from './operator.ts'
import { readdir, stat } from 'node:fs/promises'

const USAGE = `usage: npm run admin -- <command>
  identities [SEARCH]            identities (newest first, 50), with their uploads and bytes; SEARCH: part of the name
  disable <username> [reason…]   no sign-in, no keys; content only it holds is no longer served (410)
  enable <username>              undoes disable
  quota <username> [--bytes N|default] [--uploads N|default]
                                 without --bytes or --uploads: shows the identity's usage and quota
                                 N: a count, or bytes with an optional K, M, G or T (10G = 10 GiB); default: QUOTA_BYTES / QUOTA_UPLOADS
  block <CID | /ipfs/…> [reason…] adds it to DENYLIST_DIR/heimdall-operator.deny (as npm run deny)
  usage                          storage: uploads, operator's pins, bytes, blocks on disk, the identities holding most
  unpin <CID>                    ends an operator's pin (npm run import-car without --owner), by the running service
  gc                             a garbage collection by the running service
  log [N]                        the last N operator actions (default 20)
  Every change is recorded with who ran it (SUDO_USER, else the OS user) and when.`

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

const open = openOperatorDatabase

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
      await record(db, 'quota', username.trim().toLowerCase(), change)
    }
    const identity = await new IdentityRepository(db.knex).findByUsername(username)
    if (identity === undefined) throw new UsageError(`no identity named "${username}"`)
    const { usage, quota: q } = await quotas.status(identity)
    console.log(`${identity.username}: ${formatBytes(usage.bytes)} of ${formatBytes(q.bytes)} (${usage.bytes} of ${q.bytes} bytes), ${usage.uploads} of ${q.uploads} uploads`)
  } finally {
    await db.close()
  }
}

/** Writes an action to admin_actions and says it: who, when, what. */
async function record (db: Database, action: string, subject: string | undefined, details: Record<string, unknown> = {}): Promise<void> {
  const done = await new AdminActionRepository(db.knex).record({ actor: operatorName(), action, subject, details })
  console.log(`${done.at.toISOString()} ${done.actor}: ${action}${subject === undefined ? '' : ` ${subject}`}${Object.keys(details).length > 0 ? ` ${JSON.stringify(details)}` : ''}`)
}

async function withDatabase<T> (config: Config, work: (db: Database) => Promise<T>): Promise<T> {
  const db = await open(config)
  try {
    await db.migrate()
    return await work(db)
  } finally {
    await db.close()
  }
}

async function identities (config: Config, args: string[]): Promise<void> {
  await withDatabase(config, async (db) => {
    const found = await new IdentityRepository(db.knex).list({ search: args[0], limit: 50 })
    if (found.length === 0) { console.log('no identity matches'); return }
    for (const identity of found) {
      const state = identity.disabledAt === null ? '' : `  DISABLED since ${identity.disabledAt.toISOString()}`
      console.log(`${identity.username.padEnd(32)} created ${identity.createdAt.toISOString().slice(0, 10)}  ${String(identity.uploads).padStart(6)} uploads  ${formatBytes(identity.bytes).padStart(10)}${state}`)
    }
  })
}

async function setDisabled (config: Config, args: string[], disable: boolean): Promise<void> {
  const [username, ...reason] = args
  if (username === undefined) throw new UsageError('name the identity')
  await withDatabase(config, async (db) => {
    const changed = await new IdentityRepository(db.knex).setDisabled(username, disable ? new Date() : null)
    if (!changed) throw new UsageError(`no identity named "${username}"`)
    await record(db, disable ? 'disable' : 'enable', username.toLowerCase(), reason.length > 0 ? { reason: reason.join(' ') } : {})
    console.log(disable
      ? `${username} is disabled: it cannot sign in, and a running service stops serving what only it holds within ${config.denylistPollSeconds} s`
      : `${username} is enabled again`)
  })
}

async function block (config: Config, args: string[]): Promise<void> {
  const [item, ...reason] = args
  if (item === undefined) throw new UsageError('name the content: a CID or an /ipfs/ path')
  // The database first: a block written to the list but not to admin_actions (the database down) was in force unrecorded.
  await withDatabase(config, async (db) => {
    const { rule, path } = await appendOperatorItem(resolve(config.dataDir, config.denylistDir ?? 'denylists'), item, { reason: reason.join(' '), actor: operatorName() })
    try {
      await record(db, 'block', rule, { list: path, ...(reason.length > 0 ? { reason: reason.join(' ') } : {}) })
    } catch (err) {
      throw new Error(`the block was written to ${path} and is in force, but could not be recorded in admin_actions: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
  })
  console.log(`a running service applies it within ${config.denylistPollSeconds} s`)
}

/** Bytes of the files under `dir` (the embedded node's blocks), 0 if absent. */
async function sizeOf (dir: string): Promise<{ files: number, bytes: number }> {
  const total = { files: 0, bytes: 0 }
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (!entry.isFile()) continue
    total.files++
    total.bytes += (await stat(join(entry.parentPath, entry.name)).catch(() => ({ size: 0 }))).size
  }
  return total
}

/** The shared store's objects (BLOCKSTORE=s3: its blocks/ and packs/ under the prefix, not other data in the bucket), and their bytes. */
async function bucketSize (store: Extract<Config['blockstore'], { kind: 's3' }>): Promise<{ count: number, bytes: number }> {
  const s3 = new S3Client(store)
  try {
    const total = { count: 0, bytes: 0 }
    for (const folder of ['blocks/', 'packs/']) {
      for await (const object of s3.listObjects(`${store.prefix}${folder}`)) { total.count++; total.bytes += object.size }
    }
    return total
  } finally {
    s3.close()
  }
}

async function usage (config: Config): Promise<void> {
  await withDatabase(config, async (db) => {
    const [totals, people, blocked, operatorPins] = await Promise.all([new UploadRepository(db.knex).totals(), new IdentityRepository(db.knex).counts(), new BlockedContentRepository(db.knex).count(), new OperatorPinRepository(db.knex).count()])
    console.log(`${people.identities} identities (${people.disabled} disabled); ${totals.uploads} uploads of ${totals.roots} distinct contents, ${formatBytes(totals.bytes)} as uploaded; ${operatorPins} operator's pins (import-car without --owner); ${blocked} taken down by denylists`)
    if (config.blockstore.kind === 's3') {
      const objects = await bucketSize(config.blockstore)
      console.log(`S3 block store ${config.blockstore.bucket}/${config.blockstore.prefix}: ${objects.count} objects (packs and blocks), ${formatBytes(objects.bytes)} (shared content is stored once)`)
    } else if (config.ipfsApiUrl === undefined) {
      const blocks = await sizeOf(join(resolve(config.dataDir), 'ipfs', 'blocks'))
      console.log(`embedded IPFS node: ${blocks.files} block files, ${formatBytes(blocks.bytes)} on disk (shared content is stored once)`)
    } else {
      console.log(`IPFS node: Kubo at ${config.ipfsApiUrl} (its own figures: ipfs repo stat)`)
    }
    const top = await new IdentityRepository(db.knex).list({ limit: 10, by: 'bytes' })
    for (const identity of top) console.log(`  ${identity.username.padEnd(32)} ${formatBytes(identity.bytes).padStart(10)} in ${identity.uploads} uploads`)
  })
}

/** Ends the operator's pin of a root (npm run import-car without --owner), through the running service, which holds the repo. */
async function unpin (config: Config, args: string[]): Promise<void> {
  const [cid, ...rest] = args
  if (cid === undefined || rest.length > 0) throw new UsageError('name the root: unpin <CID>')
  const asked = await askControlSocket(controlSocketPath(resolve(config.dataDir)), 'POST', `/unpin?${new URLSearchParams({ cid }).toString()}`).catch(() => undefined)
  if (asked === undefined) throw new UsageError('no running service answers on DATA_DIR/heimdall.sock: start it, then unpin')
  if (asked.status !== 200) throw new Error(`the running service could not unpin: ${(asked.body as { error?: string }).error ?? JSON.stringify(asked.body)}`)
  const report = asked.body as { removed: boolean, unpinned: boolean, deferred?: boolean }
  if (!report.removed) throw new UsageError(`${cid} is not an operator's pin (see npm run admin -- usage)`)
  const deferred = report.deferred === true
  await withDatabase(config, async (db) => { await record(db, 'unpin', cid, { unpinned: report.unpinned, ...(deferred ? { deferred } : {}) }) })
  console.log(report.unpinned
    ? 'unpinned; its blocks go at the next collection'
    : deferred
      ? 'the operator\'s pin is gone; the IPFS node did not take the unpin now: it is released when the node answers again (the pin journal, settled every 5 minutes)'
      : 'the operator\'s pin is gone; an upload or a pin request still holds the content')
}

async function gc (config: Config): Promise<void> {
  const asked = await askControlSocket(controlSocketPath(resolve(config.dataDir)), 'POST', '/gc').catch(() => undefined)
  if (asked === undefined) throw new UsageError('no running service answers on DATA_DIR/heimdall.sock: with the service stopped, use npm run gc')
  if (asked.status !== 200) throw new Error(`the running service could not collect: ${JSON.stringify(asked.body)}`)
  const report = asked.body as { blocks: number, bytes: number }
  await withDatabase(config, async (db) => { await record(db, 'gc', undefined, { blocks: report.blocks, bytes: report.bytes }) })
}

async function log (config: Config, args: string[]): Promise<void> {
  const limit = args[0] === undefined ? 20 : Number(args[0])
  if (!Number.isSafeInteger(limit) || limit < 1) throw new UsageError('log takes a count')
  await withDatabase(config, async (db) => {
    for (const action of (await new AdminActionRepository(db.knex).latest(limit)).reverse()) {
      console.log(`${action.at.toISOString()} ${action.actor}: ${action.action}${action.subject === null ? '' : ` ${action.subject}`}${Object.keys(action.details).length > 0 ? ` ${JSON.stringify(action.details)}` : ''}`)
    }
  })
}

loadDotenv({ quiet: true })
try {
  const [command = '', ...args] = process.argv.slice(2)
  const config = loadConfig(process.env)
  switch (command) {
    case 'quota': await quota(config, args); break
    case 'identities': await identities(config, args); break
    case 'disable': await setDisabled(config, args, true); break
    case 'enable': await setDisabled(config, args, false); break
    case 'block': await block(config, args); break
    case 'usage': await usage(config); break
    case 'unpin': await unpin(config, args); break
    case 'gc':
      // It takes nothing: `admin gc --dry-run` would otherwise collect for real (npm run gc -- --dry-run reports only).
      if (args.length > 0) throw new UsageError(`gc takes no arguments (${args.join(' ')}); for a dry run: npm run gc -- --dry-run`)
      await gc(config)
      break
    case 'log': await log(config, args); break
    default: throw new UsageError(command === '' ? 'name a command' : `unknown command ${command}`)
  }
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
