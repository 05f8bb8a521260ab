import { describe, expect, it } from 'vitest'
import { ConfigError, DEFAULT_ASSET_EXTENSIONS, DEFAULT_BOOTSTRAP, loadConfig } from '../src/config.ts'

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      dataDir: './data',
      databaseUrl: undefined,
      ipfsApiUrl: undefined,
      ipfsTimeoutSeconds: 60,
      databaseDeadClientSeconds: 25,
      publicUrl: 'http://localhost:8080',
      gatewayUrl: 'http://localhost:8080/ipfs/',
      secretKey: undefined,
      maxUploadBytes: 1_073_741_824,
      cidProfile: 'unixfs-v1-2025',
      bundleLimits: { maxEntries: 10_000, maxUncompressedBytes: 4 * 1024 ** 3, maxRatio: 1100 },
      logLevel: 'info',
      gcIntervalSeconds: 3600,
      minFreeBytes: 256 * 1024 ** 2
    })
    expect([...config.assetExtensions]).toEqual([...DEFAULT_ASSET_EXTENSIONS])
  })

  it('reads DATABASE_DEAD_CLIENT_SECONDS, 0 for the server\'s own keepalive', () => {
    expect(loadConfig({ DATABASE_DEAD_CLIENT_SECONDS: '0' }).databaseDeadClientSeconds).toBe(0)
    expect(loadConfig({ DATABASE_DEAD_CLIENT_SECONDS: '120' }).databaseDeadClientSeconds).toBe(120)
    expect(() => loadConfig({ DATABASE_DEAD_CLIENT_SECONDS: '-1' })).toThrow(/DATABASE_DEAD_CLIENT_SECONDS/)
  })

  it('derives the public and gateway URLs from PORT and PUBLIC_URL', () => {
    expect(loadConfig({ PORT: '9000' }).gatewayUrl).toBe('http://localhost:9000/ipfs/')
    expect(loadConfig({ PUBLIC_URL: 'https://h.example/' }).gatewayUrl).toBe('https://h.example/ipfs/')
    expect(loadConfig({ GATEWAY_URL: 'https://gw.example/ipfs' }).gatewayUrl).toBe('https://gw.example/ipfs/')
  })

  it('reads the garbage-collection interval (0 = off) and the free-space floor, refusing negatives', () => {
    expect(loadConfig({ GC_INTERVAL_SECONDS: '0', MIN_FREE_BYTES: '1048576' })).toMatchObject({ gcIntervalSeconds: 0, minFreeBytes: 1_048_576 })
    expect(() => loadConfig({ GC_INTERVAL_SECONDS: '-1', MIN_FREE_BYTES: 'lots' })).toThrow(/GC_INTERVAL_SECONDS[\s\S]*MIN_FREE_BYTES/)
  })

  it('reads the gateway cache budget and Kubo\'s private gateway, which needs Kubo\'s RPC API', () => {
    expect(loadConfig({})).toMatchObject({ gatewayCacheBytes: 64 * 1024 ** 2, ipfsGatewayUrl: undefined })
    expect(loadConfig({ GATEWAY_CACHE_BYTES: '0', IPFS_API_URL: 'http://ipfs:5001', IPFS_GATEWAY_URL: 'http://ipfs:8080' }))
      .toMatchObject({ gatewayCacheBytes: 0, ipfsGatewayUrl: 'http://ipfs:8080' })
    expect(() => loadConfig({ IPFS_GATEWAY_URL: 'http://ipfs:8080' })).toThrow(/IPFS_GATEWAY_URL: .*IPFS_API_URL/)
    expect(loadConfig({ IPFS_API_URL: 'http://ipfs:5001', IPFS_BLOCKS_DIR: '/ipfs-repo/blocks' })).toMatchObject({ ipfsBlocksDir: '/ipfs-repo/blocks' })
    expect(loadConfig({ IPFS_BLOCKS_DIR: '' })).toMatchObject({ ipfsBlocksDir: undefined })
    expect(() => loadConfig({ IPFS_BLOCKS_DIR: '/ipfs-repo/blocks' })).toThrow(/IPFS_BLOCKS_DIR: .*IPFS_API_URL/)
    expect(() => loadConfig({ IPFS_API_URL: 'http://ipfs:5001', IPFS_GATEWAY_URL: 'https://gw.example', GATEWAY_CACHE_BYTES: '-1' })).toThrow(/IPFS_GATEWAY_URL[\s\S]*GATEWAY_CACHE_BYTES|GATEWAY_CACHE_BYTES[\s\S]*IPFS_GATEWAY_URL/)
  })

  it('treats empty values as unset, as .env files write them', () => {
    expect(loadConfig({ DATABASE_URL: '', SECRET_KEY: '' })).toMatchObject({ databaseUrl: undefined, secretKey: undefined })
    // Numbers and lists of choices too: an empty PORT is not port 0, an empty cache size not a cache turned off.
    const empty = loadConfig({ PORT: '', GATEWAY_CACHE_BYTES: ' ', QUOTA_BYTES: '', MAX_UPLOAD_BYTES: '', IPFS_CID_PROFILE: '', LOG_LEVEL: '', HOST: '', DATA_DIR: '' })
    const defaults = loadConfig({})
    for (const key of ['port', 'gatewayCacheBytes', 'maxUploadBytes', 'cidProfile', 'logLevel', 'host', 'dataDir', 'defaultQuota'] as const) expect(empty[key], key).toEqual(defaults[key])
  })

  it('reports every invalid key at once, one line each, naming the key', () => {
    let error: unknown
    try {
      loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', SECRET_KEY: 'short', MAX_UPLOAD_BYTES: '-1', IPFS_CID_PROFILE: 'v2', PUBLIC_URL: 'ftp://x' })
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(ConfigError)
    const issues = (error as ConfigError).issues
    expect(issues.map((i) => i.split(':')[0]).sort()).toEqual(['DATABASE_URL', 'IPFS_CID_PROFILE', 'MAX_UPLOAD_BYTES', 'PORT', 'PUBLIC_URL', 'SECRET_KEY'])
    for (const issue of issues) expect(issue).not.toContain('\n')
  })

  it('takes numbers in decimal digits only, and TRUST_PROXY only as Express can read it (not a stack trace at start)', () => {
    for (const port of ['0x1F90', '1e3', '80.0', '8080abc']) expect(() => loadConfig({ PORT: port }), port).toThrow(/PORT: must be a whole number in decimal digits/)
    // A number out of range says the range, not that it is no number.
    expect(() => loadConfig({ IPFS_TIMEOUT_SECONDS: '0' })).toThrow(/IPFS_TIMEOUT_SECONDS: must be at least 1/)
    expect(() => loadConfig({ IPFS_TIMEOUT_SECONDS: '90000' })).toThrow(/IPFS_TIMEOUT_SECONDS: must be at most 86400/)
    expect(loadConfig({ PORT: ' 8081 ' }).port).toBe(8081)
    for (const value of ['foo', '10.0.0.0/99', '10.0.0.1/255.0.0.0/8', 'fe80::/200', '0.0.0.0/0', '::/0', '10.0.0.0/255.0.255.0', '10.0.0.0/0.0.0.0']) expect(() => loadConfig({ TRUST_PROXY: value }), value).toThrow(/TRUST_PROXY/)
    for (const value of ['loopback', 'loopback, uniquelocal', '172.16.0.0/12', '10.0.0.0/255.0.0.0', 'fd00::/8', '203.0.113.7', '2', 'true']) expect(() => loadConfig({ TRUST_PROXY: value }), value).not.toThrow()
  })

  it('keeps resumable uploads a day by default, swept every 5 minutes; refuses a zero or a word', () => {
    expect(loadConfig({}).resumable).toEqual({ expirySeconds: 86_400, sweepSeconds: 300 })
    expect(loadConfig({ RESUMABLE_EXPIRY_SECONDS: '60', RESUMABLE_SWEEP_SECONDS: '5' }).resumable).toEqual({ expirySeconds: 60, sweepSeconds: 5 })
    expect(() => loadConfig({ RESUMABLE_EXPIRY_SECONDS: '0' })).toThrow(/RESUMABLE_EXPIRY_SECONDS/)
    expect(() => loadConfig({ RESUMABLE_SWEEP_SECONDS: 'often' })).toThrow(/RESUMABLE_SWEEP_SECONDS/)
  })

  it('takes a configured allow-list', () => {
    expect([...loadConfig({ ASSET_EXTENSIONS: 'fbx,png' }).assetExtensions]).toEqual(['fbx', 'png'])
    expect(() => loadConfig({ ASSET_EXTENSIONS: '.fbx, PNG' })).toThrow(ConfigError)
  })

  it('reads unmarked zip names as code page 437 unless ZIP_NAME_ENCODING names a WHATWG encoding; refuses others and UTF-16', () => {
    expect(loadConfig({}).zipNameEncoding).toBe('cp437')
    expect(loadConfig({ ZIP_NAME_ENCODING: 'Shift_JIS' }).zipNameEncoding).toBe('shift_jis')
    expect(loadConfig({ ZIP_NAME_ENCODING: 'cp866' }).zipNameEncoding).toBe('ibm866')
    expect(loadConfig({ ZIP_NAME_ENCODING: 'IBM437' }).zipNameEncoding).toBe('cp437')
    // Windows' names for its code pages, as operators know them.
    expect(['cp932', 'cp936', 'cp949', 'cp950'].map((label) => loadConfig({ ZIP_NAME_ENCODING: label }).zipNameEncoding)).toEqual(['shift_jis', 'gbk', 'euc-kr', 'big5'])
    for (const label of ['klingon', 'utf-16le', 'utf-8', 'iso-2022-jp', 'x-user-defined']) expect(() => loadConfig({ ZIP_NAME_ENCODING: label })).toThrow(/ZIP_NAME_ENCODING: must be cp437 or/)
  })
})

