import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { Readable } from 'node:stream'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HeliaBackend } from '../../src/ipfs/helia-backend.ts'
import type { ImportProfileName } from '../../src/ipfs/import-profiles.ts'
import type { IpfsBackend } from '../../src/ipfs/ipfs-backend.ts'
import { kuboDeterministicBytes, kuboDeterministicNames } from '../support/kubo-vectors.ts'

/**
 * Kubo's published CIDs for its IPIP-499 profiles (kubo v0.42.0,
 * test/cli/cid_profiles_test.go), reproduced through our own import path:
 * the same deterministic inputs, imported by HeliaBackend.importTree.
 */
interface ProfileVectors {
  profile: ImportProfileName
  fileSeed: string
  chunkSize: number
  maxLinks: number
  fileAtMaxLinks: string
  fileOverMaxLinks: string
  hamtSeed: string
  dirBasic: { files: number, nameLength: number, lastNameLength: number, cid: string }
  dirHamt: { files: number, nameLength: number, lastNameLength: number, cid: string }
}

const VECTORS: ProfileVectors[] = [
  {
    profile: 'unixfs-v0-2015',
    fileSeed: 'v0-seed',
    chunkSize: 256 * 1024,
    maxLinks: 174,
    fileAtMaxLinks: 'QmUbBALi174SnogsUzLpYbD4xPiBSFANF4iztWCsHbMKh2',
    fileOverMaxLinks: 'QmepeWtdmS1hHXx1oZXsPUv6bMrfRRKfZcoPPU4eEfjnbf',
    hamtSeed: 'hamt-unixfs-v0-2015',
    dirBasic: { files: 4096, nameLength: 30, lastNameLength: 30, cid: 'QmX5GtRk3TSSEHtdrykgqm4eqMEn3n2XhfkFAis5fjyZmN' },
    dirHamt: { files: 4033, nameLength: 31, lastNameLength: 31, cid: 'QmeMiJzmhpJAUgynAcxTQYek5PPKgdv3qEvFsdV3XpVnvP' }
  },
  {
    profile: 'unixfs-v1-2025',
    fileSeed: 'v1-2025-seed',
    chunkSize: 1024 * 1024,
    maxLinks: 1024,
    fileAtMaxLinks: 'bafybeihmf37wcuvtx4hpu7he5zl5qaf2ineo2lqlfrapokkm5zzw7zyhvm',
    fileOverMaxLinks: 'bafybeihmzokxxjqwxjcryerhp5ezpcog2wcawfryb2xm64xiakgm4a5jue',
    hamtSeed: 'hamt-unixfs-v1-2025',
    dirBasic: { files: 4766, nameLength: 11, lastNameLength: 21, cid: 'bafybeic3h7rwruealwxkacabdy45jivq2crwz6bufb5ljwupn36gicplx4' },
    dirHamt: { files: 4766, nameLength: 11, lastNameLength: 22, cid: 'bafybeiegvuterwurhdtkikfhbxcldohmxp566vpjdofhzmnhv6o4freidu' }
  }
]

let backend: IpfsBackend
let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'heimdall-vectors-'))
  backend = await HeliaBackend.open(dir)
})
afterAll(async () => {
  await backend.close()
  await rm(dir, { recursive: true, force: true })
})

async function fileCid (profile: ImportProfileName, size: number, seed: string): Promise<string> {
  const nodes = await backend.importTree([{ path: 'f', content: kuboDeterministicBytes(size, seed) }], { profile })
  return nodes.find((n) => n.path === 'f')?.cid.toString() ?? ''
}

async function dirCid (profile: ImportProfileName, names: string[]): Promise<string> {
  const x = new TextEncoder().encode('x')
  const nodes = await backend.importTree(names.map((name) => ({ path: name, content: Readable.from([x]) })), { profile })
  return nodes.at(-1)?.cid.toString() ?? ''
}

