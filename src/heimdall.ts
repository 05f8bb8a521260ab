import { mkdir, readdir, readFile, rm } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { CID } from 'multiformats/cid'
import { join, resolve } from 'node:path'
import type { Express } from 'express'
import type { Logger } from 'pino'
import type { Config } from './config.ts'
import { openDatabase, type Database } from './db/database.ts'
import { deadClientCheckFor } from './db/dead-client.ts'
import { IdentityRepository } from './db/identity-repository.ts'
import { SessionRepository } from './db/session-repository.ts'
import { ApiKeyRepository } from './db/api-key-repository.ts'
import { QuotaRepository } from './db/quota-repository.ts'
import { RateLimitRepository } from './db/rate-limit-repository.ts'
import { PinIntentRepository } from './db/pin-intent-repository.ts'
import { PinRequestRepository } from './db/pin-request-repository.ts'
import { OperatorPinRepository } from './db/operator-pin-repository.ts'
import { HeldRootRepository } from './db/held-root-repository.ts'
import { ThumbnailRepository } from './db/thumbnail-repository.ts'
import { UploadRepository } from './db/upload-repository.ts'
import { ResumableUploadRepository } from './db/resumable-upload-repository.ts'
import { ResumableUploadService } from './services/resumable-upload-service.ts'
import { resolveInstanceId } from './instance-id.ts'
import { BUILD_DIR, createApp } from './http/app.ts'
import { CsrfProtection } from './http/csrf.ts'
import { BrowserSessions } from './http/session.ts'
import { multihashForms, rootForms } from './ipfs/cid-forms.ts'
import { parseCid } from './http/cid-param.ts'
import type { IpfsBackend } from './ipfs/ipfs-backend.ts'
import { HeliaBackend } from './ipfs/helia-backend.ts'
import { openIpfsBackend } from './ipfs/open-ipfs-backend.ts'
import { PgAdvisoryLock } from './db/advisory-lock.ts'
import { openContentReader } from './gateway/open-content-reader.ts'
import { gatewayEntryLimit } from './gateway/unixfs-reader.ts'
import { diskSpaceCheck } from './disk-space.ts'
import { GarbageCollector } from './services/garbage-collector.ts'
import { resolveSecretKey } from './secret-key.ts'
import { IdentityService } from './services/identity-service.ts'
import { SessionService } from './services/session-service.ts'
import { ApiKeyService } from './services/api-key-service.ts'
import { QuotaService } from './services/quota-service.ts'
import { RateLimiter } from './services/rate-limiter.ts'
import { UploadService } from './services/upload-service.ts'
import { maxCarLinks } from './services/car-bundle.ts'
import { PinRequestService } from './services/pin-request-service.ts'
import { resolvePeerIdentity, type PeerIdentity } from './ipfs/peer-identity.ts'
import { openDelegates } from './ipfs/delegates.ts'
import { ThumbnailService } from './services/thumbnail-service.ts'
import { importCarAsOperator, type CarImportReport } from './services/operator-car-import.ts'
import { BlockedContentRepository } from './db/blocked-content-repository.ts'
import { Denylist } from './denylist/denylist.ts'
import { DenylistWatcher } from './denylist/denylist-watcher.ts'
import { DenylistEnforcer } from './services/denylist-enforcer.ts'
import { Metrics } from './http/metrics.ts'
import { SuspendedContent } from './services/suspended-content.ts'

export interface Heimdall {
  app: Express
  database: Database
  backend: IpfsBackend
  /** Garbage collection of the IPFS node: scheduled, after deletes, and on request. */
  collector: GarbageCollector
  /** Where uploads wait while they are received; empty whenever no upload is under way. */
  tmpDir: string
  /** An operator's CAR import (`npm run import-car`), asked over the control socket. */
  importCar: (source: AsyncIterable<Uint8Array>, options: { fileName: string, owner?: string, actor?: string, signal?: AbortSignal }) => Promise<CarImportReport>
  /** Ends an operator's pin (`npm run admin -- unpin`): unpinned unless an upload or a pin request holds the root. */
  unpinOperator: (rootCid: string) => Promise<{ removed: boolean, unpinned: boolean, deferred?: boolean }>
  /** Settles the pin journal now, as it is every SETTLE_INTERVAL_MS: how many pins it released. */
  settlePins: () => Promise<number>
  close: () => Promise<void>
}