describe('loadConfig: the embedded node on the IPFS network', () => {
  const PEER = '/ip4/192.0.2.10/tcp/4001/p2p/12D3KooWGWFjX6fL6scCLszn4yfWoGsM45XTuTBdTEwLomJGNa9Q'
  const RSA_PEER = '/dns4/ipfs.example.org/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ'
  const issuesOf = (env: Record<string, string>): string[] => {
    try {
      loadConfig(env)
    } catch (err) {
      if (err instanceof ConfigError) return err.issues
      throw err
    }
    return []
  }

  it('is off by default: no libp2p, no peers, no bootstrap', () => {
    expect(loadConfig({}).network).toEqual({
      mode: 'off',
      listen: ['/ip4/127.0.0.1/tcp/4001'],
      announce: [],
      peers: [],
      bootstrap: [],
      provideStrategy: 'roots',
      reprovideIntervalSeconds: 22 * 3600,
      maxConnections: 100,
      maxFetches: 2,
      maxBytesPerSecond: 0,
      maxPeerBytesPerSecond: 0
    })
    expect(loadConfig({ IPFS_NETWORK: '' }).network.mode).toBe('off')
  })

  it('private: listen addresses and peers as comma-separated multiaddrs, and the limits', () => {
    const { network } = loadConfig({
      IPFS_NETWORK: 'private',
      IPFS_LISTEN: '/ip4/0.0.0.0/tcp/4001, /ip6/::/tcp/4001',
      IPFS_ANNOUNCE: '/dns4/heimdall.example.org/tcp/4001',
      IPFS_PEERS: `${PEER},${RSA_PEER}`,
      IPFS_MAX_CONNECTIONS: '50',
      IPFS_MAX_FETCHES: '4',
      IPFS_MAX_BYTES_PER_SECOND: '10485760',
      IPFS_MAX_PEER_BYTES_PER_SECOND: '1048576'
    })
    expect(network).toMatchObject({
      mode: 'private',
      listen: ['/ip4/0.0.0.0/tcp/4001', '/ip6/::/tcp/4001'],
      announce: ['/dns4/heimdall.example.org/tcp/4001'],
      peers: [PEER, RSA_PEER],
      bootstrap: [],
      maxConnections: 50,
      maxFetches: 4,
      maxBytesPerSecond: 10_485_760,
      maxPeerBytesPerSecond: 1_048_576
    })
  })

  it('public: the Amino bootstrap peers unless IPFS_BOOTSTRAP says otherwise (`none`: none), and the provide strategy', () => {
    expect(loadConfig({ IPFS_NETWORK: 'public' }).network.bootstrap).toEqual([...DEFAULT_BOOTSTRAP])
    expect(loadConfig({ IPFS_NETWORK: 'public', IPFS_BOOTSTRAP: 'none' }).network.bootstrap).toEqual([])
    expect(loadConfig({ IPFS_NETWORK: 'public', IPFS_BOOTSTRAP: PEER, IPFS_PROVIDE_STRATEGY: 'pinned', IPFS_REPROVIDE_INTERVAL_SECONDS: '3600' }).network)
      .toMatchObject({ bootstrap: [PEER], provideStrategy: 'pinned', reprovideIntervalSeconds: 3600 })
  })

  it('refuses addresses it would not use, naming the key and the address', () => {
    expect(issuesOf({
      IPFS_NETWORK: 'private',
      IPFS_LISTEN: '/dns4/example.org/tcp/4001,/ip4/0.0.0.0/udp/4001/quic-v1',
      IPFS_PEERS: '/ip4/192.0.2.10/tcp/4001,/ip4/300.1.1.1/tcp/4001/p2p/12D3KooWGWFjX6fL6scCLszn4yfWoGsM45XTuTBdTEwLomJGNa9Q,/ip4/192.0.2.10/tcp/4001/p2p/not-a-peer',
      IPFS_ANNOUNCE: 'example.org:4001'
    })).toEqual([
      'IPFS_LISTEN: "/dns4/example.org/tcp/4001" must be an /ip4/ or /ip6/ address to listen on',
      'IPFS_LISTEN: "/ip4/0.0.0.0/udp/4001/quic-v1" is not a TCP address: this node speaks TCP only (…/tcp/<port>)',
      'IPFS_ANNOUNCE: "example.org:4001" is not a multiaddr (e.g. /ip4/203.0.113.7/tcp/4001)',
      'IPFS_PEERS: "/ip4/192.0.2.10/tcp/4001" must end in /p2p/<peer id>',
      'IPFS_PEERS: "/ip4/300.1.1.1/tcp/4001/p2p/12D3KooWGWFjX6fL6scCLszn4yfWoGsM45XTuTBdTEwLomJGNa9Q" has "300.1.1.1", not an IPv4 address',
      'IPFS_PEERS: "/ip4/192.0.2.10/tcp/4001/p2p/not-a-peer" has "not-a-peer", not a peer id'
    ])
    expect(issuesOf({ IPFS_NETWORK: 'private', IPFS_LISTEN: '/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGWFjX6fL6scCLszn4yfWoGsM45XTuTBdTEwLomJGNa9Q' }))
      .toEqual(['IPFS_LISTEN: "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGWFjX6fL6scCLszn4yfWoGsM45XTuTBdTEwLomJGNa9Q" must not end in /p2p/: the peer id is this node\'s own'])
    expect(issuesOf({ IPFS_NETWORK: 'shared', IPFS_PROVIDE_STRATEGY: 'flat' }).map((i) => i.split(':')[0])).toEqual(['IPFS_NETWORK', 'IPFS_PROVIDE_STRATEGY'])
  })

  it('cross-field rules: networking settings need the embedded node with networking on; DHT settings need public mode', () => {
    expect(issuesOf({ IPFS_PEERS: PEER, IPFS_MAX_FETCHES: '3' })).toEqual([
      'IPFS_PEERS: takes effect only with IPFS_NETWORK=private or public',
      'IPFS_MAX_FETCHES: takes effect only with IPFS_NETWORK=private or public'
    ])
    expect(issuesOf({ IPFS_API_URL: 'http://ipfs:5001', IPFS_NETWORK: 'public', IPFS_LISTEN: '/ip4/0.0.0.0/tcp/4001' })).toEqual([
      'IPFS_NETWORK: is the embedded node\'s networking; with IPFS_API_URL, Kubo is on the network itself (configure its Addresses.Swarm and Peering)',
      'IPFS_LISTEN: configures the embedded node\'s networking; with IPFS_API_URL, configure Kubo instead'
    ])
    // IPFS_NETWORK=off with Kubo is just the default said aloud.
    expect(loadConfig({ IPFS_API_URL: 'http://ipfs:5001', IPFS_NETWORK: 'off' }).network.mode).toBe('off')
    expect(issuesOf({ IPFS_NETWORK: 'private', IPFS_BOOTSTRAP: 'none', IPFS_PROVIDE_STRATEGY: 'all', IPFS_REPROVIDE_INTERVAL_SECONDS: '3600' }).map((i) => i.split(':')[0]))
      .toEqual(['IPFS_BOOTSTRAP', 'IPFS_PROVIDE_STRATEGY', 'IPFS_REPROVIDE_INTERVAL_SECONDS'])
    expect(issuesOf({ IPFS_NETWORK: 'public', IPFS_MAX_BYTES_PER_SECOND: '1000', IPFS_MAX_PEER_BYTES_PER_SECOND: '2000' }))
      .toEqual(['IPFS_MAX_PEER_BYTES_PER_SECOND: is more than IPFS_MAX_BYTES_PER_SECOND, the cap for all peers together'])
    expect(issuesOf({ IPFS_NETWORK: 'public', IPFS_MAX_CONNECTIONS: '0', IPFS_MAX_FETCHES: '65', IPFS_REPROVIDE_INTERVAL_SECONDS: '10' }).map((i) => i.split(':')[0]))
      .toEqual(['IPFS_REPROVIDE_INTERVAL_SECONDS', 'IPFS_MAX_CONNECTIONS', 'IPFS_MAX_FETCHES'])
  })
})

