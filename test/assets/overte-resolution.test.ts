import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { inspectorFor, type FileReport } from '../../src/assets/file-inspectors.ts'
import { checkReferences } from '../../src/assets/references.ts'
import { fixture, glbWithJson } from '../support/fixtures.ts'

/** The Blender avatar (test/fixtures/blender/make_avatar.py). */
const blender = (path: string): Buffer => readFileSync(new URL(`../fixtures/blender/avatar/${path}`, import.meta.url))

/** Runs every file through its inspector in small chunks, then checks references as the upload service does. */
function check (files: Record<string, Buffer | string>, chunk = 4096): { errors: string[], warnings: string[], reports: FileReport[] } {
  const reports = Object.entries(files).map(([path, data]) => {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data
    const inspector = inspectorFor(path)
    for (let i = 0; i < bytes.length; i += chunk) inspector.write(bytes.subarray(i, i + chunk))
    return inspector.end()
  })
  for (const r of reports) expect(r.mismatch, r.path).toBeUndefined()
  const paths = Object.keys(files)
  const folders = new Set(paths.flatMap((p) => p.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))))
  const sizes = new Map(Object.entries(files).map(([path, data]) => [path, Buffer.byteLength(data)]))
  return { ...checkReferences(reports, new Set(paths), folders, sizes), reports }
}

const fst = blender('avatar.fst').toString()
const skin = blender('textures/skin.png')

describe('FBX textures are looked up where Overte looks: beside the model, or in the .fst texdir', () => {
  it('the standard avatar layout (avatar.fst with texdir = textures, avatar.fbx, textures/skin.png) has no warning', () => {
    expect(check({ 'avatar.fst': fst, 'avatar.fbx': blender('avatar.fbx'), 'textures/skin.png': skin })).toMatchObject({ errors: [], warnings: [] })
  })

  it('an FBX an animation graph plays as a clip is not warned of its textures (Overte reads a clip\'s joints and frames only), unless an .fst also loads it as the model', () => {
    const graph = JSON.stringify({ version: '1.1', root: { id: 'idle', type: 'clip', data: { url: 'idle anim.fbx' }, children: [] } })
    const avatar = { 'MyAvatar/avatar.fst': 'name = a\nfilename = avatar.fbx\ntexdir = textures\nanimGraphUrl = anim/graph.json\n', 'MyAvatar/avatar.fbx': blender('avatar.fbx'), 'MyAvatar/textures/skin.png': skin, 'MyAvatar/anim/graph.json': graph }
    expect(check({ ...avatar, 'MyAvatar/anim/idle anim.fbx': blender('avatar.fbx') })).toMatchObject({ errors: [], warnings: [] })
    // Named as a URL: escapes decoded, a query or fragment not part of the file.
    for (const url of ['idle%20anim.fbx', 'idle anim.fbx?v=2', 'idle anim.fbx#take1']) {
      const named = JSON.stringify({ version: '1.1', root: { id: 'idle', type: 'clip', data: { url }, children: [] } })
      expect(check({ ...avatar, 'MyAvatar/anim/graph.json': named, 'MyAvatar/anim/idle anim.fbx': blender('avatar.fbx') }), url).toMatchObject({ errors: [], warnings: [] })
    }
    // Without an .fst, a pack of clips has no model of its own to open: none is warned of textures.
    const pack = JSON.stringify({ version: '1.1', root: { id: 'moves', type: 'blendLinear', data: {}, children: [{ id: 'idle', type: 'clip', data: { url: 'idle.fbx' }, children: [] }, { id: 'walk', type: 'clip', data: { url: 'walk.fbx' }, children: [] }] } })
    expect(check({ 'graph.json': pack, 'idle.fbx': blender('avatar.fbx'), 'walk.fbx': blender('avatar.fbx') })).toMatchObject({ errors: [], warnings: [] })
    // An escape in a clip's name is decoded, as QUrl::path() is: idle%2Efbx is an .fbx.
    const escaped = JSON.stringify({ version: '1.1', root: { id: 'idle', type: 'clip', data: { url: 'idle%2Efbx' }, children: [] } })
    expect(check({ 'graph.json': escaped, 'idle.fbx': blender('avatar.fbx'), 'walk.fbx': blender('avatar.fbx') }).warnings.filter((w) => w.includes('is not FBX'))).toEqual([])
    // Without an .fst the upload's model is what is opened, whatever else plays it.
    expect(check({ 'model.fbx': blender('avatar.fbx'), 'textures/skin.png': skin, 'anim/graph.json': JSON.stringify({ version: '1.1', root: { id: 'idle', type: 'clip', data: { url: '../model.fbx' }, children: [] } }) }).warnings).toHaveLength(1)
    // The same file as a model (no graph plays it) is warned, as before.
    expect(check({ 'spider.fbx': blender('avatar.fbx'), 'textures/skin.png': skin }).warnings).toHaveLength(1)
    // Played as a clip and loaded as the avatar's model: its textures count.
    const both = JSON.stringify({ version: '1.1', root: { id: 'idle', type: 'clip', data: { url: '../model.fbx' }, children: [] } })
    const loaded = check({ 'avatar.fst': 'name = a\nfilename = model.fbx\nanimGraphUrl = anim/graph.json\n', 'model.fbx': blender('avatar.fbx'), 'textures/skin.png': skin, 'anim/graph.json': both })
    expect(loaded.warnings).toHaveLength(1)
    expect(loaded.warnings[0]).toContain('model.fbx: texture "textures/skin.png" will not load in Overte')
  })

  it('a model without an .fst whose texture sits in a subfolder gets one warning saying where Overte looks and how to fix it', () => {
    const { warnings } = check({ 'spider.fbx': blender('avatar.fbx'), 'textures/skin.png': skin })
    expect(warnings).toEqual([
      'spider.fbx: texture "textures/skin.png" will not load in Overte: Overte looks for "skin.png" beside spider.fbx (it ignores the folders an FBX stores), ' +
      'but the upload has it at "textures/skin.png"; move "skin.png" beside spider.fbx, or add an .fst with texdir = textures'
    ])
  })

  it('the same model with the texture beside it has no warning, whatever folder the FBX stored', () => {
    expect(check({ 'spider.fbx': blender('avatar.fbx'), 'skin.png': skin }).warnings).toEqual([])
  })

  it('with a texdir, a texture beside the model is not where Overte looks', () => {
    const { warnings } = check({ 'avatar.fst': fst, 'avatar.fbx': blender('avatar.fbx'), 'skin.png': skin, 'textures/other.png': skin })
    expect(warnings).toEqual([
      'avatar.fbx: texture "textures/skin.png" will not load in Overte: Overte looks for "skin.png" in "textures/" (the texdir of avatar.fst), but the upload has it at "skin.png"; move "skin.png" into "textures/"'
    ])
  })

  it('names a difference in letter case only', () => {
    const { warnings } = check({ 'avatar.fst': fst, 'avatar.fbx': blender('avatar.fbx'), 'textures/Skin.PNG': skin })
    expect(warnings).toEqual(['avatar.fbx: texture "textures/skin.png": "textures/Skin.PNG" differs only in letter case from "textures/skin.png", and links are case-sensitive; rename the file'])
  })

  it('counts embedded textures as present (Blender "embed textures")', () => {
    const { warnings, reports } = check({ 'avatar.fbx': blender('avatar-embedded.fbx') })
    expect(warnings).toEqual([])
    expect(reports[0]?.fbx?.embedded).toEqual([{ name: 'avatar-embedded.fbm/skin.png', bytes: skin.length }])
  })

  it('a missing texture is one warning, though the FBX names it by FileName and RelativeFilename in both its Video and Texture', () => {
    expect(check({ 'avatar.fbx': blender('avatar.fbx') }).warnings).toEqual(['avatar.fbx: texture "textures/skin.png" is not in the upload; Overte looks for "skin.png" beside avatar.fbx (it ignores the folders an FBX stores)'])
  })

  it('reads the same from a real FBX byte by byte', () => {
    expect(check({ 'avatar.fst': fst, 'avatar.fbx': blender('avatar.fbx'), 'textures/skin.png': skin }, 1).warnings).toEqual([])
  })
})

