import { randomBytes } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { blenderAvatar, fixture, makeZip, patchCentralHeader, rawZip, renameInZip, unicodePathField } from '../support/fixtures.ts'
import { asBytes, createIdentity, expectNothingLeftBehind as expectNothingLeftBehindIn, leftovers, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

interface Item { Name: string, Hash: string, Size: string, primary?: string | null, kind?: string, warnings?: string[] }

let t: TestHeimdall
let token: string
let username: string
let before: Awaited<ReturnType<typeof leftovers>>

beforeAll(async () => {
  t = await startTestHeimdall({ ZIP_MAX_ENTRIES: '12', ZIP_MAX_UNCOMPRESSED_BYTES: String(3 * 1024 * 1024), ZIP_MAX_RATIO: '200' })
  ;({ token, username } = await createIdentity(t.request))
})
afterAll(async () => { await t.close() })
beforeEach(async () => { before = await leftovers(t) })

const upload = (data: Buffer, name: string) => t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', data, name)

const expectNothingLeftBehind = async (): Promise<void> => { await expectNothingLeftBehindIn(t, before) }

const gltfFiles = [
  { path: 'box/BoxTextured.gltf', data: fixture('gltf/BoxTextured/BoxTextured.gltf') },
  { path: 'box/BoxTextured0.bin', data: fixture('gltf/BoxTextured/BoxTextured0.bin') },
  { path: 'box/CesiumLogoFlat.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }
]

describe('bundles that load', () => {
  it('a complete glTF bundle is a model whose primary link is the .gltf', async () => {
    const res = await upload(await makeZip(gltfFiles), 'gltf-box.zip').expect(200)
    const root = (res.body as Item[]).at(-1) as Item
    expect(root).toMatchObject({ Name: 'gltf-box', kind: 'model', warnings: [] })
    expect(root.primary).toBe(`http://localhost:8080/ipfs/${root.Hash}/box/BoxTextured.gltf`)
    const gltf = await t.request.get(`/ipfs/${root.Hash}/box/BoxTextured.gltf`).expect(200)
    expect(gltf.headers['content-type']).toBe('model/gltf+json')
  })

  it('an avatar whose FBX names a texture it lacks loads, with a warning saying where Overte looks, kept on the upload', async () => {
    const zip = await makeZip([
      { path: 'hero.fst', data: 'name = hero\nfilename = hero.fbx\ntexdir = textures\nscript = wave.js\n' },
      { path: 'hero.fbx', data: blenderAvatar('avatar.fbx') },
      { path: 'textures/normal.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }
    ])
    const res = await upload(zip, 'hero.zip').expect(200)
    const root = (res.body as Item[]).at(-1) as Item
    expect(root.kind).toBe('avatar')
    expect(root.primary).toMatch(/\/hero\.fst$/)
    expect(root.warnings).toEqual([
      'hero.fst: script "wave.js" is not in the upload',
      'hero.fbx: texture "textures/skin.png" is not in the upload; Overte looks for "skin.png" in "textures/" (the texdir of hero.fst)'
    ])
    const list = await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)
    expect(list.body.uploads.find((u: { name: string }) => u.name === 'hero').warnings).toEqual(root.warnings)
  })

  it('a model bundle whose FBX texture sits in textures/ without an .fst is warned about: Overte looks beside the model', async () => {
    const zip = await makeZip([{ path: 'spider.fbx', data: blenderAvatar('avatar.fbx') }, { path: 'textures/skin.png', data: blenderAvatar('textures/skin.png') }])
    const root = ((await upload(zip, 'spider.zip').expect(200)).body as Item[]).at(-1) as Item
    expect(root.warnings).toEqual([
      'spider.fbx: texture "textures/skin.png" will not load in Overte: Overte looks for "skin.png" beside spider.fbx (it ignores the folders an FBX stores), ' +
      'but the upload has it at "textures/skin.png"; move "skin.png" beside spider.fbx, or add an .fst with texdir = textures'
    ])
  })

  it('the standard Blender avatar layout and an embedded-texture FBX upload without warnings; Latin-1 OBJ/MTL are accepted', async () => {
    const avatar = await makeZip([
      { path: 'avatar.fst', data: blenderAvatar('avatar.fst') },
      { path: 'avatar.fbx', data: blenderAvatar('avatar.fbx') },
      { path: 'textures/skin.png', data: blenderAvatar('textures/skin.png') }
    ])
    expect(((await upload(avatar, 'blender.zip').expect(200)).body as Item[]).at(-1)?.warnings).toEqual([])
    expect(((await upload(blenderAvatar('avatar-embedded.fbx'), 'embedded.fbx').expect(200)).body as Item[]).at(-1)?.warnings).toEqual([])
    const mtl = Buffer.concat([Buffer.from('newmtl Terrain'), Buffer.from([0x64, 0xe6, 0x6b]), Buffer.from('\nKd 1 1 1\n')])
    const res = await upload(mtl, 'terrain.mtl').expect(200)
    expect((res.body as Item[]).at(-1)?.warnings).toEqual([expect.stringMatching(/^terrain\.mtl is not UTF-8: it was read as Windows-1252/)])
  })
})

describe('the avatar report', () => {
  it('keeps a glTF joint named with a lone surrogate (valid JSON, refused by jsonb) as U+FFFD', async () => {
    const zip = await makeZip([
      { path: 'avatar.fst', data: Buffer.from('name = lone\nfilename = avatar.gltf\n') },
      { path: 'avatar.gltf', data: Buffer.from('{"asset":{"version":"2.0"},"nodes":[{"name":"\\ud800Hips"}],"skins":[{"joints":[0]}]}') }
    ])
    const root = ((await upload(zip, 'lone.zip').expect(200)).body as Array<Item & { avatar: { joints?: string[] } }>).at(-1)
    const list = await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)
    const record = list.body.uploads.find((u: { name: string }) => u.name === 'lone') as { avatarReport: unknown }
    expect(record.avatarReport).toEqual(root?.avatar)
    expect(JSON.stringify(record.avatarReport)).toContain('\ufffdHips')
  })

  it('is answered as `avatar` on upload, kept on the record (`avatarReport`), and shown on the detail page', async () => {
    const zip = await makeZip([
      { path: 'avatar.fst', data: blenderAvatar('avatar.fst') },
      { path: 'avatar.fbx', data: blenderAvatar('avatar.fbx') },
      { path: 'textures/skin.png', data: blenderAvatar('textures/skin.png') }
    ])
    const root = ((await upload(zip, 'reported.zip').expect(200)).body as Array<Item & { avatar: Record<string, unknown> }>).at(-1)
    expect(root?.avatar).toMatchObject({ fst: 'avatar.fst', model: 'avatar.fbx', heightMetres: 1.8, triangles: 12, materials: 1, missingJoints: [], blendshapes: ['EyeBlink_L', 'EyeBlink_R', 'JawOpen'] })
    expect(root?.avatar.textures).toEqual([{ path: 'textures/skin.png', embedded: false, bytes: blenderAvatar('textures/skin.png').length, width: 64, height: 64 }])
    const list = await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)
    const record = list.body.uploads.find((u: { name: string }) => u.name === 'reported') as { id: number, avatarReport: unknown }
    expect(record.avatarReport).toEqual(root?.avatar)
    const detail = await t.request.get(`/uploads/${record.id}`).set('Authorization', `Bearer ${token}`).expect(200)
    expect(detail.body.avatarReport).toEqual(root?.avatar)
    const browser = t.browser()
    await browser.get(`/uploads?username=${username}&token=${token}`).set('Accept', 'text/html').expect(303)
    const page = await browser.get(`/uploads/${record.id}`).set('Accept', 'text/html').expect(200)
    expect(page.text).toContain('Avatar report')
    expect(page.text).toContain('1.8 m tall')
    expect(page.text).toContain('<code>Pelvis → Hips</code>')
    expect(page.text).toMatch(/<td>skeleton<\/td><td><span class="badge status-pass">pass<\/span>/)
    const gltf = ((await upload(await makeZip(gltfFiles), 'no-report.zip').expect(200)).body as Array<Item & { avatar: unknown }>).at(-1)
    expect(gltf?.avatar).toBeNull()
  })
})

