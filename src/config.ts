import { z } from 'zod'
import { IMPORT_PROFILE_NAMES } from './ipfs/import-profiles.ts'
import type { Quota } from './services/quota-service.ts'
import type { RateLimits } from './services/rate-limiter.ts'

/** Extensions accepted inside a bundle; the top level accepts these plus `zip`. */
export const DEFAULT_ASSET_EXTENSIONS = [
  'fbx', 'glb', 'gltf', 'bin', 'vrm', 'obj', 'mtl', 'fst',
  'png', 'jpg', 'jpeg', 'tga', 'ktx', 'webp',
  'wav', 'mp3', 'ogg', 'js', 'json'
] as const

const optionalString = z.preprocess(
  (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
  z.string().optional()
)

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

const envSchema = z.object({
  PORT: integer(0, 65535).default(8080),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: optionalString.pipe(
    z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL').optional()
  ),
  IPFS_API_URL: optionalString.pipe(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional()),
  IPFS_GATEWAY_URL: optionalString.pipe(z.url({ protocol: /^http$/, error: 'must be an http:// URL' }).optional()),
  IPFS_BLOCKS_DIR: optionalString,
  GATEWAY_CACHE_BYTES: integer(0, Number.MAX_SAFE_INTEGER).default(64 * 1024 ** 2),
  PUBLIC_URL: optionalString.pipe(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional()),
  GATEWAY_URL: optionalString.pipe(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional()),
  SECRET_KEY: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  MAX_UPLOAD_BYTES: integer(1, Number.MAX_SAFE_INTEGER).default(1_073_741_824),
  IPFS_CID_PROFILE: z.enum(IMPORT_PROFILE_NAMES).default('unixfs-v1-2025'),
  ASSET_EXTENSIONS: optionalString.pipe(
    z.string().regex(/^[a-z0-9]+(,[a-z0-9]+)*$/, 'must be a comma-separated list of lower-case extensions').optional()
  ),
  ZIP_MAX_ENTRIES: integer(1, 1_000_000).default(10_000),
  ZIP_MAX_UNCOMPRESSED_BYTES: integer(1, Number.MAX_SAFE_INTEGER).default(4 * 1024 ** 3),
  ZIP_MAX_RATIO: integer(1, 1_000_000).default(200),
  TRUST_PROXY: optionalString.pipe(
    z.string().regex(/^(true|false|\d+|[\w.:/, -]+)$/, 'must be true, false, a hop count, or addresses/subnets (e.g. loopback, 172.16.0.0/12)').optional()
  ),
  GC_INTERVAL_SECONDS: integer(0, 365 * 24 * 3600).default(3600),
  MIN_FREE_BYTES: integer(0, Number.MAX_SAFE_INTEGER).default(256 * 1024 ** 2),
  PSA_FETCH_TIMEOUT_SECONDS: integer(1, 30 * 24 * 3600).default(600),
  AUTH_FAILURES_ALLOWED: integer(1, 1_000_000).default(10),
  AUTH_BACKOFF_BASE_SECONDS: integer(1, 3600).default(1),
  AUTH_BACKOFF_MAX_SECONDS: integer(1, 7 * 24 * 3600).default(3600),
  AUTH_FAILURE_MEMORY_SECONDS: integer(60, 30 * 24 * 3600).default(24 * 3600),
  IDENTITIES_PER_HOUR: integer(1, 1_000_000).default(20),
  UPLOADS_PER_HOUR: integer(1, 1_000_000).default(600),
  QUOTA_BYTES: integer(0, Number.MAX_SAFE_INTEGER).default(10 * 1024 ** 3),
  QUOTA_UPLOADS: integer(0, 100_000_000).default(10_000),
  DENYLIST_DIR: optionalString,
  DENYLIST_POLL_SECONDS: integer(1, 3600).default(2),
  METRICS_TOKEN: optionalString.pipe(z.string().min(16, 'must be at least 16 characters').optional()),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
}).superRefine((env, ctx) => {
  if (env.AUTH_BACKOFF_MAX_SECONDS < env.AUTH_BACKOFF_BASE_SECONDS) {
    ctx.addIssue({ code: 'custom', path: ['AUTH_BACKOFF_MAX_SECONDS'], message: 'must be at least AUTH_BACKOFF_BASE_SECONDS' })
  }
  if (env.IPFS_GATEWAY_URL !== undefined && env.IPFS_API_URL === undefined) {
    ctx.addIssue({ code: 'custom', path: ['IPFS_GATEWAY_URL'], message: 'is Kubo\'s gateway: set IPFS_API_URL too' })
  }
  if (env.IPFS_BLOCKS_DIR !== undefined && env.IPFS_API_URL === undefined) {
    ctx.addIssue({ code: 'custom', path: ['IPFS_BLOCKS_DIR'], message: 'is Kubo\'s flatfs folder: set IPFS_API_URL too' })
  }
})

export type Env = Record<string, string | undefined>

export interface Config {
  port: number
  host: string
  dataDir: string
  databaseUrl: string | undefined
  ipfsApiUrl: string | undefined
  /** Kubo's own HTTP gateway, private to the stack: where file bytes are read in Kubo mode. */
  ipfsGatewayUrl: string | undefined
  /** Kubo's flatfs `blocks` folder, mounted read-only: where file bytes are read in Kubo mode when set. */
  ipfsBlocksDir: string | undefined
  /** Bytes of path resolutions, decoded directories and listings the gateway keeps. */
  gatewayCacheBytes: number
  publicUrl: string
  /** Always ends with `/`, so `${gatewayUrl}${cid}/${path}` is a link. */
  gatewayUrl: string
  secretKey: string | undefined
  maxUploadBytes: number
  cidProfile: (typeof IMPORT_PROFILE_NAMES)[number]
  /** Extensions allowed inside bundles (lower case, no dot). */
  assetExtensions: ReadonlySet<string>
  bundleLimits: { maxEntries: number, maxUncompressedBytes: number, maxRatio: number }
  /** Express's `trust proxy`: which proxies' X-Forwarded-* headers to believe. */
  trustProxy: boolean | number | string
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL']
  /** Seconds between scheduled garbage collections of the IPFS node; 0 = none. */
  gcIntervalSeconds: number
  /** Below this many free bytes under DATA_DIR (or the embedded node's blocks), /readyz answers 503. */
  minFreeBytes: number
  /** How long a Pinning Service API request waits for content this node does not hold before it fails. */
  psaFetchTimeoutSeconds: number
  /** Rate limits, kept in the database (shared by instances on one database). */
  rateLimits: RateLimits
  /** Every identity's quota unless an operator set its own. */
  defaultQuota: Quota
  /** Where the operator's `*.deny` lists (IPIP-383) are read from; unset: DATA_DIR/denylists. */
  denylistDir: string | undefined
  /** How often that folder is looked at for added, changed and removed lists. */
  denylistPollSeconds: number
  /** Lets Prometheus scrape /metrics from another machine (`Authorization: Bearer …`); unset: loopback only. */
  metricsToken: string | undefined
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly issues: string[]

  constructor (issues: string[]) {
    super(`invalid configuration:\n${issues.join('\n')}`)
    this.issues = issues
  }
}

function parseTrustProxy (value: string | undefined): boolean | number | string {
  if (value === undefined || value === 'false') return false
  if (value === 'true') return true
  return /^\d+$/.test(value) ? Number(value) : value
}

const withTrailingSlash = (url: string): string => (url.endsWith('/') ? url : `${url}/`)

/**
 * Parses the environment once. Pure: it reads only `env`, so tests pass their own.
 * Every invalid key is reported, one line each, in a single ConfigError.
 */
export function loadConfig (env: Env): Config {
  const parsed = envSchema.safeParse(env)
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`))
  }
  const e = parsed.data
  const publicUrl = (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '')
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir: e.DATA_DIR,
    databaseUrl: e.DATABASE_URL,
    ipfsApiUrl: e.IPFS_API_URL,
    ipfsGatewayUrl: e.IPFS_GATEWAY_URL,
    ipfsBlocksDir: e.IPFS_BLOCKS_DIR,
    gatewayCacheBytes: e.GATEWAY_CACHE_BYTES,
    publicUrl,
    gatewayUrl: withTrailingSlash(e.GATEWAY_URL ?? `${publicUrl}/ipfs/`),
    secretKey: e.SECRET_KEY,
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
    cidProfile: e.IPFS_CID_PROFILE,
    assetExtensions: new Set(e.ASSET_EXTENSIONS?.split(',') ?? DEFAULT_ASSET_EXTENSIONS),
    bundleLimits: { maxEntries: e.ZIP_MAX_ENTRIES, maxUncompressedBytes: e.ZIP_MAX_UNCOMPRESSED_BYTES, maxRatio: e.ZIP_MAX_RATIO },
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    logLevel: e.LOG_LEVEL,
    gcIntervalSeconds: e.GC_INTERVAL_SECONDS,
    minFreeBytes: e.MIN_FREE_BYTES,
    rateLimits: {
      authFailuresAllowed: e.AUTH_FAILURES_ALLOWED,
      authBackoffBaseSeconds: e.AUTH_BACKOFF_BASE_SECONDS,
      authBackoffMaxSeconds: e.AUTH_BACKOFF_MAX_SECONDS,
      authFailureMemorySeconds: e.AUTH_FAILURE_MEMORY_SECONDS,
      identitiesPerHour: e.IDENTITIES_PER_HOUR,
      uploadsPerHour: e.UPLOADS_PER_HOUR
    },
    defaultQuota: { bytes: e.QUOTA_BYTES, uploads: e.QUOTA_UPLOADS },
    psaFetchTimeoutSeconds: e.PSA_FETCH_TIMEOUT_SECONDS,
    denylistDir: e.DENYLIST_DIR,
    denylistPollSeconds: e.DENYLIST_POLL_SECONDS,
    metricsToken: e.METRICS_TOKEN
  }
}