describe('OBJ/MTL', () => {
  const obj = 'mtllib spider.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nusemtl Body\nf 1/1 2/1 3/1\n'
  it('names a letter-case difference of an MTL texture', () => {
    const { warnings } = check({ 'spider.obj': obj, 'spider.mtl': 'newmtl Body\nmap_Kd SpiderTex.png\nbump SpiderTex.png\n', 'spidertex.png': fixture('gltf/BoxTextured/CesiumLogoFlat.png') })
    expect(warnings).toEqual(['spider.mtl: texture "SpiderTex.png": "spidertex.png" differs only in letter case from "SpiderTex.png", and links are case-sensitive; rename the file'])
  })

  it('"map_Bump" (Blender\'s key) is not read by Overte, whose keys are case-sensitive; a ".TGA" it does ask for', () => {
    const { warnings } = check({ 'spider.obj': obj, 'spider.mtl': 'newmtl Body\nmap_Bump -bm 1.0 normal.png\nmap_Kd skin.TGA\n' })
    expect(warnings).toEqual([
      'spider.mtl: Overte\'s OBJ reader does not read "map_Bump" lines (it reads "map_bump" and "bump"), so that normal map is not loaded: write the key in lower case',
      'spider.mtl: texture "skin.TGA" is not in the upload; Overte looks for "skin.TGA" relative to spider.obj'
    ])
  })

  it('accepts Latin-1 text (Windows tools) with a warning naming the encoding, and decodes its names with it', () => {
    const mtl = Buffer.concat([Buffer.from('newmtl Terrain'), Buffer.from([0x64, 0xe6, 0x6b]), Buffer.from('\nmap_Kd gr'), Buffer.from([0xe6]), Buffer.from('s.png\n')])
    const { warnings } = check({ 'terrain.obj': obj.replace('spider.mtl', 'terrain.mtl'), 'terrain.mtl': mtl, 'græs.png': fixture('gltf/BoxTextured/CesiumLogoFlat.png') }, 5)
    expect(warnings).toEqual(['terrain.mtl is not UTF-8: it was read as Windows-1252 (Latin-1). Overte reads text as UTF-8, so names with accented letters (materials, textures) may not match; save the file as UTF-8'])
  })

  it('mtllib as Overte reads it: the whole line one name, its folder dropped (the library is fetched beside the OBJ)', () => {
    const mtl = 'newmtl Body\nmap_Kd skin.png\n'
    const png = fixture('gltf/BoxTextured/CesiumLogoFlat.png')
    const inFolder = check({ 'spider.obj': obj.replace('spider.mtl', 'mat/spider.mtl'), 'mat/spider.mtl': mtl, 'skin.png': png }).warnings
    expect(inFolder[0]).toBe('spider.obj: Overte loads material library "mat/spider.mtl" as "spider.mtl" beside the OBJ (it drops the folder): put the .mtl there and name it "mtllib spider.mtl"')
    expect(inFolder[1]).toBe('spider.obj: material library "spider.mtl" is not in the upload')
    const several = check({ 'spider.obj': obj.replace('spider.mtl', 'a.mtl b.mtl'), 'a.mtl': mtl, 'b.mtl': mtl, 'skin.png': png }).warnings
    expect(several).toEqual(['spider.obj: "mtllib a.mtl b.mtl" names several libraries; Overte reads the whole line as one file name, so it loads none: name one .mtl per OBJ'])
  })

  it('MTL maps as Overte reads them: options other than -bm end up in the name, .tga is skipped, maps it never reads are not checked', () => {
    const png = fixture('gltf/BoxTextured/CesiumLogoFlat.png')
    const { warnings } = check({
      'spider.obj': obj,
      'spider.mtl': 'newmtl Body\nmap_Kd -s 1 1 1 skin.png\nmap_bump -bm 0.5 skin.png\nmap_Ks spec.tga\nmap_Ka ambient-not-here.png\ndisp disp-not-here.png\n',
      'skin.png': png
    })
    expect(warnings).toEqual([
      'spider.mtl: the options before texture "skin.png" are read by Overte as part of its file name (it reads only -bm), so it will not load: remove them',
      'spider.mtl: texture "spec.tga" is a .tga, which Overte\'s OBJ reader skips: use PNG or JPEG'
    ])
    expect(check({ 'spider.obj': obj, 'spider.mtl': 'newmtl Body\nmap_bump -bm 0.5 skin.png\n', 'skin.png': png }).warnings).toEqual([])
  })

  it('the shared OBJ fixture with its MTL has no warning', () => {
    expect(check({ 'cube.obj': fixture('obj/cube_usemtl.obj'), 'cube_usemtl.mtl': fixture('obj/cube_usemtl.mtl') }).warnings).toEqual([])
  })
})

