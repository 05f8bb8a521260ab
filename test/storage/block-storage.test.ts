import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import knex from 'knex'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { blockKey, shardOf } from '../../src/ipfs/block-collector.ts'
import type { BlockStorage } from '../../src/storage/block-storage.ts'
import { BlockCache } from '../../src/storage/block-cache.ts'
import { FsBlockStorage } from '../../src/storage/fs-block-storage.ts'
import { CorruptBlockError, S3BlockStorage } from '../../src/storage/s3-block-storage.ts'
import { S3Client } from '../../src/storage/s3-client.ts'
import { openSharedStore } from '../../src/storage/open-shared-store.ts'
import { createBucket, startSeaweed, type SeaweedCluster } from '../support/seaweedfs.ts'

const seaweedBin = inject('seaweedBin')
if (seaweedBin === '') console.warn('\n!!!!! SKIPPING the S3 block store contract suite: no SeaweedFS binary (see the setup\'s message)\n')

async function block (bytes: Uint8Array): Promise<{ cid: CID, bytes: Uint8Array }> {
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

interface StoreFactory {
  name: string
  available: boolean
  open: () => Promise<{ storage: BlockStorage, dispose: () => Promise<void> }>
}

let seaweed: SeaweedCluster | undefined
const s3Options = (bucket: string): ConstructorParameters<typeof S3Client>[0] => {
  if (seaweed === undefined) throw new Error('SeaweedFS is not running')
  return { endpoint: seaweed.endpoint, bucket, region: seaweed.region, forcePathStyle: true, accessKeyId: seaweed.accessKeyId, secretAccessKey: seaweed.secretAccessKey }
}

const factories: StoreFactory[] = [
  {
    name: 'files (BLOCKSTORE=fs)',
    available: true,
    open: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'heimdall-fs-store-'))
      const storage = await new FsBlockStorage(join(dir, 'blocks')).open()
      return { storage, dispose: async () => { await storage.close(); await rm(dir, { recursive: true, force: true }) } }
    }
  },
  {
    name: 'S3 on SeaweedFS (BLOCKSTORE=s3)',
    available: seaweedBin !== '',
    open: async () => {
      seaweed ??= await startSeaweed(seaweedBin)
      const bucket = `contract-${Math.random().toString(36).slice(2, 10)}`
      await createBucket(seaweed, bucket)
      const dir = await mkdtemp(join(tmpdir(), 'heimdall-s3-store-'))
      const storage = new S3BlockStorage(new S3Client(s3Options(bucket)), { prefix: 'p/', cache: await BlockCache.open(dir, 1024 * 1024) })
      return { storage, dispose: async () => { await storage.close(); await rm(dir, { recursive: true, force: true }) } }
    }
  }
]

afterAll(async () => { await seaweed?.stop() })

for (const factory of factories) {
  describe.skipIf(!factory.available)(`block store contract: ${factory.name}`, () => {
    let storage: BlockStorage
    let dispose: () => Promise<void>
    beforeAll(async () => { ({ storage, dispose } = await factory.open()) }, 120_000)
    afterAll(async () => { await dispose() })

    it('puts, gets, reads into a buffer, and says what it has', async () => {
      const { cid, bytes } = await block(randomBytes(300_000))
      expect(await storage.has(cid)).toBe(false)
      expect(await storage.get(cid)).toBeUndefined()
      expect(await storage.readInto(cid, new Uint8Array(10))).toBeUndefined()
      await storage.put(cid, bytes)
      await storage.put(cid, bytes) // a second put changes nothing
      expect(await storage.has(cid)).toBe(true)
      expect(Buffer.compare(Buffer.from(await storage.get(cid) as Uint8Array), bytes)).toBe(0)
      const exact = new Uint8Array(bytes.length)
      expect(await storage.readInto(cid, exact)).toBe(bytes.length)
      expect(Buffer.compare(Buffer.from(exact), bytes)).toBe(0)
      const bigger = new Uint8Array(bytes.length + 100)
      expect(await storage.readInto(cid, bigger)).toBe(bytes.length)
      expect(Buffer.compare(Buffer.from(bigger.subarray(0, bytes.length)), bytes)).toBe(0)
    })

    it('answers identity CIDs from the CID itself', async () => {
      const cid = CID.createV1(raw.code, identity.digest(Uint8Array.from([1, 2, 3])))
      expect(await storage.has(cid)).toBe(true)
      expect([...await storage.get(cid) as Uint8Array]).toEqual([1, 2, 3])
    })

    it('lists every block by key and size, and deletes by key (absent keys skipped)', async () => {
      const blocks = await Promise.all(Array.from({ length: 30 }, async (_, i) => block(randomBytes(100 + i))))
      await Promise.all(blocks.map(async (b) => storage.put(b.cid, b.bytes)))
      const listed = new Map<string, number>()
      for await (const b of storage.list()) listed.set(b.key, b.size)
      for (const b of blocks) expect(listed.get(blockKey(b.cid))).toBe(b.bytes.length)
      const gone = blocks.slice(0, 10)
      await storage.delete([...gone.map((b) => blockKey(b.cid)), 'BCIQNOTABLOCKXX.data'])
      for (const b of gone) {
        expect(await storage.has(b.cid)).toBe(false)
        expect(await storage.get(b.cid)).toBeUndefined()
      }
      for (const b of blocks.slice(10)) expect(await storage.has(b.cid)).toBe(true)
    })

    it('answers ping', async () => {
      await storage.ping()
    })
  })
}

