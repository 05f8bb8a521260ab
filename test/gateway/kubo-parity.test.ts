import { chmod, lutimes, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { CarBlockIterator } from '@ipld/car'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { extract } from 'tar-stream'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { appBackends } from '../support/backends.ts'
import { dagCborBlock, dagJsonBlock, encodedOrderDag, rawBlock, unixfsBlocks, unixfsNode, writeCar, type Block } from '../support/cars.ts'
import { noise, startGatewayContent } from '../support/gateway-content.ts'
import type { TestHeimdall } from '../support/heimdall-harness.ts'
import { startKubo, type KuboNode } from '../support/kubo.ts'

const BIG = noise(2_621_440 + 13, 5)
const MISSING = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'


interface Content { hero: string, files: Map<string, string>, tree: string, big: string }

/** One request of the table: a path (with `{hero}`, `{tree}`, `{big}`, `{fst}` to fill), its method and headers. */
interface Row {
  name: string
  path: string
  method?: 'GET' | 'HEAD'
  headers?: Record<string, string>
  /** Headers the first answer's ETag fills in (`{etag}`) for conditional requests. */
  conditional?: (etag: string) => Record<string, string>
  /** Fields not compared, each with why. */
  skip?: Partial<Record<'contentType' | 'contentLength' | 'ids', string>>
  /** Where our status legitimately differs from Kubo's: ours, and why. */
  ours?: { status: number, why: string }
}

const TABLE: Row[] = [
  { name: 'a file by path', path: '/ipfs/{hero}/textures/skin.png' },
  { name: 'a text file by path', path: '/ipfs/{hero}/avatar.fst' },
  { name: 'a file by its own CID', path: '/ipfs/{big}' },
  { name: 'HEAD of a file', path: '/ipfs/{hero}/box.fbx', method: 'HEAD' },
  // Our listing is our own page (views/directory.ejs): its length is not Kubo's.
  { name: 'a directory listing (HTML)', path: '/ipfs/{hero}/', skip: { contentLength: 'our listing page is our own HTML' } },
  { name: 'HEAD of a directory listing', path: '/ipfs/{hero}/textures/', method: 'HEAD', skip: { contentLength: 'our listing page is our own HTML', contentType: 'Kubo sends none on HEAD of a listing; ours sends what its GET sends (RFC 9110 §9.3.2)', ids: 'nor ETag and X-Ipfs-*: the same' } },
  { name: 'a directory without its slash: 301', path: '/ipfs/{hero}/textures' },
  { name: 'a root directory without its slash: 301', path: '/ipfs/{hero}' },
  { name: 'a directory served through its index.html', path: '/ipfs/{tree}/site/' },
  { name: 'HEAD of a directory served through its index.html', path: '/ipfs/{tree}/site/', method: 'HEAD' },
  { name: 'a Range across two blocks', path: '/ipfs/{big}', headers: { Range: 'bytes=1048570-1048590' } },
  { name: 'a suffix Range', path: '/ipfs/{tree}/big/data.bin', headers: { Range: 'bytes=-100' } },
  { name: 'HEAD with a Range', path: '/ipfs/{big}', method: 'HEAD', headers: { Range: 'bytes=0-9' } },
  { name: 'an unsatisfiable Range', path: '/ipfs/{big}', headers: { Range: 'bytes=99999999-' } },
  { name: '?format=raw of a directory', path: '/ipfs/{hero}?format=raw' },
  { name: '?format=raw by path', path: '/ipfs/{hero}/avatar.fst?format=raw' },
  { name: 'Accept: application/vnd.ipld.raw', path: '/ipfs/{big}', headers: { Accept: 'application/vnd.ipld.raw' } },
  { name: 'HEAD ?format=raw', path: '/ipfs/{big}?format=raw', method: 'HEAD' },
  { name: '?format=car (dag-scope=all)', path: '/ipfs/{hero}?format=car' },
  { name: '?format=car&dag-scope=all by path', path: '/ipfs/{tree}/big?format=car&dag-scope=all' },
  { name: '?format=car&dag-scope=entity of a file', path: '/ipfs/{tree}/big/data.bin?format=car&dag-scope=entity' },
  { name: '?format=car&dag-scope=entity of a directory', path: '/ipfs/{hero}?format=car&dag-scope=entity' },
  { name: '?format=car&dag-scope=block', path: '/ipfs/{hero}/textures/skin.png?format=car&dag-scope=block' },
  { name: '?format=car with entity-bytes', path: '/ipfs/{big}?format=car&dag-scope=entity&entity-bytes=1048570:1048590' },
  { name: '?format=car with a negative entity-bytes', path: '/ipfs/{big}?format=car&dag-scope=entity&entity-bytes=-100:*' },
  { name: 'Accept: application/vnd.ipld.car; dups=y', path: '/ipfs/{tree}', headers: { Accept: 'application/vnd.ipld.car; version=1; order=dfs; dups=y' } },
  { name: 'HEAD ?format=car', path: '/ipfs/{hero}?format=car', method: 'HEAD' },
  { name: 'If-None-Match: the exact ETag of a file', path: '/ipfs/{hero}/avatar.fst', conditional: (etag) => ({ 'If-None-Match': etag }) },
  { name: 'If-None-Match: the weak form of a file\'s ETag', path: '/ipfs/{hero}/avatar.fst', conditional: (etag) => ({ 'If-None-Match': `W/${etag}` }) },
  { name: 'If-None-Match: a list holding the ETag', path: '/ipfs/{hero}/avatar.fst?format=raw', conditional: (etag) => ({ 'If-None-Match': `"nope", ${etag}` }) },
  { name: 'If-None-Match: *', path: '/ipfs/{hero}/box.fbx', conditional: () => ({ 'If-None-Match': '*' }) },
  { name: 'If-None-Match: the CAR\'s weak ETag', path: '/ipfs/{hero}?format=car', conditional: (etag) => ({ 'If-None-Match': etag }) },
  { name: 'If-None-Match: the listing\'s ETag', path: '/ipfs/{hero}/', conditional: (etag) => ({ 'If-None-Match': etag }) },
  { name: 'If-None-Match: another ETag', path: '/ipfs/{hero}/avatar.fst', conditional: () => ({ 'If-None-Match': '"bafkqaaa"' }) },
  { name: 'a missing CID', path: `/ipfs/${MISSING}` },
  { name: 'a missing CID, ?format=raw', path: `/ipfs/${MISSING}?format=raw` },
  // Kubo commits to 200 and a CAR header before it looks for the root; we look first (issue 10: a CID not held is a quick 404).
  { name: 'a missing CID, ?format=car', path: `/ipfs/${MISSING}?format=car`, ours: { status: 404, why: 'we check the root is held before answering' } },
  { name: 'a missing path', path: '/ipfs/{hero}/nothing-here' },
  // A CAR of a name that is not there: 200, the blocks that show so (compared in the test below), X-Ipfs-Roots the root alone.
  { name: 'a missing path, ?format=car', path: '/ipfs/{hero}/nothing-here?format=car' },
  { name: 'a missing path in a subdirectory, ?format=car', path: '/ipfs/{hero}/textures/nothing-here?format=car' },
  { name: 'a path below a file, ?format=car', path: '/ipfs/{tree}/big/data.bin/x?format=car' },
  { name: 'the index.html boxo\'s remote CAR backend asks of a directory without one', path: '/ipfs/{hero}/textures/index.html?format=car&dag-scope=entity' },
  { name: 'HEAD of a missing path, ?format=car', path: '/ipfs/{hero}/nothing-here?format=car', method: 'HEAD' },
  { name: 'a missing path, Accept: application/vnd.ipld.car; dups=y', path: '/ipfs/{hero}/nothing-here', headers: { Accept: 'application/vnd.ipld.car; version=1; order=dfs; dups=y' } },
  { name: 'the empty identity CID, ?format=raw', path: '/ipfs/bafkqaaa?format=raw' },
  { name: 'HEAD of the empty identity CID, ?format=raw', path: '/ipfs/bafkqaaa?format=raw', method: 'HEAD' }
]

interface Answer { status: number, type: string | null, length: string | null, etag: string | null, location: string | null, path: string | null, roots: string | null, contentRange: string | null }

async function ask (base: string, row: Row, content: Content, extra: Record<string, string> = {}): Promise<Answer> {
  const path = row.path.replaceAll('{hero}', content.hero).replaceAll('{tree}', content.tree).replaceAll('{big}', content.big)
  const res = await fetch(`${base}${path}`, { method: row.method ?? 'GET', headers: { ...row.headers, ...extra }, redirect: 'manual' })
  await res.arrayBuffer()
  const h = res.headers
  const location = h.get('location')
  return {
    status: res.status,
    type: h.get('content-type'),
    length: h.get('content-length'),
    etag: h.get('etag'),
    location: location === null ? null : new URL(location, base).pathname + new URL(location, base).search,
    path: h.get('x-ipfs-path'),
    roots: h.get('x-ipfs-roots'),
    contentRange: h.get('content-range')
  }
}

/**
 * An ETag as the spec makes it deterministic: `"<cid>"`, `"<cid>.<format>"`
 * and the CAR's `W/"<cid>.car.<hash>"` name the content alone; a listing's
 * `"DirIndex-<template hash>_CID-<cid>"` also names its gateway's template.
 */
function comparableEtag (etag: string | null): string | null {
  return etag?.replace(/^"DirIndex-[^_]+_CID-/, '"DirIndex-*_CID-') ?? null
}

/** HTML is typed `text/html; charset=utf-8` by us, `text/html` by Kubo (which leaves the charset to the page): the same type. */
function comparableType (type: string | null): string | null {
  return type === 'text/html; charset=utf-8' ? 'text/html' : type
}

/** A gateway's CAR: its status, the headers a CAR client reads, its roots and its blocks' CIDs in order. */
async function askCar (base: string, path: string, init: RequestInit = {}): Promise<{ status: number, type: string | null, roots: string | null, car: { roots: string[], blocks: string[] } | null }> {
  const res = await fetch(`${base}${path}`, init)
  const body = new Uint8Array(await res.arrayBuffer())
  let car = null
  if (res.status === 200 && body.byteLength > 0) {
    const iterator = await CarBlockIterator.fromBytes(body)
    const blocks: string[] = []
    for await (const block of iterator) blocks.push(block.cid.toString())
    car = { roots: (await iterator.getRoots()).map(String), blocks }
  }
  return { status: res.status, type: res.headers.get('content-type'), roots: res.headers.get('x-ipfs-roots'), car }
}

/** One entry of a tar as its header says, and its bytes. */
interface TarItem { name: string, type: string, linkname: string | null, size: number, mode: number, mtime: number, uid: number, gid: number, uname: string, gname: string, body: string }

/** A gateway's `?format=tar` of `path`: its status, headers and entries in order. */
async function askTar (base: string, path: string): Promise<{ status: number, headers: Record<string, string | null>, entries: TarItem[] }> {
  const res = await fetch(`${base}/ipfs/${path}?format=tar`)
  const body = Buffer.from(await res.arrayBuffer())
  const headers = Object.fromEntries(['content-type', 'etag', 'x-ipfs-path', 'x-ipfs-roots', 'content-disposition'].map((name) => [name, res.headers.get(name)]))
  const entries: TarItem[] = []
  if (res.status === 200) {
    for await (const entry of Readable.from([body]).pipe(extract())) {
      const h = entry.header
      const chunks: Buffer[] = []
      for await (const chunk of entry) chunks.push(chunk as Buffer)
      entries.push({ name: h.name, type: h.type ?? '', linkname: h.linkname ?? null, size: h.size ?? 0, mode: h.mode ?? 0, mtime: (h.mtime?.getTime() ?? 0) / 1000, uid: h.uid ?? 0, gid: h.gid ?? 0, uname: h.uname ?? '', gname: h.gname ?? '', body: Buffer.concat(chunks).toString() })
    }
  }
  return { status: res.status, headers, entries }
}

/**
 * A tar's entries, each mtime from `from` to `to` (seconds, the time of the
 * request) read as 'now': boxo writes the time of the answer for a node
 * with none.
 */
function timed (entries: TarItem[], from: number, to: number): Array<Omit<TarItem, 'mtime'> & { mtime: number | 'now' }> {
  return entries.map((entry) => ({ ...entry, mtime: entry.mtime >= from && entry.mtime <= to ? 'now' : entry.mtime }))
}

/** Kubo's and our tar of `path`, their mtimes of the time of the request read as 'now'. */
async function bothTars (kuboUrl: string, heimdall: string, path: string): Promise<Array<{ status: number, headers: Record<string, string | null>, entries: ReturnType<typeof timed> }>> {
  const from = Math.floor(Date.now() / 1000) - 1
  const answers = [await askTar(kuboUrl, path), await askTar(heimdall, path)]
  const to = Math.ceil(Date.now() / 1000) + 1
  return answers.map((answer) => ({ ...answer, entries: timed(answer.entries, from, to) }))
}

const kuboBin = inject('kuboBin')

/**
 * The same requests to Heimdall and to Kubo's own gateway (offline, on
 * loopback, Gateway.NoFetch) holding the same blocks, imported from
 * Heimdall's CARs with `ipfs dag import`: status, Content-Type,
 * Content-Length, ETag, Location and the X-Ipfs-* headers must agree.
 * Not compared anywhere: the CSP/sandbox, CORS and Vary headers we add to
 * every answer, bodies of HTML listings and of errors (our own pages).
 */
for (const backend of appBackends()) describe.skipIf(!backend.available || kuboBin === '')(`Heimdall over ${backend.name} answers as Kubo's gateway does`, () => {
  let t: TestHeimdall
  let stop: () => Promise<void>
  let heimdall: string
  let reference: KuboNode
  const content: Content = { hero: '', files: new Map(), tree: '', big: '' }

  beforeAll(async () => {
    const started = await startGatewayContent(backend, { big: BIG, index: true })
    ;({ t, stop } = started)
    Object.assign(content, { hero: started.hero, files: started.heroFiles, tree: started.tree, big: started.bigCid })
    heimdall = (await t.listen()).url

    reference = await startKubo(kuboBin)
    const dir = await mkdtemp(join(tmpdir(), 'heimdall-parity-'))
    try {
      for (const root of [content.hero, content.tree]) {
        const car = Buffer.from(await (await fetch(`${heimdall}/ipfs/${root}?format=car`)).arrayBuffer())
        await writeFile(join(dir, `${root}.car`), car)
        expect(await reference.cli('dag', 'import', '--pin-roots', join(dir, `${root}.car`))).toContain(`Pinned root\t${root}\tsuccess`)
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
  afterAll(async () => {
    if (reference !== undefined) await reference.stop()
    if (stop !== undefined) await stop()
  })

  /** Puts `blocks` in both nodes (Heimdall's under a lease, Kubo's by `ipfs dag import`); the function returned drops Heimdall's. */
  async function holdInBoth (blocks: readonly Block[]): Promise<() => Promise<void>> {
    const lease = await t.heimdall.backend.openLease()
    await t.heimdall.backend.putBlocks(blocks, { lease })
    const dir = await mkdtemp(join(tmpdir(), 'heimdall-parity-'))
    try {
      await writeFile(join(dir, 'blocks.car'), await writeCar([blocks[0]?.cid as CID], blocks))
      await reference.cli('dag', 'import', '--pin-roots=false', join(dir, 'blocks.car'))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
    return async () => { await lease.discard() }
  }

  /**
   * A folder `build` writes, added to Kubo with `ipfs add -r` and `flags`
   * (symlinks are stored as UnixFS symlinks), its blocks put in Heimdall
   * too; its root, and the function that drops Heimdall's.
   */
  async function addedByKubo (build: (dir: string) => Promise<void>, flags: string[] = []): Promise<{ root: string, release: () => Promise<void> }> {
    const dir = await mkdtemp(join(tmpdir(), 'heimdall-parity-'))
    try {
      await build(join(dir, 'folder'))
      const root = (await reference.cli('add', '-r', '-Q', ...flags, join(dir, 'folder'))).trim()
      const car = new Uint8Array(await (await fetch(`${reference.gatewayUrl}/ipfs/${root}?format=car`)).arrayBuffer())
      const blocks: Block[] = []
      for await (const block of await CarBlockIterator.fromBytes(car)) blocks.push(block)
      const lease = await t.heimdall.backend.openLease()
      await t.heimdall.backend.putBlocks(blocks, { lease })
      return { root, release: async () => { await lease.discard() } }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  it('?format=tar writes a UnixFS symlink as a symlink to its target, never followed, as Kubo (a folder added with ipfs add -r)', async () => {
    const { root, release } = await addedByKubo(async (dir) => {
      await mkdir(join(dir, 'sub'), { recursive: true })
      await writeFile(join(dir, 'sub', 'real.txt'), 'real\n')
      await symlink('sub/real.txt', join(dir, 'link'))
      await symlink('../../outside', join(dir, 'sub', 'up'))
    })
    try {
      for (const path of [root, `${root}/sub`, `${root}/link`]) {
        const [kubo, ours] = await bothTars(reference.gatewayUrl, heimdall, path)
        expect(kubo?.entries.filter((e) => e.type === 'symlink').length, `${path}: Kubo's symlinks`).toBe(path === root ? 2 : 1)
        // No node holds a mode or an mtime: boxo's defaults, the time of the answer included.
        expect(kubo?.entries.every((e) => e.mtime === 'now'), `${path}: Kubo's mtimes`).toBe(true)
        expect(ours, path).toEqual(kubo)
      }
    } finally {
      await release()
    }
  })

  it('?format=tar writes each node\'s mode and mtime, as Kubo (a folder added with ipfs add --preserve-mode --preserve-mtime)', async () => {
    const { root, release } = await addedByKubo(async (dir) => {
      await mkdir(join(dir, 'sub'), { recursive: true })
      await writeFile(join(dir, 'sub', 'real.txt'), 'real\n')
      await writeFile(join(dir, 'exec.sh'), '#!/bin/sh\n')
      await writeFile(join(dir, 'plain.txt'), 'plain\n')
      await symlink('sub/real.txt', join(dir, 'link'))
      await chmod(join(dir, 'sub', 'real.txt'), 0o600)
      await chmod(join(dir, 'exec.sh'), 0o4750)
      await chmod(join(dir, 'sub'), 0o1777)
      await chmod(dir, 0o750)
      // Half a second rounds up, as Go's tar writes a time; less rounds down.
      await utimes(join(dir, 'sub', 'real.txt'), 1_600_000_000, 1_600_000_000.5)
      await utimes(join(dir, 'exec.sh'), 1_500_000_000, 1_500_000_000)
      await utimes(join(dir, 'plain.txt'), 1_700_000_000, 1_700_000_000.4)
      await lutimes(join(dir, 'link'), 1_200_000_000, 1_200_000_000.75)
      await utimes(join(dir, 'sub'), 1_400_000_000, 1_400_000_000)
      await utimes(dir, 1_300_000_000, 1_300_000_000)
    }, ['--raw-leaves=false', '--preserve-mode', '--preserve-mtime'])
    try {
      const [kubo, ours] = await bothTars(reference.gatewayUrl, heimdall, root)
      expect(kubo?.entries.map(({ name, mode, mtime }) => [name.slice(root.length), mode.toString(8), mtime]), 'Kubo\'s').toEqual([
        ['', '750', 1_300_000_000],
        ['/exec.sh', '4750', 1_500_000_000],
        ['/link', '777', 1_200_000_001],
        ['/plain.txt', '644', 1_700_000_000],
        ['/sub', '1777', 1_400_000_000],
        ['/sub/real.txt', '600', 1_600_000_001]
      ])
      expect(ours).toEqual(kubo)
    } finally {
      await release()
    }
  })

  it('?format=tar reads a node\'s mode and mtime as boxo does: a mode of 0 and nanoseconds outside 1…999,999,999 (0 written out) are none, an mtime of 0 is 1970', async () => {
    const file = async (name: string, options: { mode?: number, mtime?: { secs: bigint, nsecs?: number } }): Promise<{ name: string, block: Block }> => ({ name, block: await unixfsNode(new UnixFS({ type: 'file', data: Buffer.from(`${name}\n`), ...options }), []) })
    const files = await Promise.all([
      file('mode-zero', { mode: 0 }),
      file('nanos-zero', { mtime: { secs: 1_234_567_890n, nsecs: 0 } }),
      file('nanos-top', { mtime: { secs: 1_234_567_890n, nsecs: 999_999_999 } }),
      file('nanos-over', { mtime: { secs: 1_234_567_890n, nsecs: 1_000_000_000 } }),
      file('epoch', { mtime: { secs: 0n } }),
      file('setgid', { mode: 0o2640, mtime: { secs: 1_234_567_890n } })
    ])
    const dir = await unixfsNode(new UnixFS({ type: 'directory', mode: 0o700, mtime: { secs: 1_111_111_111n, nsecs: 499_999_999 } }), files.map(({ name, block }) => ({ Name: name, Hash: block.cid, Tsize: block.bytes.length })))
    const release = await holdInBoth([dir, ...files.map((f) => f.block)])
    try {
      const top = dir.cid.toString()
      const [kubo, ours] = await bothTars(reference.gatewayUrl, heimdall, top)
      expect(kubo?.entries.map(({ name, mode, mtime }) => [name.slice(top.length), mode.toString(8), mtime]), 'Kubo\'s').toEqual([
        ['', '700', 1_111_111_111],
        ['/epoch', '644', 0],
        ['/mode-zero', '644', 'now'],
        ['/nanos-over', '644', 'now'],
        ['/nanos-top', '644', 1_234_567_891],
        ['/nanos-zero', '644', 'now'],
        ['/setgid', '2640', 1_234_567_890]
      ])
      expect(ours).toEqual(kubo)
    } finally {
      await release()
    }
  })

  it('a UnixFS symlink is answered as its target path, typed inode/symlink, never followed, as Kubo: GET, HEAD, a Range; an index.html that is a symlink is no page', async () => {
    const { root, release } = await addedByKubo(async (dir) => {
      await mkdir(join(dir, 'site'), { recursive: true })
      await writeFile(join(dir, 'real.html'), '<p>real</p>\n')
      await symlink('real.html', join(dir, 'link.html'))
      await symlink('../real.html', join(dir, 'site', 'index.html'))
    })
    try {
      const rows: Row[] = [
        { name: 'GET', path: `/ipfs/${root}/link.html` },
        { name: 'HEAD', path: `/ipfs/${root}/link.html`, method: 'HEAD' },
        { name: 'a Range', path: `/ipfs/${root}/link.html`, headers: { Range: 'bytes=2-5' } },
        { name: 'named by ?filename=', path: `/ipfs/${root}/link.html?filename=x.png` },
        { name: 'a symlink index.html', path: `/ipfs/${root}/site/` },
        { name: 'HEAD of a symlink index.html', path: `/ipfs/${root}/site/`, method: 'HEAD' }
      ]
      for (const row of rows) {
        const kubo = await ask(reference.gatewayUrl, row, content)
        const ours = await ask(heimdall, row, content)
        if (!row.name.includes('index.html')) expect(kubo.type, `${row.name}: Kubo's type`).toBe('inode/symlink')
        // Content-Disposition too: boxo sends none but for ?filename=.
        const compared = async (a: Answer, base: string): Promise<unknown> => a.status >= 400 ? { status: a.status } : { ...a, disposition: (await fetch(`${base}${row.path}`, { method: 'HEAD', headers: row.headers })).headers.get('content-disposition') }
        expect(await compared(ours, heimdall), row.name).toEqual(await compared(kubo, reference.gatewayUrl))
      }
    } finally {
      await release()
    }
  })

  it('a CAR through dag-cbor and dag-json walks each block\'s links in the order its bytes hold them, as Kubo (boxo\'s remote CAR backend checks the order)', async () => {
    const { root, blocks, dfsOrder } = await encodedOrderDag()
    const release = await holdInBoth(blocks)
    try {
      const kubo = await askCar(reference.gatewayUrl, `/ipfs/${root.cid.toString()}?format=car`)
      const ours = await askCar(heimdall, `/ipfs/${root.cid.toString()}?format=car`)
      expect(kubo.car?.blocks, 'Kubo\'s order').toEqual(dfsOrder.map((b) => b.cid.toString()))
      expect(ours).toEqual(kubo)
    } finally {
      await release()
    }
  })

  it('a CAR of a path naming something that is not there is 200 and the blocks read looking for it, as Kubo: directories, HAMT shards, below a file or a raw block, through dag-cbor', async () => {
    // A folder of 400 files past a 1 KiB threshold: a HAMT whose buckets hold a file each, or a shard of several, or nothing.
    const sharded = await unixfsBlocks(Array.from({ length: 400 }, (_, i) => ({ path: `file-${i}`, data: `file ${i}\n` })), { wrap: true, shardSplitThresholdBytes: 1024 })
    const leaf = sharded.blocks.find((b) => b.cid.code === 0x55) as Block
    const cbor = await dagCborBlock({ name: 'not a link', dir: sharded.root, list: [leaf.cid] })
    const release = await holdInBoth([cbor, ...sharded.blocks])
    try {
      const hamt = sharded.root.toString()
      const paths = [
        `${content.hero}/nothing-here`, `${content.hero}/textures/nothing-here`, `${content.hero}/avatar.fst/x`, `${content.tree}/big/data.bin/x/y`,
        ...Array.from({ length: 16 }, (_, i) => `${hamt}/missing-${i}`), `${hamt}/file-7/x`,
        `${cbor.cid.toString()}/nothing`, `${cbor.cid.toString()}/name/deeper`, `${cbor.cid.toString()}/list/5`, `${cbor.cid.toString()}/list/0/x`, `${cbor.cid.toString()}/dir/missing-3`,
        `${leaf.cid.toString()}/x`, 'bafkqaaa/x'
      ]
      const shardsRead = new Set<number>()
      for (const path of paths) {
        for (const query of ['format=car', 'format=car&dag-scope=entity']) {
          const kubo = await askCar(reference.gatewayUrl, `/ipfs/${path}?${query}`)
          const ours = await askCar(heimdall, `/ipfs/${path}?${query}`)
          expect(kubo.car?.roots, `${path}?${query}: Kubo's root`).toEqual(['bafkqaaa'])
          expect(ours, `${path}?${query}`).toEqual(kubo)
          if (path.startsWith(`${hamt}/missing-`)) shardsRead.add(kubo.car?.blocks.length ?? 0)
        }
      }
      // The names looked for: some in a bucket of the root shard, some below it in another shard.
      expect([...shardsRead].sort()).toEqual([1, 2])
    } finally {
      await release()
    }
  })

  it('X-Ipfs-Roots through dag-cbor and dag-json names one CID per segment of the URL, a key or an index by the block that holds it, as Kubo (CAR, raw, codec and default answers)', async () => {
    const leaf = await rawBlock(Buffer.from('a leaf\n'))
    const doc = await dagCborBlock({ hello: 'a document' })
    const json = await dagJsonBlock({ deeper: { x: leaf.cid } })
    const root = await dagCborBlock({ nested: { y: [leaf.cid, doc.cid, json.cid] }, doc: doc.cid })
    const release = await holdInBoth([root, leaf, doc, json])
    try {
      const r = root.cid.toString()
      const J = json.cid.toString()
      const asked = [
        [`/ipfs/${r}/nested/y/0?format=car`, [r, r, r, leaf.cid.toString()]],
        [`/ipfs/${r}/nested/y/0?format=raw`, [r, r, r, leaf.cid.toString()]],
        [`/ipfs/${r}/nested/y/1`, [r, r, r, doc.cid.toString()]],
        [`/ipfs/${r}/nested/y/1?format=dag-cbor`, [r, r, r, doc.cid.toString()]],
        [`/ipfs/${r}/nested/y/2/deeper/x?format=car&dag-scope=block`, [r, r, r, J, J, leaf.cid.toString()]],
        [`/ipfs/${r}/nested/y/2/deeper/x?format=raw`, [r, r, r, J, J, leaf.cid.toString()]],
        [`/ipfs/${r}/nested/y/2`, [r, r, r, J]],
        [`/ipfs/${r}/doc?format=dag-cbor`, [r, doc.cid.toString()]],
        [`/ipfs/${J}/deeper/x?format=car`, [J, J, leaf.cid.toString()]]
      ] as const
      for (const [path, roots] of asked) {
        const kubo = await fetch(`${reference.gatewayUrl}${path}`)
        const ours = await fetch(`${heimdall}${path}`)
        await Promise.all([kubo.arrayBuffer(), ours.arrayBuffer()])
        expect(kubo.status, `${path}: Kubo's status`).toBe(200)
        // Checked against Kubo's too: the test says what Kubo sends.
        expect(kubo.headers.get('x-ipfs-roots'), `${path}: Kubo's X-Ipfs-Roots`).toBe(roots.join(','))
        expect({ status: ours.status, roots: ours.headers.get('x-ipfs-roots') }, path).toEqual({ status: kubo.status, roots: kubo.headers.get('x-ipfs-roots') })
      }
    } finally {
      await release()
    }
  })

  it.each(TABLE)('$name', async (row) => {
    let extraOurs: Record<string, string> = {}
    let extraKubo: Record<string, string> = {}
    if (row.conditional !== undefined) {
      // Each gateway is asked with the ETag it gave: equal ETags are checked by the row without the condition.
      extraOurs = row.conditional((await ask(heimdall, { ...row, method: 'GET' }, content)).etag ?? '')
      extraKubo = row.conditional((await ask(reference.gatewayUrl, { ...row, method: 'GET' }, content)).etag ?? '')
    }
    const ours = await ask(heimdall, row, content, extraOurs)
    const kubo = await ask(reference.gatewayUrl, row, content, extraKubo)
    expect(ours.status, 'status').toBe(row.ours?.status ?? kubo.status)
    if (row.ours !== undefined) return
    expect({ location: ours.location, contentRange: ours.contentRange }, 'Location, Content-Range').toEqual({ location: kubo.location, contentRange: kubo.contentRange })
    // Not compared: the type and length of a redirect's or an error's body (Kubo writes HTML or text, we write text or JSON: our own words).
    const bodyIsOurWords = (ours.status >= 301 && ours.status <= 308 && ours.status !== 304) || ours.status >= 400
    if (row.skip?.contentType === undefined && !bodyIsOurWords) expect(comparableType(ours.type), 'Content-Type').toBe(comparableType(kubo.type))
    if (row.skip?.contentLength === undefined && !bodyIsOurWords && ours.length !== null && kubo.length !== null) expect(ours.length, 'Content-Length').toBe(kubo.length)
    if (kubo.status === 304) {
      // Kubo's 304s keep the ETag of a CAR only; RFC 9110 §15.4.5 asks a 304 for the ETag its 200 sends, and ours keeps it.
      expect(ours.etag, 'ETag').toBe(kubo.etag ?? (await ask(heimdall, { ...row, method: 'GET' }, content)).etag)
    } else if (kubo.status < 400 && row.skip?.ids === undefined) {
      expect(comparableEtag(ours.etag), 'ETag').toBe(comparableEtag(kubo.etag))
      expect(ours.path, 'X-Ipfs-Path').toBe(kubo.path)
      expect(ours.roots, 'X-Ipfs-Roots').toBe(kubo.roots)
    }
  })
})