describe('ASCII FBX text', () => {
  const asciiFbx = (texture: string): string => [
    '; FBX 7.5.0 project file',
    'FBXHeaderExtension:  {', '\tFBXHeaderVersion: 1003', '}',
    'Objects:  {',
    '\tTexture: 2, "Texture::skin", "" {',
    '\t\tFileName: "C:\\Users\\artist\\' + texture + '"',
    `\t\tRelativeFilename: "textures\\${texture}"`,
    '\t}', '}', ''
  ].join('\n')

  it('decodes UTF-8 texture names as UTF-8 everywhere (textures/über.png is found)', () => {
    const { warnings } = check({ 'a.fst': 'filename = a.fbx\ntexdir = textures\n', 'a.fbx': asciiFbx('über.png'), 'textures/über.png': skin }, 3)
    expect(warnings).toEqual([])
  })

  it('decodes a name on the file\'s last line (no final newline) the same way as the others', () => {
    const fbx = '; FBX 7.5.0 project file\nObjects:  {\n\tTexture: 2, "Texture::skin", "" {\n\t\tRelativeFilename: "textures\\über.png"'
    expect(check({ 'a.fst': 'filename = a.fbx\ntexdir = textures\n', 'a.fbx': fbx, 'textures/über.png': skin }, 1000).warnings).toEqual([])
  })

  it('counts an ASCII FBX\'s embedded Video Content (assimp\'s embedded_ascii models) as present', () => {
    const fbx = asciiFbx('skin.png').replace('Objects:  {', [
      'Objects:  {', '\tVideo: 1, "Video::skin", "Clip" {', '\t\tRelativeFilename: "textures\\skin.png"',
      `\t\tContent: ,`, `\t\t\t"${skin.toString('base64').slice(0, 60)}",`, `\t\t\t"${skin.toString('base64').slice(60)}"`, '\t}'
    ].join('\n'))
    const { warnings, reports } = check({ 'a.fbx': fbx }, 7)
    expect(warnings).toEqual([])
    expect(reports[0]?.fbx?.embedded).toEqual([{ name: 'textures\\skin.png', bytes: expect.any(Number) as unknown }])
  })

  it('accepts a UTF-8 BOM before the ASCII FBX header', () => {
    const { warnings } = check({ 'a.fbx': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(asciiFbx('skin.png'))]), 'skin.png': skin }, 2)
    expect(warnings).toEqual([])
  })

  it('the shared ASCII FBX (cubes_with_names) has no texture reference and reads its triangles', () => {
    const { warnings, reports } = check({ 'cubes.fbx': fixture('fbx/cubes-ascii.fbx') })
    expect(warnings).toEqual([])
    expect(reports[0]?.fbx).toMatchObject({ binary: false, textures: [], materials: 2, triangles: 420 })
  })
})

describe('glTF features Overte does not load', () => {
  it('warns for a Draco-compressed GLB (Blender export with compression) and not for the plain one', () => {
    expect(check({ 'avatar.glb': blender('avatar-draco.glb') }).warnings).toEqual([
      'avatar.glb uses KHR_draco_mesh_compression: Overte\'s glTF reader does not decode Draco mesh compression: the model will be empty in Overte; export without Draco (Blender: glTF export, uncheck Compression)'
    ])
    expect(check({ 'avatar.glb': blender('avatar.glb') }).warnings).toEqual([])
    expect(check({ 'avatar.gltf': blender('gltf/avatar.gltf'), 'avatar.bin': blender('gltf/avatar.bin'), 'skin.png': blender('gltf/skin.png') }).warnings).toEqual([])
  })
})

