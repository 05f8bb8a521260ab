import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { blenderAvatar, fixture } from '../support/fixtures.ts'
import { createIdentity, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

interface Item { Name: string, Hash: string }

let t: TestHeimdall
let alice: string
let bob: string

beforeAll(async () => {
  t = await startTestHeimdall()
  alice = (await createIdentity(t.request)).token
  bob = (await createIdentity(t.request)).token
})
afterAll(async () => { await t.close() })

const as = (token: string) => ({ Authorization: `Bearer ${token}` })

async function upload (data: Buffer, name: string): Promise<{ id: number, cid: string }> {
  const res = await t.request.post('/upload').set(as(alice)).attach('file', data, name).expect(200)
  const cid = (res.body as Item[]).at(-1)?.Hash ?? ''
  const list = await t.request.get('/uploads').set(as(alice)).expect(200)
  return { id: (list.body.uploads as Array<{ id: number, rootCid: string }>).find((u) => u.rootCid === cid)?.id ?? 0, cid }
}

describe('thumbnails', () => {
  it('a texture shows itself: its thumbnail is the file on the gateway', async () => {
    const { id, cid } = await upload(blenderAvatar('textures/skin.png'), 'skin.png')
    const res = await t.request.get(`/uploads/${id}/thumbnail`).set(as(alice)).expect(302)
    expect(res.headers.location).toBe(`http://localhost:8080/ipfs/${cid}/skin.png`)
  })

  it('a model shows a neutral icon until its creator\'s browser sends a picture, then that picture; the first one stays', async () => {
    const { id, cid } = await upload(blenderAvatar('avatar.glb'), 'model.glb')
    const icon = await t.request.get(`/uploads/${id}/thumbnail`).set(as(alice)).expect(200)
    expect(icon.headers['content-type']).toMatch(/^image\/svg\+xml/)
    const picture = fixture('gltf/BoxTextured/CesiumLogoFlat.png')
    expect((await t.request.post(`/uploads/thumbnails/${cid}`).set(as(alice)).set('Content-Type', 'image/png').send(picture).expect(201)).body).toEqual({ saved: 1 })
    const stored = await t.request.get(`/uploads/${id}/thumbnail`).set(as(alice)).expect(200)
    expect(stored.headers['content-type']).toBe('image/png')
    expect(Buffer.compare(stored.body as Buffer, picture)).toBe(0)
    expect((await t.request.post(`/uploads/thumbnails/${cid}`).set(as(alice)).set('Content-Type', 'image/png').send(blenderAvatar('textures/skin.png')).expect(200)).body).toEqual({ saved: 0 })
    expect(Buffer.compare((await t.request.get(`/uploads/${id}/thumbnail`).set(as(alice)).expect(200)).body as Buffer, picture)).toBe(0)
  })

  it('is the owner\'s only: another identity gets 404 and saves nothing; bytes that are not an image are 415', async () => {
    const { id, cid } = await upload(blenderAvatar('avatar-draco.glb'), 'draco.glb')
    await t.request.get(`/uploads/${id}/thumbnail`).set(as(bob)).expect(404)
    expect((await t.request.post(`/uploads/thumbnails/${cid}`).set(as(bob)).set('Content-Type', 'image/png').send(fixture('gltf/BoxTextured/CesiumLogoFlat.png')).expect(200)).body).toEqual({ saved: 0 })
    await t.request.post(`/uploads/thumbnails/${cid}`).set(as(alice)).set('Content-Type', 'image/png').send(Buffer.from('<svg onload=alert(1)>')).expect(415)
    expect((await t.request.get(`/uploads/${id}/thumbnail`).set(as(alice)).expect(200)).headers['content-type']).toMatch(/^image\/svg\+xml/)
    await t.request.get('/uploads/1/thumbnail').expect(401)
  })

  it('goes with its upload', async () => {
    const { id, cid } = await upload(blenderAvatar('avatar-embedded.fbx'), 'gone.fbx')
    await t.request.post(`/uploads/thumbnails/${cid}`).set(as(alice)).set('Content-Type', 'image/png').send(fixture('gltf/BoxTextured/CesiumLogoFlat.png')).expect(201)
    await t.request.delete(`/uploads/${id}`).set(as(alice)).expect(204)
    expect(await t.heimdall.database.knex('upload_thumbnails').where({ upload_id: id }).first()).toBeUndefined()
  })
})
