import { describe, expect, it } from 'vitest'
import { ConfigError, DEFAULT_ASSET_EXTENSIONS, loadConfig } from '../src/config.ts'

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      dataDir: './data',
      databaseUrl: undefined,
      ipfsApiUrl: undefined,
      publicUrl: 'http://localhost:8080',
      gatewayUrl: 'http://localhost:8080/ipfs/',
      secretKey: undefined,
      maxUploadBytes: 1_073_741_824,
      cidProfile: 'unixfs-v1-2025',
      bundleLimits: { maxEntries: 10_000, maxUncompressedBytes: 4 * 1024 ** 3, maxRatio: 200 },
      logLevel: 'info',
      gcIntervalSeconds: 3600,
      minFreeBytes: 256 * 1024 ** 2
    })
    expect([...config.assetExtensions]).toEqual([...DEFAULT_ASSET_EXTENSIONS])
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

  it('takes a configured allow-list', () => {
    expect([...loadConfig({ ASSET_EXTENSIONS: 'fbx,png' }).assetExtensions]).toEqual(['fbx', 'png'])
    expect(() => loadConfig({ ASSET_EXTENSIONS: '.fbx, PNG' })).toThrow(ConfigError)
  })
})