describe('.fst names resolve as Overte resolves them: against fstUrl.resolved(baseURL)', () => {
  const model = blender('avatar.fbx')
  const files = (text: string, layout: Record<string, Buffer | string>): Record<string, Buffer | string> => ({ 'avatar.fst': text, ...layout })

  it('a relative baseURL folder moves the model, textures and scripts into it (it was refused: the model looked for beside the .fst)', () => {
    const text = 'name = a\nbaseURL = avatar/\nfilename = avatar.fbx\ntexdir = textures\nscript = /scripts/wave.js\n'
    expect(check(files(text, { 'avatar/avatar.fbx': model, 'avatar/textures/skin.png': skin, 'avatar/scripts/wave.js': 'print(1)' }))).toMatchObject({ errors: [], warnings: [] })
  })

  it('a baseURL without its slash names a file, so names stay beside the .fst, as URLs resolve', () => {
    const { errors } = check(files('name = a\nbaseURL = avatar\nfilename = avatar.fbx\n', { 'avatar/avatar.fbx': model }))
    expect(errors).toEqual(['avatar.fst: model file "avatar.fbx" is not in the upload'])
  })

  it('a baseURL that leaves the upload is a note, not a refusal of what Overte may find there', () => {
    const { errors, warnings } = check(files('name = a\nbaseURL = ../../elsewhere/\nfilename = avatar.fbx\n', {}))
    expect(errors).toEqual([])
    expect(warnings).toEqual(['avatar.fst sets baseURL = ../../elsewhere/, which leads out of this upload: its model and textures are not looked for here'])
  })

  it('a stray % in baseURL stays as written, as Overte\'s URL keeps it, the other escapes decoded, and the model is still checked', () => {
    expect(check(files('name = a\nbaseURL = 100%/\nfilename = avatar.fbx\n', {})).errors).toEqual(['avatar.fst: model file "avatar.fbx" is not in the upload'])
    expect(check(files('name = a\nbaseURL = 100%/my models/\nfilename = avatar.fbx\ntexdir = textures\n', { '100%/my models/avatar.fbx': model, '100%/my models/textures/skin.png': skin }))).toMatchObject({ errors: [], warnings: [] })
  })

  // Found by review against Overte's source: ModelCache resolves every name as a URL (QUrl::resolved), FSTReader reads
  // bytes without refusing an encoding and does not skip a BOM, and the .fst check lower-cases the name first.
  it('names are URLs: a query or fragment is not part of the file, %20 is a space, and a name with a scheme (atp:) is not looked for', () => {
    expect(check(files('name = a\nfilename = avatar.fbx?v=2\n', { 'avatar.fbx': model, 'skin.png': skin }))).toMatchObject({ errors: [], warnings: [] })
    expect(check(files('name = a\nfilename = My%20Avatar.fbx\ntexdir = My%20Textures\n', { 'My Avatar.fbx': model, 'My Textures/skin.png': skin }))).toMatchObject({ errors: [], warnings: [] })
    expect(check(files('name = a\nfilename = atp:/avatars/box/avatar.fbx\n', {}))).toMatchObject({ errors: [], warnings: [] })
    expect(check(files('name = a\nfilename = My%20Avatar.fbx\n', {})).errors).toEqual(['avatar.fst: model file "My Avatar.fbx" is not in the upload'])
    // A Windows drive is no URL Overte can fetch: looked for, and not found.
    expect(check(files('name = a\nfilename = C:\\Users\\me\\avatar.fbx\n', {})).errors).toEqual(['avatar.fst: model file "C:\\Users\\me\\avatar.fbx" points outside the upload'])
  })

  it('a name written decomposed (NFD) that the upload holds composed (NFC) keeps its severity, with the reason', () => {
    const { errors } = check(files('name = a\nfilename = mode\u0300le.fbx\n', { 'mod\u00e8le.fbx': model, 'skin.png': skin }))
    expect(errors).toEqual(['avatar.fst: model file "mod\u00e8le.fbx" is written in decomposed Unicode (NFD, as macOS names files), and the upload\'s file is named composed (NFC): Overte asks for it as written and will not find it; write the name composed'])
  })

  it('an .fst in an 8-bit encoding is read, with a note, as Overte reads it; one starting with a BOM loses its first line, as in Overte', () => {
    const latin1 = Buffer.concat([Buffer.from('name = Zo'), Buffer.from([0xeb]), Buffer.from('\nfilename = avatar.fbx\n')])
    const read = check(files(latin1 as unknown as string, { 'avatar.fbx': model, 'skin.png': skin }))
    expect(read.errors).toEqual([])
    expect(read.warnings).toEqual(['avatar.fst is not UTF-8: it was read as Windows-1252 (Latin-1). Overte reads text as UTF-8, so names with accented letters (materials, textures) may not match; save the file as UTF-8'])
    const bom = check(files('\ufefffilename = avatar.fbx\r\nname = Box\r\n', { 'avatar.fbx': model, 'skin.png': skin }))
    expect(bom.errors).toEqual([])
    expect(bom.warnings).toEqual([
      'avatar.fst starts with a byte order mark (BOM), which Overte reads as part of its first line\'s key ("filename"), so that line is lost: save it as UTF-8 without a BOM',
      'avatar.fst names no model (no "filename" line)'
    ])
  })

  it('an .FST in capitals is no reason for a warning: Overte lower-cases the name before it looks at the extension', () => {
    expect(check({ 'Avatar.FST': 'name = a\nfilename = avatar.fbx\n', 'avatar.fbx': model, 'skin.png': skin })).toMatchObject({ errors: [], warnings: [] })
  })

  it('a BOM before a comment line loses nothing Overte reads: no note', () => {
    const bom = check(files('\ufeff# made by hand\r\nname = Box\r\nfilename = avatar.fbx\r\n', { 'avatar.fbx': model, 'skin.png': skin }))
    expect(bom).toMatchObject({ errors: [], warnings: [] })
  })

  it('single-value keys keep an = in their value (FSTReader\'s SINGLE_VALUE_PROPERTIES)', () => {
    expect(check(files('name = a\nfilename = avatar=v2.fbx\n', { 'avatar=v2.fbx': model, 'textures/skin.png': skin, 'skin.png': skin })).errors).toEqual([])
    expect(check(files('name = a\nfilename = avatar=v2.fbx\n', {})).errors).toEqual(['avatar.fst: model file "avatar=v2.fbx" is not in the upload'])
  })
})