for (const v of VECTORS) {
  describe(`Kubo's ${v.profile} vectors`, () => {
    it(`a file of exactly ${v.maxLinks} chunks (the links-per-node boundary)`, async () => {
      expect(await fileCid(v.profile, v.maxLinks * v.chunkSize, v.fileSeed)).toBe(v.fileAtMaxLinks)
    })

    it(`a file of ${v.maxLinks + 1} chunks, which rebalances into a deeper DAG`, async () => {
      expect(await fileCid(v.profile, (v.maxLinks + 1) * v.chunkSize, v.fileSeed)).toBe(v.fileOverMaxLinks)
    })

    it('a directory exactly at the HAMT threshold stays flat', async () => {
      const { files, nameLength, lastNameLength, cid } = v.dirBasic
      expect(await dirCid(v.profile, kuboDeterministicNames(files, nameLength, lastNameLength, v.hamtSeed))).toBe(cid)
    })

    it('a directory one byte over the threshold is sharded', async () => {
      const { files, nameLength, lastNameLength, cid } = v.dirHamt
      expect(await dirCid(v.profile, kuboDeterministicNames(files, nameLength, lastNameLength, v.hamtSeed))).toBe(cid)
    })
  })
}

/**
 * A nested tree, as `ipfs add -r tree` printed it with kubo v0.42.0 on a repo
 * initialised with `--profile=test,<profile>`. body.fbx (3 MiB + 7) crosses the
 * chunk size under both profiles; `empty` is an empty folder, which Kubo keeps.
 */
const NESTED_TREE: Record<ImportProfileName, Record<string, string>> = {
  'unixfs-v1-2025': {
    'avatar.fst': 'bafkreifhfpdo7uoycaa6cic4ozodfmgnr5ah2dzw5dimi4i336sqbbpbzm',
    'models/body.fbx': 'bafybeictuxkxxpr2tw4pdvdlxlft5xmajtp3ju7zh4pwhy6cibnsboyt2u',
    'models/textures/skin.png': 'bafkreie3uztec2zfk6csr7rravxvuoqgpcboslohdgjdges3232uharyta',
    'scripts/a.js': 'bafkreigmiikvbch4uvzqowg3okzklpfdgejksqo7viwugcmoyqrm4tvccm',
    empty: 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354',
    'models/textures': 'bafybeigifhlzdfreyylzr2ibfd3stmo3oywy3odv6lrbadbivouwodwsom',
    models: 'bafybeicwxcqoxm2rret2tqbv3bih2mrpjdlztkxao72f22ikrtbxsmlmlu',
    scripts: 'bafybeid6ilqv5rglhy547ahejlwv7g44g3oz22zvkz4dwzzx7iqhlmbx2u',
    '': 'bafybeihqmyic2vc7oehlh3zyl5dmmdzi2kdj26ijgbdkeofrmnqepti5pm'
  },
  'unixfs-v0-2015': {
    'avatar.fst': 'QmVhqVTux6bZK3TLkAyyyuMCsxnVZBiiejLYe8EhJfFoXx',
    'models/body.fbx': 'QmeiPGj3vJfZsX45UAiXH69uqNeNSwfXH6AututvVcrdSP',
    'models/textures/skin.png': 'QmeFuKrmoYo6G3SJqPc7rRwcWAp2hpRe5NAu4F35WrjEiT',
    'scripts/a.js': 'Qmbhxm5MFrvjtjZ172TgcrrrFq6xXswL9CV2LrJ8743q1X',
    empty: 'QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn',
    'models/textures': 'QmTS83pvvaWC64pdmEtd1WZY3CM6yuY16QQevhSBbBjU4K',
    models: 'QmYgTSRVy33AGLu11i4WTWhXG7KLX5qoLLVBVJoqLMKgKj',
    scripts: 'QmfYoN1e7EDU2gpxe5zTWnveqvTxFyUtxXZALzYXPGaGa1',
    '': 'QmS1yMya7BmwtFmC1k6qgMFf5vB1h1L62UotmxGhCzMk8d'
  }
}

