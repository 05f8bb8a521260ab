import type { IncomingMessage } from 'node:http'
import express, { type Express, type Request } from 'express'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import type { IpfsBackend } from '../ipfs/ipfs-backend.ts'
import type { Denylist } from '../denylist/denylist.ts'
import type { CID } from 'multiformats/cid'
import { metricsRoute, type Metrics } from './metrics.ts'
import { openApiDocument } from './openapi/document.ts'
import packageJson from '../../package.json' with { type: 'json' }
import type { ContentReader } from '../gateway/content-reader.ts'
import type { IdentityService } from '../services/identity-service.ts'
import type { ThumbnailService } from '../services/thumbnail-service.ts'
import type { UploadService } from '../services/upload-service.ts'
import type { PinRequestService } from '../services/pin-request-service.ts'
import type { ApiKeyService } from '../services/api-key-service.ts'
import type { QuotaService } from '../services/quota-service.ts'
import type { RateLimiter } from '../services/rate-limiter.ts'
import type { SessionService } from '../services/session-service.ts'
import { Authenticator } from './authentication.ts'
import { accountRoutes } from './routes/account-routes.ts'
import { bodyIdleTimeout } from './middleware/body-idle-timeout.ts'
import { lingeringClose } from './middleware/lingering-close.ts'
import { errorHandler, notFound } from './middleware/error-handler.ts'
import { formatBytes } from './format.ts'
import { pageCsp } from './page-csp.ts'
import { redactUrl, requestLogger } from './middleware/request-logger.ts'
import { gatewayRoutes } from './routes/gateway-routes.ts'
import { healthRoutes, type ReadinessCheck } from './routes/health-routes.ts'
import { identityRoutes } from './routes/identity-routes.ts'
import { pluginRoutes } from './routes/plugin-routes.ts'
import { previewRoutes } from './routes/preview-routes.ts'
import { psaRoutes } from './routes/psa-routes.ts'
import { siteRoutes } from './routes/site-routes.ts'
import { uploadRoutes } from './routes/upload-routes.ts'
import { RESUMABLE_UPLOAD_PATH, TUS_VERSION, resumableUploadRoutes } from './routes/resumable-upload-routes.ts'
import type { ResumableUploadService } from '../services/resumable-upload-service.ts'
import { uploadsRoutes } from './routes/uploads-routes.ts'
import { ipfsReachOf } from './ipfs-reach.ts'
import type { CsrfProtection } from './csrf.ts'
import type { BrowserSessions } from './session.ts'
import { resolveSession } from './session-identity.ts'

export const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url))
export const BUILD_DIR = fileURLToPath(new URL('../../public/build/', import.meta.url))
/** Said in the API's description. */
const PACKAGE_VERSION = packageJson.version