describe('.fst materialMap, as Overte parses it (ParseMaterialMappingTask.cpp, ProceduralMaterialCache.cpp)', () => {
  const model = blender('avatar.fbx')
  const png = skin
  const material = JSON.stringify({ materialVersion: 1, materials: [{ name: 'Skin', albedoMap: 'skin_albedo.png', normalMap: { url: 'normals/skin_n.png' } }, { name: 'Shader', model: 'hifi_shader_simple', procedural: { channels: ['noise.png'] } }] })
  const map = JSON.stringify({
    all: 'materials/skin.json#Skin',
    'mat::Eyes': { materials: { albedoMap: 'textures/eyes.png', emissiveMap: 'fallthrough', roughnessMap: 'https://example.org/r.png' } },
    'mat::Web': 'https://example.org/m.json',
    '[0,1]': { scattering: 1, scatteringMap: 'old-style.png' }
  })
  const fstText = `name = a\nfilename = avatar.fbx\ntexdir = textures\nmaterialMap = ${map}\n`
  const complete = { 'avatar.fst': fstText, 'avatar.fbx': model, 'textures/skin.png': png, 'textures/eyes.png': png, 'materials/skin.json': material, 'materials/skin_albedo.png': png, 'materials/normals/skin_n.png': png }

  it('finds material files (a #name picks one of their materials) and inline materials\' textures beside the .fst, and a material file\'s textures beside it', () => {
    expect(check(complete)).toMatchObject({ errors: [], warnings: [] })
  })

  it('warns for each file Overte would not find; procedural, fallthrough, absolute and old scattering values name none', () => {
    const { 'materials/skin_albedo.png': _a, 'textures/eyes.png': _e, ...missingTextures } = complete
    expect(check(missingTextures).warnings).toEqual([
      'avatar.fst: material texture "textures/eyes.png" is not in the upload',
      'materials/skin.json: material texture "skin_albedo.png" is not in the upload'
    ])
    const { 'materials/skin.json': _m, ...missingFile } = complete
    expect(check(missingFile).warnings).toEqual(['avatar.fst: material "materials/skin.json" is not in the upload'])
  })

  it('says when Overte loses or ignores the map: an "=" in it, JSON it cannot parse, a material that is not a .json file', () => {
    const files = (text: string): Record<string, Buffer | string> => ({ ...complete, 'avatar.fst': `name = a\nfilename = avatar.fbx\ntexdir = textures\nmaterialMap = ${text}\n` })
    expect(check(files('{"all": "materials/skin.json?v=2"}')).warnings).toEqual(['avatar.fst: its materialMap has an "=" in it, and Overte\'s .fst reader splits such a line there (only name, filename, texdir, script, waitForWearables and comment may hold one), so it loses the whole map: move what needs the "=" (a URL\'s query) into a material .json file'])
    expect(check(files('{"all": materials/skin.json}')).warnings).toEqual(['avatar.fst: its materialMap is not JSON on one line, so Overte ignores it'])
    expect(check(files('"materials/skin.json"')).warnings).toEqual(['avatar.fst: its materialMap is not a JSON object (or an array of them), so Overte ignores it'])
    expect(check(files('{"all": "textures/skin.png"}')).warnings).toEqual(['avatar.fst: materialMap "all" names "textures/skin.png", but Overte reads materials only from a file whose name has ".json" in it (in lower case)'])
    expect(check({ ...files('{"all": "materials/Skin.JSON"}'), 'materials/Skin.JSON': material }).warnings).toEqual(['avatar.fst: materialMap "all" names "materials/Skin.JSON", but Overte reads materials only from a file whose name has ".json" in it (in lower case)'])
    expect(check(files('{"all": "/materials/skin.json"}')).warnings).toEqual(['avatar.fst: material "/materials/skin.json" in its materialMap starts with "/", which Overte resolves from the server\'s root, not from the .fst\'s folder: drop the leading /'])
  })

  it('reads names as URLs (escapes decoded, a query dropped) and only the last materialMap line, as Overte does', () => {
    const text = `name = a\nfilename = avatar.fbx\ntexdir = textures\nmaterialMap = {"all": "nowhere.json"}\nmaterialMap = {"all": "materials/my%20skin.json?v2#Skin"}\n`
    expect(check({ ...complete, 'avatar.fst': text, 'materials/my skin.json': material })).toMatchObject({ errors: [], warnings: [] })
  })

  it('reads the maps of each material model (vrm_mtoon has no roughnessMap, splatMap both have) and a material file only when a materialMap names it', () => {
    const mtoon = JSON.stringify({ materials: { model: 'vrm_mtoon', roughnessMap: 'unread.png', shadeMap: 'shade.png', splatMap: 'splat.png', opacityMap: 'compared-only.png' } })
    expect(check({ ...complete, 'materials/skin.json': mtoon, 'materials/shade.png': png }).warnings).toEqual(['materials/skin.json: material texture "splat.png" is not in the upload'])
    // A JSON no materialMap names may have `materials` of its own (a three.js scene): not read as Overte's.
    expect(check({ ...complete, 'scene.json': JSON.stringify({ materials: [{ normalMap: 'n.png', bumpMap: 'b.png' }] }) })).toMatchObject({ errors: [], warnings: [] })
  })
})

