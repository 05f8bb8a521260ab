import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { crc32, deflateRawSync, deflateSync, gzipSync } from 'node:zlib'
import { describe, expect, it, vi } from 'vitest'
import { gunzipBudget, inspectorFor, MAX_GUNZIP_RATIO, MAX_GUNZIPPED_BYTES, type FileReport } from '../../src/assets/file-inspectors.ts'
import { MAX_KEPT_BYTES, MAX_NAMED_FILES } from '../../src/assets/gltf-json.ts'
import { gltfGeometryNotes, summarizeGltf } from '../../src/assets/gltf-summary.ts'
import { MAX_JSON_DEPTH } from '../../src/assets/json-reader.ts'
import { checkReferences } from '../../src/assets/references.ts'
import { fixture, glbWithJson } from '../support/fixtures.ts'

/** Feeds `data` to the inspector for `path` in chunks of `chunk` bytes, as a stream would. */
function inspect (path: string, data: Buffer | string, chunk = 65_536): FileReport {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data
  const inspector = inspectorFor(path)
  for (let i = 0; i < bytes.length; i += chunk) inspector.write(bytes.subarray(i, i + chunk))
  return inspector.end()
}

const targets = (report: FileReport): string[] => report.references.map((r) => `${r.severity}:${r.what}:${r.target}`)

describe('content checks on real exporter output', () => {
  it.each([
    ['box.fbx', 'fbx/box-binary.fbx'],
    ['cubes.fbx', 'fbx/cubes-ascii.fbx'],
    ['box.glb', 'glb/BoxTextured.glb'],
    ['box.vrm', 'glb/BoxTextured.glb'],
    ['box.gltf', 'gltf/BoxTextured/BoxTextured.gltf'],
    ['box.bin', 'gltf/BoxTextured/BoxTextured0.bin'],
    ['logo.png', 'gltf/BoxTextured/CesiumLogoFlat.png'],
    ['cube.obj', 'obj/cube_usemtl.obj'],
    ['cube.mtl', 'obj/cube_usemtl.mtl']
  ])('accepts %s (%s), in one chunk and byte by byte', (name, file) => {
    expect(inspect(name, fixture(file)).mismatch).toBeUndefined()
    expect(inspect(name, fixture(file), 1).mismatch).toBeUndefined()
  })

  it('finds the glTF buffer and image URIs: a missing buffer fails the model in Overte (an error), a missing image leaves a texture blank (a warning)', () => {
    const report = inspect('BoxTextured.gltf', fixture('gltf/BoxTextured/BoxTextured.gltf'), 7)
    expect(targets(report).sort()).toEqual(['error:buffer:BoxTextured0.bin', 'warning:image:CesiumLogoFlat.png'])
  })

  it('finds the OBJ material library', () => {
    expect(targets(inspect('cube.obj', fixture('obj/cube_usemtl.obj')))).toEqual(['warning:material library:cube_usemtl.mtl'])
  })

  it('does not take an ASCII FBX take file or source path for a texture', () => {
    expect(targets(inspect('cubes.fbx', fixture('fbx/cubes-ascii.fbx')))).toEqual([])
  })
})