export interface AppDependencies {
  logger: Logger
  identities: IdentityService
  uploads: UploadService
  /** Uploads sent in pieces with the tus protocol (/upload/resumable). */
  resumable: ResumableUploadService
  /** Pictures of models and avatars rendered in their creators' browsers. */
  thumbnails: ThumbnailService
  /** The Pinning Service API's pin requests (/psa). */
  pinRequests: PinRequestService
  /** Our multiaddrs ending in /p2p/<peer id>: the Pinning Service API's `delegates`. */
  delegates: readonly string[]
  backend: IpfsBackend
  /** The gateway's read path (cached), over the same node. */
  reader: ContentReader
  /** The entries a ?format=tar may have (gatewayEntryLimit of ZIP_MAX_ENTRIES); TAR_MAX_ENTRIES when absent. */
  maxTarEntries?: number
  /** The operator's denylists: blocked content answers 410 (or the rule's status) on the gateway. */
  denylist?: Denylist
  /** The roots a denylist took down: 410 for any path below them, in any format, while a list is in force. */
  takenDown?: { has: (cid: CID) => boolean, confirm: (cid: CID) => Promise<boolean> }
  /** Content only disabled identities hold: 410 on the gateway. */
  suspended?: { has: (cid: CID) => boolean, readonly empty: boolean }
  sessions: BrowserSessions
  /** The sessions themselves, to end all of an identity's. */
  sessionStore: SessionService
  /** Named API keys with scopes. */
  apiKeys: ApiKeyService
  quotas: QuotaService
  /** Failed authentications, new identities, uploads: counted in the database, shared by every instance. */
  limiter: RateLimiter
  csrf: CsrfProtection
  readiness: readonly ReadinessCheck[]
  settings: {
    publicUrl: string
    gatewayUrl: string
    maxUploadBytes: number
    /** A request body that stops arriving for this long has its connection closed (0: never); 300 s if not given. */
    bodyIdleTimeoutSeconds?: number
    assetExtensions: ReadonlySet<string>
    /** Where uploads are received before import; owned by the caller. */
    tmpDir: string
    /** Express's `trust proxy`, for the real client address and https behind nginx. */
    trustProxy: boolean | number | string
    /** Built browser assets: logical name (`app.js`) → content-hashed file under public/build. */
    assets: Readonly<Record<string, string>>
    /** Lets clients other than this machine read /metrics with `Authorization: Bearer <token>`. */
    metricsToken?: string
  }
  /** Prometheus metrics: counted for every request, answered at /metrics. */
  metrics?: Metrics
}

/**
 * Builds the Express app from its dependencies. It reads no environment and
 * opens no port: `main.ts` listens, tests drive it with supertest.
 */