describe('names and files Overte cannot load', () => {
  /** A GLB whose JSON chunk is `doc`. */
  const glbOf = (doc: unknown): Buffer => glbWithJson(JSON.stringify(doc))

  it('a GLB\'s external buffers and images are checked as a .gltf\'s are: a missing buffer fails the model in Overte, a missing image leaves a texture blank', () => {
    const doc = { asset: { version: '2.0' }, buffers: [{ byteLength: 4, uri: 'extra.bin' }, { byteLength: 1, uri: 'data:application/octet-stream;base64,AA==' }], images: [{ uri: 'textures/missing.png' }] }
    expect(check({ 'model.glb': glbOf(doc) })).toMatchObject({
      errors: ['model.glb: buffer "extra.bin" is not in the upload'],
      warnings: ['model.glb: image "textures/missing.png" is not in the upload']
    })
    expect(check({ 'model.glb': glbOf(doc), 'extra.bin': Buffer.alloc(4), 'textures/missing.png': fixture('gltf/BoxTextured/CesiumLogoFlat.png') }).errors).toEqual([])
  })

  it('warns for an external buffer whose length is not its byteLength, which Overte refuses (the model then fails)', () => {
    const doc = { asset: { version: '2.0' }, buffers: [{ byteLength: 4, uri: 'mesh.bin' }] }
    expect(check({ 'model.gltf': JSON.stringify(doc), 'mesh.bin': Buffer.alloc(8) }).warnings).toEqual(['model.gltf: buffer "mesh.bin" is 8 bytes where its byteLength says 4: Overte refuses a buffer of another length, so the model will not load there; export again, or correct byteLength'])
    expect(check({ 'model.glb': glbOf(doc), 'mesh.bin': Buffer.alloc(8) }).warnings).toEqual(['model.glb: buffer "mesh.bin" is 8 bytes where its byteLength says 4: Overte refuses a buffer of another length, so the model will not load there; export again, or correct byteLength'])
    // Key order does not matter: uri after byteLength, or before.
    expect(check({ 'model.gltf': '{"asset":{"version":"2.0"},"buffers":[{"uri":"mesh.bin","byteLength":8}]}', 'mesh.bin': Buffer.alloc(8) })).toMatchObject({ errors: [], warnings: [] })
  })

  it('warns for a glTF primitive without indices, where Overte\'s reader stops building the model', () => {
    const doc = { asset: { version: '2.0' }, accessors: [{ count: 3 }, { count: 3 }], meshes: [{ primitives: [{ attributes: { POSITION: 0 }, indices: 1 }] }, { primitives: [{ attributes: { POSITION: 0 } }] }] }
    const note = 'model.glb: mesh 1 has a primitive without indices, which Overte\'s glTF reader does not load (the model fails there): export with indices'
    expect(check({ 'model.glb': glbOf(doc) }).warnings).toEqual([note])
    expect(check({ 'model.gltf': JSON.stringify(doc) }).warnings).toEqual([note.replace('model.glb', 'model.gltf')])
    expect(check({ 'model.glb': glbOf({ ...doc, meshes: [doc.meshes[0]] }) }).warnings).toEqual([])
  })

  it('checks the clips of an animation graph (data.url of each clip node, relative to the graph), at any depth of children', () => {
    const graph = JSON.stringify({
      version: '1.1',
      root: {
        id: 'root', type: 'overlay', data: { alpha: 1 },
        children: [
          { id: 'idle', type: 'clip', data: { url: 'animations/idle.fbx', startFrame: 0 }, children: [] },
          { id: 'moves', type: 'blendLinearMove', data: {}, children: [{ id: 'walk', type: 'clip', data: { url: 'animations/walk.fbx' }, children: [] }, { id: 'run', type: 'clip', data: { url: 'qrc:///avatar/animations/run.fbx' }, children: [] }] }
        ]
      }
    })
    const clip = fixture('fbx/cubes-ascii.fbx')
    expect(check({ 'anim/graph.json': graph, 'anim/animations/idle.fbx': clip }).warnings).toEqual(['anim/graph.json: animation "animations/walk.fbx" is not in the upload'])
    expect(check({ 'anim/graph.json': graph, 'anim/animations/idle.fbx': clip, 'anim/animations/walk.fbx': clip }).warnings).toEqual([])
    // Overte reads a clip only when its URL's path ends in .fbx (AnimationCache.cpp, AnimationReader::run), in any case.
    const clipGraph = (url: string): string => JSON.stringify({ version: '1.1', root: { id: 'idle', type: 'clip', data: { url }, children: [] } })
    expect(check({ 'graph.json': clipGraph('idle.glb'), 'idle.glb': blender('avatar.glb') }).warnings).toEqual(['graph.json: animation clip "idle.glb" is not FBX, and Overte plays only .fbx clips: this animation will not play; export it as FBX'])
    expect(check({ 'graph.json': clipGraph('IDLE.FBX'), 'IDLE.FBX': blender('avatar.fbx') }).warnings.filter((w) => w.includes('is not FBX'))).toEqual([])
    // Other JSON names nothing.
    expect(check({ 'data.json': JSON.stringify({ root: { url: 'nowhere.fbx' }, type: 'clip' }) }).warnings).toEqual([])
  })

  it('warns for names Overte reads as URLs differently: backslashes outside FBX texture names, # and ? anywhere', () => {
    const png = fixture('gltf/BoxTextured/CesiumLogoFlat.png')
    const obj = 'mtllib cube.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n'
    expect(check({ 'cube.obj': obj, 'cube.mtl': 'newmtl M\nmap_Kd tex\\skin.png\n', 'tex/skin.png': png }).warnings)
      .toEqual(['cube.mtl: texture "tex\\skin.png" is written with backslashes, which Overte reads as part of the name, not as folders: write it with /'])
    expect(check({ 'cube.obj': obj, 'cube.mtl': 'newmtl M\nmap_Kd Material #1.png\n', 'Material #1.png': png }).warnings)
      .toEqual(['cube.mtl: texture "Material #1.png" has # or ? in its name, which Overte reads as the start of a URL\'s fragment or query, so it asks for another file: rename it without them'])
    // Percent-escaped in a glTF URI, a # is part of the file's name: Overte asks for it right.
    const gltf = JSON.stringify({ asset: { version: '2.0' }, images: [{ uri: 'Material%20%231.png' }] })
    expect(check({ 'model.gltf': gltf, 'Material #1.png': png })).toMatchObject({ errors: [], warnings: [] })
    // FBX texture names keep their backslashes: Overte's FBX reader turns them into folders (and then keeps the base name).
    expect(check({ 'avatar.fst': fst, 'avatar.fbx': blender('avatar.fbx'), 'textures/skin.png': skin }).warnings).toEqual([])
  })

  it('warns for a model extension not in lower case, which Overte does not recognise', () => {
    const { warnings } = check({ 'CUBE.OBJ': 'v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n' })
    expect(warnings).toEqual(['CUBE.OBJ: Overte recognises ".obj" only in lower case, so it may not load this file (or, for GLB, its embedded textures): rename it to "CUBE.obj"'])
    expect(check({ 'cube.obj': 'v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n' }).warnings).toEqual([])
  })

  it('not for a binary .FBX (3ds Max writes .FBX), which Overte knows by its signature, nor a .GLTF, which loads by the type this gateway gives it', () => {
    // FormatRegistry::getSerializerForMediaType asks the bytes first, then the URL, then the answer's Content-Type.
    expect(check({ 'Box.FBX': fixture('fbx/box-binary.fbx') }).warnings).toEqual([])
    expect(check({ 'Cubes.FBX': fixture('fbx/cubes-ascii.fbx') }).warnings).toEqual(['Cubes.FBX: Overte recognises ".fbx" only in lower case, so it may not load this file (or, for GLB, its embedded textures): rename it to "Cubes.fbx"'])
    expect(check({ 'Avatar.GLTF': blender('gltf/avatar.gltf'), 'avatar.bin': blender('gltf/avatar.bin'), 'skin.png': blender('gltf/skin.png') }).warnings).toEqual([])
    expect(check({ 'Avatar.GLB': blender('avatar.glb') }).warnings).toEqual(['Avatar.GLB: Overte recognises ".glb" only in lower case, so it may not load this file (or, for GLB, its embedded textures): rename it to "Avatar.glb"'])
  })

  it('not for an ASCII .FBX an animation graph only plays: AnimationReader reads a clip as FBX whatever the case of its name', () => {
    const graph = JSON.stringify({ version: '1.1', root: { id: 'idle', type: 'clip', data: { url: 'IDLE.FBX' }, children: [] } })
    const avatar = { 'avatar.fst': 'name = a\nfilename = avatar.fbx\nanimGraphUrl = graph.json\n', 'avatar.fbx': blender('avatar.fbx'), 'textures/skin.png': skin, 'skin.png': skin, 'graph.json': graph }
    expect(check({ ...avatar, 'IDLE.FBX': fixture('fbx/cubes-ascii.fbx') }).warnings).toEqual([])
    // The same file loaded as the avatar's model is warned.
    const model = check({ 'avatar.fst': 'name = a\nfilename = CUBES.FBX\n', 'CUBES.FBX': fixture('fbx/cubes-ascii.fbx') }).warnings
    expect(model).toEqual(['CUBES.FBX: Overte recognises ".fbx" only in lower case, so it may not load this file (or, for GLB, its embedded textures): rename it to "CUBES.fbx"'])
  })

  it('a gzipped model as Overte reads it: from its gunzipped bytes and its name without .gz, with no Content-Type', () => {
    // ModelCache.cpp, GeometryReader::run: a binary .FBX.gz is known by its signature; a .GLTF.gz by nothing.
    expect(check({ 'Box.FBX.gz': gzipSync(fixture('fbx/box-binary.fbx')) }).warnings).toEqual([])
    expect(check({ 'Cubes.FBX.gz': gzipSync(fixture('fbx/cubes-ascii.fbx')) }).warnings).toEqual(['Cubes.FBX.gz: Overte recognises ".fbx" only in lower case, so it may not load this file (or, for GLB, its embedded textures): rename it to "Cubes.fbx.gz"'])
    expect(check({ 'Avatar.GLTF.gz': gzipSync(blender('gltf/avatar.gltf')), 'avatar.bin': blender('gltf/avatar.bin'), 'skin.png': blender('gltf/skin.png') }).warnings)
      .toEqual(['Avatar.GLTF.gz: Overte recognises ".gltf" only in lower case, so it may not load this file (or, for GLB, its embedded textures): rename it to "Avatar.gltf.gz"'])
  })
})