describe('bundles refused, leaving nothing behind', () => {
  it('422 for an avatar whose model file is missing', async () => {
    const zip = await makeZip([{ path: 'a.fst', data: 'name = a\nfilename = body.fbx\n' }, { path: 'textures/' }, { path: 'textures/x.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }])
    const res = await upload(zip, 'a.zip').expect(422)
    expect(res.body).toMatchObject({ error: expect.stringContaining('would not load') as unknown, details: ['a.fst: model file "body.fbx" is not in the upload'] })
    await expectNothingLeftBehind()
  })

  it('422 for a glTF without its buffer, in a bundle or alone, naming case mismatches', async () => {
    const [gltf, , png] = gltfFiles
    const bundle = await makeZip([gltf!, png!, { path: 'box/boxtextured0.bin', data: fixture('gltf/BoxTextured/BoxTextured0.bin') }])
    const res = await upload(bundle, 'nobin.zip').expect(422)
    expect(res.body.details).toEqual(['box/BoxTextured.gltf: buffer "BoxTextured0.bin" is not in the upload; "box/boxtextured0.bin" differs only in letter case, and links are case-sensitive'])
    await upload(fixture('gltf/BoxTextured/BoxTextured.gltf'), 'alone.gltf').expect(422)
    await expectNothingLeftBehind()
  })

  it('reads an archive padded with zeros after its end (bsdtar writing a zip to a pipe), and still refuses other trailing bytes', async () => {
    const zip = await makeZip([{ path: 'box/CesiumLogoFlat.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }, { path: 'box/notes.txt', data: 'padded\n' }])
    const plain = (await upload(zip, 'plain.zip').expect(200)).body as Item[]
    const padded = Buffer.concat([zip, Buffer.alloc(10240 - (zip.length % 10240))])
    const answer = (await upload(padded, 'padded.zip').expect(200)).body as Item[]
    expect(answer.find((i) => i.Name === 'padded')?.Hash).toBe(plain.find((i) => i.Name === 'plain')?.Hash)
    before = await leftovers(t)
    const garbage = Buffer.concat([zip, Buffer.from('not part of the archive')])
    const res = await upload(garbage, 'trailing.zip').expect(400)
    expect(res.body.error).toBe('the file is not a readable zip archive')
    await expectNothingLeftBehind()
  })

  it('400 for an entry whose bytes do not match the archive\'s CRC-32 (a stored file with one byte changed)', async () => {
    const text = `${'The quick brown fox jumps over the lazy dog. '.repeat(200)}\n`
    const zip = await makeZip([{ path: 'ok.txt', data: 'fine\n', compress: false }, { path: 'notes.txt', data: text, compress: false }])
    const at = zip.indexOf(Buffer.from('lazy dog', 'latin1'), zip.indexOf(Buffer.from('notes.txt', 'latin1')))
    zip[at] = 'h'.charCodeAt(0)
    const res = await upload(zip, 'damaged.zip').expect(400)
    expect(res.body).toMatchObject({ error: 'the zip archive is damaged or lies about its contents', details: ['notes.txt: its bytes do not match the CRC-32 the archive records for them'] })
    await expectNothingLeftBehind()
  })

  it('415 for files whose bytes are not what their names say, listing each', async () => {
    const zip = await makeZip([
      { path: 'ok.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') },
      { path: 'fake.png', data: 'just text' },
      { path: 'model.glb', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }
    ])
    const res = await upload(zip, 'lies.zip').expect(415)
    expect(res.body.details.sort()).toEqual(['fake.png is not a PNG image (no PNG signature)', 'model.glb is not binary glTF (no "glTF" magic)'])
    await upload(Buffer.from('not a model'), 'single.fbx').expect(415)
    await expectNothingLeftBehind()
  })

  it('400 for unsafe entries, each named: traversal, absolute, backslash, drive, NUL, symlink, encrypted, case collision, nested zip', async () => {
    let zip = await makeZip([
      { path: 'dotdot/aa.png', data: 'x' },
      { path: 'slash/abs.png', data: 'x' },
      { path: 'back/slash.png', data: 'x' },
      { path: 'drive/cc.png', data: 'x' },
      { path: 'nul/name.png', data: 'x' },
      { path: 'link.png', data: 'target.png', mode: 0o120777 },
      { path: 'secret.png', data: 'x' },
      { path: 'Dup.png', data: 'x' }
    ])
    zip = renameInZip(zip, 'dotdot/aa.png', '../../aa.png.')
    zip = renameInZip(zip, 'slash/abs.png', '/etc/abs.png.')
    zip = renameInZip(zip, 'back/slash.png', 'back\\slash.png')
    zip = renameInZip(zip, 'drive/cc.png', 'C:/drive.png')
    zip = renameInZip(zip, 'nul/name.png', 'nul\0name.png')
    zip = patchCentralHeader(zip, 'secret.png', (h) => { h.writeUInt16LE(h.readUInt16LE(8) | 1, 8) })
    const res = await upload(zip, 'unsafe.zip').expect(400)
    const details = (res.body.details as string[]).join('\n')
    for (const expected of ['".."', 'absolute', 'backslash', 'drive letter', 'NUL', 'link.png is a symbolic link', 'secret.png is encrypted']) expect(details).toContain(expected)
    const collision = await makeZip([{ path: 'Textures/A.png', data: 'x' }, { path: 'textures/a.png', data: 'y' }, { path: 'inner.zip', data: 'PK' }])
    const res2 = await upload(collision, 'collide.zip').expect(400)
    expect(res2.body.details).toEqual(['textures/a.png collides with Textures/A.png (paths must differ in more than letter case)', 'inner.zip is a zip inside the zip'])
    // Names that meet only once lower-cased and composed (T with a diaeresis, ẗ), and two spellings of one name.
    const folded = await makeZip([{ path: 'T\u0308.png', data: 'x' }, { path: '\u1e97.png', data: 'y' }, { path: 'e\u0301.png', data: 'x' }, { path: '\u00e9.png', data: 'y' }])
    const res3 = await upload(folded, 'folded.zip').expect(400)
    expect(res3.body.details).toEqual(['\u1e97.png collides with T\u0308.png (paths must differ in more than letter case)', '\u00e9.png appears twice (two entries name it, written differently: \\ or / between folders, a leading ./, marked as UTF-8 or not, composed or decomposed)'])
    await expectNothingLeftBehind()
  })

  // Found by a review of archives as tools make them: each of these was refused (400, 415) or stored under garbled names.
  it('reads names as Windows and macOS tools write them: code page 437, the Unicode Path field, decomposed, \\ from a Windows host, ./ from bsdtar', async () => {
    const cp437 = (text: string): Buffer => Buffer.from([...text].map((c) => ({ é: 0x82, û: 0x96 } as Record<string, number>)[c] ?? c.charCodeAt(0)))
    const ibm866 = new TextDecoder('ibm866')
    const toCp866 = new Map(Array.from({ length: 128 }, (_, i) => [ibm866.decode(Buffer.from([0x80 + i])), 0x80 + i]))
    const cp866 = (text: string): Buffer => Buffer.from([...text].map((c) => toCp866.get(c) ?? c.charCodeAt(0)))
    const png = fixture('gltf/BoxTextured/CesiumLogoFlat.png')
    const russian = cp866('Текстуры/кожа.png')
    const zip = rawZip([
      { name: cp437('Zoé/peau brûlée.png'), data: png, host: 0 },
      { name: russian, data: png, host: 0, extra: unicodePathField(russian, 'Текстуры/кожа.png') },
      { name: Buffer.from('Cafe\u0301.png'.normalize('NFD')), data: png, host: 3 },
      { name: 'textures\\skin.png', data: png, host: 0 },
      { name: './readme.txt', data: 'made with Blender', host: 3 },
      { name: './', host: 3 }
    ])
    const res = await upload(zip, 'tools.zip').expect(200)
    const names = (res.body as Item[]).map((item) => item.Name)
    for (const name of ['Zoé/peau brûlée.png', 'Текстуры/кожа.png', 'Café.png', 'textures/skin.png', 'readme.txt']) expect(names).toContain(`tools/${name}`)
    const root = (res.body as Item[]).at(-1) as Item
    await t.request.get(`/ipfs/${root.Hash}/${encodeURIComponent('Café.png')}`).expect(200)
    // The one name read by the format's default, not known to be right, is said to be a guess.
    expect(root.warnings).toEqual(['1 name in the zip is not marked as UTF-8 and was read as code page 437 (the zip format\'s default): Zoé/peau brûlée.png. If a name looks wrong, zip the folder with a tool that writes UTF-8 names (7-Zip, macOS), or upload the folder itself (on the upload page, or with heimdall upload <folder>)'])
    // The same name from a Unix host is a file name with a backslash in it: refused, as before.
    const unix = await upload(rawZip([{ name: 'textures\\skin.png', data: png, host: 3 }]), 'unix.zip').expect(400)
    expect(unix.body.details).toEqual(['"textures\\\\skin.png" uses backslashes in its path'])
  })

  // Windows Explorer on a Japanese system writes names in Shift-JIS (code page 932), unmarked: read as code page 437
  // by default, an avatar's .fst no longer finds its model; ZIP_NAME_ENCODING=shift_jis reads them as written.
  it('reads unmarked names in the encoding ZIP_NAME_ENCODING names (Shift-JIS from a Japanese Windows), so references in the .fst find them', async () => {
    const sjis = new TextDecoder('shift_jis')
    const toSjis = new Map<string, number[]>()
    for (let lead = 0x81; lead <= 0xfc; lead++) {
      if (lead > 0x9f && lead < 0xe0) continue
      for (let trail = 0x40; trail <= 0xfc; trail++) {
        const text = sjis.decode(Buffer.from([lead, trail]))
        if (text.length === 1 && text !== '\ufffd' && !toSjis.has(text)) toSjis.set(text, [lead, trail])
      }
    }
    const shiftJis = (text: string): Buffer => Buffer.from([...text].flatMap((c) => toSjis.get(c) ?? [c.charCodeAt(0)]))
    const fst = ['name = さくら', 'type = body+head', 'scale = 1', 'filename = アバター.fbx', 'texdir = テクスチャ', ''].join('\n')
    const zip = rawZip([
      { name: shiftJis('さくら/avatar.fst'), data: fst, host: 0 },
      { name: shiftJis('さくら/アバター.fbx'), data: fixture('fbx/box-binary.fbx'), host: 0 },
      { name: shiftJis('さくら/テクスチャ/肌.png'), data: fixture('gltf/BoxTextured/CesiumLogoFlat.png'), host: 0 }
    ])
    // Read as code page 437: the .fst names a model the bundle does not have.
    const garbled = await upload(zip, 'sakura.zip')
    expect(garbled.status).toBe(422)
    expect(JSON.stringify(garbled.body)).toMatch(/アバター\.fbx/)
    expect((garbled.body as { details: string[] }).details.at(-1)).toMatch(/^3 names in the zip are not marked as UTF-8 and were read as code page 437 \(the zip format's default\): /)
    await expectNothingLeftBehind()

    // From a Windows tool (host 0), a Shift-JIS trail byte 0x5C read as code page 437 is a folder's separator: ソ.fbx loses
    // its extension (415), and the refusal says the names were a guess.
    const windows = await upload(rawZip([{ name: shiftJis('ソ.fbx'), data: fixture('fbx/box-binary.fbx'), host: 0 }]), 'so.zip').expect(415)
    expect((windows.body as { details: string[] }).details.at(-1)).toMatch(/^1 name in the zip is not marked as UTF-8 and was read as code page 437/)
    await expectNothingLeftBehind()

    const japanese = await startTestHeimdall({ ZIP_NAME_ENCODING: 'Shift_JIS' })
    try {
      const { token: owner } = await createIdentity(japanese.request)
      const res = await japanese.request.post('/upload').set('Authorization', `Bearer ${owner}`).attach('file', zip, 'sakura.zip').expect(200)
      const items = res.body as Item[]
      expect(items.map((item) => item.Name)).toEqual(expect.arrayContaining(['sakura/さくら/avatar.fst', 'sakura/さくら/アバター.fbx', 'sakura/さくら/テクスチャ/肌.png']))
      const root = items.at(-1) as Item
      expect(root.warnings ?? []).toEqual([])
      await japanese.request.get(`/ipfs/${root.Hash}/${encodeURIComponent('さくら')}/${encodeURIComponent('テクスチャ')}/${encodeURIComponent('肌.png')}`).expect(200)
    } finally {
      await japanese.close()
    }
  })

  it('leaves out what macOS and Windows add to a folder (__MACOSX/, ._ files, .DS_Store, Thumbs.db), with a warning; keeps a license.txt', async () => {
    const zip = await makeZip([
      { path: 'Zoe/avatar.glb', data: fixture('glb/BoxTextured.glb') },
      { path: 'Zoe/license.txt', data: 'CC-BY 4.0: Zoe' },
      { path: 'Zoe/.DS_Store', data: Buffer.from([0, 0, 0, 1, 0x42, 0x75, 0x64, 0x31]) },
      { path: '__MACOSX/Zoe/._avatar.glb', data: Buffer.from([0, 5, 0x16, 7, 0, 2, 0, 0]) },
      { path: 'Zoe/Thumbs.db', data: Buffer.from([0xd0, 0xcf, 0x11, 0xe0]) }
    ])
    const res = await upload(zip, 'zoe.zip').expect(200)
    const items = res.body as Item[]
    expect(items.map((item) => item.Name).sort()).toEqual(['zoe', 'zoe/Zoe', 'zoe/Zoe/avatar.glb', 'zoe/Zoe/license.txt'])
    expect(items.at(-1)?.warnings).toEqual(['left out 3 files the operating system added to the folder, not part of the model: Zoe/.DS_Store, __MACOSX/Zoe/._avatar.glb, Zoe/Thumbs.db'])
  })

  it('415 naming the compression for an entry compressed other than Deflate or stored (7-Zip\'s BZip2, LZMA, Deflate64), before a byte is read', async () => {
    const zip = rawZip([{ name: 'a.png', data: 'x', method: 12 }, { name: 'b.png', data: 'x', method: 14 }, { name: 'c.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }])
    const res = await upload(zip, 'seven.zip').expect(415)
    expect(res.body.error).toMatch(/compression this server cannot read: zip it again with Deflate/)
    expect(res.body.details).toEqual(['a.png is compressed with BZip2', 'b.png is compressed with LZMA'])
    await expectNothingLeftBehind()
  })

  it('takes a .raw sound (headerless 16-bit PCM, which Overte plays) as a sound', async () => {
    const res = await upload(Buffer.from([1, 0, 255, 127, 0, 128]), 'beep.raw').expect(200)
    expect((res.body as Item[]).at(-1)?.kind).toBe('sound')
  })

  it('takes a gzipped model (hero.fbx.gz), which Overte gunzips and reads as FBX: checked as the FBX inside, served as the gzip bytes', async () => {
    const gz = gzipSync(blenderAvatar('avatar.fbx'))
    const zip = await makeZip([
      { path: 'hero.fst', data: 'name = hero\nfilename = hero.fbx.gz\ntexdir = textures\n' },
      { path: 'hero.fbx.gz', data: gz },
      { path: 'textures/skin.png', data: blenderAvatar('textures/skin.png') }
    ])
    const root = ((await upload(zip, 'gz-hero.zip').expect(200)).body as Item[]).at(-1) as Item
    expect(root).toMatchObject({ kind: 'avatar', warnings: [] })
    // Without its texture, the FBX inside is what names it.
    const bare = ((await upload(await makeZip([{ path: 'hero.fbx.gz', data: gz }]), 'gz-bare.zip').expect(200)).body as Item[]).at(-1) as Item
    expect(bare.kind).toBe('model')
    expect(bare.warnings).toEqual(['hero.fbx.gz: texture "textures/skin.png" is not in the upload; Overte looks for "skin.png" beside hero.fbx.gz (it ignores the folders an FBX stores)'])
    // As it was stored: Overte gunzips it itself, so no Content-Encoding.
    const served = await t.request.get(`/ipfs/${root.Hash}/hero.fbx.gz`).buffer(true).parse(asBytes).expect(200)
    expect(served.headers['content-type']).toBe('application/gzip')
    expect(served.headers['content-encoding']).toBeUndefined()
    expect(Buffer.compare(served.body as Buffer, gz)).toBe(0)
    // Named without either extension, as box.fbx is named box.
    expect(((await upload(gz, 'alone.fbx.gz').expect(200)).body as Item[]).at(-1)).toMatchObject({ Name: 'alone', kind: 'model' })
    // The browser viewer cannot open a gzipped model, through an .fst either: no preview link.
    const list = await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)
    const avatar = (list.body.uploads as Array<{ name: string, previewUrl: string | null }>).find((u) => u.name === 'gz-hero')
    expect(avatar?.previewUrl).toBeNull()
  })

  it('415 for a .gz that is not a model Overte gunzips, or whose inside is not the model its name says', async () => {
    const png = fixture('gltf/BoxTextured/CesiumLogoFlat.png')
    expect((await upload(gzipSync(png), 'skin.png.gz').expect(415)).body.error).toBe('files of type "gz" are not accepted')
    expect((await upload(gzipSync(png), 'model.fbx.gz').expect(415)).body.details).toEqual(['model.fbx.gz once gunzipped, is not FBX (neither the binary header nor an ASCII FBX header)'])
    expect((await upload(png, 'model.glb.gz').expect(415)).body.details).toEqual(['model.glb.gz is not gzip data, though its name ends in .gz'])
    await expectNothingLeftBehind()
  })

  it('an image in another image format than its name says is stored, with a warning: Overte decides by the content', async () => {
    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1])
    const res = await upload(await makeZip([{ path: 'skin.png', data: jpeg }, { path: 'model.glb', data: fixture('glb/BoxTextured.glb') }]), 'misnamed.zip').expect(200)
    expect((res.body as Item[]).at(-1)?.warnings).toEqual(['skin.png is a JPG image, not PNG: Overte loads it by its content, but other tools go by the extension; rename it to .jpg'])
  })

  it('413 for more entries than ZIP_MAX_ENTRIES', async () => {
    const zip = await makeZip(Array.from({ length: 13 }, (_, i) => ({ path: `t${i}.png`, data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') })))
    const res = await upload(zip, 'many.zip').expect(413)
    expect(res.body.error).toMatch(/13 entries; at most 12/)
    await expectNothingLeftBehind()
  })

  it('413 above ZIP_MAX_UNCOMPRESSED_BYTES in total', async () => {
    const zip = await makeZip([{ path: 'a.bin', data: randomBytes(2 * 1024 * 1024), compress: false }, { path: 'b.bin', data: randomBytes(2 * 1024 * 1024), compress: false }])
    const res = await upload(zip, 'big.zip').expect(413)
    expect(res.body.details[0]).toMatch(/4194304 bytes uncompressed; at most 3145728/)
    await expectNothingLeftBehind()
  })

  it('413 for an entry over 1 MiB that expands more than ZIP_MAX_RATIO times', async () => {
    const zip = await makeZip([{ path: 'bomb.bin', data: Buffer.alloc(2 * 1024 * 1024) }])
    const res = await upload(zip, 'bomb.zip').expect(413)
    expect(res.body.details[0]).toMatch(/^bomb\.bin expands \d+× \(at most 200× is allowed\)$/)
    await expectNothingLeftBehind()
  })

  it('400 when an entry holds more bytes than its header declares', async () => {
    const zip = patchCentralHeader(await makeZip([{ path: 'liar.bin', data: randomBytes(100_000) }]), 'liar.bin', (h) => { h.writeUInt32LE(1000, 24) })
    const res = await upload(zip, 'liar.zip').expect(400)
    expect(res.body.details[0]).toMatch(/^liar\.bin: /)
    await expectNothingLeftBehind()
  })
})