describe('gzipped models (avatar.fbx.gz), which Overte gunzips and reads as the rest of the name says', () => {
  const fbx = fixture('fbx/box-binary.fbx')

  it('are checked as the model they hold, in any chunking, with its findings under the .gz name', () => {
    for (const chunk of [65_536, 1_000, 1]) {
      const report = inspect('models/box.fbx.gz', gzipSync(fbx), chunk)
      expect(report.mismatch).toBeUndefined()
      expect(report.path).toBe('models/box.fbx.gz')
      expect(report.fbx?.binary).toBe(true)
    }
    const gltf = inspect('BoxTextured.gltf.GZ', gzipSync(fixture('gltf/BoxTextured/BoxTextured.gltf')), 100)
    expect(gltf.mismatch).toBeUndefined()
    expect(gltf.references.map((r) => `${r.from}:${r.target}`).sort()).toEqual(['BoxTextured.gltf.GZ:BoxTextured0.bin', 'BoxTextured.gltf.GZ:CesiumLogoFlat.png'])
    expect(inspect('cube.obj.gz', gzipSync(fixture('obj/cube_usemtl.obj'))).references.map((r) => r.from)).toEqual(['cube.obj.gz'])
  })

  it('are refused when the bytes inside are not that model, or the gzip data is not whole', () => {
    expect(inspect('box.glb.gz', gzipSync(fbx)).mismatch).toMatch(/^once gunzipped, is not/)
    expect(inspect('box.fbx.gz', fbx).mismatch).toBe('is not gzip data, though its name ends in .gz')
    const gz = gzipSync(fbx)
    expect(inspect('box.fbx.gz', gz.subarray(0, gz.length >> 1)).mismatch).toMatch(/cut short/)
    expect(inspect('box.fbx.gz', gz.subarray(0, gz.length - 4)).mismatch).toMatch(/^is damaged or cut short: its gzip trailer/)
    const flipped = Buffer.from(gz)
    flipped.writeUInt8(flipped.readUInt8(gz.length - 6) ^ 1, gz.length - 6) // the CRC-32, which fflate alone does not check
    expect(inspect('box.fbx.gz', flipped).mismatch).toMatch(/^is damaged or cut short: its gzip trailer/)
    expect(inspect('box.fbx.gz', Buffer.concat([gz, gzipSync(Buffer.from('more'))])).mismatch).toMatch(/more than one gzip member/)
    expect(inspect('box.fbx.gz', gz).references).toEqual([])
  })

  /** A gzip member of `data` with the given header flags and fields, as zlib would write it (FHCRC: the header's CRC-32, low 16 bits). */
  function member (data: Buffer, options: { flags?: number, extra?: Buffer, name?: string, comment?: string, headerCrc?: (crc: number) => number } = {}): Buffer {
    let flags = options.flags ?? 0
    const parts: Buffer[] = [Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])]
    if (options.extra !== undefined) { flags |= 0x04; const length = Buffer.alloc(2); length.writeUInt16LE(options.extra.length); parts.push(length, options.extra) }
    if (options.name !== undefined) { flags |= 0x08; parts.push(Buffer.from(`${options.name}\0`, 'latin1')) }
    if (options.comment !== undefined) { flags |= 0x10; parts.push(Buffer.from(`${options.comment}\0`, 'latin1')) }
    if (options.headerCrc !== undefined) flags |= 0x02
    parts[0]?.writeUInt8(flags, 3)
    if (options.headerCrc !== undefined) { const crc = Buffer.alloc(2); crc.writeUInt16LE(options.headerCrc(crc32(Buffer.concat(parts)) & 0xffff)); parts.push(crc) }
    const trailer = Buffer.alloc(8)
    trailer.writeUInt32LE(crc32(data), 0)
    trailer.writeUInt32LE(data.length, 4)
    return Buffer.concat([...parts, deflateRawSync(data), trailer])
  }

  it('read their header as zlib does: optional fields in any chunking; reserved flags and a wrong header CRC refused', () => {
    const full = member(fbx, { extra: Buffer.from('ab'), name: 'box.fbx', comment: 'made by hand', headerCrc: (crc) => crc })
    for (const chunk of [65_536, 3, 1]) expect(inspect('box.fbx.gz', full, chunk).mismatch).toBeUndefined()
    expect(inspect('box.fbx.gz', member(fbx, { headerCrc: (crc) => crc ^ 1 }), 5).mismatch).toBe('has a gzip header CRC that does not match its header, which zlib (and so Overte) refuses')
    expect(inspect('box.fbx.gz', member(fbx, { flags: 0x20 })).mismatch).toBe('sets reserved gzip header flags, which zlib (and so Overte) refuses')
    expect(inspect('box.fbx.gz', Buffer.concat([gzipSync(fbx), Buffer.from('tail')])).mismatch).toMatch(/^has bytes after the end of its gzip data/)
    expect(inspect('box.fbx.gz', gzipSync(fbx).subarray(0, 6)).mismatch).toBe('is cut short: its gzip header is not whole')
  })

  it('name the .gz file in their findings, not the model inside', () => {
    const report = inspect('m/cube.obj.gz', gzipSync(Buffer.from('mtllib a.mtl b.mtl\nv 0 0 0\n')))
    expect(report.notes).toEqual([expect.stringMatching(/^m\/cube\.obj\.gz: "mtllib a\.mtl b\.mtl" names several libraries/)])
  })

  it('share one budget per upload: many gzipped files expand no further in all than one may', () => {
    const budget = gunzipBudget()
    budget.left = fbx.length + 100
    const feed = (path: string): FileReport => { const inspector = inspectorFor(path, budget); inspector.write(gzipSync(fbx)); return inspector.end() }
    expect(feed('a.fbx.gz').mismatch).toBeUndefined()
    expect(feed('b.fbx.gz').mismatch).toBe(`expands, with the upload's other gzipped files, to more than ${MAX_GUNZIPPED_BYTES} bytes in all`)
  })

  it('a deflate bomb is stopped a few MB in, not inflated to the cap: each write runs on the event loop', () => {
    const bomb = gzipSync(Buffer.alloc(MAX_GUNZIPPED_BYTES + 1))
    // The ratio stops it (a little past 8 MiB inflated), before the 256 MiB cap would.
    expect(inspect('bomb.fbx.gz', bomb).mismatch).toBe(`expands more than ${MAX_GUNZIP_RATIO} times, as deflate bombs do and models do not`)
    // Zeros that stay within the ratio go on to the cap.
    expect(inspect('big.fbx.gz', gzipSync(Buffer.alloc(4 * 1024 * 1024))).mismatch).toMatch(/^once gunzipped, is not FBX/)
  })

  it('name the model in lower case as Overte needs, keeping .gz in the advice (a binary FBX Overte knows by its signature)', () => {
    // A note for the file as a model (an animation graph's clip is read as FBX whatever its name).
    expect(inspect('Cubes.FBX.gz', gzipSync(fixture('fbx/cubes-ascii.fbx'))).modelNotes?.join('\n')).toContain('rename it to "Cubes.fbx.gz"')
    expect(inspect('Box.FBX.gz', gzipSync(fbx)).notes).toEqual([])
  })
})

