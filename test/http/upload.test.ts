import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { avatarBundle, fixture, makeZip } from '../support/fixtures.ts'
import { asBytes, createIdentity, expectNothingLeftBehind as expectNothingLeftBehindIn, leftovers, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

interface Item { Name: string, Hash: string, Size: string }

let t: TestHeimdall
let alice: { username: string, token: string }
let before: Awaited<ReturnType<typeof leftovers>>

beforeAll(async () => {
  t = await startTestHeimdall({ MAX_UPLOAD_BYTES: String(2 * 1024 * 1024) })
  alice = await createIdentity(t.request, 'alice')
})
afterAll(async () => { await t.close() })

const expectNothingLeftBehind = async (): Promise<void> => { await expectNothingLeftBehindIn(t, before) }

beforeEach(async () => { before = await leftovers(t) })

describe('POST /upload, accepted', () => {
  it('wraps a single file in a directory named after it and answers in the shape of ipfs add', async () => {
    const res = await t.request.post('/upload')
      .field('username', alice.username).field('token', alice.token)
      .attach('file', fixture('glb/BoxTextured.glb'), 'BoxTextured.glb')
      .expect(200)
    const items = res.body as Item[]
    expect(items.map((i) => i.Name)).toEqual(['BoxTextured/BoxTextured.glb', 'BoxTextured'])
    for (const item of items) expect(item.Size).toMatch(/^\d+$/)
    expect(Object.keys(items[0] as Item).sort()).toEqual(['Hash', 'Name', 'Size'])
    // The root item keeps the add-on's three keys and adds what to open, what it is, the warnings, and (for avatars) the avatar report.
    const root = items[1] as Item
    expect(root).toEqual({ Name: 'BoxTextured', Hash: root.Hash, Size: root.Size, primary: `http://localhost:8080/ipfs/${root.Hash}/BoxTextured.glb`, kind: 'model', warnings: [], preview: `/preview/${root.Hash}/BoxTextured.glb`, avatar: null })
    expect(root.Hash).toMatch(/^bafy/)
    expect(await t.heimdall.backend.isPinned((await import('multiformats/cid')).CID.parse(root.Hash))).toBe(true)
    const served = await t.request.get(`/ipfs/${root.Hash}/BoxTextured.glb`).buffer(true).parse(asBytes).expect(200)
    expect(Buffer.compare(served.body as Buffer, fixture('glb/BoxTextured.glb'))).toBe(0)
    expect((await leftovers(t)).tmpFiles).toEqual([])
  })

  it('imports a zip bundle with its relative paths and names the root after the zip', async () => {
    const res = await t.request.post('/upload')
      .field('username', alice.username).field('token', alice.token)
      .attach('file', await avatarBundle(), 'MyAvatar.zip')
      .expect(200)
    const items = res.body as Item[]
    expect(items.map((i) => i.Name).sort()).toEqual(['MyAvatar', 'MyAvatar/avatar.fst', 'MyAvatar/box.fbx', 'MyAvatar/textures', 'MyAvatar/textures/skin.png'])
    expect(items.at(-1)?.Name).toBe('MyAvatar')
    const root = items.find((i) => i.Name === 'MyAvatar') as Item
    const fst = await t.request.get(`/ipfs/${root.Hash}/avatar.fst`).expect(200)
    expect(fst.text).toContain('filename = box.fbx')
    const png = await t.request.get(`/ipfs/${root.Hash}/textures/skin.png`).expect(200)
    expect(png.headers['content-type']).toBe('image/png')
    const [upload] = await t.heimdall.database.knex('uploads').where({ root_cid: root.Hash })
    expect(upload).toMatchObject({ name: 'MyAvatar', kind: 'avatar', is_avatar: true, primary_path: 'avatar.fst' })
  })

  it('accepts the credentials after the file, and a bearer token instead of fields', async () => {
    const afterFile = await t.request.post('/upload')
      .attach('file', fixture('obj/cube_usemtl.obj'), 'cube.obj')
      .field('username', alice.username).field('token', alice.token)
      .expect(200)
    expect((afterFile.body as Item[]).map((i) => i.Name)).toEqual(['cube/cube.obj', 'cube'])
    const bearer = await t.request.post('/upload')
      .set('Authorization', `Bearer ${alice.token}`)
      .attach('file', fixture('fbx/cubes-ascii.fbx'), 'cubes.fbx')
      .expect(200)
    expect((bearer.body as Item[]).at(-1)?.Name).toBe('cubes')
  })

  it('answers the same content uploaded twice by one person with the existing record', async () => {
    const send = async () => t.request.post('/upload').set('Authorization', `Bearer ${alice.token}`)
      .attach('file', fixture('gltf/BoxTextured/CesiumLogoFlat.png'), 'logo.png').expect(200)
    const first = (await send()).body as Item[]
    const second = (await send()).body as Item[]
    expect(second).toEqual(first)
    const rows = await t.heimdall.database.knex('uploads').where({ root_cid: first.at(-1)?.Hash })
    expect(rows).toHaveLength(1)
  })

  it('shows a browser a result page with the link', async () => {
    const res = await t.request.post('/upload').set('Accept', 'text/html')
      .field('username', alice.username).field('token', alice.token)
      .attach('file', fixture('obj/cube_usemtl.mtl'), 'cube.mtl')
      .expect(200)
    expect(res.text).toMatch(/\/ipfs\/bafy[a-z0-9]+\/cube\.mtl/)
  })
})

describe('POST /upload, refused, leaves nothing behind', () => {
  it('401 for a wrong token sent before the file', async () => {
    const res = await t.request.post('/upload')
      .field('username', alice.username).field('token', 'wrong')
      .attach('file', fixture('glb/BoxTextured.glb'), 'box.glb')
      .expect(401)
    expect(res.body.error).toMatch(/token/)
    await expectNothingLeftBehind()
  })

  it('401 for a wrong token sent after the file', async () => {
    await t.request.post('/upload')
      .attach('file', fixture('glb/BoxTextured.glb'), 'box.glb')
      .field('username', alice.username).field('token', 'wrong')
      .expect(401)
    await expectNothingLeftBehind()
  })

  it('401 without credentials', async () => {
    await t.request.post('/upload').attach('file', fixture('glb/BoxTextured.glb'), 'box.glb').expect(401)
    await expectNothingLeftBehind()
  })

  it('400 without a file, or without a multipart body', async () => {
    const noFile = await t.request.post('/upload').field('username', alice.username).field('token', alice.token).expect(400)
    expect(noFile.body.error).toMatch(/file/)
    await t.request.post('/upload').type('form').send({ username: alice.username, token: alice.token }).expect(400)
    await expectNothingLeftBehind()
  })

  it('400 for a file in another field', async () => {
    await t.request.post('/upload').set('Authorization', `Bearer ${alice.token}`).attach('model', fixture('glb/BoxTextured.glb'), 'box.glb').expect(400)
    await expectNothingLeftBehind()
  })

  it('413 above MAX_UPLOAD_BYTES', async () => {
    const res = await t.request.post('/upload').set('Authorization', `Bearer ${alice.token}`)
      .attach('file', Buffer.alloc(3 * 1024 * 1024, 1), 'big.bin').expect(413)
    expect(res.body.error).toMatch(/larger than 2097152 bytes/)
    await expectNothingLeftBehind()
  })

  it('415 for a type not on the list', async () => {
    const res = await t.request.post('/upload').set('Authorization', `Bearer ${alice.token}`)
      .attach('file', Buffer.from('MZ'), 'tool.exe').expect(415)
    expect(res.body).toMatchObject({ error: expect.stringContaining('exe') as unknown, details: [expect.stringContaining('fbx') as unknown] })
    await expectNothingLeftBehind()
  })

  it('415 for a bundle with entries off the list, naming each of them', async () => {
    const zip = await makeZip([
      { path: 'avatar.fst', data: 'name = x\n' },
      { path: 'run.exe', data: 'MZ' },
      { path: 'docs/readme.html', data: '<script>' }
    ])
    const res = await t.request.post('/upload').set('Authorization', `Bearer ${alice.token}`).attach('file', zip, 'bad.zip').expect(415)
    expect(res.body.details).toEqual(['run.exe', 'docs/readme.html'])
    await expectNothingLeftBehind()
  })

  it('400 for a bundle with unsafe paths, listing them', async () => {
    const zip = await makeZip([
      { path: 'ok.png', data: 'x' },
      { path: 'Textures/a.png', data: 'x' },
      { path: 'textures/A.png', data: 'y' }
    ])
    // yazl refuses to write `..` paths; patch the bytes of a same-length name instead.
    const patched = Buffer.from(zip.toString('latin1').replaceAll('ok.png', '../x/').replaceAll('../x/', '../a.p'), 'latin1')
    const res = await t.request.post('/upload').set('Authorization', `Bearer ${alice.token}`).attach('file', patched, 'unsafe.zip').expect(400)
    expect(res.body.error).toMatch(/unsafe/)
    expect(res.body.details).toEqual(expect.arrayContaining([expect.stringContaining('".."') as unknown, expect.stringContaining('collides') as unknown]))
    await expectNothingLeftBehind()
  })

  it('400 for a .zip that is not a zip, and for an empty one', async () => {
    await t.request.post('/upload').set('Authorization', `Bearer ${alice.token}`).attach('file', Buffer.from('not a zip at all'), 'fake.zip').expect(400)
    await t.request.post('/upload').set('Authorization', `Bearer ${alice.token}`).attach('file', await makeZip([{ path: 'empty/' }]), 'empty.zip').expect(400)
    await expectNothingLeftBehind()
  })

  it('shows a browser the error readably', async () => {
    const res = await t.request.post('/upload').set('Accept', 'text/html').set('Authorization', `Bearer ${alice.token}`)
      .attach('file', Buffer.from('MZ'), 'tool.exe').expect(415)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(res.text).toContain('are not accepted')
    await expectNothingLeftBehind()
  })

  /** Sends part of a multipart upload by hand, then hangs up. */
  async function disconnectHalfway (credentialsFirst: boolean, whenToHangUp: () => Promise<void>): Promise<void> {
    const server = t.heimdall.app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const { port } = server.address() as AddressInfo
    const boundary = 'abcdef0123456789'
    const fields = `--${boundary}\r\nContent-Disposition: form-data; name="username"\r\n\r\n${alice.username}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="token"\r\n\r\n${alice.token}\r\n`
    const filePart = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="half.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`
    const head = credentialsFirst ? fields + filePart : filePart
    const req = httpRequest({ port, host: '127.0.0.1', method: 'POST', path: '/upload', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': String(head.length + 1_000_000) } })
    req.on('error', () => {})
    req.write(head)
    req.write(Buffer.alloc(300_000, 7))
    await whenToHangUp()
    req.destroy()
    await new Promise((resolve) => setTimeout(resolve, 300))
    const deadline = Date.now() + 5000
    while ((await leftovers(t)).tmpFiles.length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    await new Promise((resolve) => server.close(resolve))
    await expectNothingLeftBehind()
  }

  it('removes the temp file when the client disconnects halfway', async () => {
    await disconnectHalfway(false, async () => {
      const deadline = Date.now() + 5000
      while ((await leftovers(t)).tmpFiles.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
      expect((await leftovers(t)).tmpFiles).toHaveLength(1)
    })
  })

  it('records and pins nothing when the client disconnects during a streaming import', async () => {
    await disconnectHalfway(true, async () => {
      await new Promise((resolve) => setTimeout(resolve, 200))
      // Credentials came first: the bytes go straight into the node, never to a temp file.
      expect((await leftovers(t)).tmpFiles).toEqual([])
    })
  })

  it('releases the pin when recording fails after pinning', async () => {
    const knex = t.heimdall.database.knex
    await knex.raw(`create function refuse_entries() returns trigger language plpgsql as $$ begin raise exception 'disk full (simulated by a trigger)'; end $$`)
    await knex.raw('create trigger refuse_entries before insert on upload_entries for each row execute function refuse_entries()')
    try {
      const res = await t.request.post('/upload').set('Authorization', `Bearer ${alice.token}`)
        .attach('file', Buffer.from('{"unique": "content for the failing upload"}'), 'fails.json').expect(500)
      expect(res.body).toEqual({ error: 'internal error', code: 'ERR_INTERNAL', details: [], requestId: res.headers['x-request-id'] })
      await expectNothingLeftBehind()
    } finally {
      await knex.raw('drop trigger refuse_entries on upload_entries')
      await knex.raw('drop function refuse_entries()')
    }
  })
})