describe.skipIf(seaweedBin === '')('S3 block store: reads checked and cached, the cache bounded', () => {
  let bucket: string
  let dir: string
  beforeAll(async () => {
    seaweed ??= await startSeaweed(seaweedBin)
    bucket = `cache-${Math.random().toString(36).slice(2, 10)}`
    await createBucket(seaweed, bucket)
    dir = await mkdtemp(join(tmpdir(), 'heimdall-s3-cache-'))
  }, 120_000)
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('refuses bytes in the bucket that do not hash to the CID, and never caches them', async () => {
    const client = new S3Client(s3Options(bucket))
    const storage = new S3BlockStorage(client, { prefix: '', cache: await BlockCache.open(join(dir, 'a'), 1024 * 1024) })
    const { cid } = await block(randomBytes(1000))
    const key = blockKey(cid)
    await client.putObject(`blocks/${shardOf(key)}/${key}`, randomBytes(1000)) // someone else's bytes under this key
    await expect(storage.get(cid)).rejects.toBeInstanceOf(CorruptBlockError)
    await expect(storage.readInto(cid, new Uint8Array(1000))).rejects.toBeInstanceOf(CorruptBlockError)
    expect(storage.cache.bytes).toBe(0)
    await storage.close()
  })

  it('a read in flight while the block is collected does not put it back in the cache (forgotten meanwhile, not served on)', async () => {
    let gate: Promise<void> | undefined
    // A client whose GET answers only once let go: the bytes were read before the collection, the answer comes after.
    class Held extends S3Client {
      override async getObject (key: string): Promise<Buffer | undefined> {
        const bytes = await super.getObject(key)
        await gate
        return bytes
      }
    }
    const client = new Held(s3Options(bucket))
    const cache = await BlockCache.open(join(dir, 'inflight'), 1024 * 1024)
    const storage = new S3BlockStorage(client, { prefix: 'inflight/', cache })
    const b = await block(randomBytes(50_000))
    await storage.put(b.cid, b.bytes)
    let release!: () => void
    gate = new Promise((resolve) => { release = resolve })
    const reading = storage.get(b.cid)
    await new Promise((resolve) => setTimeout(resolve, 300))
    // Another instance collects it: the bucket loses it, and this instance's cache is told (as the collector's follow does).
    await client.deleteObjects([`inflight/blocks/${shardOf(blockKey(b.cid))}/${blockKey(b.cid)}`])
    await cache.forget([blockKey(b.cid)])
    release()
    expect(Buffer.compare(Buffer.from(await reading as Uint8Array), b.bytes)).toBe(0)
    gate = undefined
    expect(cache.has(b.cid)).toBe(false)
    expect(cache.bytes).toBe(0)
    expect(await storage.has(b.cid)).toBe(false)
    expect(await storage.get(b.cid)).toBeUndefined()
    // A read that began after the forget is cached as before.
    const other = await block(randomBytes(1000))
    await storage.put(other.cid, other.bytes)
    await storage.get(other.cid)
    expect(cache.has(other.cid)).toBe(true)
    await storage.close()
  })

  it('serves a cached block without the bucket, keeps at most its budget, and forgets what is deleted', async () => {
    const client = new S3Client(s3Options(bucket))
    const cache = await BlockCache.open(join(dir, 'b'), 250_000)
    const storage = new S3BlockStorage(client, { prefix: 'bounded/', cache })
    const blocks = await Promise.all(Array.from({ length: 5 }, async () => block(randomBytes(100_000))))
    for (const b of blocks) await storage.put(b.cid, b.bytes)
    for (const b of blocks) await storage.get(b.cid)
    expect(cache.bytes).toBeLessThanOrEqual(250_000)
    expect(cache.bytes).toBe(200_000) // the two read last
    // The last one is served from the disk even when the bucket no longer has it...
    const last = blocks[4] as { cid: CID, bytes: Uint8Array }
    await client.deleteObjects([`bounded/blocks/${shardOf(blockKey(last.cid))}/${blockKey(last.cid)}`])
    expect(Buffer.compare(Buffer.from(await storage.get(last.cid) as Uint8Array), last.bytes)).toBe(0)
    // ...until a delete through the store, which forgets it.
    await storage.delete([blockKey(last.cid)])
    expect(await storage.get(last.cid)).toBeUndefined()
    // A restart takes the cache back from the disk.
    const reopened = await BlockCache.open(join(dir, 'b'), 250_000)
    expect(reopened.bytes).toBe(100_000)
    await storage.close()
  })

  it('refuses to open the shared store when the bucket does not answer, saying why in the configuration\'s terms', async () => {
    const db = knex({ client: 'pg' }) // never asked: the bucket is checked first
    const config = { kind: 's3' as const, ...s3Options(bucket), prefix: '', sessionToken: undefined, cacheBytes: 0, packBytes: 8 * 1024 ** 2, packMemory: 64 * 1024 ** 2, leaseTtlSeconds: 300 }
    const open = async (changes: Partial<typeof config>): Promise<unknown> => openSharedStore({ ...config, ...changes }, { db, dir, instance: 'x' })
    await expect(open({ secretAccessKey: 'not-the-secret' })).rejects.toThrow(/refused the credentials \((InvalidAccessKeyId|SignatureDoesNotMatch): AWS_ACCESS_KEY_ID/)
    await expect(open({ bucket: 'no-such-bucket' })).rejects.toThrow(/"no-such-bucket" .* does not exist: create it first/)
    await expect(open({ endpoint: 'http://127.0.0.1:9' })).rejects.toThrow(/did not answer: .*ECONNREFUSED/)
    await db.destroy()
  })
})

/**
 * A TCP proxy to `target` that flips the first body byte of the first
 * `count` PUT requests it carries, as a faulty NIC, proxy or memory might:
 * the request still arrives whole and well-formed, with the wrong bytes.
 */
async function damagingProxy (target: URL, count: number): Promise<{ endpoint: string, damaged: () => number, close: () => Promise<void> }> {
  let damaged = 0
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => { client.destroy(); upstream.destroy() })
      socket.on('close', () => { sockets.delete(socket) })
    }
    upstream.pipe(client)
    let head = Buffer.alloc(0) // the current request's head, until its blank line
    let bodyLeft = 0
    let flip = false
    client.on('data', (chunk: Buffer) => {
      const out: Buffer[] = []
      let data = chunk
      while (data.length > 0) {
        if (bodyLeft > 0) {
          const part = Buffer.from(data.subarray(0, bodyLeft))
          if (flip) { part[0] = (part[0] ?? 0) ^ 0xff; flip = false }
          out.push(part)
          bodyLeft -= part.length
          data = data.subarray(part.length)
          continue
        }
        head = Buffer.concat([head, data])
        const end = head.indexOf('\r\n\r\n')
        if (end === -1) break
        const text = head.subarray(0, end + 4).toString('latin1')
        out.push(head.subarray(0, end + 4))
        data = head.subarray(end + 4)
        head = Buffer.alloc(0)
        bodyLeft = Number(/\r\ncontent-length:\s*(\d+)/i.exec(text)?.[1] ?? '0')
        if (text.startsWith('PUT ') && bodyLeft > 0 && damaged < count) { flip = true; damaged++ }
      }
      upstream.write(Buffer.concat(out))
    })
    client.on('end', () => { upstream.end() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    damaged: () => damaged,
    close: async () => { for (const socket of sockets) socket.destroy(); await new Promise((resolve) => server.close(resolve)) }
  }
}