describe('the S3 block store\'s keys', () => {
  const S3 = { BLOCKSTORE: 's3', S3_BUCKET: 'heimdall', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', DATABASE_URL: 'postgres://db/h', SECRET_KEY: 'x'.repeat(40) }
  const regionFor = (endpoint: string, region?: string): string => {
    const config = loadConfig({ ...S3, S3_ENDPOINT: endpoint, ...(region === undefined ? {} : { S3_REGION: region }) })
    return config.blockstore.kind === 's3' ? config.blockstore.region : ''
  }
  const issuesOf = (env: Record<string, string>): string[] => {
    try { loadConfig({ ...S3, ...env }); return [] } catch (err) { return (err as ConfigError).issues }
  }

  it('signs for the region the endpoint names unless S3_REGION says otherwise (AWS, B2, Wasabi, R2\'s auto), else us-east-1', () => {
    expect(regionFor('https://s3.eu-west-1.amazonaws.com')).toBe('eu-west-1')
    expect(regionFor('https://s3-ap-southeast-2.amazonaws.com')).toBe('ap-southeast-2')
    expect(regionFor('https://s3.dualstack.us-gov-west-1.amazonaws.com')).toBe('us-gov-west-1')
    expect(regionFor('https://s3.amazonaws.com')).toBe('us-east-1')
    expect(regionFor('https://s3.us-west-004.backblazeb2.com')).toBe('us-west-004')
    expect(regionFor('https://s3.eu-central-2.wasabisys.com')).toBe('eu-central-2')
    expect(regionFor('https://0123abcd.r2.cloudflarestorage.com')).toBe('auto')
    expect(regionFor('http://seaweedfs:8333')).toBe('us-east-1')
    expect(regionFor('http://garage:3900', 'garage')).toBe('garage')
    expect(regionFor('https://s3.eu-west-1.amazonaws.com', 'eu-west-3')).toBe('eu-west-3')
  })

  it('refuses what a store would refuse later: a prefix MinIO rejects, an endpoint naming the bucket, a dotted bucket as a TLS host name', () => {
    for (const prefix of ['/heimdall', 'a//b', './x', 'a/../b']) expect(issuesOf({ S3_ENDPOINT: 'http://minio:9000', S3_PREFIX: prefix }).map((i) => i.split(':')[0])).toEqual(['S3_PREFIX'])
    expect(issuesOf({ S3_ENDPOINT: 'http://minio:9000', S3_PREFIX: 'heimdall/prod.v2' })).toEqual([])
    expect(issuesOf({ S3_ENDPOINT: 'https://acct.r2.cloudflarestorage.com/heimdall' })).toEqual([expect.stringMatching(/^S3_ENDPOINT: ends with the bucket's name: .* https:\/\/acct\.r2\.cloudflarestorage\.com$/)])
    expect(issuesOf({ S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com', S3_BUCKET: 'assets.example.com', S3_FORCE_PATH_STYLE: 'false' })).toEqual([expect.stringMatching(/^S3_BUCKET: has a dot/)])
    // Path style, or plain http, has no certificate to match.
    expect(issuesOf({ S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com', S3_BUCKET: 'assets.example.com' })).toEqual([])
    expect(issuesOf({ S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com', S3_REGION: 'eu west' }).map((i) => i.split(':')[0])).toEqual(['S3_REGION'])
  })
})