/** How often the pin journal is settled while running (rows of this instance older than ten minutes, anyone's older than an hour: see UploadService.settlePins). */
const SETTLE_INTERVAL_MS = 5 * 60_000
/** How long closing waits for a settlement under way. */
const SETTLE_CLOSE_WAIT_MS = 3000

/** The manifest scripts/build-web.ts writes; start-up refuses to go on without it. */
async function loadAssetManifest (): Promise<Record<string, string>> {
  try {
    return JSON.parse(await readFile(join(BUILD_DIR, 'manifest.json'), 'utf8')) as Record<string, string>
  } catch (err) {
    throw new Error('the web assets are not built: run `npm run build:web` (npm start does it first)', { cause: err })
  }
}

/** Says once, at start, where uploaded content can be fetched from. */
function logNetwork (backend: IpfsBackend, config: Config, logger: Logger): void {
  if (backend.kind === 'kubo') return
  const network = backend.network
  if (network === undefined) {
    logger.info('IPFS_NETWORK=off: content is stored and served on this node only, through its own gateway; other IPFS nodes and public gateways cannot fetch it. ' +
      'To publish it, set IPFS_NETWORK=private with IPFS_PEERS (IPFS nodes of yours that this node connects to), or IPFS_NETWORK=public (announced in the public DHT), and open IPFS_LISTEN\'s port; see "The IPFS network" in README.md.')
    return
  }
  logger.info({ mode: network.mode, peerId: network.peerId, addresses: network.addresses(), peers: config.network.peers.length },
    network.mode === 'private'
      ? 'on the IPFS network (private): content is served over Bitswap to the peers this node is connected to (IPFS_PEERS), and announced nowhere'
      : `on the IPFS network (public): pinned content is announced in the DHT (strategy ${config.network.provideStrategy})`)
  if (network.mode === 'public' && config.network.listen.every((text) => /^\/ip[46]\/(127\.|::1\/)/.test(text)) && config.network.announce.length === 0) {
    logger.warn('IPFS_NETWORK=public, but IPFS_LISTEN is loopback only and there is no IPFS_ANNOUNCE: nodes elsewhere cannot dial this one. Listen on /ip4/0.0.0.0/tcp/4001 (and announce the public address).')
  }
}

/** Empties the temp folder: whatever is there was left by a process that died mid-upload. */
async function resetTmpDir (tmpDir: string): Promise<void> {
  await mkdir(tmpDir, { recursive: true })
  for (const name of await readdir(tmpDir)) await rm(join(tmpDir, name), { recursive: true, force: true })
}

/**
 * The database (migrated) and the IPFS node, opened side by side: the first
 * start's initdb takes longest, and the node's file store needs nothing of
 * the database (a shared store waits for `migrated`: its pins and leases are
 * tables). Whichever opened is closed again when the other fails.
 */
async function openStorage (opening: Promise<Database>, openBackend: (migrated: Promise<Database>) => Promise<IpfsBackend>): Promise<{ database: Database, backend: IpfsBackend }> {
  const migrated = opening.then(async (db) => {
    try {
      await db.migrate()
      return db
    } catch (err) {
      await db.close()
      throw err
    }
  })
  const [database, backend] = await Promise.allSettled([migrated, openBackend(migrated)])
  if (database.status === 'fulfilled' && backend.status === 'fulfilled') return { database: database.value, backend: backend.value }
  if (database.status === 'fulfilled') await database.value.close()
  if (backend.status === 'fulfilled') await backend.value.close()
  throw database.status === 'rejected' ? database.reason : (backend as PromiseRejectedResult).reason
}