describe('JSON nested past MAX_JSON_DEPTH', () => {
  const nested = (depth: number): string => `${'{"a":['.repeat(depth)}1${']}'.repeat(depth)}`
  it('is refused before the parsers build a frame per level, however it is chunked; brackets in strings do not count', () => {
    expect(inspect('deep.json', nested(MAX_JSON_DEPTH / 2 + 1), 7).mismatch).toMatch(/more than 512 levels deep/)
    expect(inspect('deep.json', '['.repeat(5_000_000)).mismatch).toMatch(/more than 512 levels deep/)
    expect(inspect('deep.gltf', `{"asset":{"version":"2.0"},"extras":${nested(300)}}`).mismatch).toMatch(/more than 512 levels deep/)
    expect(inspect('fine.json', nested(MAX_JSON_DEPTH / 2)).mismatch).toBeUndefined()
    expect(inspect('strings.json', JSON.stringify({ text: '[{'.repeat(10_000), quoted: '\\"[[[' }), 5).mismatch).toBeUndefined()
  })

  it('in a GLB\'s JSON chunk too', () => {
    const glb = glbWithJson(`{"asset":{"version":"2.0"},"extras":${'['.repeat(2000)}${']'.repeat(2000)}}`)
    expect(inspect('deep.glb', glb).mismatch).toMatch(/JSON chunk nests arrays and objects more than 512 levels deep/)
  })
})

/** A GLB's JSON chunk, as text. */
const glbJson = (glb: Buffer): string => glb.subarray(20, 20 + glb.readUInt32LE(12)).toString('utf8')

