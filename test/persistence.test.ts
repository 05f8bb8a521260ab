import { describe, expect, it } from 'vitest'
import { avatarBundle } from './support/fixtures.ts'
import { createIdentity, makeDataDir, startTestHeimdall } from './support/heimdall-harness.ts'

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