/**
 * Opens storage, builds the services and the app. Everything `main.ts` runs,
 * and what tests start against a temp DATA_DIR, short of listening.
 */
export async function openHeimdall (config: Config, logger: Logger, options: { database?: Promise<Database> } = {}): Promise<Heimdall> {
  const dataDir = resolve(config.dataDir)
  const tmpDir = join(dataDir, 'tmp')
  // Started first: the embedded PostgreSQL's start (initdb on an empty DATA_DIR) is the longest step. Its failure is handled below.
  const opening = options.database ?? openDatabase({ ...config, dataDir }, { log: logger })
  opening.catch(() => {})
  let secretKey: string
  let assets: Record<string, string>
  let peer: PeerIdentity
  let instanceId: string
  try {
    await mkdir(dataDir, { recursive: true })
    await resetTmpDir(tmpDir)
    secretKey = await resolveSecretKey(config.secretKey, dataDir, logger)
    assets = await loadAssetManifest()
    // The same peer id whether or not the node is on the network: the Pinning Service API's delegates name it.
    peer = await resolvePeerIdentity(dataDir)
    instanceId = await resolveInstanceId(dataDir)
  } catch (err) {
    void opening.then(async (db) => db.close(), () => {})
    throw err
  }
  const blockstore = config.blockstore
  const { database, backend } = await openStorage(opening, async (migrated) => {
    // A shared store keeps its pins and leases in the database: it opens once the tables are there.
    // The S3 client and its XML parser are loaded only for the shared store, not on the default start.
    const shared = blockstore.kind === 's3' ? await (await import('./storage/open-shared-store.ts')).openSharedStore(blockstore, { db: (await migrated).knex, dir: join(dataDir, 'ipfs'), instance: instanceId }) : undefined
    return openIpfsBackend({ ...config, dataDir }, { privateKey: peer.privateKey, logger, ...(shared === undefined ? {} : { shared }) })
  })
  // Instances sharing a store share the per-root lock of pin changes too.
  // Its connections are made within the query timeout; its waits for a lock are not bounded (another upload of the
  // same root may hold it for as long as its pin takes).
  const contentLock = blockstore.kind === 's3' && config.databaseUrl !== undefined
    ? new PgAdvisoryLock({ connectionString: config.databaseUrl, connectionTimeoutMillis: config.databaseQueryTimeoutSeconds * 1000 }, { unlockTimeoutMs: config.databaseQueryTimeoutSeconds * 1000, deadClientCheck: deadClientCheckFor(config.databaseDeadClientSeconds) ?? false })
    : undefined

  const metrics = new Metrics({ database: database.knex })
  // The services' calls to the node are timed; the gateway's block reads are its requests' latency.
  const ipfsCalls = metrics.instrumentBackend(backend)
  const identities = new IdentityService(new IdentityRepository(database.knex))
  const sessions = new SessionService(new SessionRepository(database.knex))
  const apiKeys = new ApiKeyService(new ApiKeyRepository(database.knex), { onTouchError: (err) => { logger.warn({ err }, 'could not record when an API key was used') } })
  const quotas = new QuotaService(new QuotaRepository(database.knex), config.defaultQuota)
  const limiter = new RateLimiter(new RateLimitRepository(database.knex), config.rateLimits, { onPurgeError: (err) => { logger.warn({ err }, 'could not purge old rate-limit rows') } })
  const reader = openContentReader(backend, { cacheBytes: config.gatewayCacheBytes, maxListingEntries: gatewayEntryLimit(config.bundleLimits.maxEntries), ipfsGatewayUrl: config.ipfsGatewayUrl, ipfsBlocksDir: config.ipfsBlocksDir, ipfsTimeoutMs: config.ipfsTimeoutSeconds * 1000 })
  // Blocks a collection removed must stop being served: the gateway's caches forget what they remembered.
  const collector = new GarbageCollector({ backend: ipfsCalls, logger, intervalSeconds: config.gcIntervalSeconds, onCollected: () => { reader.forget() } })
  // What another instance sharing the block store collected stops being served here too.
  if (backend instanceof HeliaBackend) backend.onSharedCollection(() => { reader.forget() })
  const pinRequestRepository = new PinRequestRepository(database.knex)
  const denylist = new Denylist()
  const blockedRoots = new BlockedContentRepository(database.knex)
  const uploads = new UploadService({
    ...(contentLock === undefined ? {} : { lock: contentLock }),
    collector,
    otherReferences: pinRequestRepository,
    operatorPins: new OperatorPinRepository(database.knex),
    pinIntents: new PinIntentRepository(database.knex),
    instanceId,
    backend: ipfsCalls,
    uploads: new UploadRepository(database.knex),
    profile: config.cidProfile,
    assetExtensions: config.assetExtensions,
    bundleLimits: config.bundleLimits,
    maxCarLinks: maxCarLinks(config.maxUploadBytes, config.bundleLimits.maxEntries),
    zipNameEncoding: config.zipNameEncoding,
    denylist,
    blockedRoots,
    heldRoots: new HeldRootRepository(database.knex),
    logger
  })
  // Disabled identities (npm run admin -- disable): what only they hold is not served, read again as often as the denylists.
  const suspended = new SuspendedContent(async () => blockedRoots.heldOnlyByDisabled(), logger)
  // The roots denylists took down, for the gateway: a set lookup per request while a list is in force, whether or not
  // the root's blocks are still here (another upload may hold them), and never a query for a CID that is not held.
  const takenDown = new SuspendedContent(async () => {
    const roots: string[] = []
    for await (const root of blockedRoots.blockedRoots()) roots.push(root)
    return roots
  }, logger, 'the roots denylists took down')
  const enforcer = new DenylistEnforcer({ denylist, blocked: blockedRoots, pins: uploads, isPinned: async (rootCid) => ipfsCalls.isPinned(CID.parse(rootCid)), logger, onBlocked: (rootCid) => { takenDown.add(rootCid) }, onTakenDown: () => { reader.forget(); void takenDown.refresh().catch((err: unknown) => { logger.warn({ err }, 'could not refresh the roots denylists took down') }) } })
  const denylists = new DenylistWatcher({
    dir: resolve(dataDir, config.denylistDir ?? 'denylists'),
    denylist,
    logger,
    intervalMs: config.denylistPollSeconds * 1000,
    // Content a list names is refused from the moment it is read; what is already stored is then taken down.
    onChange: async () => { await enforcer.enforce() }
  })
  const ipfs = backend
  const pinRequests = new PinRequestService({
    requests: pinRequestRepository,
    pins: uploads,
    backend,
    logger,
    fetchTimeoutSeconds: config.psaFetchTimeoutSeconds,
    maxPending: config.psaMaxPending,
    maxBytes: config.maxUploadBytes,
    gatekeeper: uploads,
    quotas: config.defaultQuota,
    maxFetches: config.network.maxFetches,
    takenDown: async (rootCid) => blockedRoots.isBlocked(rootForms(rootCid))
  })
  // tus uploads: rows in the database, bytes on this instance's disk (see "Resumable uploads (tus)" in README.md).
  const resumable = new ResumableUploadService({
    repository: new ResumableUploadRepository(database.knex),
    dir: join(dataDir, 'resumable'),
    instanceId,
    expirySeconds: config.resumable.expirySeconds,
    sweepSeconds: config.resumable.sweepSeconds,
    logger
  })
  const delegates = await openDelegates(backend, { publicUrl: config.publicUrl, ownPeerId: peer.peerId, listen: config.network.listen, logger })
  logNetwork(backend, config, logger)
  const app = createApp({
    logger,
    identities,
    uploads,
    resumable,
    pinRequests,
    delegates: delegates.list,
    thumbnails: new ThumbnailService(new ThumbnailRepository(database.knex)),
    backend,
    reader,
    maxTarEntries: gatewayEntryLimit(config.bundleLimits.maxEntries),
    denylist,
    // Confirmed under every spelling of the multihash: the set matches any codec (a raw CID of a taken-down root's node too).
    takenDown: { has: (cid) => takenDown.has(cid), confirm: async (cid) => blockedRoots.isBlocked(multihashForms(cid)) },
    suspended,
    metrics,
    sessions: new BrowserSessions(sessions),
    sessionStore: sessions,
    apiKeys,
    quotas,
    limiter,
    csrf: new CsrfProtection(secretKey, { publicUrl: config.publicUrl }),
    readiness: [
      { name: 'database', check: database.ping },
      { name: 'ipfs', check: ipfs.ping.bind(ipfs) },
      // Over Kubo, its blocks folder when mounted here (IPFS_BLOCKS_DIR): a full Kubo refuses every upload (507).
      { name: 'disk', check: diskSpaceCheck([dataDir, tmpDir, ...(ipfs instanceof HeliaBackend ? [ipfs.blocksDir] : config.ipfsBlocksDir !== undefined ? [config.ipfsBlocksDir] : [])], config.minFreeBytes) }
    ],
    settings: {
      publicUrl: config.publicUrl,
      gatewayUrl: config.gatewayUrl,
      maxUploadBytes: config.maxUploadBytes,
      bodyIdleTimeoutSeconds: config.bodyIdleTimeoutSeconds,
      assetExtensions: config.assetExtensions,
      tmpDir,
      trustProxy: config.trustProxy,
      assets,
      metricsToken: config.metricsToken
    }
  })

  // Before serving: pins that a crash left between "pin" and "record" are settled, then collected; what the database
  // holds and the node has no pin for is pinned again before the first collection could take it.
  await uploads.settlePins({ startup: true })
  await uploads.restorePins()
  await pinRequests.resume()
  await resumable.start()
  collector.start()
  await denylists.start()
  await suspended.start(config.denylistPollSeconds * 1000)
  await takenDown.start(config.denylistPollSeconds * 1000)
  // Rows of work that failed half-way while running (the node or the database away) are settled every few minutes;
  // one pass at a time, given up between rows when the service stops.
  const stopSettling = new AbortController()
  let settling: Promise<number> = Promise.resolve(0)
  const settleNow = async (): Promise<number> => {
    settling = settling.then(async () => uploads.settlePins({ signal: stopSettling.signal })).catch((err: unknown) => { logger.warn({ err }, 'could not settle the pin journal: tried again later'); return 0 })
    return settling
  }
  const settleTimer = setInterval(() => { void settleNow() }, SETTLE_INTERVAL_MS)
  settleTimer.unref()
  return {
    app,
    database,
    backend,
    collector,
    tmpDir,
    importCar: async (source, options) => importCarAsOperator({ uploads, identities: new IdentityRepository(database.knex) }, source, options),
    unpinOperator: async (rootCid) => uploads.releaseOperatorPin(parseCid(rootCid).toString()),
    settlePins: settleNow,
    close: async () => {
      clearInterval(settleTimer)
      stopSettling.abort()
      // A pass waiting on a node that stopped answering is not waited for long: its rows stay for the next start.
      const waited = new AbortController()
      await Promise.race([settling, sleep(SETTLE_CLOSE_WAIT_MS, undefined, { signal: waited.signal }).then(() => { logger.warn('closing while the pin journal is being settled: its rows stay for the next start') }, () => {})])
      waited.abort()
      await denylists.stop()
      suspended.stop()
      takenDown.stop()
      await resumable.close()
      await pinRequests.close()
      delegates.close()
      limiter.close()
      await collector.close()
      await ipfs.close()
      await contentLock?.close()
      await database.close()
    }
  }
}
