import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, rmdir, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import * as dagPb from '@ipld/dag-pb'
import * as cborg from 'cborg'
import { FsDatastore } from 'datastore-fs'
import { Key } from 'interface-datastore'
import { UnixFS } from 'ipfs-unixfs'
import { base36 } from 'multiformats/bases/base36'
import type { CID } from 'multiformats/cid'
import { afterEach, describe, expect, it } from 'vitest'
import { SHARDING } from '../../src/ipfs/block-collector.ts'
import { HeliaBackend } from '../../src/ipfs/helia-backend.ts'
import { RepoLockedError } from '../../src/ipfs/repo-lock.ts'
import { rawBlock, unixfsNode, type Block } from '../support/cars.ts'
import { blockFiles } from '../support/heimdall-harness.ts'

const dirs: string[] = []
afterEach(async () => { for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true }) })
const repoDir = async (): Promise<string> => { const dir = await mkdtemp(join(tmpdir(), 'heimdall-repo-')); dirs.push(dir); return dir }

describe('the embedded repo', () => {
  it('is opened by one process at a time; a lock left by a dead process is taken over', async () => {
    const dir = await repoDir()
    const first = await HeliaBackend.open(join(dir, 'ipfs'))
    await expect(HeliaBackend.open(join(dir, 'ipfs'))).rejects.toBeInstanceOf(RepoLockedError)
    await first.close()
    await writeFile(join(dir, 'ipfs', 'repo.lock'), '2147483646\n') // no such process
    const second = await HeliaBackend.open(join(dir, 'ipfs'))
    await second.close()
  })

  it('reads a file node of thousands of links a block at a time, not with a file open per link (20,000 ran out of descriptors)', async () => {
    const dir = await repoDir()
    const backend = await HeliaBackend.open(join(dir, 'ipfs'))
    try {
      const leaves = await Promise.all(Array.from({ length: 3000 }, async (_, i) => rawBlock(Uint8Array.of(i >> 8, i & 255))))
      const file = await unixfsNode(new UnixFS({ type: 'file', blockSizes: leaves.map(() => 2n) }), leaves.map((leaf) => ({ Hash: leaf.cid, Tsize: 2 })))
      const lease = await backend.openLease()
      await backend.putBlocks([file, ...leaves], { lease })
      const open = async (): Promise<number> => (await readdir('/proc/self/fd')).length
      const idle = await open()
      let most = idle
      let reading = true
      const sampling = (async () => { while (reading) { most = Math.max(most, await open()); await new Promise((resolve) => setImmediate(resolve)) } })()
      let bytes = 0
      for await (const chunk of backend.read(file.cid, [])) bytes += chunk.byteLength
      reading = false
      await sampling
      expect(bytes).toBe(6000)
      expect(most - idle).toBeLessThan(200)
      await lease.release()
    } finally {
      await backend.close()
    }
  })

  it('writes a CAR\'s blocks several at once, and has every write ended when its source fails: the lease then removes them all', async () => {
    const dir = await repoDir()
    const backend = await HeliaBackend.open(join(dir, 'ipfs'))
    try {
      const blocks = await Promise.all(Array.from({ length: 500 }, async (_, i) => rawBlock(Uint8Array.of(7, i >> 8, i & 255))))
      const lease = await backend.openLease()
      async function * endingEarly (): AsyncIterable<Block> {
        for (const block of blocks) yield await Promise.resolve(block)
        throw new Error('the CAR ended early')
      }
      const failed = await backend.putBlocks(endingEarly(), { lease }).catch((err: unknown) => err)
      // None is still being written: each is there to be removed (counted before any write could end meanwhile).
      const blocksDir = join(dir, 'ipfs', 'blocks')
      const written = readdirSync(blocksDir).reduce((n, shard) => n + readdirSync(join(blocksDir, shard)).filter((name) => name.endsWith('.data')).length, 0)
      expect((failed as Error).message).toBe('the CAR ended early')
      expect(written).toBe(500)
      await lease.discard()
      expect((await blockFiles(dir)).files).toBe(0)
    } finally {
      await backend.close()
    }
  })

  it('reads a file as its reader asks: one that stops after the first MiB of 64 has not had the rest read into memory', async () => {
    const dir = await repoDir()
    const backend = await HeliaBackend.open(join(dir, 'ipfs'))
    try {
      const MiB = 1024 * 1024
      const lease = await backend.openLease()
      const nodes = await backend.importTree([{ path: 'big.bin', content: Readable.from(Array.from({ length: 64 }, () => randomBytes(MiB))) }], { profile: 'unixfs-v1-2025', lease })
      const file = nodes.find((node) => node.path === 'big.bin')?.cid as CID
      const before = process.memoryUsage().arrayBuffers
      const reader = backend.read(file, [])[Symbol.asyncIterator]()
      expect((await reader.next()).value).toHaveLength(MiB)
      await new Promise((resolve) => setTimeout(resolve, 300))
      // The exporter's content read the file's leaves ahead into an unbounded queue: all 64 MiB, whatever the reader's pace.
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * MiB)
      await reader.return?.(undefined)
      // A window: its bytes only, from the leaves it covers.
      const window: Uint8Array[] = []
      for await (const chunk of backend.read(file, [], { offset: MiB - 10, length: 20 })) window.push(chunk)
      expect(Buffer.concat(window)).toHaveLength(20)
      await lease.release()
    } finally {
      await backend.close()
    }
  })

  it('answers the readiness probe without writing a block', async () => {
    const dir = await repoDir()
    const backend = await HeliaBackend.open(join(dir, 'ipfs'))
    try {
      await backend.ping()
      await backend.ping()
      expect(await blockFiles(dir)).toEqual({ files: 0, bytes: 0 })
    } finally {
      await backend.close()
    }
  })

  it('pins as Helia recorded them: a repo of an earlier version reads the same; its per-block records go once nothing reaches them', async () => {
    const dir = await repoDir()
    const repo = join(dir, 'ipfs')
    let backend = await HeliaBackend.open(repo)
    const kept = (await backend.importTree([{ path: 'kept.bin', content: Readable.from([randomBytes(100_000)]) }], { profile: 'unixfs-v1-2025' })).at(-1)?.cid as CID
    const dropped = (await backend.importTree([{ path: 'dropped.bin', content: Readable.from([randomBytes(100_000)]) }], { profile: 'unixfs-v1-2025' })).at(-1)?.cid as CID
    await backend.close()
    // What Helia's PinsImpl left in an earlier version's repo: the root's record (the same bytes we write, at the same key),
    // and a record per block the pin reached. `dropped` is as a crash mid-pin left it: per-block records, no root record.
    const datastore = new FsDatastore(join(repo, 'datastore'))
    await datastore.open()
    await datastore.put(new Key(`/pin/${kept.toString(base36)}`), cborg.encode({ depth: Infinity, metadata: {} }))
    for (const cid of [kept, dropped]) {
      for (const block of await walk(repo, cid)) await datastore.put(new Key(`/pinned-block/${base36.encode(block.multihash.bytes)}`), cborg.encode({ pinCount: 1, pinnedBy: [cid.bytes] }))
    }
    await datastore.close()

    backend = await HeliaBackend.open(repo)
    try {
      expect(await backend.isPinned(kept)).toBe(true)
      expect(await backend.isPinned(dropped)).toBe(false)
      const pins: string[] = []
      for await (const pin of backend.listPins()) pins.push(pin.toString())
      expect(pins).toEqual([kept.toString()])
      const report = await backend.gc()
      expect(report.blocks).toBe(2)
      expect(report.records).toBe(2)
      expect(await readdir(join(repo, 'datastore', 'pinned-block'))).toHaveLength(2) // the kept pin's, reachable: harmless, left
      expect((await blockFiles(dir)).files).toBe(2)
      await backend.unpin(kept)
      expect(await backend.isPinned(kept)).toBe(false)
      await backend.gc()
      expect(await readdir(join(repo, 'datastore', 'pinned-block')).catch(() => [])).toEqual([])
      expect(await blockFiles(dir)).toEqual({ files: 0, bytes: 0 })
    } finally {
      await backend.close()
    }
  })

  it('pins write one record per root, none per block, and refuse a DAG with a block missing', async () => {
    const dir = await repoDir()
    const repo = join(dir, 'ipfs')
    const backend = await HeliaBackend.open(repo)
    try {
      const nodes = await backend.importTree([{ path: 'big.bin', content: Readable.from([randomBytes(3 * 1024 * 1024 + 5)]) }], { profile: 'unixfs-v1-2025' })
      const root = nodes.at(-1)?.cid as CID
      await backend.pin(root)
      await backend.pin(root) // again: nothing changes
      expect(await readdir(join(repo, 'datastore', 'pin'))).toHaveLength(1)
      expect(await readdir(join(repo, 'datastore', 'pinned-block')).catch(() => [])).toEqual([])
      const other = (await backend.importTree([{ path: 'other.bin', content: Readable.from([randomBytes(2 * 1024 * 1024)]) }], { profile: 'unixfs-v1-2025' })).at(-1)?.cid as CID
      const leaf = (await walk(repo, other)).find((cid) => cid.code === 0x55) as CID
      const { dir: shard, file } = SHARDING.encode(leaf)
      await unlink(join(repo, 'blocks', shard, file))
      await expect(backend.pin(other)).rejects.toThrow(/not on this node/)
      expect(await backend.isPinned(other)).toBe(false)
      // An import's own root, pinned with its live lease, is taken from what the lease wrote: nothing is read back
      // (here, the leaf removed behind the node's back is not looked for); the lease's blocks count as pinned.
      const lease = await backend.openLease()
      const fresh = (await backend.importTree([{ path: 'fresh.bin', content: Readable.from([randomBytes(2 * 1024 * 1024)]) }], { profile: 'unixfs-v1-2025', lease })).at(-1)?.cid as CID
      const freshLeaf = (await walk(repo, fresh)).find((cid) => cid.code === 0x55) as CID
      await unlink(join(repo, 'blocks', SHARDING.encode(freshLeaf).dir, SHARDING.encode(freshLeaf).file))
      await backend.pin(fresh, { imported: lease })
      expect(await backend.isPinned(fresh)).toBe(true)
      await lease.release()
    } finally {
      await backend.close()
    }
  })

  it('a collection that cannot read a pinned node (not "not found": EISDIR, EACCES, EIO) stops, and takes nothing below it', async () => {
    const dir = await repoDir()
    const repo = join(dir, 'ipfs')
    const backend = await HeliaBackend.open(repo)
    try {
      const root = (await backend.importTree([{ path: 'model.glb', content: Readable.from([randomBytes(3 * 1024 * 1024 + 7)]) }], { profile: 'unixfs-v1-2025' })).at(-1)?.cid as CID
      await backend.pin(root)
      const fileNode = (await walk(repo, root)).find((cid) => cid.code === dagPb.code && !cid.equals(root)) as CID
      const { dir: shard, file } = SHARDING.encode(fileNode)
      const path = join(repo, 'blocks', shard, file)
      const bytes = await readFile(path)
      // A folder where the block file was: its read fails with EISDIR, even for root (chmod 000 does not stop root).
      await unlink(path)
      await mkdir(path)
      await expect(backend.gc()).rejects.toThrow(/EISDIR/)
      await rmdir(path)
      await writeFile(path, bytes)
      let read = 0
      for await (const chunk of backend.read(root, ['model.glb'])) read += chunk.byteLength
      expect(read).toBe(3 * 1024 * 1024 + 7)
      expect((await backend.gc()).blocks).toBe(0)
    } finally {
      await backend.close()
    }
  })
})

/** Every block below `root`, read from the repo's block files. */
async function walk (repo: string, root: CID): Promise<CID[]> {
  const found: CID[] = []
  const stack = [root]
  for (let cid = stack.pop(); cid !== undefined; cid = stack.pop()) {
    found.push(cid)
    if (cid.code !== dagPb.code) continue
    const { dir, file } = SHARDING.encode(cid)
    for (const link of dagPb.decode(await readFile(join(repo, 'blocks', dir, file))).Links) stack.push(link.Hash)
  }
  return found
}
