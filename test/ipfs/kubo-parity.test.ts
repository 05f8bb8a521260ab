import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { ImportProfileName } from '../../src/ipfs/import-profiles.ts'
import { AVATAR_FST, fixture, makeZip, type ZipItem } from '../support/fixtures.ts'
import { createIdentity, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { KUBO_VERSION, startKubo, type KuboNode } from '../support/kubo.ts'
import { kuboDeterministicStream } from '../support/kubo-vectors.ts'

const kuboBin = inject('kuboBin')

interface Input { label: string, fileName: string, files: Array<{ path: string, data: Buffer }> }

const random5MiB = kuboDeterministicStream('parity-5mib')(5 * 1024 * 1024)
const INPUTS: Input[] = [
  { label: 'binary FBX', fileName: 'box.fbx', files: [{ path: 'box.fbx', data: fixture('fbx/box-binary.fbx') }] },
  { label: 'ASCII FBX', fileName: 'cubes.fbx', files: [{ path: 'cubes.fbx', data: fixture('fbx/cubes-ascii.fbx') }] },
  { label: 'GLB', fileName: 'BoxTextured.glb', files: [{ path: 'BoxTextured.glb', data: fixture('glb/BoxTextured.glb') }] },
  { label: 'OBJ', fileName: 'cube.obj', files: [{ path: 'cube.obj', data: fixture('obj/cube_usemtl.obj') }] },
  { label: '5 MiB random file', fileName: 'random.bin', files: [{ path: 'random.bin', data: random5MiB }] },
  {
    label: 'nested avatar bundle',
    fileName: 'nested.zip',
    files: [
      { path: 'avatar.fst', data: Buffer.from(AVATAR_FST) },
      { path: 'box.fbx', data: fixture('fbx/box-binary.fbx') },
      { path: 'textures/skin.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') },
      { path: 'gltf/BoxTextured.gltf', data: fixture('gltf/BoxTextured/BoxTextured.gltf') },
      { path: 'gltf/BoxTextured0.bin', data: fixture('gltf/BoxTextured/BoxTextured0.bin') },
      { path: 'gltf/CesiumLogoFlat.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') },
      { path: 'obj/cube_usemtl.obj', data: fixture('obj/cube_usemtl.obj') },
      { path: 'obj/cube_usemtl.mtl', data: fixture('obj/cube_usemtl.mtl') },
      { path: 'big/random.bin', data: random5MiB }
    ]
  }
]

/** The upload's root CID, as the add-on reads it: the item named after the upload. */
async function uploadRoot (t: TestHeimdall, token: string, input: Input): Promise<string> {
  const body = input.fileName.endsWith('.zip')
    ? await makeZip(input.files.map((f): ZipItem => ({ path: f.path, data: f.data })))
    : input.files[0]?.data ?? Buffer.alloc(0)
  const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', body, input.fileName).expect(200)
  const name = input.fileName.replace(/\.[^.]+$/, '')
  return (res.body as Array<{ Name: string, Hash: string }>).find((i) => i.Name === name)?.Hash ?? ''
}

/** `ipfs add -r` of the folder the upload would extract to, with the profile's flags. */
async function kuboAddFolder (kubo: KuboNode, profile: ImportProfileName, input: Input): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'heimdall-parity-'))
  try {
    const root = join(dir, 'root')
    for (const file of input.files) {
      await mkdir(dirname(join(root, file.path)), { recursive: true })
      await writeFile(join(root, file.path), file.data)
    }
    const flags = profile === 'unixfs-v1-2025'
      ? ['--cid-version=1', '--raw-leaves=true', '--chunker=size-1048576', '--max-file-links=1024']
      : ['--cid-version=0', '--raw-leaves=false', '--chunker=size-262144', '--max-file-links=174']
    return (await kubo.cli('add', '-r', '-Q', '--pin=false', ...flags, root)).trim()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

for (const profile of ['unixfs-v1-2025', 'unixfs-v0-2015'] as const) {
  describe.skipIf(kuboBin === '')(`CID parity under ${profile}: embedded upload = Kubo-backed upload = ipfs add -r (${KUBO_VERSION})`, () => {
    let kubo: KuboNode
    let embedded: TestHeimdall
    let viaKubo: TestHeimdall
    let tokens: { embedded: string, viaKubo: string }

    beforeAll(async () => {
      kubo = await startKubo(kuboBin, profile)
      embedded = await startTestHeimdall({ IPFS_CID_PROFILE: profile })
      viaKubo = await startTestHeimdall({ IPFS_CID_PROFILE: profile, IPFS_API_URL: kubo.apiUrl })
      tokens = { embedded: (await createIdentity(embedded.request)).token, viaKubo: (await createIdentity(viaKubo.request)).token }
    })
    afterAll(async () => {
      await embedded.close()
      await viaKubo.close()
      await kubo.stop()
    })

    for (const input of INPUTS) {
      it(input.label, async () => {
        const a = await uploadRoot(embedded, tokens.embedded, input)
        const b = await uploadRoot(viaKubo, tokens.viaKubo, input)
        const c = await kuboAddFolder(kubo, profile, input)
        expect(a).toMatch(profile === 'unixfs-v1-2025' ? /^bafy/ : /^Qm/)
        expect({ embedded: a, kuboBackend: b, ipfsAddR: c }).toEqual({ embedded: a, kuboBackend: a, ipfsAddR: a })
      })
    }
  })
}

describe.skipIf(kuboBin === '')('when Kubo cannot be reached', () => {
  it('/readyz fails and uploads answer 503 with a clear error, recording nothing', async () => {
    const kubo = await startKubo(kuboBin)
    const t = await startTestHeimdall({ IPFS_API_URL: kubo.apiUrl })
    try {
      const { token } = await createIdentity(t.request)
      await t.request.get('/readyz').expect(200)
      await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', fixture('glb/BoxTextured.glb'), 'ok.glb').expect(200)
      await kubo.stop()
      const ready = await t.request.get('/readyz').expect(503)
      expect(ready.body.checks.database).toBe('ok')
      // Which component, never why: the reason (with Kubo's internal URL) goes to the log only.
      expect(ready.body.checks.ipfs).toBe('unavailable')
      expect(JSON.stringify(ready.body)).not.toContain('127.0.0.1')
      for (const credentialsFirst of [true, false]) {
        const req = t.request.post('/upload')
        const res = credentialsFirst
          ? await req.set('Authorization', `Bearer ${token}`).attach('file', fixture('obj/cube_usemtl.obj'), 'down.obj')
          : await req.attach('file', await makeZip([{ path: 'a.obj', data: fixture('obj/cube_usemtl.obj') }]), 'down.zip').field('token', token)
        expect(res.status).toBe(503)
        expect(res.body.error).toBe('the IPFS node cannot be reached; try again later')
      }
      const [{ n }] = await t.heimdall.database.knex('uploads').count<Array<{ n: string | number }>>({ n: '*' }) as [{ n: string | number }]
      expect(Number(n)).toBe(1)
      expect(await (await import('node:fs/promises')).readdir(t.heimdall.tmpDir)).toEqual([])
    } finally {
      await t.close()
      await kubo.stop()
    }
  })
})