describe('glTF textures Overte\'s reader does not load (GLTFSerializer.cpp, getHFMTexture, with cgltf 1.13)', () => {
  const png = blender('textures/skin.png')
  const gltfJson = (images: object[], textures: object[]): string => JSON.stringify({ asset: { version: '2.0' }, images, textures, materials: [{ pbrMetallicRoughness: { baseColorTexture: { index: 0 } } }] })

  it('warns for a GLB whose image is given by a uri (a null buffer view there: the client may crash), not for a .gltf or an image in the GLB', () => {
    const external = gltfJson([{ uri: 'skin.png' }], [{ source: 0 }])
    expect(check({ 'model.glb': glbWithJson(external), 'skin.png': png }).warnings).toEqual([
      'model.glb: image "skin.png" is given by a uri, not stored in the GLB: Overte reads every image of a .glb from the GLB itself and fails on this one (the client may crash); store the images in the GLB (Blender: glTF Binary export), or upload the model as .gltf with its images beside it'
    ])
    const dataUri = gltfJson([{ uri: `data:image/png;base64,${png.toString('base64')}` }], [{ source: 0 }])
    expect(check({ 'model.glb': glbWithJson(dataUri) }).warnings).toEqual([
      'model.glb: image "data:…" is given by a uri, not stored in the GLB: Overte reads every image of a .glb from the GLB itself and fails on this one (the client may crash); store the images in the GLB (Blender: glTF Binary export), or upload the model as .gltf with its images beside it'
    ])
    expect(check({ 'model.gltf': external, 'skin.png': png }).warnings).toEqual([])
    expect(check({ 'model.glb': glbWithJson(gltfJson([{ bufferView: 0, mimeType: 'image/png' }], [{ source: 0 }])) }).warnings).toEqual([])
    // Blender's own GLB keeps its image in the binary chunk.
    expect(check({ 'avatar.glb': blender('avatar.glb') }).warnings).toEqual([])
    // Gzipped, it is read by its name without .gz: still a .glb.
    expect(check({ 'model.glb.gz': gzipSync(glbWithJson(external)), 'skin.png': png }).warnings).toEqual([
      'model.glb.gz: image "skin.png" is given by a uri, not stored in the GLB: Overte reads every image of a .glb from the GLB itself and fails on this one (the client may crash); store the images in the GLB (Blender: glTF Binary export), or upload the model as .gltf with its images beside it'
    ])
    // An image no texture uses is never read.
    const unused = gltfJson([{ bufferView: 0, mimeType: 'image/png' }, { uri: 'skin.png' }], [{ source: 0 }])
    expect(check({ 'model.glb': glbWithJson(unused), 'skin.png': png }).warnings).toEqual([])
    // An index as cgltf reads it (atoi): 0.5 is image 0.
    expect(check({ 'model.glb': glbWithJson(gltfJson([{ uri: 'skin.png' }], [{ source: 0.5 }])), 'skin.png': png }).warnings).toHaveLength(1)
  })

  it('past 100,000 textures or uri images, any uri image of a GLB counts as used', () => {
    const png = blender('textures/skin.png')
    const manyTextures = JSON.stringify({ asset: { version: '2.0' }, images: [{ bufferView: 0, mimeType: 'image/png' }, { uri: 'skin.png' }], textures: [...Array.from({ length: 100_000 }, () => ({ source: 0 })), { source: 1 }] })
    expect(check({ 'model.glb': glbWithJson(manyTextures), 'skin.png': png }, 1 << 20).warnings.filter((w) => w.includes('is given by a uri'))).toHaveLength(1)
    const dataUri = `data:image/png;base64,${png.toString('base64')}`
    const manyImages = JSON.stringify({ asset: { version: '2.0' }, images: Array.from({ length: 100_001 }, () => ({ uri: dataUri })), textures: [{ source: 100_000 }] })
    expect(check({ 'model.glb': glbWithJson(manyImages) }, 1 << 20).warnings.filter((w) => w.includes('is given by a uri'))).toHaveLength(1)
  })

  it('warns for a WebP-only texture (Blender\'s WebP images) in a file of one image, which Overte leaves untextured, and not with two images or a PNG source', () => {
    const webpOnly = gltfJson([{ uri: 'skin.webp' }], [{ extensions: { EXT_texture_webp: { source: 0 } } }])
    const webp = Buffer.from('RIFF\x10\x00\x00\x00WEBPVP8L\x04\x00\x00\x00\x2f\x00\x00\x00', 'latin1')
    expect(check({ 'model.gltf': webpOnly, 'skin.webp': webp }).warnings).toEqual([
      'model.gltf: its texture is WebP only (EXT_texture_webp, no PNG or JPEG source), and Overte finds a WebP texture only in a file of two images or more: the model will be untextured in Overte; use a PNG or JPEG texture'
    ])
    const two = gltfJson([{ uri: 'skin.webp' }, { uri: 'other.webp' }], [{ extensions: { EXT_texture_webp: { source: 0 } } }])
    expect(check({ 'model.gltf': two, 'skin.webp': webp, 'other.webp': webp }).warnings).toEqual([])
    const withFallback = gltfJson([{ uri: 'skin.png' }], [{ source: 0, extensions: { EXT_texture_webp: { source: 0 } } }])
    expect(check({ 'model.gltf': withFallback, 'skin.png': png }).warnings).toEqual([])
  })
})