describe('a nested directory, as ipfs add -r', () => {
  const text = (value: string): AsyncIterable<Uint8Array> => Readable.from([Buffer.from(value)])
  for (const profile of ['unixfs-v1-2025', 'unixfs-v0-2015'] as const) {
    it(`matches Kubo node for node under ${profile}`, async () => {
      const nodes = await backend.importTree([
        { path: 'avatar.fst', content: text('name = nested\nfilename = models/body.fbx\n') },
        { path: 'models/body.fbx', content: kuboDeterministicBytes(3 * 1024 * 1024 + 7, 'nested-body') },
        { path: 'models/textures/skin.png', content: kuboDeterministicBytes(100 * 1024, 'nested-skin') },
        { path: 'scripts/a.js', content: text('print(1)\n') },
        { path: 'empty' }
      ], { profile })
      expect(Object.fromEntries(nodes.map((n) => [n.path, n.cid.toString()]))).toEqual(NESTED_TREE[profile])
    })
  }
})

/**
 * Folders past the HAMT threshold only once their subfolders' links are
 * weighed, as `ipfs add -r --only-hash --offline <folder>` printed them with
 * kubo v0.42.0 on a repo initialised with `--profile=test,<profile>` (stable
 * over repeated runs): `subfolders` holds 1,500 folders of 196-byte names,
 * each with an `x.txt` of "x"; `mixed` holds 1,000 such files and 200 such
 * folders, under the threshold by its files alone. ipfs-unixfs-importer
 * alone leaves both flat.
 */
const PAST_THRESHOLD_BY_FOLDERS: Record<ImportProfileName, { subfolders: string, mixed: string }> = {
  'unixfs-v1-2025': { subfolders: 'bafybeifttgvum34ggpadyjkehrhxgkvdsz536idca6vpjryofrd3crpkya', mixed: 'bafybeih6bpqvoboeul6tgwy53nb6wssc4w7faqxpphmq3empna5vd65hma' },
  'unixfs-v0-2015': { subfolders: 'QmWVv5BACxwJboy3pn9kADHhhsumpVxaYZVuKvpuuo2Gi4', mixed: 'QmZDCYZfieaDp3vT2rvFi5CFYiTPspfETLEhcorfTJ9HTe' }
}

describe('a folder past the HAMT threshold by its subfolders\' links', () => {
  const x = (): AsyncIterable<Uint8Array> => Readable.from([Buffer.from('x')])
  const name = (letter: string, i: number): string => `${letter.repeat(190)}${String(i).padStart(6, '0')}`
  for (const profile of ['unixfs-v1-2025', 'unixfs-v0-2015'] as const) {
    it(`is sharded as Kubo shards it, and its parent names the shard, under ${profile}`, async () => {
      const subfolders = await backend.importTree(Array.from({ length: 1500 }, (_, i) => ({ path: `subfolders/${name('d', i)}/x.txt`, content: x() })), { profile })
      expect(subfolders.find((n) => n.path === 'subfolders')?.cid.toString()).toBe(PAST_THRESHOLD_BY_FOLDERS[profile].subfolders)
      const root = subfolders.at(-1)?.cid
      if (root === undefined) throw new Error('no root')
      expect((await backend.stat(root, ['subfolders'])).cid.toString()).toBe(PAST_THRESHOLD_BY_FOLDERS[profile].subfolders)
      expect((await backend.stat(root, ['subfolders', name('d', 1499), 'x.txt'])).size).toBe(1)
      const mixed = await backend.importTree([
        ...Array.from({ length: 200 }, (_, i) => ({ path: `mixed/${name('d', i)}/x.txt`, content: x() })),
        ...Array.from({ length: 1000 }, (_, i) => ({ path: `mixed/${name('f', i)}.txt`, content: x() }))
      ], { profile })
      expect(mixed.find((n) => n.path === 'mixed')?.cid.toString()).toBe(PAST_THRESHOLD_BY_FOLDERS[profile].mixed)
    })
  }
})
