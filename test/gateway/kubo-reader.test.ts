import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { NotFoundError } from '../../src/errors.ts'
import { BlockFiles } from '../../src/gateway/block-files.ts'
import { openContentReader } from '../../src/gateway/open-content-reader.ts'
import { UnixfsReader } from '../../src/gateway/unixfs-reader.ts'
import { KuboBackend } from '../../src/ipfs/kubo-backend.ts'
import { startKubo, type KuboNode } from '../support/kubo.ts'

const kuboBin = inject('kuboBin')
const pattern = (size: number): Buffer => Buffer.from(Uint8Array.from({ length: size }, (_, i) => (i * 7 + (i >> 10)) & 0xff))

async function collect (source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const chunk of source) chunks.push(chunk)
  return Buffer.concat(chunks)
}

describe.skipIf(kuboBin === '')('the gateway reader over Kubo', () => {
  let kubo: KuboNode
  let backend: KuboBackend
  let root: CID
  // Three 1 MiB chunks and a bit: a file of several blocks under one node.
  const data = pattern(3 * 1024 * 1024 + 1000)

  beforeAll(async () => {
    kubo = await startKubo(kuboBin)
    backend = new KuboBackend(kubo.apiUrl)
    const nodes = await backend.importTree([{ path: 'big.bin', content: Readable.from([data]) }, { path: 'sub/small.txt', content: Readable.from([Buffer.from('hi')]) }], { profile: 'unixfs-v1-2025' })
    root = nodes.at(-1)?.cid as CID
  })
  afterAll(async () => { await backend.close(); await kubo.stop() })

  /** The three ways the gateway reads Kubo's bytes: its flatfs files, its private gateway, its RPC `cat`. */
  const VIA = [['Kubo\'s flatfs files', 'files'], ['Kubo\'s private gateway', 'gateway'], ['the RPC API\'s cat', 'rpc']] as const
  const readerVia = (via: (typeof VIA)[number][1], cacheBytes: number): ReturnType<typeof openContentReader> => openContentReader(backend, {
    cacheBytes,
    ipfsGatewayUrl: via === 'gateway' ? kubo.gatewayUrl : undefined,
    ipfsBlocksDir: via === 'files' ? join(kubo.repo, 'blocks') : undefined
  })

  it.each(VIA)('reads whole files and ranges across blocks through %s, and lists from links', async (_how, via) => {
    const reader = readerVia(via, 1024 * 1024)
    const file = await reader.resolve(root, ['big.bin'])
    expect(file).toMatchObject({ type: 'file', size: data.length })
    expect(Buffer.compare(await collect(reader.read(file, { offset: 0, length: data.length })), data)).toBe(0)
    const offset = 1024 * 1024 - 10
    expect(Buffer.compare(await collect(reader.read(file, { offset, length: 2 * 1024 * 1024 + 20 })), data.subarray(offset, offset + 2 * 1024 * 1024 + 20))).toBe(0)
    const dir = await reader.resolve(root, [])
    expect(dir.type).toBe('directory')
    expect((await reader.list(dir)).map((e) => [e.name, e.type])).toEqual([['big.bin', 'unknown'], ['sub', 'unknown']])
    await expect(reader.resolve(root, ['sub', 'missing'])).rejects.toBeInstanceOf(NotFoundError)
    await expect(reader.resolve(CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'), [])).rejects.toBeInstanceOf(NotFoundError)
  })

  it('reads every block from Kubo\'s flatfs files when they are shared, asking Kubo for none', async () => {
    const asked: string[] = []
    const files = new BlockFiles(join(kubo.repo, 'blocks'), { getBlock: async (cid) => { asked.push(cid.toString()); return backend.getBlock(cid) } })
    const reader = new UnixfsReader(files, { cacheBytes: 0 })
    const file = await reader.resolve(root, ['big.bin'])
    const chunks: Buffer[] = []
    const out = new Writable({ write (chunk: Buffer, _encoding, done) { chunks.push(Buffer.from(chunk)); done() } })
    await reader.writeTo(file, { offset: 0, length: data.length }, out)
    expect(Buffer.compare(Buffer.concat(chunks), data)).toBe(0)
    expect(Buffer.from(await files.getBlock(root))).toEqual(Buffer.from(await backend.getBlock(root)))
    expect(asked).toEqual([])
  })

  it('reads through Kubo a block its flatfs folder has no file for, and writes every byte into a response', async () => {
    // A flatfs folder with no blocks in it: every block is asked of Kubo.
    const empty = await mkdtemp(join(tmpdir(), 'heimdall-flatfs-'))
    try {
      await writeFile(join(empty, 'SHARDING'), '/repo/flatfs/shard/v1/next-to-last/2\n')
      const reader = openContentReader(backend, { cacheBytes: 0, ipfsBlocksDir: empty })
      const file = await reader.resolve(root, ['big.bin'])
      const chunks: Buffer[] = []
      const out = new Writable({ write (chunk: Buffer, _encoding, done) { chunks.push(Buffer.from(chunk)); done() } })
      await reader.writeTo(file, { offset: 5, length: data.length - 10 }, out)
      expect(Buffer.compare(Buffer.concat(chunks), data.subarray(5, data.length - 5))).toBe(0)
      const absent = { cid: CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'), type: 'file' as const, size: 10 }
      await expect(collect(reader.read(absent, { offset: 0, length: 10 }))).rejects.toBeInstanceOf(NotFoundError)
    } finally {
      await rm(empty, { recursive: true, force: true })
    }
  })

  it('refuses a blocks folder that is not Kubo\'s flatfs', async () => {
    const other = await mkdtemp(join(tmpdir(), 'heimdall-flatfs-'))
    try {
      expect(() => openContentReader(backend, { cacheBytes: 0, ipfsBlocksDir: other })).toThrow(/SHARDING/)
      await writeFile(join(other, 'SHARDING'), '/repo/flatfs/shard/v1/prefix/4\n')
      expect(() => openContentReader(backend, { cacheBytes: 0, ipfsBlocksDir: other })).toThrow(/next-to-last\/2/)
    } finally {
      await rm(other, { recursive: true, force: true })
    }
  })

  it.each(VIA)('through %s, without a cache: a symlink is served from its node (Kubo will not cat one), and the gate sees every block before a byte', async (_how, via) => {
    const reader = readerVia(via, 0)
    const linkBytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'symlink', data: Buffer.from('target/path') }).marshal(), Links: [] }))
    const link = CID.create(1, dagPb.code, await sha256.digest(linkBytes))
    const lease = await backend.openLease()
    try {
      await backend.putBlocks([{ cid: link, bytes: linkBytes }], { lease })
      const node = await reader.resolve(link, [])
      expect((await collect(reader.read(node, { offset: 0, length: node.size }))).toString()).toBe('target/path')
      const out: Buffer[] = []
      await reader.writeTo(node, { offset: 0, length: node.size }, new Writable({ write (chunk: Buffer, _enc, done) { out.push(chunk); done() } }))
      // A small answer is corked with its head and goes out on the next tick.
      await new Promise((resolve) => setImmediate(resolve))
      expect(Buffer.concat(out).toString()).toBe('target/path')
    } finally {
      await lease.discard()
    }
    // The big file's second leaf refused: nothing is read, and no byte is handed on.
    const file = await reader.resolve(root, ['big.bin'])
    const seen: string[] = []
    let refused = ''
    const gate = (cid: CID): void => {
      seen.push(cid.toString())
      if (seen.length === 3) { refused = cid.toString(); throw new NotFoundError('refused by the test') }
    }
    const written: Buffer[] = []
    await expect(reader.writeTo(file, { offset: 0, length: data.length, gate }, new Writable({ write (chunk: Buffer, _enc, done) { written.push(chunk); done() } }))).rejects.toThrow(/refused by the test/)
    expect(refused).not.toBe('')
    expect(written).toEqual([])
  })

  it('answers a CID Kubo\'s gateway does not hold as not found, never fetching it', async () => {
    const reader = openContentReader(backend, { cacheBytes: 0, ipfsGatewayUrl: kubo.gatewayUrl })
    const absent = { cid: CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'), type: 'file' as const, size: 10 }
    await expect(collect(reader.read(absent, { offset: 0, length: 10 }))).rejects.toBeInstanceOf(NotFoundError)
  })
})
