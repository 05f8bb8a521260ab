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