describe('glTF JSON, read as it streams and kept only in the parts the report uses', () => {
  it.each([
    ['avatar.glb', 'blender/avatar/avatar.glb', true],
    ['avatar-draco.glb', 'blender/avatar/avatar-draco.glb', true],
    ['avatar.gltf', 'blender/avatar/gltf/avatar.gltf', false],
    ['box.glb', 'assets/glb/BoxTextured.glb', true],
    ['box.gltf', 'assets/gltf/BoxTextured/BoxTextured.gltf', false]
  ])('%s: the same summary and notes as the whole JSON parsed, in any chunking', (name, file, binary) => {
    const bytes = readFileSync(new URL(`../fixtures/${file}`, import.meta.url))
    const json: unknown = JSON.parse(binary ? glbJson(bytes) : bytes.toString('utf8'))
    for (const chunk of [65_536, 7, 1]) {
      const report = inspect(name, bytes, chunk)
      expect(report.mismatch).toBeUndefined()
      expect(report.gltf).toEqual(summarizeGltf(json))
      for (const note of gltfGeometryNotes(name, json)) expect(report.notes).toContain(note)
    }
  })

  it('past its budget the summary is dropped with a note; the checks and references stay', () => {
    const nodes = Math.ceil(MAX_KEPT_BYTES / 64) + 10
    const gltf = `{"asset":{"version":"2.0"},"buffers":[{"uri":"data.bin","byteLength":12}],"images":[{"uri":"skin.png"},{"uri":"skin.png"}],"nodes":[${'{},'.repeat(nodes)}{}]}`
    for (const report of [inspect('big.gltf', gltf), inspect('big.glb', glbWithJson(gltf))]) {
      expect(report.mismatch).toBeUndefined()
      expect(report.gltf).toBeUndefined()
      expect(report.notes.join('\n')).toMatch(/more nodes, meshes and accessors than Heimdall summarises/)
      // Each file named once, however often: an image used twice is one reference.
      expect(targets(report)).toEqual(['error:buffer:data.bin', 'warning:image:skin.png'])
    }
  })

  it('a GLB that ends inside its JSON chunk is refused; its JSON is checked as JSON', () => {
    const glb = glbWithJson('{"asset":{"version":"2.0"},"nodes":[{"name":"a"}]}')
    expect(inspect('cut.glb', glb.subarray(0, glb.length - 8)).mismatch).toMatch(/cut short: its JSON chunk is 52 bytes, and the file ends 8 bytes before its end/)
    expect(inspect('bad.glb', glbWithJson('{"asset":{"version":"2.0"},}')).mismatch).toBe("is binary glTF whose JSON chunk is not valid JSON: it has an unexpected '}' at character 27")
  })

  it('broken but accepted before: a buffer without a uri, a primitive that is not an object, a non-string material model', () => {
    const gltf = '{"asset":{"version":"2.0"},"buffers":[{"name":"x"},null,{"uri":"b.bin","byteLength":4}],"meshes":[{"primitives":[5,{"indices":0}]}]}'
    for (const report of [inspect('holes.gltf', gltf), inspect('holes.glb', glbWithJson(gltf))]) {
      expect(report.mismatch).toBeUndefined()
      expect(targets(report)).toEqual(['error:buffer:b.bin'])
      expect(report.notes.join('\n')).toMatch(/mesh 0 has a primitive without indices/)
    }
    const material = inspect('m.json', '{"materials":[{"model":5,"albedoMap":"a.png"},{"model":{},"albedoMap":"c.png"},{"albedoMap":"d.png","albedoMap":null},{"albedoMap":"b.png"}]}')
    expect(targets(material)).toEqual(['warning:material texture:b.png'])
  })

  it('a key written twice counts once, the last time, as in JSON.parse', () => {
    const gltf = '{"asset":{"version":"2.0"},"accessors":[{"count":3,"min":[9,9,9],"min":[0,0,0],"max":[1,1,1]}],"meshes":[{"primitives":[{"attributes":{"POSITION":0},"indices":0}]}],"nodes":[{"mesh":0,"children":[5],"children":[]}],"images":[{"uri":"data:image/png;base64,AAAA","uri":"x.png"}]}'
    expect(inspect('twice.gltf', gltf).gltf).toEqual(summarizeGltf(JSON.parse(gltf)))
    expect(inspect('twice.gltf', gltf).gltf?.extent).toEqual({ min: [0, 0, 0], max: [1, 1, 1] })
    expect(targets(inspect('twice.json', '{"materials":[{"albedoMap":"a.png"}],"materials":[{"normalMap":"b.png"}]}'))).toEqual(['warning:material texture:b.png'])
  })

  it('a data: URI image is embedded bytes in the summary, not a file; a path longer than any file name is refused', () => {
    const gltf = `{"asset":{"version":"2.0"},"images":[{"uri":"data:image/png;base64,${'QUJD'.repeat(50_000)}"},{"uri":"skin.png"}]}`
    const report = inspect('data.gltf', gltf, 4096)
    expect(report.gltf?.images).toEqual([{ embeddedBytes: 150_000 }, { uri: 'skin.png' }])
    expect(report.gltf?.images).toEqual(summarizeGltf(JSON.parse(gltf)).images)
    expect(targets(report)).toEqual(['warning:image:skin.png'])
    expect(inspect('long.gltf', `{"asset":{"version":"2.0"},"images":[{"uri":"${'a'.repeat(70_000)}.png"}]}`).mismatch).toMatch(/has a uri of 70004 characters, longer than any file's name/)
  })

  it('a GLB JSON chunk with a byte order mark is refused, as glTF 2.0 says', () => {
    expect(inspect('bom.glb', glbWithJson('\ufeff{"asset":{"version":"2.0"}}')).mismatch).toMatch(/JSON chunk is not valid JSON: it has an unexpected U\+FEFF/)
  })

  // Before, a 16 MB GLB JSON of empty nodes was JSON.parse'd whole (~770 MB, found by review), a .gltf's kept sections
  // and a material file's materials were held as values, and a string (an embedded buffer's data: URI) was held whole
  // while it streamed. Each file below (15.7 MB of nodes, 128 MB of data: URI, 3.9 MB of materials) is fed in 64 KB
  // pieces to the inspector in a process with 48 MB of heap: the old readers ran out of heap on every one of them. The
  // last two (a name in every 64 KB piece of 256 MB; keys 400 levels deep, each in its own 512 KB piece) ran out when a
  // kept name or key was a slice that kept its whole piece alive.
  it('costs what it keeps, not what it spells: large JSON read in a process of 48 MB heap', async () => {
    const script = `
      import { inspectorFor } from ${JSON.stringify(new URL('../../src/assets/file-inspectors.ts', import.meta.url).href)}
      const piece = 65536
      function feed (name, head, middle, count, tail, glb) {
        const inspector = inspectorFor(name)
        const body = Buffer.from(middle.repeat(Math.ceil(piece / middle.length)))
        const length = Buffer.byteLength(head) + body.length * count + Buffer.byteLength(tail)
        if (glb) {
          const header = Buffer.alloc(20)
          header.write('glTF', 0, 'latin1'); header.writeUInt32LE(2, 4); header.writeUInt32LE(20 + length, 8)
          header.writeUInt32LE(length, 12); header.writeUInt32LE(0x4e4f534a, 16)
          inspector.write(header)
        }
        inspector.write(Buffer.from(head))
        for (let i = 0; i < count; i++) inspector.write(body)
        inspector.write(Buffer.from(tail))
        const report = inspector.end()
        return { mismatch: report.mismatch, notes: report.notes.length, summary: report.gltf !== undefined }
      }
      const nodes = ['{"asset":{"version":"2.0"},"nodes":[', '{},', 240, '{}]}']
      console.log(JSON.stringify([
        feed('nodes.glb', ...nodes, true),
        feed('nodes.gltf', ...nodes, false),
        feed('data-uri.gltf', '{"asset":{"version":"2.0"},"buffers":[{"byteLength":4,"uri":"data:application/octet-stream;base64,', 'QUJD', 2048, '"}]}', false),
        feed('materials.json', '{"materials":[', '{},', 60, '{}]}', false),
        feed('names.gltf', '{"asset":{"version":"2.0"},"nodes":[', '{"name":"a name of 20 chars"},' + ' '.repeat(65_000), 2048, '{}]}', false),
        nested('keys.json', 400)
      ]))
      // Objects nested 400 deep, each key at the end of its own 512 KB piece: an open level's key is kept while it is
      // open. (Node decodes a piece of 1 MB or more into a string outside the heap, which this heap would not see.)
      function nested (name, depth) {
        const inspector = inspectorFor(name)
        const piece = Buffer.concat([Buffer.alloc(1 << 19, 0x20), Buffer.from('{"a key of 20 chars!":')])
        for (let i = 0; i < depth; i++) inspector.write(piece)
        inspector.write(Buffer.from('1' + '}'.repeat(depth)))
        const report = inspector.end()
        return { mismatch: report.mismatch, notes: report.notes.length, summary: false }
      }
    `
    const { stdout } = await promisify(execFile)(process.execPath, ['--max-old-space-size=48', '--input-type=module', '-e', script], { maxBuffer: 1 << 20 })
    expect(JSON.parse(stdout)).toEqual([
      { mismatch: undefined, notes: 1, summary: false },
      { mismatch: undefined, notes: 1, summary: false },
      { mismatch: undefined, notes: 0, summary: true },
      { mismatch: undefined, notes: 0, summary: false },
      { mismatch: undefined, notes: 0, summary: true },
      { mismatch: undefined, notes: 0, summary: false }
    ])
  })
})

// Small inputs that cost far more than their size before (found by a review): each ran for minutes, past the test's timeout.
describe('inputs whose work grows faster than their size', () => {
  it('an ASCII FBX line with a run of spaces (its pattern backtracked cubically)', () => {
    expect(inspect('spaces.fbx', `; FBX 7.4.0 project file\nFBXHeaderExtension:  {\n}\nA: a${' '.repeat(20_000)}b\n`).mismatch).toBeUndefined()
  })

  it('an OBJ or MTL line of spaces or digits in one chunk: patterns that retried, on lines now cut at 64 KB', () => {
    const line = `mtllib a${' '.repeat(300_000)}b\n`
    expect(inspect('long.obj', line, line.length).mismatch).toBeUndefined()
    const digits = `map_Kd -s ${'1'.repeat(300_000)}x\n`
    expect(inspect('long.mtl', digits, digits.length).mismatch).toBeUndefined()
  })

  it('an FBX of many geometries under a deep chain of models: each model\'s world transform is made once, not per geometry', () => {
    // Models m0 (child) … m31 (root), each moved 1 up, the root also turned 90° about Z; 500 geometries under m0.
    const models = 32
    const geometries = 500
    const fbx = ['; FBX 7.4.0 project file', 'Objects:  {']
    for (let i = 0; i < models; i++) fbx.push(`Model: ${1000 + i}, "Model::m${i}", "Null" {`, 'Properties70:  {', 'P: "Lcl Translation", "Lcl Translation", "", "A",0,1,0', ...(i === models - 1 ? ['P: "Lcl Rotation", "Lcl Rotation", "", "A",0,0,90'] : []), '}', '}')
    for (let g = 0; g < geometries; g++) fbx.push(`Geometry: ${2_000_000 + g}, "Geometry::", "Mesh" {`, 'Vertices: *3 {', 'a: 1,2,3', '}', '}')
    fbx.push('}', 'Connections:  {')
    for (let i = 0; i + 1 < models; i++) fbx.push(`C: "OO",${1000 + i},${1001 + i}`)
    for (let g = 0; g < geometries; g++) fbx.push(`C: "OO",${2_000_000 + g},1000`)
    fbx.push('}')
    // The work counted as the trigonometry done: 12 cosines per model turned, once each, not per geometry and corner.
    const cos = vi.spyOn(Math, 'cos')
    try {
      const extent = inspect('chain.fbx', fbx.join('\n')).fbx?.extent
      expect(cos.mock.calls.length).toBeLessThanOrEqual(12 * 3 * models)
      // [1, 2, 3] moved up 31 times, turned (x, y) → (-y, x), moved up once more.
      expect(extent?.min.map((v) => Math.round(v * 1e9) / 1e9)).toEqual([-33, 2, 3])
      expect(extent?.max.map((v) => Math.round(v * 1e9) / 1e9)).toEqual([-33, 2, 3])
    } finally {
      cos.mockRestore()
    }
  })

  it('an ASCII FBX nested deeper than the binary reader reads is refused as the binary one is', () => {
    const deep = `; FBX 7.4.0 project file\nFBXHeaderExtension:  {\n}\n${'A: {\n'.repeat(65)}${'}\n'.repeat(65)}`
    expect(inspect('deep.fbx', deep).mismatch).toBe('is not readable FBX (nodes nested more than 64 deep)')
    expect(inspect('deep.fbx', `; FBX 7.4.0 project file\n${'A: {\n'.repeat(64)}${'}\n'.repeat(64)}`).mismatch).toBeUndefined()
  })

  it('a glTF whose many nodes share a mesh of many primitives: its box is made once', () => {
    const n = 10_000
    const gltf = `{"asset":{"version":"2.0"},"accessors":[{"count":3,"min":[0,0,0],"max":[1,2,1]}],"meshes":[{"primitives":[${Array(n).fill('{"attributes":{"POSITION":0},"indices":0}').join(',')}]}],"nodes":[${Array(n).fill('{"mesh":0,"translation":[0,1,0]}').join(',')}]}`
    expect(inspect('shared.gltf', gltf).gltf?.extent).toEqual({ min: [0, 1, 0], max: [1, 3, 1] })
  })

  it('an OBJ that repeats or varies mtllib keeps each library once, at most MAX_NAMED_FILES of them and 16 M characters, and says so past them', () => {
    // Each line was kept, and made a reference: 8 M of this one (104 MB) held 984 MB.
    const same = inspect('same.obj', 'mtllib b.mtl\n'.repeat(200_000))
    expect(targets(same)).toEqual(['warning:material library:b.mtl'])
    expect(same.notes).toEqual([])
    const cap = /^many\.obj names more than 100,000 material libraries \(or more than 16 M characters of names\), more than Heimdall checks/
    const many = inspect('many.obj', Array.from({ length: MAX_NAMED_FILES + 1 }, (_, i) => `mtllib l${i}.mtl`).join('\n'))
    expect(many.references.length).toBe(MAX_NAMED_FILES)
    expect(many.notes).toEqual([expect.stringMatching(cap)])
    const long = inspect('many.obj', Array.from({ length: 300 }, (_, i) => `mtllib ${String(i).padStart(3, '0')}${'x'.repeat(60_001)}.mtl`).join('\n'))
    expect(long.references.length).toBe(Math.floor(16 * 1024 * 1024 / 60_008))
    expect(long.notes).toEqual([expect.stringMatching(cap)])
  })

  it('an MTL naming more than MAX_NAMED_FILES textures keeps that many and says so', () => {
    const mtl = inspect('big.mtl', Array.from({ length: MAX_NAMED_FILES + 1 }, (_, i) => `map_Kd t${i}.png`).join('\n'))
    expect(mtl.references.length).toBe(MAX_NAMED_FILES)
    expect(mtl.notes).toEqual([expect.stringMatching(/^big\.mtl names more than 100,000 textures/)])
  })

  it('many textures not found among many files: each looked up once, not across every file', () => {
    const mtl = inspect('many.mtl', Array.from({ length: 100_000 }, (_, i) => `map_Kd t${i}.png`).join('\n'))
    const files = new Set(['many.mtl', ...Array.from({ length: 10_000 }, (_, i) => `scripts/f${i}.js`)])
    expect(checkReferences([mtl], files, new Set(['scripts'])).warnings.length).toBe(100_000)
  })
})

describe('content that does not match its extension', () => {
  const png = fixture('gltf/BoxTextured/CesiumLogoFlat.png')
  it.each([
    ['text named .jpg', 'skin.jpg', 'not an image at all, just words', /not a JPEG/],
    ['a PNG named .glb', 'model.glb', png, /not binary glTF/],
    ['text named .fbx', 'model.fbx', Buffer.from('hello, this is not a model\n'.repeat(4)), /not FBX/],
    ['a GLB named .png', 'skin.png', fixture('glb/BoxTextured.glb'), /not a PNG/],
    ['GLB version 1', 'old.glb', Buffer.concat([Buffer.from('glTF'), Buffer.from([1, 0, 0, 0]), Buffer.alloc(12)]), /version 1/],
    ['glTF 1.0 JSON', 'old.gltf', '{"asset": {"version": "1.0"}}', /not glTF 2/],
    ['glTF without asset', 'x.gltf', '{"scenes": []}', /not glTF 2/],
    ['broken JSON', 'data.json', '{"a": ', /not valid JSON/],
    ['JSON with trailing garbage', 'data.json', '{"a": 1} }', /not valid JSON/],
    ['an empty JSON file', 'data.json', '', /empty/],
    ['a binary named .js', 'script.js', png, /not text/],
    ['a binary named .fst', 'avatar.fst', png, /not (UTF-8 )?text/],
    ['a binary named .obj', 'model.obj', Buffer.from([0x76, 0x20, 0x00, 0x31]), /NUL/],
    ['a PNG named .wav', 'sound.wav', png, /not a WAV/],
    ['a PNG named .mp3', 'sound.mp3', png, /not an MP3/],
    ['a PNG named .ogg', 'sound.ogg', png, /not an Ogg/],
    ['a GLB named .webp', 'skin.webp', fixture('glb/BoxTextured.glb'), /not a WebP/],
    ['text named .ktx', 'skin.ktx', 'not an image at all, just words', /not a KTX/],
    ['text named .tga', 'skin.tga', 'not an image at all, just words', /not a TGA/],
    ['text named .bmp', 'skin.bmp', 'not an image at all, just words', /not a BMP/],
    ['text named .gif', 'skin.gif', 'not an image at all, just words', /not a GIF/],
    ['an MP3 named .exr', 'sky.exr', Buffer.concat([Buffer.from('ID3'), Buffer.alloc(40)]), /not an OpenEXR/],
    // Formats Overte reads only by their extension (TGA, EXR) or not through Qt (KTX): not loaded under another name.
    ['a PNG named .ktx', 'skin.ktx', png, /not a KTX/],
    ['a PNG named .exr', 'sky.exr', png, /not an OpenEXR/],
    ['a KTX named .png', 'skin.png', Buffer.from([0xab, 0x4b, 0x54, 0x58, 0x20, 0x31, 0x31, 0xbb, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]), /not a PNG/],
    ['an EXR named .png', 'skin.png', Buffer.concat([Buffer.from([0x76, 0x2f, 0x31, 0x01]), Buffer.alloc(20)]), /not a PNG/],
    ['a TGA-shaped header then a page, named .jpg', 'skin.jpg', Buffer.concat([Buffer.from([0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 4, 0, 32, 8]), Buffer.from('<html><script>alert(1)</script>')]), /not a JPEG/]
  ])('refuses %s', (_what, name, data, reason) => {
    expect(inspect(name, data).mismatch).toMatch(reason)
  })

  // Overte's texture loader tries the extension's reader, then decides by the content (TextureProcessing.cpp,
  // processRawImageData): an image in another image format loads, so it is a warning, not a refusal (found by review).
  it.each([
    ['a PNG named .jpg', 'skin.jpg', png, 'PNG', 'JPG'],
    ['a PNG named .webp', 'skin.webp', png, 'PNG', 'WEBP'],
    ['a PNG named .bmp', 'skin.bmp', png, 'PNG', 'BMP'],
    ['a PNG named .gif', 'skin.gif', png, 'PNG', 'GIF'],
    ['a JPEG named .png', 'skin.png', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16]), 'JPG', 'PNG']
  ])('accepts %s with a warning naming the real format', (_what, name, data, actual, named) => {
    const report = inspect(name, data)
    expect(report.mismatch).toBeUndefined()
    expect(report.notes).toEqual([`${name} is a ${actual} image, not ${named}: Overte loads it by its content, but other tools go by the extension; rename it to .${actual.toLowerCase()}`])
  })

  it('reads a script in an 8-bit encoding, with a note, as Overte does (ScriptCache takes its bytes as they are)', () => {
    const report = inspect('script.js', Buffer.from([0x2f, 0x2f, 0x20, 0x63, 0x61, 0x66, 0xe9, 0x0a]))
    expect(report.mismatch).toBeUndefined()
    expect(report.notes.join('\n')).toMatch(/script\.js is not UTF-8: it was read as Windows-1252/)
  })

  it('warns of sounds Overte does not play: Ogg, and WAV other than 16-bit PCM', () => {
    const wav = (format: number, bits: number): Buffer => {
      const head = Buffer.alloc(44)
      head.write('RIFF', 0, 'latin1'); head.write('WAVEfmt ', 8, 'latin1')
      head.writeUInt16LE(format, 20); head.writeUInt16LE(bits, 34)
      return head
    }
    expect(inspect('ok.wav', wav(1, 16)).notes).toEqual([])
    expect(inspect('deep.wav', wav(1, 24)).notes.join('\n')).toMatch(/16-bit PCM only, and this one is 24-bit PCM/)
    expect(inspect('float.wav', wav(3, 32)).notes.join('\n')).toMatch(/in format 3 \(not PCM\)/)
    expect(inspect('a.ogg', Buffer.concat([Buffer.from('OggS'), Buffer.alloc(20)])).notes.join('\n')).toMatch(/does not play Ogg/)
  })

  it.each([
    ['WAV', 'a.wav', Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WAVEfmt ')])],
    ['MP3 with ID3', 'a.mp3', Buffer.concat([Buffer.from('ID3'), Buffer.alloc(20)])],
    ['MP3 frame', 'a.mp3', Buffer.from([0xff, 0xfb, 0x90, 0x64])],
    ['Ogg', 'a.ogg', Buffer.concat([Buffer.from('OggS'), Buffer.alloc(20)])],
    // Overte plays .raw as headerless 16-bit PCM (Sound.cpp): any bytes.
    ['raw PCM', 'a.raw', Buffer.from([1, 0, 255, 127, 0, 128])],
    ['WebP', 'a.webp', Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WEBPVP8 ')])],
    ['KTX2', 'a.ktx', Buffer.from([0xab, 0x4b, 0x54, 0x58, 0x20, 0x32, 0x30, 0xbb, 0x0d, 0x0a, 0x1a, 0x0a])],
    ['TGA', 'a.tga', Buffer.from([0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 4, 0, 32, 8])],
    ['JPEG', 'a.jpeg', Buffer.from([0xff, 0xd8, 0xff, 0xe0])],
    ['UTF-8 script', 'a.js', 'print("héllo ✓");\n'],
    ['OpenEXR', 'sky.exr', Buffer.from([0x76, 0x2f, 0x31, 0x01, 0x02, 0, 0, 0])]
  ])('accepts a minimal %s', (_what, name, data) => {
    expect(inspect(name, data, 3).mismatch).toBeUndefined()
  })

  it('accepts BMP and GIF, which Overte decodes too, and reads their pixel size', () => {
    // A 2×3 top-down 24-bit BMP (BITMAPINFOHEADER), rows padded to 4 bytes.
    const bmp = Buffer.alloc(54 + 3 * 8)
    bmp.write('BM', 0, 'latin1')
    bmp.writeUInt32LE(bmp.length, 2)
    bmp.writeUInt32LE(54, 10)
    bmp.writeUInt32LE(40, 14)
    bmp.writeInt32LE(2, 18)
    bmp.writeInt32LE(-3, 22)
    bmp.writeUInt16LE(1, 26)
    bmp.writeUInt16LE(24, 28)
    expect(inspect('skin.bmp', bmp, 5)).toMatchObject({ mismatch: undefined, image: { width: 2, height: 3 } })
    // The classic 1×1 GIF89a.
    const gif = Buffer.from('47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b', 'hex')
    expect(inspect('skin.gif', gif, 5)).toMatchObject({ mismatch: undefined, image: { width: 1, height: 1 } })
  })
})

describe('FBX texture references', () => {
  const header = fixture('fbx/box-binary.fbx').subarray(0, 27)
  const blenderFbx = readFileSync(new URL('../fixtures/blender/avatar/avatar.fbx', import.meta.url))

  it('reads the Texture nodes of a real binary FBX (Blender), node by node, even split into tiny chunks', () => {
    for (const chunk of [1, 5, 64, 65_536]) {
      const report = inspect('body.fbx', blenderFbx, chunk)
      expect(report.mismatch).toBeUndefined()
      // Blender writes FileName (its absolute path) and RelativeFilename in the Video and the Texture: one reference, as Overte reads it.
      expect(targets(report)).toEqual(['warning:texture:textures/skin.png'])
      expect(report.references[0]?.rule).toBe('fbx-texture')
    }
  })

  it('reads Texture RelativeFilename from an ASCII FBX; a Video alone or a FileName is not what Overte reads', () => {
    const ascii = '; FBX 7.5.0 project file\nObjects:  {\n\tVideo: 1, "Video::skin", "Clip" {\n\t\tRelativeFilename: "textures/video.png"\n\t}\n' +
      '\tTexture: 2, "Texture::skin", "" {\n\t\tFileName: "/home/artist/skin.png"\n\t\tRelativeFilename: "textures\\skin.png"\n\t}\n}\n'
    expect(targets(inspect('body.fbx', ascii, 9))).toEqual(['warning:texture:textures\\skin.png'])
  })

  it('refuses a binary FBX with an impossible version', () => {
    const bad = Buffer.from(header)
    bad.writeUInt32LE(1, 23)
    expect(inspect('x.fbx', Buffer.concat([bad, Buffer.alloc(5000)])).mismatch).toMatch(/unknown version/)
  })
})

describe('FBX arrays Heimdall decodes', () => {
  /** A binary FBX 7400: Objects › Geometry (a Mesh) › Vertices, one compressed array of doubles declaring `count`. */
  function fbxWithVertices (count: number, decoded: Buffer, type = 'd'): Buffer {
    const str = (text: string): Buffer => { const b = Buffer.alloc(5 + text.length); b.write('S', 0, 'latin1'); b.writeUInt32LE(text.length, 1); b.write(text, 5, 'latin1'); return b }
    const id = Buffer.alloc(9); id.write('L', 0, 'latin1'); id.writeBigInt64LE(1n, 1)
    const packed = deflateSync(decoded)
    const array = Buffer.alloc(13); array.write(type, 0, 'latin1'); array.writeUInt32LE(count, 1); array.writeUInt32LE(1, 5); array.writeUInt32LE(packed.length, 9)
    const node = (at: number, name: string, props: Buffer[], children: (at: number) => Buffer[]): Buffer => {
      const propBytes = Buffer.concat(props)
      const start = at + 13 + name.length + propBytes.length
      const kids = children(start)
      const nested = kids.length === 0 ? Buffer.alloc(0) : Buffer.concat([...kids, Buffer.alloc(13)])
      const header = Buffer.alloc(13)
      header.writeUInt32LE(start + nested.length, 0)
      header.writeUInt32LE(props.length, 4)
      header.writeUInt32LE(propBytes.length, 8)
      header[12] = name.length
      return Buffer.concat([header, Buffer.from(name, 'latin1'), propBytes, nested])
    }
    const head = Buffer.alloc(27); head.write('Kaydara FBX Binary  \u0000\u001a\u0000', 0, 'latin1'); head.writeUInt32LE(7400, 23)
    const objects = node(27, 'Objects', [], (at) => [node(at, 'Geometry', [id, str('Geometry\u0000\u0001Geometry'), str('Mesh')], (at2) => [node(at2, 'Vertices', [Buffer.concat([array, packed])], () => [])])])
    return Buffer.concat([head, objects, Buffer.alloc(13)])
  }
  const doubles = (...values: number[]): Buffer => Buffer.from(new Float64Array(values).buffer)

  it('reads a compressed Vertices array into the extent', () => {
    expect(inspect('box.fbx', fbxWithVertices(6, doubles(-1, 0, -2, 1, 3, 2))).fbx?.extent).toEqual({ min: [-1, 0, -2], max: [1, 3, 2] })
  })

  it('inflates no further than the count declares (a bomb is skipped, not decoded on the event loop), and skips a count past the cap', () => {
    const bomb = inspect('bomb.fbx', fbxWithVertices(6, Buffer.concat([doubles(-1, 0, -2, 1, 3, 2), Buffer.alloc(128 * 1024 ** 2)])))
    expect(bomb.mismatch).toBeUndefined()
    expect(bomb.fbx?.extent).toBeUndefined()
    const huge = inspect('huge.fbx', fbxWithVertices(16 * 1024 ** 2, Buffer.alloc(128 * 1024 ** 2)))
    expect(huge.mismatch).toBeUndefined()
    expect(huge.fbx?.extent).toBeUndefined()
    // Bytes as vertices (which Overte does not read as such) would be 8 held per byte given: 64 Mi of them, 512 MB.
    const bytes = inspect('bytes.fbx', fbxWithVertices(64 * 1024 ** 2, Buffer.alloc(64 * 1024 ** 2), 'b'))
    expect(bytes.mismatch).toBeUndefined()
    expect(bytes.fbx?.extent).toBeUndefined()
  })
})

describe('.fst references', () => {
  it('reports the model as required, and texdir, scripts and the animation graph as wanted', () => {
    const report = inspect('avatars/hero.fst', [
      'name = Hero', 'type = body+head', 'scale = 1.0', 'filename = hero.fbx', 'texdir = textures',
      'script = scripts/wave.js', 'script = https://example.org/remote.js', 'animGraphUrl = anim/graph.json',
      'joint = jointRoot = Hips', 'jointMap = Hips = mixamorig:Hips', 'bs = EyeBlink_L = Blink_Left = 1', '# comment', ''
    ].join('\r\n'), 5)
    expect(report.mismatch).toBeUndefined()
    expect(targets(report)).toEqual([
      'error:model file:hero.fbx',
      'warning:texture folder:textures',
      'warning:script:scripts/wave.js',
      'warning:animation graph:anim/graph.json'
    ])
  })

  it('a name written on several lines is one reference: a missing script is one warning, not one per line', () => {
    const report = inspect('hero.fst', ['filename = hero.fbx', ...Array.from({ length: 1000 }, () => 'script = scripts/wave.js')].join('\n'))
    expect(targets(report)).toEqual(['error:model file:hero.fbx', 'warning:script:scripts/wave.js'])
    expect(checkReferences([report], new Set(['hero.fst', 'hero.fbx']), new Set()).warnings).toHaveLength(1)
  })

  it('takes an http(s) model URL as resolved, and notes a missing filename or a baseURL', () => {
    expect(targets(inspect('a.fst', 'filename = https://cdn.example/a.fbx\n'))).toEqual([])
    expect(inspect('a.fst', 'name = x\n').notes).toEqual(['a.fst names no model (no "filename" line)'])
    const based = inspect('a.fst', 'baseURL = https://cdn.example/\nfilename = a.fbx\n')
    expect(targets(based)).toEqual([])
    expect(based.notes[0]).toMatch(/baseURL/)
  })
})
