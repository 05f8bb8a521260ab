import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { appBackends } from './support/backends.ts'
import { avatarBundle } from './support/fixtures.ts'
import { asBytes, createIdentity, makeDataDir, startTestHeimdall } from './support/heimdall-harness.ts'

describe('restart on the same DATA_DIR', () => {
  it('keeps identities, uploads and pins, and serves them again', async () => {
    const dataDir = await makeDataDir()
    const first = await startTestHeimdall({}, dataDir)
    const alice = await createIdentity(first.request, 'alice')
    const res = await first.request.post('/upload').set('Authorization', `Bearer ${alice.token}`).attach('file', await avatarBundle(), 'kept.zip').expect(200)
    const root = (res.body as Array<{ Name: string, Hash: string }>).find((i) => i.Name === 'kept')?.Hash
    await first.close({ keepData: true })

    const second = await startTestHeimdall({}, dataDir)
    try {
      const list = await second.request.post('/uploads').set('Accept', 'application/json').type('form').send(alice).expect(200)
      expect(list.body.uploads.map((u: { rootCid: string }) => u.rootCid)).toEqual([root])
      const fst = await second.request.get(`/ipfs/${root}/avatar.fst`).expect(200)
      expect(fst.text).toContain('name = TestAvatar')
      await second.request.get(`/ipfs/${root}/textures/skin.png`).expect(200)
      const pins: string[] = []
      for await (const cid of second.heimdall.backend.listPins()) pins.push(cid.toString())
      expect(pins).toEqual([root])
      await second.request.post('/new').type('form').send({ username: 'alice' }).expect(409)
    } finally {
      await second.close()
    }
  })

  it('keeps the generated SECRET_KEY, so browser sessions survive a restart', async () => {
    const dataDir = await makeDataDir()
    const env = { SECRET_KEY: '' }
    const first = await startTestHeimdall(env, dataDir)
    expect(first.logs.join('\n')).toMatch(/SECRET_KEY is not set/)
    const alice = await createIdentity(first.request, 'alice')
    const signIn = await first.request.post('/uploads').type('form').set('Accept', 'text/html').send(alice).expect(303)
    const setCookies = signIn.headers['set-cookie'] as unknown as string[]
    const cookie = setCookies.find((c) => c.startsWith('heimdall_session='))?.split(';')[0] ?? ''
    await first.close({ keepData: true })
    const second = await startTestHeimdall(env, dataDir)
    try {
      expect(second.logs.join('\n')).not.toMatch(/SECRET_KEY is not set/)
      const page = await second.request.get('/uploads').set('Accept', 'text/html').set('Cookie', cookie).expect(200)
      expect(page.text).toContain('Uploads of alice')
    } finally {
      await second.close()
    }
  })
})

for (const backend of appBackends()) {
  describe.skipIf(!backend.available)(`restart on the same DATA_DIR, over ${backend.name}`, () => {
    it('pins again, before any collection, what the database holds and the node has no pin for (but neither a taken-down root nor one no longer all here)', async () => {
      // The versions of 2026-11-24 gave no pin of its own to an upload whose root another pin already reached; an
      // operator may `ipfs pin rm` on Kubo: the uploads stay listed, and the first collection took their blocks.
      const dataDir = await makeDataDir()
      const started = await backend.start()
      const first = await startTestHeimdall(started.env, dataDir)
      const alice = await createIdentity(first.request, 'alice')
      const upload = async (bytes: Buffer, name: string): Promise<string> => {
        const res = await first.request.post('/upload').set('Authorization', `Bearer ${alice.token}`).attach('file', bytes, name).expect(200)
        return (res.body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
      }
      const avatar = await upload(await avatarBundle(), 'kept.zip')
      const solo = randomBytes(300_000)
      const soloRoot = await upload(solo, 'solo.bin')
      const goneRoot = await upload(randomBytes(1000), 'gone.bin')
      const deniedRoot = await upload(randomBytes(1000), 'denied.bin')
      const { backend: node, database } = first.heimdall
      // One root's blocks collected while it had no pin: not all here any more.
      await node.unpin(CID.parse(goneRoot))
      await node.gc()
      for (const root of [avatar, soloRoot, deniedRoot]) await node.unpin(CID.parse(root))
      await database.knex('blocked_roots').insert({ root_cid: deniedRoot, rule: '//test', list: 'test.deny' })
      await first.close({ keepData: true })

      const second = await startTestHeimdall(started.env, dataDir)
      try {
        const pins = new Set<string>()
        for await (const cid of second.heimdall.backend.listPins()) pins.add(cid.toString())
        expect([avatar, soloRoot, goneRoot, deniedRoot].map((root) => pins.has(root))).toEqual([true, true, false, false])
        const logs = second.logs.join('\n')
        expect(logs).toContain('pinned again content the database holds that had no pin')
        expect(logs).toMatch(new RegExp(`"rootCid":"${goneRoot}".*not all here any more`))
        await second.heimdall.backend.gc()
        expect((await second.request.get(`/ipfs/${avatar}/avatar.fst`).expect(200)).text).toContain('name = TestAvatar')
        await second.request.get(`/ipfs/${avatar}/textures/skin.png`).expect(200)
        expect(Buffer.compare((await second.request.get(`/ipfs/${soloRoot}/solo.bin`).buffer(true).parse(asBytes).expect(200)).body as Buffer, solo)).toBe(0)
        expect(await second.heimdall.database.knex('pin_intents').count<Array<{ n: string | number }>>({ n: '*' }).then(([row]) => Number(row?.n))).toBe(0)
      } finally {
        await second.close()
        await started.stop()
      }
    })
  })
}
