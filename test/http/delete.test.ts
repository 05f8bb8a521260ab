import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { avatarBundle, fixture } from '../support/fixtures.ts'
import { createIdentity, csrfField, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { appBackends } from '../support/backends.ts'

const backends = appBackends()

for (const backend of backends) {
  describe.skipIf(!backend.available)(`deleting uploads, over ${backend.name}`, () => {
    let t: TestHeimdall
    let stopBackend: () => Promise<void>
    beforeAll(async () => {
      const started = await backend.start()
      stopBackend = started.stop
      t = await startTestHeimdall(started.env)
    })
    afterAll(async () => { await t.close(); await stopBackend() })

    const upload = async (token: string, data: Buffer, name: string): Promise<string> => {
      const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', data, name).expect(200)
      return (res.body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
    }
    const idOf = async (token: string, rootCid: string): Promise<number> => {
      const res = await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)
      return (res.body.uploads as Array<{ id: number, rootCid: string }>).find((u) => u.rootCid === rootCid)?.id ?? -1
    }
    const pinned = async (rootCid: string): Promise<boolean> => t.heimdall.backend.isPinned(CID.parse(rootCid))

    it('unpins a root only when no upload of anyone references it any more', async () => {
      const alice = await createIdentity(t.request)
      const bob = await createIdentity(t.request)
      const bundle = await avatarBundle()
      const root = await upload(alice.token, bundle, 'shared.zip')
      expect(await upload(bob.token, bundle, 'shared.zip')).toBe(root)

      await t.request.delete(`/uploads/${await idOf(alice.token, root)}`).set('Authorization', `Bearer ${alice.token}`).expect(204)
      expect(await idOf(alice.token, root)).toBe(-1)
      expect(await pinned(root)).toBe(true)
      await t.request.get(`/ipfs/${root}/avatar.fst`).expect(200)

      await t.request.delete(`/uploads/${await idOf(bob.token, root)}`).set('Authorization', `Bearer ${bob.token}`).expect(204)
      expect(await pinned(root)).toBe(false)
    })

    it('404 for someone else\'s upload, an unknown one, or one already deleted; 401 without credentials', async () => {
      const alice = await createIdentity(t.request)
      const mallory = await createIdentity(t.request)
      const root = await upload(alice.token, fixture('glb/BoxTextured.glb'), 'mine.glb')
      const id = await idOf(alice.token, root)
      await t.request.delete(`/uploads/${id}`).set('Authorization', `Bearer ${mallory.token}`).expect(404)
      await t.request.delete(`/uploads/${id}`).expect(401)
      await t.request.delete('/uploads/999999').set('Authorization', `Bearer ${alice.token}`).expect(404)
      await t.request.delete('/uploads/not-a-number').set('Authorization', `Bearer ${alice.token}`).expect(404)
      expect(await pinned(root)).toBe(true)
      await t.request.delete(`/uploads/${id}`).set('Authorization', `Bearer ${alice.token}`).expect(204)
      await t.request.delete(`/uploads/${id}`).set('Authorization', `Bearer ${alice.token}`).expect(404)
      expect(await pinned(root)).toBe(false)
    })

    it('deletes from a browser session through the form, back to the list', async () => {
      const alice = await createIdentity(t.request)
      const root = await upload(alice.token, fixture('obj/cube_usemtl.obj'), 'form.obj')
      const browser = t.browser()
      const signIn = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
      await browser.post('/uploads').type('form').set('Accept', 'text/html').send({ ...alice, _csrf: csrfField(signIn.text) }).expect(303)
      const list = await browser.get('/uploads').set('Accept', 'text/html').expect(200)
      const id = await idOf(alice.token, root)
      expect(list.text).toContain(`href="/uploads/${id}/delete"`)
      const confirm = await browser.get(`/uploads/${id}/delete`).set('Accept', 'text/html').expect(200)
      expect(confirm.text).toContain(`action="/uploads/${id}/delete"`)
      await browser.post(`/uploads/${id}/delete`).set('Accept', 'text/html').expect(403)
      const res = await browser.post(`/uploads/${id}/delete`).type('form').set('Accept', 'text/html').send({ _csrf: csrfField(confirm.text) }).expect(303)
      expect(res.headers.location).toBe('/uploads')
      expect(await idOf(alice.token, root)).toBe(-1)
    })
  })
}