export function createApp (deps: AppDependencies): Express {
  const { settings } = deps
  const app = express()
  app.disable('x-powered-by')
  app.set('trust proxy', settings.trustProxy)
  app.set('views', VIEWS_DIR)
  app.set('view engine', 'ejs')
  app.locals.serviceName = 'Heimdall'
  app.locals.publicUrl = settings.publicUrl
  app.locals.gatewayUrl = settings.gatewayUrl
  // Said on every page: where uploaded content can actually be fetched from.
  const ipfsReach = ipfsReachOf(deps.backend)
  app.locals.ipfsReach = ipfsReach
  app.locals.formatBytes = formatBytes
  app.locals.asset = (name: string): string => {
    const file = settings.assets[name]
    if (file === undefined) throw new Error(`no built asset named ${name}`)
    return `/static/${file}`
  }

  // First: an answer given before the body was all read reaches a client still sending it, and a request pipelined after
  // a closing answer is neither run nor logged.
  app.use(lingeringClose())
  app.use(requestLogger(deps.logger))
  app.use(bodyIdleTimeout(settings.bodyIdleTimeoutSeconds ?? 300, (req) => { deps.logger.warn({ method: req.method, url: redactUrl(req.originalUrl) }, 'the request body stopped arriving: connection closed (BODY_IDLE_TIMEOUT_SECONDS)') }))
  if (deps.metrics !== undefined) {
    app.use(deps.metrics.middleware())
    app.get('/metrics', metricsRoute(deps.metrics, { token: settings.metricsToken, trustProxy: settings.trustProxy }))
  }
  // The API's description, generated from the schemas the routes validate with: built once.
  const description = JSON.stringify(openApiDocument({ publicUrl: settings.publicUrl, version: PACKAGE_VERSION }))
  app.get('/openapi.json', (_req, res) => { res.type('json').setHeader('Access-Control-Allow-Origin', '*').send(description) })
  const csp = pageCsp(settings)
  app.use((req, res, next) => {
    if (!req.path.startsWith('/ipfs/')) {
      res.setHeader('Content-Security-Policy', csp(req))
      res.setHeader('X-Content-Type-Options', 'nosniff')
      res.setHeader('Referrer-Policy', 'same-origin')
    }
    next()
  })
  // Names carry a content hash, so a file never changes: cache it for a year.
  app.use('/static', express.static(BUILD_DIR, { maxAge: '365d', immutable: true, index: false, fallthrough: true }))
  // The gateway answers anyone's content: before cookies, sessions and body parsers, so none of them touches it.
  app.use(gatewayRoutes({ backend: deps.backend, reader: deps.reader, maxTarEntries: deps.maxTarEntries, denylist: deps.denylist, takenDown: deps.takenDown, suspended: deps.suspended }))
  // The Pinning Service API: bearer tokens only (no cookies, no CSRF), its own JSON limit and error shape.
  const authenticator = new Authenticator({ identities: deps.identities, apiKeys: deps.apiKeys, limiter: deps.limiter })
  app.use('/psa', psaRoutes({ authenticator, pinRequests: deps.pinRequests, delegates: deps.delegates, logger: deps.logger, denylist: deps.denylist }))
  // A tus request's body is the upload's bytes whatever type a client names: its routes answer another type 415, so no parser takes it first.
  const parses = (type: string) => (req: IncomingMessage): boolean => !(req.url ?? '').startsWith(RESUMABLE_UPLOAD_PATH) && typeof (req as Request).is(type) === 'string'
  app.use(express.urlencoded({ extended: false, limit: '16kb', type: parses('application/x-www-form-urlencoded') }))
  app.use(express.json({ limit: '16kb', type: parses('application/json') }))
  app.use(deps.csrf.issue())
  // tus wants Tus-Resumable on every answer of its routes, a CSRF refusal included.
  app.use(RESUMABLE_UPLOAD_PATH, (_req, res, next) => { res.setHeader('Tus-Resumable', TUS_VERSION); next() })
  // POST /upload reads its multipart form as it streams and checks the token itself.
  app.use(deps.csrf.protect({ streamedForms: ['/upload'] }))
  app.use(resolveSession(deps.sessions))
  // A page is for whoever asked, now (a form's CSRF token, a signed-in name, a token shown once): no cache keeps it, nor
  // the browser's back/forward cache, so Back after signing out never shows the previous person's page.
  app.use((_req, res, next) => {
    const render = res.render.bind(res) as (...args: unknown[]) => void
    res.render = (...args: unknown[]) => {
      if (!res.hasHeader('Cache-Control')) res.setHeader('Cache-Control', 'no-store')
      render(...args)
    }
    next()
  })
  // Who is calling: a bearer token or API key, form fields, or the session above; routes ask for the scope they need.
  app.use(authenticator.middleware())

  app.get('/', (_req, res) => { res.render('home', { title: 'Heimdall' }) })
  app.use(siteRoutes())
  app.use(pluginRoutes())
  app.use(identityRoutes({ identities: deps.identities, sessions: deps.sessions, limiter: deps.limiter, signIn: deps.csrf }))
  app.use(accountRoutes({ identities: deps.identities, apiKeys: deps.apiKeys, quotas: deps.quotas, sessions: deps.sessionStore, browserSessions: deps.sessions }))
  app.use(uploadRoutes({
    authenticator,
    quotas: deps.quotas,
    limiter: deps.limiter,
    uploads: deps.uploads,
    csrf: deps.csrf,
    tmpDir: settings.tmpDir,
    maxUploadBytes: settings.maxUploadBytes,
    assetExtensions: settings.assetExtensions,
    gatewayUrl: settings.gatewayUrl
  }))
  app.use(resumableUploadRoutes({
    quotas: deps.quotas,
    limiter: deps.limiter,
    uploads: deps.uploads,
    resumable: deps.resumable,
    logger: deps.logger,
    maxUploadBytes: settings.maxUploadBytes,
    gatewayUrl: settings.gatewayUrl
  }))
  app.use(uploadsRoutes({ authenticator, quotas: deps.quotas, uploads: deps.uploads, sessions: deps.sessions, signIn: deps.csrf, thumbnails: deps.thumbnails, gatewayUrl: settings.gatewayUrl, pinRequests: deps.pinRequests, ipfsReach }))
  app.use(previewRoutes({ gatewayUrl: settings.gatewayUrl }))
  app.use(healthRoutes(deps.readiness))

  app.use(notFound)
  app.use(errorHandler(deps.logger, settings.maxUploadBytes))
  return app
}