describe.skipIf(seaweedBin === '')('S3 block store: bytes damaged on the way to the bucket', () => {
  it('are refused by the store (Content-MD5) and sent again; damaged every time, the put fails and nothing is kept', async () => {
    seaweed ??= await startSeaweed(seaweedBin)
    const bucket = `md5-${Math.random().toString(36).slice(2, 10)}`
    await createBucket(seaweed, bucket)
    const direct = new S3Client(s3Options(bucket))
    const bytes = randomBytes(200_000)

    const once = await damagingProxy(new URL(seaweed.endpoint), 1)
    const throughOnce = new S3Client({ ...s3Options(bucket), endpoint: once.endpoint })
    await throughOnce.putObject('packs/once', bytes)
    expect(once.damaged()).toBe(1)
    expect(Buffer.compare(await direct.getObject('packs/once') ?? Buffer.alloc(0), bytes)).toBe(0)

    const always = await damagingProxy(new URL(seaweed.endpoint), Infinity)
    const throughAlways = new S3Client({ ...s3Options(bucket), endpoint: always.endpoint, attempts: 2 })
    await expect(throughAlways.putObject('packs/always', bytes)).rejects.toThrow(/400 BadDigest/)
    expect(always.damaged()).toBe(2)
    expect(await direct.getObject('packs/always')).toBeUndefined()

    for (const client of [direct, throughOnce, throughAlways]) client.close()
    await Promise.all([once.close(), always.close()])
  })
})
