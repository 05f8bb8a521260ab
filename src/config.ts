import { isIP } from 'node:net'
import { z } from 'zod'
import { IMPORT_PROFILE_NAMES } from './ipfs/import-profiles.ts'
import { DEAD_CLIENT_SECONDS } from './db/dead-client.ts'
import type { Quota } from './services/quota-service.ts'
import type { RateLimits } from './services/rate-limiter.ts'
import { parseTcpMultiaddr, splitList } from './ipfs/network/multiaddr-text.ts'
import { DEFAULT_ZIP_NAME_ENCODING, zipNameEncoding } from './services/zip-names.ts'

/** Extensions accepted inside a bundle; the top level accepts these plus `zip` and `car`. */
export const DEFAULT_ASSET_EXTENSIONS = [
  'fbx', 'glb', 'gltf', 'bin', 'vrm', 'obj', 'mtl', 'fst',
  'png', 'jpg', 'jpeg', 'tga', 'ktx', 'webp', 'bmp', 'gif', 'exr',
  'wav', 'mp3', 'ogg', 'raw', 'js', 'json', 'txt', 'md'
] as const

const optionalString = z.preprocess(
  (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
  z.string().optional()
)

/** A whole number written in decimal digits: coercion alone took `0x1F90`, `1e3` and `80.0` too. */
const integer = (min: number, max: number) => z.preprocess(
  (value) => (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value),
  z.number({ error: 'must be a whole number in decimal digits' }).int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`)
)

/** Express's `trust proxy` names (proxy-addr): these ranges, an IP address, or a subnet as address/prefix or IPv4 address/netmask. */
const TRUST_PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal'])
function trustedProxyItem (item: string): boolean {
  if (TRUST_PROXY_NAMES.has(item)) return true
  const [address = '', range, ...rest] = item.split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) return false
  if (range === undefined) return true
  // proxy-addr refuses a zero prefix ("invalid range on address") and a netmask that is zero or not contiguous.
  if (/^\d+$/.test(range)) return Number(range) >= 1 && Number(range) <= (family === 4 ? 32 : 128)
  if (family !== 4 || isIP(range) !== 4) return false
  const bits = range.split('.').map((part) => Number(part).toString(2).padStart(8, '0')).join('')
  return /^1+0*$/.test(bits)
}

export const NETWORK_MODES = ['off', 'private', 'public'] as const
export const PROVIDE_STRATEGIES = ['roots', 'pinned', 'all'] as const

/**
 * The Amino DHT's bootstrap peers as Kubo lists them (TCP only: this node
 * speaks TCP). Dialed in `public` mode only, unless IPFS_BOOTSTRAP says otherwise.
 */
export const DEFAULT_BOOTSTRAP = [
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN',
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa',
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb',
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt',
  '/dnsaddr/va1.bootstrap.libp2p.io/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8',
  '/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ'
] as const

/**
 * A comma-separated list of multiaddrs. `kind` says what each must be:
 * something to listen on (an IP and port, no peer id), an address of ours
 * to announce, or a peer to dial (ending in /p2p/<peer id>).
 */
const multiaddrs = (kind: 'listen' | 'announce' | 'peer') => z.string().superRefine((text, ctx) => {
  const items = splitList(text)
  if (items.length === 0) ctx.addIssue({ code: 'custom', message: 'is an empty list' })
  for (const item of items) {
    const parsed = parseTcpMultiaddr(item)
    const problem = typeof parsed === 'string'
      ? parsed
      : kind === 'listen' && (parsed.protocol !== 'ip4' && parsed.protocol !== 'ip6') ? 'must be an /ip4/ or /ip6/ address to listen on'
        : kind === 'listen' && parsed.peerId !== undefined ? 'must not end in /p2p/: the peer id is this node\'s own'
          : kind === 'announce' && parsed.port === undefined ? 'must have a TCP port'
            : kind === 'peer' && parsed.peerId === undefined ? 'must end in /p2p/<peer id>'
              : undefined
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `"${item.slice(0, 120)}" ${problem}` })
  }
})
const multiaddrList = (kind: 'listen' | 'announce' | 'peer') => optionalString.pipe(multiaddrs(kind).optional())
/** An optional number: unset or empty is undefined (its default is applied where the network settings are read). */
const optionalInteger = (min: number, max: number) => z.preprocess(
  (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
  integer(min, max).optional()
)

/** Settings of the embedded node's libp2p networking, which IPFS_NETWORK turns on. */
const NETWORK_KEYS = ['IPFS_LISTEN', 'IPFS_ANNOUNCE', 'IPFS_PEERS', 'IPFS_BOOTSTRAP', 'IPFS_PROVIDE_STRATEGY', 'IPFS_REPROVIDE_INTERVAL_SECONDS',
  'IPFS_MAX_CONNECTIONS', 'IPFS_MAX_FETCHES', 'IPFS_MAX_BYTES_PER_SECOND', 'IPFS_MAX_PEER_BYTES_PER_SECOND'] as const
/** Settings that only the DHT of `public` mode uses. */
const PUBLIC_KEYS = ['IPFS_BOOTSTRAP', 'IPFS_PROVIDE_STRATEGY', 'IPFS_REPROVIDE_INTERVAL_SECONDS'] as const

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
  BLOCKSTORE: optionalString.pipe(z.enum(['fs', 's3']).default('fs')),
  S3_ENDPOINT: optionalString.pipe(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional()),
  S3_BUCKET: optionalString.pipe(z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a bucket name (3-63 of a-z, 0-9, dot, hyphen)').optional()),
  S3_PREFIX: optionalString.pipe(z.string().regex(/^[\w!.*'()/-]*$/, 'must be made of letters, digits and !-_.*\'()/')
    // Keys MinIO (and S3's console) refuse: a leading slash, an empty or a dot segment.
    .refine((prefix) => !prefix.startsWith('/') && !prefix.includes('//') && !prefix.split('/').some((part) => part === '.' || part === '..'), 'must not start with /, hold // or have a . or .. segment')
    .optional()),
  S3_REGION: optionalString.pipe(z.string().regex(/^[\w-]+$/, 'must be a region name, e.g. eu-west-1, auto, garage').optional()),
  S3_FORCE_PATH_STYLE: optionalString.pipe(z.enum(['true', 'false']).default('true')),
  S3_CACHE_BYTES: integer(0, Number.MAX_SAFE_INTEGER).default(1024 ** 3),
  S3_PACK_BYTES: integer(0, 256 * 1024 ** 2).default(8 * 1024 ** 2),
  S3_PACK_MEMORY: integer(1024 ** 2, Number.MAX_SAFE_INTEGER).default(64 * 1024 ** 2),
  AWS_ACCESS_KEY_ID: optionalString,
  AWS_SECRET_ACCESS_KEY: optionalString,
  AWS_SESSION_TOKEN: optionalString,
  GC_LEASE_TTL_SECONDS: integer(10, 7 * 24 * 3600).default(300),
  PUBLIC_URL: optionalString.pipe(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional()),
  GATEWAY_URL: optionalString.pipe(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional()),
  SECRET_KEY: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  MAX_UPLOAD_BYTES: integer(1, Number.MAX_SAFE_INTEGER).default(1_073_741_824),
  BODY_IDLE_TIMEOUT_SECONDS: integer(0, 24 * 3600).default(300),
  DATABASE_QUERY_TIMEOUT_SECONDS: integer(0, 24 * 3600).default(30),
  DATABASE_DEAD_CLIENT_SECONDS: integer(0, 24 * 3600).default(DEAD_CLIENT_SECONDS),
  IPFS_TIMEOUT_SECONDS: integer(1, 24 * 3600).default(60),
  IPFS_CID_PROFILE: z.enum(IMPORT_PROFILE_NAMES).default('unixfs-v1-2025'),
  ASSET_EXTENSIONS: optionalString.pipe(
    z.string().regex(/^[a-z0-9]+(,[a-z0-9]+)*$/, 'must be a comma-separated list of lower-case extensions').optional()
  ),
  ZIP_MAX_ENTRIES: integer(1, 1_000_000).default(10_000),
  ZIP_MAX_UNCOMPRESSED_BYTES: integer(1, Number.MAX_SAFE_INTEGER).default(4 * 1024 ** 3),
  ZIP_MAX_RATIO: integer(1, 1_000_000).default(1100),
  ZIP_NAME_ENCODING: optionalString.pipe(z.string().transform((label, ctx) => {
    const encoding = zipNameEncoding(label)
    if (encoding === undefined) ctx.addIssue({ code: 'custom', message: 'must be cp437 or a legacy encoding of the WHATWG Encoding Standard: shift_jis (or cp932), gbk (cp936), big5 (cp950), euc-kr (cp949), ibm866, windows-1251…' })
    return encoding ?? DEFAULT_ZIP_NAME_ENCODING
  }).default(DEFAULT_ZIP_NAME_ENCODING)),
  TRUST_PROXY: optionalString.pipe(
    z.string().refine((value) => /^(true|false|\d+)$/.test(value) || value.split(',').every((item) => trustedProxyItem(item.trim())),
      'must be true, false, a hop count, or addresses/subnets (loopback, linklocal, uniquelocal, an IP address, 172.16.0.0/12)').optional()
  ),
  GC_INTERVAL_SECONDS: integer(0, 365 * 24 * 3600).default(3600),
  MIN_FREE_BYTES: integer(0, Number.MAX_SAFE_INTEGER).default(256 * 1024 ** 2),
  PSA_FETCH_TIMEOUT_SECONDS: integer(1, 30 * 24 * 3600).default(600),
  PSA_MAX_PENDING: integer(1, 1_000_000).default(100),
  AUTH_FAILURES_ALLOWED: integer(1, 1_000_000).default(10),
  AUTH_BACKOFF_BASE_SECONDS: integer(1, 3600).default(1),
  AUTH_BACKOFF_MAX_SECONDS: integer(1, 7 * 24 * 3600).default(3600),
  AUTH_FAILURE_MEMORY_SECONDS: integer(60, 30 * 24 * 3600).default(24 * 3600),
  IDENTITIES_PER_HOUR: integer(1, 1_000_000).default(20),
  UPLOADS_PER_HOUR: integer(1, 1_000_000).default(600),
  QUOTA_BYTES: integer(0, Number.MAX_SAFE_INTEGER).default(10 * 1024 ** 3),
  QUOTA_UPLOADS: integer(0, 100_000_000).default(10_000),
  RESUMABLE_EXPIRY_SECONDS: integer(1, 30 * 24 * 3600).default(24 * 3600),
  RESUMABLE_SWEEP_SECONDS: integer(1, 24 * 3600).default(300),
  IPFS_NETWORK: optionalString.pipe(z.enum(NETWORK_MODES).default('off')),
  IPFS_LISTEN: multiaddrList('listen'),
  IPFS_ANNOUNCE: multiaddrList('announce'),
  IPFS_PEERS: multiaddrList('peer'),
  // `none`: no bootstrap peers (a DHT of the peers in IPFS_PEERS only).
  IPFS_BOOTSTRAP: optionalString.pipe(z.union([z.literal('none'), multiaddrs('peer')]).optional()),
  IPFS_PROVIDE_STRATEGY: optionalString.pipe(z.enum(PROVIDE_STRATEGIES).optional()),
  IPFS_REPROVIDE_INTERVAL_SECONDS: optionalInteger(60, 30 * 24 * 3600),
  IPFS_MAX_CONNECTIONS: optionalInteger(1, 100_000),
  IPFS_MAX_FETCHES: optionalInteger(1, 64),
  IPFS_MAX_BYTES_PER_SECOND: optionalInteger(0, Number.MAX_SAFE_INTEGER),
  IPFS_MAX_PEER_BYTES_PER_SECOND: optionalInteger(0, Number.MAX_SAFE_INTEGER),
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
  const kubo = env.IPFS_API_URL !== undefined
  if (env.BLOCKSTORE === 's3') {
    // Instances share the bucket: what they must agree on is in one PostgreSQL, and a form's CSRF token issued by one is accepted by all (SECRET_KEY keys it).
    for (const key of ['S3_ENDPOINT', 'S3_BUCKET', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'DATABASE_URL', 'SECRET_KEY'] as const) {
      if (env[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: key === 'SECRET_KEY' || key === 'DATABASE_URL' ? 'is required with BLOCKSTORE=s3: instances sharing the store must share it (a generated one would differ per instance)' : 'is required with BLOCKSTORE=s3' })
    }
    if (kubo) ctx.addIssue({ code: 'custom', path: ['BLOCKSTORE'], message: 'is the embedded node\'s block store; with IPFS_API_URL, Kubo keeps the blocks' })
    const endpoint = env.S3_ENDPOINT === undefined || !URL.canParse(env.S3_ENDPOINT) ? undefined : new URL(env.S3_ENDPOINT)
    if (endpoint !== undefined && env.S3_BUCKET !== undefined && endpoint.pathname.replace(/\/+$/, '').split('/').at(-1) === env.S3_BUCKET) {
      ctx.addIssue({ code: 'custom', path: ['S3_ENDPOINT'], message: `ends with the bucket's name: give the store's URL without it (S3_BUCKET names the bucket), e.g. ${endpoint.origin}` })
    }
    if (endpoint?.protocol === 'https:' && env.S3_FORCE_PATH_STYLE === 'false' && env.S3_BUCKET?.includes('.') === true) {
      ctx.addIssue({ code: 'custom', path: ['S3_BUCKET'], message: 'has a dot, which the store\'s wildcard TLS certificate cannot cover as <bucket>.<host>: use S3_FORCE_PATH_STYLE=true, or a bucket without dots' })
    }
  } else {
    for (const key of ['S3_ENDPOINT', 'S3_BUCKET', 'S3_PREFIX'] as const) {
      if (env[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'takes effect only with BLOCKSTORE=s3' })
    }
  }
  if (kubo && env.IPFS_NETWORK !== 'off') {
    ctx.addIssue({ code: 'custom', path: ['IPFS_NETWORK'], message: 'is the embedded node\'s networking; with IPFS_API_URL, Kubo is on the network itself (configure its Addresses.Swarm and Peering)' })
  }
  for (const key of NETWORK_KEYS) {
    if (env[key] === undefined) continue
    if (kubo) ctx.addIssue({ code: 'custom', path: [key], message: 'configures the embedded node\'s networking; with IPFS_API_URL, configure Kubo instead' })
    else if (env.IPFS_NETWORK === 'off') ctx.addIssue({ code: 'custom', path: [key], message: 'takes effect only with IPFS_NETWORK=private or public' })
    else if (env.IPFS_NETWORK === 'private' && (PUBLIC_KEYS as readonly string[]).includes(key)) {
      ctx.addIssue({ code: 'custom', path: [key], message: 'is for IPFS_NETWORK=public: in private mode there is no DHT, no bootstrap and no providing' })
    }
  }
  const total = env.IPFS_MAX_BYTES_PER_SECOND ?? 0
  if (total > 0 && (env.IPFS_MAX_PEER_BYTES_PER_SECOND ?? 0) > total) {
    ctx.addIssue({ code: 'custom', path: ['IPFS_MAX_PEER_BYTES_PER_SECOND'], message: 'is more than IPFS_MAX_BYTES_PER_SECOND, the cap for all peers together' })
  }
})

export type Env = Record<string, string | undefined>

/**
 * The embedded node's presence on the IPFS network. `off`: no libp2p at all
 * (content is on this node only). `private`: libp2p on `listen`, dialing only
 * `peers`, no DHT. `public`: also the Amino DHT (bootstrap peers, providing).
 */
export interface NetworkConfig {
  mode: (typeof NETWORK_MODES)[number]
  /** TCP multiaddrs to listen on. */
  listen: string[]
  /** Our addresses as others should dial them; empty: the listen addresses. */
  announce: string[]
  /** Peers to keep connected (each ends in /p2p/<peer id>). */
  peers: string[]
  /** DHT bootstrap peers (`public` only). */
  bootstrap: string[]
  /** What `public` mode announces in the DHT: pinned roots, every pinned block, or every block held. */
  provideStrategy: (typeof PROVIDE_STRATEGIES)[number]
  reprovideIntervalSeconds: number
  /** The connection manager's limit: connections beyond it are refused or pruned. */
  maxConnections: number
  /** Pin requests fetched from the network at once. */
  maxFetches: number
  /** Bytes per second each way, all connections together; 0 = no cap. */
  maxBytesPerSecond: number
  /** Bytes per second each way, per peer; 0 = no cap. */
  maxPeerBytesPerSecond: number
}

export interface Config {
  port: number
  host: string
  dataDir: string
  databaseUrl: string | undefined
  /** How long a query may go unanswered before its connection is closed and the request gets a 503 (0: no limit). */
  databaseQueryTimeoutSeconds: number
  /** How soon PostgreSQL ends a session whose client went silent over TCP (src/db/dead-client.ts; 0: the server's own settings). */
  databaseDeadClientSeconds: number
  ipfsApiUrl: string | undefined
  /** Kubo mode: how long a read or a pin may wait on Kubo without a word before it fails with a 503. */
  ipfsTimeoutSeconds: number
  /** Kubo's own HTTP gateway, private to the stack: where file bytes are read in Kubo mode. */
  ipfsGatewayUrl: string | undefined
  /** Kubo's flatfs `blocks` folder, mounted read-only: where file bytes are read in Kubo mode when set. */
  ipfsBlocksDir: string | undefined
  /** Bytes of path resolutions, decoded directories and listings the gateway keeps. */
  gatewayCacheBytes: number
  /** Where the embedded node keeps blocks: files under DATA_DIR, or an S3 bucket shared by instances. */
  blockstore: BlockstoreConfig
  publicUrl: string
  /** Always ends with `/`, so `${gatewayUrl}${cid}/${path}` is a link. */
  gatewayUrl: string
  secretKey: string | undefined
  maxUploadBytes: number
  /** A request body that stops arriving for this long has its connection closed; 0: never. */
  bodyIdleTimeoutSeconds: number
  cidProfile: (typeof IMPORT_PROFILE_NAMES)[number]
  /** Extensions allowed inside bundles (lower case, no dot). */
  assetExtensions: ReadonlySet<string>
  bundleLimits: { maxEntries: number, maxUncompressedBytes: number, maxRatio: number }
  /** What names in a zip neither marked nor valid as UTF-8 are read in: `cp437` or a WHATWG encoding's name. */
  zipNameEncoding: string
  /** Express's `trust proxy`: which proxies' X-Forwarded-* headers to believe. */
  trustProxy: boolean | number | string
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL']
  /** Seconds between scheduled garbage collections of the IPFS node; 0 = none. */
  gcIntervalSeconds: number
  /** Below this many free bytes under DATA_DIR (or the embedded node's blocks), /readyz answers 503. */
  minFreeBytes: number
  /** How long a Pinning Service API request waits for content this node does not hold before it fails. */
  psaFetchTimeoutSeconds: number
  /** Pin requests one identity may have waiting for content (queued or pinning) at once. */
  psaMaxPending: number
  /** Rate limits, kept in the database (shared by instances on one database). */
  rateLimits: RateLimits
  /** Every identity's quota unless an operator set its own. */
  defaultQuota: Quota
  /** tus uploads: how long one lives without a byte arriving (and a finished one's answer is kept), how often expired ones are removed. */
  resumable: { expirySeconds: number, sweepSeconds: number }
  /** Where the operator's `*.deny` lists (IPIP-383) are read from; unset: DATA_DIR/denylists. */
  denylistDir: string | undefined
  /** How often that folder is looked at for added, changed and removed lists. */
  denylistPollSeconds: number
  /** Lets Prometheus scrape /metrics from another machine (`Authorization: Bearer …`); unset: loopback only. */
  metricsToken: string | undefined
  /** The embedded node's networking (IPFS_NETWORK and the IPFS_* settings that go with it). */
  network: NetworkConfig
}

/** BLOCKSTORE and the S3_* keys. */
export type BlockstoreConfig =
  | { kind: 'fs' }
  | {
    kind: 's3'
    endpoint: string
    bucket: string
    /** Prepended to every object key (`<prefix>blocks/…`); empty or ending in `/`. */
    prefix: string
    region: string
    forcePathStyle: boolean
    accessKeyId: string
    secretAccessKey: string
    sessionToken: string | undefined
    /** Bytes of blocks the local read cache (DATA_DIR/ipfs/block-cache) keeps. */
    cacheBytes: number
    /** An import's blocks go to the bucket in objects of about this size, indexed in PostgreSQL; 0: one object per block. */
    packBytes: number
    /** What the pack buffers of all of this instance's uploads hold at once; past it, packs are sent smaller. */
    packMemory: number
    /** Leases of an instance that has not beaten for this long are dead (it crashed mid-import). */
    leaseTtlSeconds: number
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
 * The region to sign for when S3_REGION is not set: the one an endpoint's
 * host names (AWS `s3.<region>.amazonaws.com` and `s3-<region>…`, Backblaze
 * B2 `s3.<region>.backblazeb2.com`, Wasabi `s3.<region>.wasabisys.com`), R2's
 * `auto`, else `us-east-1` (what MinIO, SeaweedFS and Ceph take by default).
 * A store that wants another (Garage: its `s3_region`, often `garage`) needs
 * S3_REGION.
 */
export function regionOf (endpoint: string): string {
  let host: string
  try { host = new URL(endpoint).hostname } catch { return 'us-east-1' }
  if (host.endsWith('.r2.cloudflarestorage.com')) return 'auto'
  const named = /(?:^|\.)s3[.-](?:dualstack\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com$/.exec(host) ??
    /^s3\.([a-z]{2}(?:-[a-z]+)+-\d{3})\.backblazeb2\.com$/.exec(host) ??
    /^s3\.([a-z]{2}(?:-[a-z]+)+-\d)\.wasabisys\.com$/.exec(host)
  return named?.[1] ?? 'us-east-1'
}

/**
 * Parses the environment once. Pure: it reads only `env`, so tests pass their own.
 * Every invalid key is reported, one line each, in a single ConfigError.
 */
export function loadConfig (env: Env): Config {
  // An empty value is unset, for every key (.env.example lists keys with nothing after the =): its default applies.
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, value]) => value === undefined || value.trim() !== '')))
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
    databaseQueryTimeoutSeconds: e.DATABASE_QUERY_TIMEOUT_SECONDS,
    databaseDeadClientSeconds: e.DATABASE_DEAD_CLIENT_SECONDS,
    ipfsApiUrl: e.IPFS_API_URL,
    ipfsTimeoutSeconds: e.IPFS_TIMEOUT_SECONDS,
    ipfsGatewayUrl: e.IPFS_GATEWAY_URL,
    ipfsBlocksDir: e.IPFS_BLOCKS_DIR,
    gatewayCacheBytes: e.GATEWAY_CACHE_BYTES,
    blockstore: e.BLOCKSTORE === 's3'
      ? {
          kind: 's3',
          endpoint: e.S3_ENDPOINT ?? '',
          bucket: e.S3_BUCKET ?? '',
          prefix: e.S3_PREFIX === undefined || e.S3_PREFIX === '' ? '' : withTrailingSlash(e.S3_PREFIX),
          region: e.S3_REGION ?? regionOf(e.S3_ENDPOINT ?? ''),
          forcePathStyle: e.S3_FORCE_PATH_STYLE === 'true',
          accessKeyId: e.AWS_ACCESS_KEY_ID ?? '',
          secretAccessKey: e.AWS_SECRET_ACCESS_KEY ?? '',
          sessionToken: e.AWS_SESSION_TOKEN,
          cacheBytes: e.S3_CACHE_BYTES,
          packBytes: e.S3_PACK_BYTES,
          packMemory: e.S3_PACK_MEMORY,
          leaseTtlSeconds: e.GC_LEASE_TTL_SECONDS
        }
      : { kind: 'fs' },
    publicUrl,
    gatewayUrl: withTrailingSlash(e.GATEWAY_URL ?? `${publicUrl}/ipfs/`),
    secretKey: e.SECRET_KEY,
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
    bodyIdleTimeoutSeconds: e.BODY_IDLE_TIMEOUT_SECONDS,
    cidProfile: e.IPFS_CID_PROFILE,
    assetExtensions: new Set(e.ASSET_EXTENSIONS?.split(',') ?? DEFAULT_ASSET_EXTENSIONS),
    bundleLimits: { maxEntries: e.ZIP_MAX_ENTRIES, maxUncompressedBytes: e.ZIP_MAX_UNCOMPRESSED_BYTES, maxRatio: e.ZIP_MAX_RATIO },
    zipNameEncoding: e.ZIP_NAME_ENCODING,
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
    resumable: { expirySeconds: e.RESUMABLE_EXPIRY_SECONDS, sweepSeconds: e.RESUMABLE_SWEEP_SECONDS },
    psaFetchTimeoutSeconds: e.PSA_FETCH_TIMEOUT_SECONDS,
    psaMaxPending: e.PSA_MAX_PENDING,
    network: {
      mode: e.IPFS_NETWORK,
      listen: splitList(e.IPFS_LISTEN ?? '/ip4/127.0.0.1/tcp/4001'),
      announce: splitList(e.IPFS_ANNOUNCE),
      peers: splitList(e.IPFS_PEERS),
      bootstrap: e.IPFS_NETWORK !== 'public' || e.IPFS_BOOTSTRAP === 'none' ? [] : e.IPFS_BOOTSTRAP === undefined ? [...DEFAULT_BOOTSTRAP] : splitList(e.IPFS_BOOTSTRAP),
      provideStrategy: e.IPFS_PROVIDE_STRATEGY ?? 'roots',
      reprovideIntervalSeconds: e.IPFS_REPROVIDE_INTERVAL_SECONDS ?? 22 * 3600,
      maxConnections: e.IPFS_MAX_CONNECTIONS ?? 100,
      maxFetches: e.IPFS_MAX_FETCHES ?? 2,
      maxBytesPerSecond: e.IPFS_MAX_BYTES_PER_SECOND ?? 0,
      maxPeerBytesPerSecond: e.IPFS_MAX_PEER_BYTES_PER_SECOND ?? 0
    },
    denylistDir: e.DENYLIST_DIR,
    denylistPollSeconds: e.DENYLIST_POLL_SECONDS,
    metricsToken: e.METRICS_TOKEN
  }
}
