import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { config as loadDotenv } from 'dotenv'
import { ConfigError, loadConfig, type Config } from '../config.ts'
import { askControlSocket, controlSocketPath } from '../control-socket.ts'
import { BlockedContentRepository } from '../db/blocked-content-repository.ts'
import { openDatabase } from '../db/database.ts'
import { HeldRootRepository } from '../db/held-root-repository.ts'
import { OperatorPinRepository } from '../db/operator-pin-repository.ts'
import { PinIntentRepository } from '../db/pin-intent-repository.ts'
import { PinRequestRepository } from '../db/pin-request-repository.ts'
import { UploadRepository } from '../db/upload-repository.ts'
import { resolveInstanceId } from '../instance-id.ts'
import { HeliaBackend } from '../ipfs/helia-backend.ts'
import type { GcReport, IpfsBackend } from '../ipfs/ipfs-backend.ts'
import { KuboBackend } from '../ipfs/kubo-backend.ts'
import { kuboBounds } from '../ipfs/open-ipfs-backend.ts'
import { createLogger } from '../logger.ts'
import { UploadService } from '../services/upload-service.ts'
import { maxCarLinks } from '../services/car-bundle.ts'
import { openSharedStore } from '../storage/open-shared-store.ts'

/**
 * `npm run gc [-- --dry-run]`: removes blocks that no upload pins. A running
 * server holds the embedded repo, so it is asked over its control socket
 * (DATA_DIR/heimdall.sock); with no server running, the repo (or, with
 * BLOCKSTORE=s3, the shared store) is opened here.
 */
async function collect (config: Config, dryRun: boolean): Promise<{ report: GcReport, via: string }> {
  const socket = controlSocketPath(config.dataDir)
  const asked = await askControlSocket(socket, 'POST', `/gc${dryRun ? '?dryRun=1' : ''}`).catch(() => undefined)
  if (asked !== undefined) {
    if (asked.status !== 200) throw new Error(`the running server could not collect: ${JSON.stringify(asked.body)}`)
    return { report: asked.body as GcReport, via: 'the running server' }
  }
  if (config.blockstore.kind === 's3') return collectShared(config, config.blockstore, dryRun)
  const backend = config.ipfsApiUrl !== undefined ? new KuboBackend(config.ipfsApiUrl, kuboBounds(config)) : await HeliaBackend.open(join(config.dataDir, 'ipfs'))
  try {
    await keepHeldPins(config, backend, dryRun)
    return { report: await backend.gc({ dryRun }), via: backend.kind === 'kubo' ? 'Kubo' : 'the embedded repo' }
  } finally {
    await backend.close()
  }
}

/**
 * What a start does before its first collection (see openHeimdall), done
 * before a collection run with the service stopped: the pin journal settled,
 * and what the database holds with no pin pinned again, or the collection
 * would take it (an upload made by the versions of 2026-11-24, a root an
 * operator `ipfs pin rm`ed). The database's pending migrations are applied,
 * as a start applies them. A dry run only pins again what is held (else it
 * would report held content as garbage): it neither migrates nor releases
 * anything, and says when it could not look. (The shared store keeps its
 * pins in the database itself, with the uploads.)
 */
async function keepHeldPins (config: Config, backend: IpfsBackend, dryRun: boolean): Promise<void> {
  await mkdir(config.dataDir, { recursive: true })
  const db = await openDatabase(config)
  try {
    if (!dryRun) await db.migrate()
    const uploads = new UploadService({
      backend,
      uploads: new UploadRepository(db.knex),
      profile: config.cidProfile,
      assetExtensions: config.assetExtensions,
      bundleLimits: config.bundleLimits,
      maxCarLinks: maxCarLinks(config.maxUploadBytes, config.bundleLimits.maxEntries),
      zipNameEncoding: config.zipNameEncoding,
      // Its warnings (what was pinned again) on standard error; the report alone on standard output.
      logger: createLogger(config.logLevel, process.stderr),
      pinIntents: new PinIntentRepository(db.knex),
      instanceId: await resolveInstanceId(config.dataDir),
      otherReferences: new PinRequestRepository(db.knex),
      operatorPins: new OperatorPinRepository(db.knex),
      blockedRoots: new BlockedContentRepository(db.knex),
      heldRoots: new HeldRootRepository(db.knex)
    })
    if (dryRun) {
      await uploads.restorePins().catch((err: unknown) => { console.error(`dry run: could not check what the database holds against the pins (${err instanceof Error ? err.message : String(err)}); held content with no pin is counted as garbage below`) })
      return
    }
    await uploads.settlePins({ startup: true })
    await uploads.restorePins()
  } finally {
    await db.close()
  }
}

/**
 * With BLOCKSTORE=s3 and this instance stopped: the bucket is collected as
 * an instance would, as this data folder's instance, its pins and the other
 * instances' import leases read from the shared database.
 */
async function collectShared (config: Config, blockstore: Extract<Config['blockstore'], { kind: 's3' }>, dryRun: boolean): Promise<{ report: GcReport, via: string }> {
  const dir = join(config.dataDir, 'ipfs')
  await mkdir(config.dataDir, { recursive: true }) // where this instance's id is kept
  const db = await openDatabase(config)
  try {
    await db.migrate()
    const shared = await openSharedStore(blockstore, { db: db.knex, dir, instance: await resolveInstanceId(config.dataDir) })
    const backend = await HeliaBackend.open(dir, { shared })
    try {
      return { report: await backend.gc({ dryRun }), via: `the shared store (bucket ${blockstore.bucket})` }
    } finally {
      await backend.close()
    }
  } finally {
    await db.close()
  }
}

loadDotenv({ quiet: true })
try {
  // Strict: a mistyped --dryrun must not run a real collection.
  let dryRun: boolean
  try {
    dryRun = parseArgs({ options: { 'dry-run': { type: 'boolean' } }, strict: true }).values['dry-run'] === true
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\nusage: npm run gc [-- --dry-run]`)
    process.exit(2)
  }
  const { report, via } = await collect(loadConfig(process.env), dryRun)
  const mib = (report.bytes / 1024 ** 2).toFixed(1)
  console.log(dryRun
    ? `dry run (${via}): would free ${report.blocks} blocks, ${report.bytes} bytes (${mib} MiB), and ${report.records} stale records`
    : `garbage collected (${via}): freed ${report.blocks} blocks, ${report.bytes} bytes (${mib} MiB), and ${report.records} stale records${report.compacted === undefined || report.compacted.packs === 0 ? '' : `; compacted ${report.compacted.packs} packs, freeing ${(report.compacted.bytes / 1024 ** 2).toFixed(1)} MiB more`}`)
} catch (err) {
  if (err instanceof ConfigError) {
    for (const issue of err.issues) console.error(`configuration error: ${issue}`)
  } else {
    console.error('garbage collection failed:', err instanceof Error ? err.message : err)
  }
  process.exit(1)
}
