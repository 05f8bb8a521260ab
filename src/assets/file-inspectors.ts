import { crc32 } from 'node:zlib'
import { Gunzip } from 'fflate'
import { contentExtensionOf, extensionOf, isGzippedModel } from './asset-kinds.ts'
import { AsciiFbxReader, BinaryFbxReader, type FbxSummary } from './fbx-reader.ts'
import { parseFst, type FstDocument } from './fst.ts'
import { GltfJsonReader, MAX_KEPT_BYTES, MAX_NAMED_FILES, type GltfJson } from './gltf-json.ts'
import { gltfGeometryNotes, summarizeGltf, type GltfSummary } from './gltf-summary.ts'
import { JsonLimitError, JsonReader, type JsonPath, type JsonPrimitive } from './json-reader.ts'
import { baseNameOf, fetchedName, fstBaseDir, fstScale, GLTF_EXTENSIONS_OVERTE_IGNORES, hasScheme, isUrl, MATERIAL_TEXTURE_KEY_NAMES, materialTextureNames, type FstLookup } from './overte-rules.ts'

/**
 * How Overte looks a reference up (see overte-rules.ts): 'relative' to the
 * referring file (glTF URIs, `.fst` paths, OBJ `mtllib`), or in the model's
 * texture base — beside the model or in its `.fst` `texdir` — by base name
 * ('fbx-texture') or as written ('obj-texture').
 */
export type LookupRule = 'relative' | 'fbx-texture' | 'obj-texture'

/** Something a file points at that must (or should) be in the upload. */
export interface Reference {
  /** The referring file, relative to the upload root. */
  from: string
  /** The reference as written in the file. */
  target: string
  /** What it is, for messages: "model file", "texture", "buffer", … */
  what: string
  severity: 'error' | 'warning'
  /** The target is a folder, not a file. */
  folder?: boolean
  /** How Overte finds it; 'relative' when absent. */
  rule?: LookupRule
  /** For OBJ textures: the model whose texture base applies (the MTL's own path is not it). */
  model?: string
  /** The folder `target` resolves against when not the referring file's: an `.fst`'s baseURL. Upload-relative, '' the root. */
  base?: string
  /** The size the referring file says the target has (a glTF buffer's byteLength), which Overte insists on. */
  size?: number
  /** The reference as the file writes it, when `target` is its decoded form (a glTF URI's percent-escapes). */
  written?: string
  /** A material file's texture: checked only when an `.fst`'s materialMap names the file (other JSON may have `materials`). */
  ifMaterial?: boolean
}

/** What an `.fst` says about where its model and textures are and how its joints are named. */
export interface FstFacts extends FstLookup {
  /** Overte joint name → the model's joint name (`jointMap = Hips = mixamorig:Hips`). */
  jointMap: Record<string, string>
  /** Overte blendshape names that `bs` lines map onto the model's. */
  blendshapes: string[]
}

export interface FileReport {
  path: string
  /** Why the bytes do not match the extension; undefined when they do. */
  mismatch: string | undefined
  references: Reference[]
  /** Non-fatal findings about the file itself. */
  notes: string[]
  /** Findings that hold only where the file is loaded as a model, not where an animation graph plays it as a clip (checkReferences decides). */
  modelNotes?: string[]
  /** FBX content: textures, skeleton, blendshapes, size. */
  fbx?: FbxSummary
  /** glTF/GLB content: skeleton, blendshapes, materials, triangles, extent, images. */
  gltf?: GltfSummary
  fst?: FstFacts
  /** Pixel size of a PNG, JPEG or TGA texture. */
  image?: { width: number, height: number }
}

/** Sees a file's bytes once, as they stream past, and reports at the end. */
export interface FileInspector {
  write: (chunk: Uint8Array) => void
  end: () => FileReport
}

const HEAD_BYTES = 64
const MAX_FST_BYTES = 1024 * 1024
const MAX_LINE = 64 * 1024

const isHttp = (target: string): boolean => /^https?:\/\//i.test(target)

abstract class BaseInspector implements FileInspector {
  protected readonly path: string
  protected head: Buffer = Buffer.alloc(0)
  protected size = 0
  protected mismatch: string | undefined
  protected readonly references: Reference[] = []
  protected readonly notes: string[] = []
  /** What `reference` has added, so that a name mentioned again is not added twice. */
  readonly #referenced = new Set<string>()

  constructor (path: string) {
    this.path = path
  }

  write (chunk: Uint8Array): void {
    if (this.head.length < HEAD_BYTES) this.head = Buffer.concat([this.head, Buffer.from(chunk.buffer, chunk.byteOffset, Math.min(chunk.byteLength, HEAD_BYTES))]).subarray(0, HEAD_BYTES)
    this.size += chunk.byteLength
    if (this.mismatch !== undefined) return
    try {
      this.consume(chunk)
    } catch (err) {
      this.mismatch = err instanceof Error ? err.message : String(err)
    }
  }

  end (): FileReport {
    if (this.mismatch === undefined) {
      try {
        this.finish()
      } catch (err) {
        this.mismatch = err instanceof Error ? err.message : String(err)
      }
    }
    return { path: this.path, mismatch: this.mismatch, references: this.mismatch === undefined ? this.references : [], notes: this.notes, ...this.facts() }
  }

  /** Adds a warning about the file that its content does not decide (its name). */
  note (text: string): void { this.notes.push(text) }

  /** Format-specific findings added to the report. */
  protected facts (): Partial<FileReport> { return {} }

  protected consume (_chunk: Uint8Array): void {}
  protected abstract finish (): void

  /**
   * Adds a reference to check, once: a name the file repeats (an `.fst`'s
   * script line written twice, a glTF's images sharing a URI) is one
   * reference, and one warning if it is missing, not one per mention.
   */
  protected reference (target: string, what: string, severity: Reference['severity'], extra: Partial<Reference> = {}): void {
    const key = JSON.stringify([target, what, severity, extra])
    if (this.#referenced.has(key)) return
    this.#referenced.add(key)
    this.references.push({ from: this.path, target, what, severity, ...extra })
  }
}

/** Formats recognised by their first bytes; textures also report their pixel size. */
class SignatureInspector extends BaseInspector {
  readonly #check: (head: Buffer, size: number) => string | undefined
  readonly #ext: string
  /** The image format the bytes are in, when not the extension's. */
  #actual: string | undefined
  /** JPEG keeps its start: the frame header (with the size) follows the metadata segments. */
  #jpeg: Buffer[] = []
  #jpegBytes = 0

  constructor (path: string, check: (head: Buffer, size: number) => string | undefined) {
    super(path)
    this.#check = check
    this.#ext = extensionOf(path)
  }

  protected override consume (chunk: Uint8Array): void {
    if ((this.#ext === 'jpg' || this.#ext === 'jpeg') && this.#jpegBytes < MAX_JPEG_HEAD) {
      this.#jpeg.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
      this.#jpegBytes += chunk.byteLength
    }
  }

  protected finish (): void {
    const problem = this.#check(this.head, this.size)
    if (problem === undefined) { this.#soundNotes(); return }
    // An image in another image format than its extension says: Overte's texture loader tries the extension's reader,
    // then decides by the content (TextureProcessing.cpp, processRawImageData), so it loads. A warning, not a refusal.
    const actual = BY_CONTENT.has(this.#ext) ? [...BY_CONTENT].find((ext) => ext !== this.#ext && ext !== 'jpeg' && SIGNATURES[ext]?.(this.head, this.size) === undefined) : undefined
    if (actual === undefined) throw new Error(problem)
    this.#actual = actual
    this.notes.push(`${this.path} is a ${actual.toUpperCase()} image, not ${this.#ext.toUpperCase()}: Overte loads it by its content, but other tools go by the extension; rename it to .${actual}`)
  }

  /** What Overte's sound loader (Sound.cpp, SoundProcessor) plays: WAV of 16-bit PCM, MP3 and raw PCM; not Ogg. */
  #soundNotes (): void {
    if (this.#ext === 'ogg') this.notes.push(`${this.path}: Overte does not play Ogg sounds (it plays WAV of 16-bit PCM and MP3): convert it`)
    const h = this.head
    if (this.#ext !== 'wav' || h.length < 36 || !startsWith(h, 'fmt ', 12)) return
    const format = h.readUInt16LE(20)
    const bits = h.readUInt16LE(34)
    if ((format !== 1 && format !== 0xfffe) || bits !== 16) {
      this.notes.push(`${this.path}: Overte plays WAV of 16-bit PCM only, and this one is ${format === 1 || format === 0xfffe ? `${bits}-bit PCM` : `in format ${format} (not PCM)`}: export it as 16-bit PCM`)
    }
  }

  protected override facts (): Partial<FileReport> {
    const h = this.head
    const ext = this.#actual ?? this.#ext
    if (ext === 'png' && h.length >= 24) return { image: { width: h.readUInt32BE(16), height: h.readUInt32BE(20) } }
    if (ext === 'tga' && h.length >= 18) return { image: { width: h.readUInt16LE(12), height: h.readUInt16LE(14) } }
    if (ext === 'gif' && h.length >= 10) return { image: { width: h.readUInt16LE(6), height: h.readUInt16LE(8) } }
    // BITMAPINFOHEADER and later: signed 32-bit sizes (a negative height is a top-down bitmap).
    if (ext === 'bmp' && h.length >= 26 && h.readUInt32LE(14) >= 40) return { image: { width: Math.abs(h.readInt32LE(18)), height: Math.abs(h.readInt32LE(22)) } }
    if (this.#jpeg.length > 0 && (ext === 'jpg' || ext === 'jpeg')) {
      const size = jpegSize(Buffer.concat(this.#jpeg))
      this.#jpeg = []
      return size === undefined ? {} : { image: size }
    }
    return {}
  }
}

const MAX_JPEG_HEAD = 256 * 1024

/** Walks JPEG segments to the first start-of-frame marker (SOF0–SOF15 but DHT, JPG and DAC), which holds the size. */
function jpegSize (data: Buffer): { width: number, height: number } | undefined {
  let at = 2
  while (at + 9 < data.length) {
    if (data[at] !== 0xff) return undefined
    const marker = data[at + 1] ?? 0
    if (marker === 0xff) { at++; continue }
    const length = data.readUInt16BE(at + 2)
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: data.readUInt16BE(at + 5), width: data.readUInt16BE(at + 7) }
    }
    at += 2 + length
  }
  return undefined
}

const startsWith = (head: Buffer, bytes: number[] | string, at = 0): boolean => {
  const expected = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes)
  return head.length >= at + expected.length && head.subarray(at, at + expected.length).equals(expected)
}

type SignatureCheck = (head: Buffer, size: number) => string | undefined

const jpeg: SignatureCheck = (h) => startsWith(h, [0xff, 0xd8, 0xff]) ? undefined : 'is not a JPEG image (no SOI marker)'
const glb: SignatureCheck = (h) => {
  if (!startsWith(h, 'glTF')) return 'is not binary glTF (no "glTF" magic)'
  const version = h.length >= 8 ? h.readUInt32LE(4) : 0
  return version === 2 ? undefined : `is binary glTF version ${version}; only version 2 loads`
}

const SIGNATURES: Readonly<Record<string, SignatureCheck>> = {
  jpg: jpeg,
  jpeg,
  png: (h) => startsWith(h, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) ? undefined : 'is not a PNG image (no PNG signature)',
  webp: (h) => startsWith(h, 'RIFF') && startsWith(h, 'WEBP', 8) ? undefined : 'is not a WebP image (no RIFF/WEBP header)',
  // Overte decodes these too (TextureProcessing.cpp: QImageReader for BMP and GIF, OpenEXR for .exr).
  bmp: (h) => startsWith(h, 'BM') && h.length >= 26 ? undefined : 'is not a BMP image (no BM header)',
  gif: (h) => startsWith(h, 'GIF87a') || startsWith(h, 'GIF89a') ? undefined : 'is not a GIF image (no GIF87a/GIF89a header)',
  exr: (h) => startsWith(h, [0x76, 0x2f, 0x31, 0x01]) ? undefined : 'is not an OpenEXR image (no EXR magic number)',
  ktx: (h) => startsWith(h, [0xab, 0x4b, 0x54, 0x58, 0x20, 0x31, 0x31, 0xbb, 0x0d, 0x0a, 0x1a, 0x0a]) || startsWith(h, [0xab, 0x4b, 0x54, 0x58, 0x20, 0x32, 0x30, 0xbb, 0x0d, 0x0a, 0x1a, 0x0a])
    ? undefined
    : 'is not a KTX or KTX2 texture (no KTX identifier)',
  tga: (h) => {
    // TGA has no magic number: check that the header describes an image.
    if (h.length < 18) return 'is not a TGA image (shorter than its header)'
    const colorMapType = h[1] ?? 255
    const imageType = h[2] ?? 255
    const width = h.readUInt16LE(12)
    const height = h.readUInt16LE(14)
    const depth = h[16] ?? 0
    const ok = colorMapType <= 1 && [1, 2, 3, 9, 10, 11].includes(imageType) && width > 0 && height > 0 && [8, 15, 16, 24, 32].includes(depth)
    return ok ? undefined : 'is not a TGA image (its header does not describe an image)'
  },
  wav: (h) => startsWith(h, 'RIFF') && startsWith(h, 'WAVE', 8) ? undefined : 'is not a WAV file (no RIFF/WAVE header)',
  mp3: (h) => startsWith(h, 'ID3') || (h[0] === 0xff && ((h[1] ?? 0) & 0xe0) === 0xe0) ? undefined : 'is not an MP3 file (no ID3 tag or frame sync)',
  ogg: (h) => startsWith(h, 'OggS') ? undefined : 'is not an Ogg file (no OggS capture pattern)'
}

/**
 * The formats Qt's image reader tells by their content, which Overte falls
 * back on when a texture's extension is wrong (TextureProcessing.cpp): TGA
 * and EXR it reads only by their extension, KTX not through Qt at all, so
 * bytes of those under another name, or another name's bytes under theirs,
 * stay refused.
 */
const BY_CONTENT: ReadonlySet<string> = new Set(['png', 'jpg', 'jpeg', 'webp', 'bmp', 'gif'])

const BOM = Buffer.from([0xef, 0xbb, 0xbf])
const WINDOWS_1252 = new TextDecoder('windows-1252')

const encodingNote = (path: string): string =>
  `${path} is not UTF-8: it was read as Windows-1252 (Latin-1). Overte reads text as UTF-8, so names with accented letters (materials, textures) may not match; save the file as UTF-8`

/**
 * Text as it streams: a UTF-8 BOM is dropped, NUL bytes mean "not text", and
 * the file is UTF-8 or, when `lenient`, any 8-bit text (read as Windows-1252,
 * which is what Windows tools write). Lines are handed on carried in Latin-1
 * (one character per byte, so nothing is lost before the encoding is known);
 * `decode` turns a carried string into real text once the whole file has
 * been seen, so every name in a file is decoded the same way.
 */
class TextStream {
  readonly #lenient: boolean
  readonly #validator = new TextDecoder('utf-8', { fatal: true })
  #start: Buffer | undefined = Buffer.alloc(0)
  #utf8 = true
  #partial = ''
  #lineNumber = 0
  readonly #onLine: (line: string, number: number) => void
  readonly #onText: ((utf8: string) => void) | undefined

  /** `onText`, for strict UTF-8 consumers (JSON), receives decoded text instead of lines. */
  constructor (lenient: boolean, onLine: (line: string, number: number) => void, onText?: (utf8: string) => void) {
    this.#lenient = lenient
    this.#onLine = onLine
    this.#onText = onText
  }

  get isUtf8 (): boolean { return this.#utf8 }

  write (chunk: Uint8Array): void {
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (this.#start !== undefined) {
      // Hold the first three bytes until we know whether they are a BOM.
      this.#start = Buffer.concat([this.#start, bytes])
      if (this.#start.length < BOM.length) return
      bytes = this.#start.subarray(0, 3).equals(BOM) ? this.#start.subarray(3) : this.#start
      this.#start = undefined
    }
    this.#take(bytes)
  }

  #take (bytes: Buffer): void {
    if (bytes.includes(0)) throw new Error('is not text (it contains NUL bytes)')
    let text: string | undefined
    if (this.#utf8) {
      try {
        text = this.#validator.decode(bytes, { stream: true })
      } catch {
        if (!this.#lenient) throw new Error('is not UTF-8 text')
        this.#utf8 = false
      }
    }
    if (this.#onText !== undefined) { if (text !== undefined) this.#onText(text); return }
    this.#lines(bytes.toString('latin1'))
  }

  #lines (text: string): void {
    const lines = (this.#partial + text).split('\n')
    this.#partial = lines.pop() ?? ''
    // A line longer than any real one is not worth keeping whole.
    if (this.#partial.length > MAX_LINE) this.#partial = this.#partial.slice(0, MAX_LINE)
    // Every line, not only one carried over from a chunk: the line readers' patterns then work on at most MAX_LINE.
    for (const line of lines) this.#onLine((line.length > MAX_LINE ? line.slice(0, MAX_LINE) : line).replace(/\r$/, ''), ++this.#lineNumber)
  }

  end (): void {
    if (this.#start !== undefined) { const start = this.#start; this.#start = undefined; this.#take(start) }
    if (this.#utf8) {
      try {
        this.#validator.decode()
      } catch {
        if (!this.#lenient) throw new Error('is not UTF-8 text (it ends inside a character)')
        this.#utf8 = false
      }
    }
    if (this.#partial !== '') this.#onLine(this.#partial, ++this.#lineNumber)
    this.#partial = ''
  }

  /** A Latin-1-carried string decoded with the file's encoding. */
  decode (carried: string): string {
    const bytes = Buffer.from(carried, 'latin1')
    return this.#utf8 ? bytes.toString('utf8') : WINDOWS_1252.decode(bytes)
  }

  /** The note for a file that is 8-bit text rather than UTF-8. */
  encodingNote (path: string): string | undefined {
    return this.#utf8 ? undefined : encodingNote(path)
  }
}

/** Text files; subclasses see whole lines (carried in Latin-1, see TextStream). */
class TextInspector extends BaseInspector {
  protected readonly stream: TextStream

  constructor (path: string, lenient = false) {
    super(path)
    this.stream = new TextStream(lenient, (line, n) => { this.line(line, n) }, this.wantsText() ? (text) => { this.text(text) } : undefined)
  }

  protected override consume (chunk: Uint8Array): void {
    this.stream.write(chunk)
  }

  protected finish (): void {
    this.stream.end()
    const note = this.stream.encodingNote(this.path)
    if (note !== undefined) this.notes.push(note)
    this.done()
  }

  /** True to receive decoded UTF-8 text in `text()` rather than lines. */
  protected wantsText (): boolean { return false }
  protected text (_text: string): void {}
  protected line (_line: string, _number: number): void {}
  protected done (): void {}
}

/**
 * Characters of names a text file's references may keep in all (100,000
 * names of 160 characters): a line is cut at 64 KB, so a count alone would
 * let a file keep gigabytes.
 */
const MAX_NAMED_CHARS = 16 * 1024 * 1024

/**
 * The distinct names an OBJ or MTL file gives, within MAX_NAMED_FILES names
 * and MAX_NAMED_CHARS characters (as a glTF's named files are): each line
 * kept as written held ~10 times its bytes (8 M `mtllib` lines of 104 MB
 * took 984 MB, found by review). Past the caps names are not kept, and
 * `capped` says so for the report.
 */
class NameBudget {
  #names = 0
  #chars = 0
  capped = false

  /** Adds `name` to `set` unless it is there, or the budget is spent. */
  add (set: Set<string>, name: string): void {
    if (set.has(name)) return
    if (this.#names >= MAX_NAMED_FILES || this.#chars + name.length > MAX_NAMED_CHARS) { this.capped = true; return }
    this.#names++
    this.#chars += name.length
    // A copy (names are carried in Latin-1): a name cut from a line may hold the whole chunk of text it was cut from.
    set.add(Buffer.from(name, 'latin1').toString('latin1'))
  }

  /** The note for a file past the caps. */
  note (path: string, what: string): string[] {
    return this.capped ? [`${path} names more than ${MAX_NAMED_FILES.toLocaleString('en')} ${what} (or more than ${MAX_NAMED_CHARS / 1024 / 1024} M characters of names), more than Heimdall checks: the others were not looked for`] : []
  }
}

/** Wavefront OBJ: 8-bit text; `mtllib` names its material libraries. */
class ObjInspector extends TextInspector {
  readonly #libraries = new Set<string>()
  readonly #budget = new NameBudget()

  constructor (path: string) { super(path, true) }

  protected override line (line: string): void {
    // On the trimmed line: a lazy (.+?)\s*$ retried through a run of spaces (60 KB held the server 4.6 s).
    const match = /^mtllib\s+(.+)$/.exec(line.trim())
    if (match?.[1] !== undefined) this.#budget.add(this.#libraries, match[1])
  }

  /**
   * As OBJSerializer.cpp reads `mtllib`: the rest of the line is one name
   * (spaces included), and "any path part" of it is thrown away: the library
   * is fetched from beside the OBJ by its file name.
   */
  protected override done (): void {
    for (const written of [...this.#libraries].map((name) => this.stream.decode(name))) {
      if ((written.match(/\.mtl\b/gi) ?? []).length > 1) {
        this.notes.push(`${this.path}: "mtllib ${written}" names several libraries; Overte reads the whole line as one file name, so it loads none: name one .mtl per OBJ`)
        continue
      }
      const name = baseNameOf(written.replaceAll('\\', '/'))
      if (name !== written) this.notes.push(`${this.path}: Overte loads material library "${written}" as "${name}" beside the OBJ (it drops the folder): put the .mtl there and name it "mtllib ${name}"`)
      this.reference(name, 'material library', 'warning')
    }
    this.notes.push(...this.#budget.note(this.path, 'material libraries'))
  }
}

/** The maps Overte's OBJ reader reads (OBJSerializer.cpp, parseMaterialLibrary); others it never loads, so they are not checked. */
const MTL_MAPS = /^(map_Kd|map_Ke|map_Ks|map_d|map_bump|bump)\s+(.+)$/ // on the trimmed line
/** What Blender writes for a normal map, which Overte's reader does not read (its keys are case-sensitive). */
const MTL_CAPITAL_BUMP = /^map_Bump\s/
/** A number matches one way only (\d+\.?\d* split a run of digits every way it could). */
const MTL_OPTIONS = /^(?:-[a-z_]+(?:\s+(?:on|off|[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?))*\s+)*/i
/** The one option whose value Overte's reader consumes in a release build (parseTextureLine); any other's values become part of the name. */
const BUMP_MULTIPLIER = /^-bm\s+[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?\s+/i

/** Wavefront MTL: 8-bit text; `map_*` lines name textures, after any options. */
class MtlInspector extends TextInspector {
  readonly #maps = new Set<string>()
  readonly #optioned = new Set<string>()
  readonly #tga = new Set<string>()
  /** One budget for the three sets: a name is in one of them, or in #maps and #optioned. */
  readonly #budget = new NameBudget()
  #capitalBump = false

  constructor (path: string) { super(path, true) }

  protected override line (line: string): void {
    if (MTL_CAPITAL_BUMP.test(line.trim())) { this.#capitalBump = true; return }
    const match = MTL_MAPS.exec(line.trim())
    if (match?.[2] === undefined) return
    const written = match[2]
    const target = written.replace(MTL_OPTIONS, '').trim()
    if (target === '') return
    if (written.replace(BUMP_MULTIPLIER, '').trim() !== target) this.#budget.add(this.#optioned, target)
    // Overte skips a name ending in ".tga" exactly (OBJSerializer.cpp, filename.endsWith(".tga")): ".TGA" it asks for.
    if (target.endsWith('.tga')) this.#budget.add(this.#tga, target)
    else this.#budget.add(this.#maps, target)
  }

  protected override done (): void {
    // One warning per texture, however many maps name it.
    for (const target of this.#maps) this.reference(this.stream.decode(target), 'texture', 'warning', { rule: 'obj-texture' })
    for (const target of this.#optioned) this.notes.push(`${this.path}: the options before texture "${this.stream.decode(target)}" are read by Overte as part of its file name (it reads only -bm), so it will not load: remove them`)
    for (const target of this.#tga) this.notes.push(`${this.path}: texture "${this.stream.decode(target)}" is a .tga, which Overte's OBJ reader skips: use PNG or JPEG`)
    this.notes.push(...this.#budget.note(this.path, 'textures'))
    if (this.#capitalBump) this.notes.push(`${this.path}: Overte's OBJ reader does not read "map_Bump" lines (it reads "map_bump" and "bump"), so that normal map is not loaded: write the key in lower case`)
  }
}

/**
 * Overte avatar descriptor. Overte reads it as bytes, line by line
 * (FSTReader.cpp, parseMapping), never refusing an encoding: UTF-8, else
 * 8-bit text read as Windows-1252 with a note, as for OBJ. A BOM is not
 * skipped there: it becomes part of the first line's key, which is then
 * lost, and so it is here (with a note saying so).
 */
class FstInspector extends BaseInspector {
  #chunks: Buffer[] = []
  #bytes = 0
  #facts: FstFacts | undefined

  protected override facts (): Partial<FileReport> { return this.#facts === undefined ? {} : { fst: this.#facts } }

  protected override consume (chunk: Uint8Array): void {
    this.#bytes += chunk.byteLength
    if (this.#bytes > MAX_FST_BYTES) throw new Error(`is larger than ${MAX_FST_BYTES} bytes, which no avatar descriptor is`)
    this.#chunks.push(Buffer.from(chunk))
  }

  protected finish (): void {
    const raw = Buffer.concat(this.#chunks)
    this.#chunks = []
    if (raw.includes(0)) throw new Error('is not text (it contains NUL bytes)')
    let text: string
    try {
      text = FST_UTF8.decode(raw)
    } catch {
      text = WINDOWS_1252.decode(raw)
      this.notes.push(encodingNote(this.path))
    }
    // Only a first line Overte would have read is lost (a comment or a blank line is skipped either way).
    const first = parseFst(text.startsWith('\uFEFF') ? text.slice(1).split(/\r?\n/)[0] ?? '' : '').entries[0]
    if (first !== undefined) {
      this.notes.push(`${this.path} starts with a byte order mark (BOM), which Overte reads as part of its first line's key ("${first.key}"), so that line is lost: save it as UTF-8 without a BOM`)
    }
    this.#read(text)
  }

  #read (text: string): void {
    const fst = parseFst(text)
    const baseUrl = fst.get('baseURL')
    const jointMap: Record<string, string> = {}
    for (const entry of fst.all('jointMap')) if (entry.sub !== undefined) jointMap[entry.sub] = entry.value
    this.#facts = {
      path: this.path,
      filename: urlPath(fst.get('filename')),
      texdir: urlPath(fst.get('texdir')),
      baseURL: baseUrl,
      scale: fstScale(fst.get('scale')),
      jointMap,
      blendshapes: fst.all('bs').flatMap((e) => e.sub === undefined ? [] : [e.sub])
    }
    if (baseUrl !== undefined && baseUrl !== '' && hasScheme(baseUrl)) {
      this.notes.push(`${this.path} sets baseURL = ${baseUrl}: its relative paths load from there, not from this upload`)
      return
    }
    // Every relative name resolves against fstUrl.resolved(baseURL), as Overte's ModelCache and FSTReader do.
    const base = fstBaseDir(this.path, baseUrl)
    if (base === undefined) {
      this.notes.push(`${this.path} sets baseURL = ${baseUrl ?? ''}, which leads out of this upload: its model and textures are not looked for here`)
      return
    }
    const from = { base }
    // Every name is a URL resolved against the base (QUrl::resolved): a query or fragment is not part of the file's
    // name, %20 is a space, and a name with a scheme (http:, atp:, file:) is not in the upload at all.
    const filename = fst.get('filename')
    if (filename === undefined || filename === '') {
      this.notes.push(`${this.path} names no model (no "filename" line)`)
    } else if (!isUrl(filename)) {
      this.reference(urlPath(filename) ?? filename, 'model file', 'error', { ...from, written: fetchedName(filename) })
    }
    const texdir = fst.get('texdir')
    if (texdir !== undefined && texdir !== '' && !isUrl(texdir)) this.reference(urlPath(texdir) ?? texdir, 'texture folder', 'warning', { ...from, folder: true, written: fetchedName(texdir) })
    for (const script of fst.all('script')) {
      // FSTReader::getScripts drops a leading slash: `/scripts/a.js` is scripts/a.js beside the .fst.
      if (script.value !== '' && !isUrl(script.value)) this.reference(urlPath(script.value.replace(/^\/+/, '')) ?? script.value, 'script', 'warning', { ...from, written: fetchedName(script.value) })
    }
    const animGraph = fst.get('animGraphUrl')
    if (animGraph !== undefined && animGraph !== '' && !isUrl(animGraph)) this.reference(urlPath(animGraph) ?? animGraph, 'animation graph', 'warning', { ...from, written: fetchedName(animGraph) })
    this.#materialMap(fst, from)
  }

  /**
   * `materialMap`: JSON on one line, an object (or an array of them) from
   * mesh parts to materials (ParseMaterialMappingTask.cpp). A name is a
   * material file, resolved as the other names are, `#name` picking one of
   * its materials; an object is a material written inline, whose textures
   * resolve the same way. Overte splits every line of a .fst at `=`, so a
   * map with one in it is lost; JSON it cannot parse it ignores.
   */
  #materialMap (fst: FstDocument, from: { base: string }): void {
    // The last line wins, as for every key.
    const line = fst.all('materialMap').at(-1)
    if (line === undefined) return
    if (line.sub !== undefined) {
      this.notes.push(`${this.path}: its materialMap has an "=" in it, and Overte's .fst reader splits such a line there (only name, filename, texdir, script, waitForWearables and comment may hold one), so it loses the whole map: move what needs the "=" (a URL's query) into a material .json file`)
      return
    }
    if (line.value === '') return
    let map: unknown
    try { map = JSON.parse(line.value) } catch {
      this.notes.push(`${this.path}: its materialMap is not JSON on one line, so Overte ignores it`)
      return
    }
    if (typeof map !== 'object' || map === null) {
      this.notes.push(`${this.path}: its materialMap is not a JSON object (or an array of them), so Overte ignores it`)
      return
    }
    for (const mapping of Array.isArray(map) ? map : [map]) {
      if (typeof mapping !== 'object' || mapping === null) continue
      for (const [part, value] of Object.entries(mapping as Record<string, unknown>)) {
        if (typeof value === 'string') this.#material(part, value, from)
        else if (typeof value === 'object' && value !== null && !('scattering' in value) && !('scatteringMap' in value)) {
          for (const texture of new Set(materialTextureNames(value))) this.#named(texture, 'material texture', from)
        }
      }
    }
  }

  /** A material file a materialMap names for `part`. */
  #material (part: string, value: string, from: { base: string }): void {
    if (value === '' || hasScheme(value)) return
    // ProceduralMaterialCache.cpp: only a URL with ".json" in it (as written, letter case included) gives materials.
    if (!value.includes('.json')) this.notes.push(`${this.path}: materialMap "${part}" names "${value}", but Overte reads materials only from a file whose name has ".json" in it (in lower case)`)
    this.#named(value, 'material', from)
  }

  /** A name the .fst's materialMap gives (a material file, or an inline material's texture), fetched as a URL relative to the .fst. */
  #named (value: string, what: string, from: { base: string }): void {
    if (value === '' || hasScheme(value)) return
    if (value.startsWith('/')) {
      this.notes.push(`${this.path}: ${what} "${value}" in its materialMap starts with "/", which Overte resolves from the server's root, not from the .fst's folder: drop the leading /`)
      return
    }
    const written = fetchedName(value)
    this.reference(safeDecode(written), what, 'warning', { ...from, written })
  }
}

/** Far more nodes than Overte's default avatar graph (~100), and far larger than its file (~100 kB). */
const MAX_ANIMATION_NODES = 10_000
const MAX_OVERTE_JSON_BYTES = 4 * 1024 * 1024
/** How deep an animation graph's `children` are followed: no real graph reaches it. */
const MAX_ANIMATION_DEPTH = 23
/** More materials than any material file holds. */
const MAX_MATERIALS = 10_000

/** What Overte does not load in a glTF, from its extension lists. */
function gltfExtensionNotes (path: string, extensions: Iterable<string>): string[] {
  return [...new Set(extensions)].flatMap((name) => {
    const why = GLTF_EXTENSIONS_OVERTE_IGNORES[name]
    return why === undefined ? [] : [`${path} uses ${name}: ${why}`]
  })
}

/** How a refusal of a file's JSON begins: before a syntax error's message, and before a limit's. */
interface JsonRefusal { invalid: string, limited: string }
const TEXT_JSON: JsonRefusal = { invalid: 'is not valid JSON: it', limited: 'is not JSON Heimdall accepts: it' }
const GLB_JSON: JsonRefusal = { invalid: 'is binary glTF whose JSON chunk is not valid JSON: it', limited: 'is binary glTF whose JSON chunk' }

/** The mismatch for JSON the reader refused, worded for the file it came from. */
function jsonMismatch (err: unknown, refusal: JsonRefusal): Error {
  const message = err instanceof Error ? err.message : String(err)
  return new Error(`${err instanceof JsonLimitError ? refusal.limited : refusal.invalid} ${message}`, { cause: err })
}

/**
 * Where a value of an Overte animation graph sits: `root` and its
 * `children` to MAX_ANIMATION_DEPTH, each node's `type` or `data.url`
 * (AnimNodeLoader.cpp). The node is named by the keys down to it.
 */
function animationField (path: JsonPath): { node: string, field: 'type' | 'url' } | undefined {
  // The last keys first: most strings are neither, and the walk below is as long as the path.
  const last = path.length - 1
  const field = path[last] === 'type' ? 'type' : path[last] === 'url' && path[last - 1] === 'data' ? 'url' : undefined
  const end = field === 'url' ? last - 1 : last
  if (field === undefined || path[0] !== 'root' || end > 1 + 2 * MAX_ANIMATION_DEPTH) return undefined
  let at = 1
  while (at < end && path[at] === 'children' && typeof path[at + 1] === 'number') at += 2
  return at === end ? { node: path.slice(0, at).join('.'), field } : undefined
}

/**
 * JSON other than glTF, read as it streams: valid JSON is all it must be.
 * Within its first MAX_OVERTE_JSON_BYTES it may be an Overte animation
 * graph (its clips name files) or a material file (its materials name
 * textures), so those parts are kept: a node's type and data.url, a
 * material's model and texture keys. Nothing else is held.
 */
class JsonInspector extends TextInspector {
  readonly #stream = new JsonReader({
    open: (path, kind) => {
      if (path[0] !== 'materials' || !this.#overte) return
      if (path.length === 1) this.#materialsKind = kind
      this.#materialValue(path, {})
    },
    value: (path, value, length) => { if (this.#overte) this.#overteValue(path, value, length) }
  })

  /** Whether the animation graph and material parts are still gathered (the file is within MAX_OVERTE_JSON_BYTES). */
  #overte = true
  readonly #animationNodes = new Map<string, { type?: string, url?: string }>()
  #materialsKind: 'object' | 'array' | undefined
  /** The materials' kept keys, by index (one entry, -1, for `materials` written as one object). */
  readonly #materials = new Map<number, Record<string, unknown>>()

  protected override wantsText (): boolean { return true }

  protected override text (text: string): void {
    if (this.#overte && this.size > MAX_OVERTE_JSON_BYTES) {
      // No graph or material file is this large: what was gathered is dropped.
      this.#overte = false
      this.#animationNodes.clear()
      this.#materials.clear()
    }
    try { this.#stream.write(text) } catch (err) { throw jsonMismatch(err, TEXT_JSON) }
  }

  #overteValue (path: JsonPath, value: JsonPrimitive, length: number): void {
    // A name longer than MAX_JSON_STRING arrives cut: no real one is that long, and a cut one names nothing.
    const cut = typeof value === 'string' && length > value.length
    const animation = typeof value === 'string' && !cut ? animationField(path) : undefined
    if (animation !== undefined && typeof value === 'string') {
      const node = this.#animationNodes.get(animation.node)
      if (node === undefined && this.#animationNodes.size >= MAX_ANIMATION_NODES) return
      const entry = node ?? {}
      entry[animation.field] = value
      this.#animationNodes.set(animation.node, entry)
      return
    }
    // A cut model is kept (it names no known model); a cut texture name names no file.
    this.#materialValue(path, cut && path[path.length - 1] !== 'model' ? null : value)
  }

  /**
   * materials.key[.url] for one material, materials.i.key[.url] for a list
   * of them: a material's model and its texture names, whatever their type
   * (materialTextureNames reads only strings), the last one written winning.
   * An object or array there is `{}` (its url may follow).
   */
  #materialValue (path: JsonPath, value: JsonPrimitive | Record<string, never>): void {
    if (path[0] !== 'materials') return
    if (path.length === 1) { this.#materials.clear(); return } // `materials` written again, or not a list or object
    const index = typeof path[1] === 'number' ? path[1] : -1
    const at = index === -1 ? 1 : 2
    const key = path[at]
    const isUrl = path.length === at + 2 && path[at + 1] === 'url'
    if (typeof key !== 'string' || (path.length !== at + 1 && !isUrl)) return
    if (key === 'model' ? isUrl : !MATERIAL_TEXTURE_KEY_NAMES.has(key)) return
    let material = this.#materials.get(index)
    if (material === undefined) {
      if (this.#materials.size >= MAX_MATERIALS) return
      material = {}
      this.#materials.set(index, material)
    }
    material[key] = isUrl ? { url: value } : value
  }

  protected override done (): void {
    if (this.size === 0) throw new Error('is empty, which is not JSON')
    try { this.#stream.end() } catch (err) { throw jsonMismatch(err, TEXT_JSON) }
    // AnimNodeLoader.cpp, loadClipNode: a clip's data.url, resolved against the graph's own URL, read as a URL (its query
    // and fragment not part of the file, its escapes decoded, as QUrl::path() is: idle%2Efbx is an .fbx).
    const clips = new Set([...this.#animationNodes.values()].flatMap(({ type, url }) => type === 'clip' && url !== undefined && url !== '' ? [url] : []))
    for (const url of clips) {
      const written = fetchedName(url)
      if (!hasScheme(url)) this.reference(safeDecode(written), 'animation', 'warning', { written })
      // AnimationCache.cpp, AnimationReader::run: a clip is read only when its URL's path ends in .fbx (any case).
      if (!safeDecode(written).toLowerCase().endsWith('.fbx')) this.notes.push(`${this.path}: animation clip "${url}" is not FBX, and Overte plays only .fbx clips: this animation will not play; export it as FBX`)
    }
    // ProceduralMaterialCache.cpp: a material file's textures resolve against the file's own URL; checked when a materialMap names the file.
    const materials = this.#materialsKind === 'object' ? this.#materials.get(-1) : this.#materialsKind === 'array' ? [...this.#materials.entries()].filter(([i]) => i >= 0).map(([, m]) => m) : undefined
    for (const texture of new Set(materialTextureNames({ materials }))) {
      if (texture.startsWith('/') || hasScheme(texture)) continue
      const written = fetchedName(texture)
      this.reference(safeDecode(written), 'material texture', 'warning', { written, ifMaterial: true })
    }
  }
}

/**
 * What a glTF's JSON (a .gltf, or a GLB's JSON chunk) adds to its report:
 * notes on extensions Overte ignores and on meshes it cannot load, the
 * files it names beside it (Overte fetches them; a buffer it cannot read
 * fails the whole model), and the summary when it was kept whole.
 */
function gltfFindings (path: string, json: GltfJson, readsGlbImages: boolean, notes: string[], reference: (target: string, what: string, severity: Reference['severity'], extra: Partial<Reference>) => void): GltfSummary | undefined {
  notes.push(...gltfExtensionNotes(path, json.extensions), ...gltfTextureNotes(path, json, readsGlbImages))
  // A buffer Overte cannot read fails the whole model (GLTFSerializer.cpp, readBinary); an image it cannot fetch leaves
  // its texture blank and the model loads (an image named only by an extension it ignores, KHR_texture_basisu's
  // .ktx2, is never asked for): a missing buffer refuses the upload, a missing image is a warning.
  for (const { uri, byteLength } of json.buffers) {
    if (uri !== undefined && uri !== '' && !hasScheme(uri)) reference(safeDecode(uri), 'buffer', 'error', { written: uri, ...(byteLength === undefined ? {} : { size: byteLength }) })
  }
  for (const uri of new Set(json.imageUris)) {
    if (uri !== '' && !hasScheme(uri)) reference(safeDecode(uri), 'image', 'warning', { written: uri })
  }
  if (json.doc === undefined) {
    notes.push(`${path}: its JSON describes more nodes, meshes and accessors than Heimdall summarises (past ${MAX_KEPT_BYTES / 1024 / 1024} MB of them), so it has no avatar report and its meshes were not checked for indices`)
    return undefined
  }
  notes.push(...gltfGeometryNotes(path, json.doc))
  return summarizeGltf(json.doc)
}

/**
 * Textures Overte's GLTFSerializer (getHFMTexture, with the cgltf 1.13 it
 * builds with, which leaves EXT_texture_webp to it) does not load:
 * - in a .glb it takes every image from its buffer view, and an image given
 *   by a uri has none: it reads through a null pointer (the client may
 *   crash). Valid glTF 2.0, written by converters that keep images apart.
 * - a texture given only by EXT_texture_webp (Blender's WebP images) is found
 *   when the file has two images or more: it tests `source.isDouble()`,
 *   which is 1, against the image count, so with one image it keeps the
 *   texture's own `source`, which such a texture has not.
 */
function gltfTextureNotes (path: string, json: GltfJson, readsGlbImages: boolean): string[] {
  const notes: string[] = []
  if (readsGlbImages && json.imageByUri !== undefined) {
    notes.push(`${path}: image "${json.imageByUri}" is given by a uri, not stored in the GLB: Overte reads every image of a .glb from the GLB itself and fails on this one (the client may crash); store the images in the GLB (Blender: glTF Binary export), or upload the model as .gltf with its images beside it`)
  }
  if (json.webpOnlyTextures > 0 && json.images === 1) {
    notes.push(`${path}: its texture is WebP only (EXT_texture_webp, no PNG or JPEG source), and Overte finds a WebP texture only in a file of two images or more: the model will be untextured in Overte; use a PNG or JPEG texture`)
  }
  return notes
}

/** A .gltf: JSON, read as it streams by GltfJsonReader, which keeps only what the checks and the summary use. */
class GltfInspector extends TextInspector {
  readonly #reader = new GltfJsonReader()
  #summary: GltfSummary | undefined

  protected override wantsText (): boolean { return true }

  protected override text (text: string): void {
    try { this.#reader.write(text) } catch (err) { throw jsonMismatch(err, TEXT_JSON) }
  }

  protected override done (): void {
    if (this.size === 0) throw new Error('is empty, which is not JSON')
    let json: GltfJson
    try { json = this.#reader.end() } catch (err) { throw jsonMismatch(err, TEXT_JSON) }
    if (!(typeof json.version === 'string' && /^2\.\d+$/.test(json.version))) {
      throw new Error(`is not glTF 2.x (asset.version is ${JSON.stringify(json.version ?? null)})`)
    }
    this.#summary = gltfFindings(this.path, json, false, this.notes, (target, what, severity, extra) => { this.reference(target, what, severity, extra) })
  }

  protected override facts (): Partial<FileReport> { return this.#summary === undefined || this.mismatch !== undefined ? {} : { gltf: this.#summary } }
}

/** A GLB's JSON chunk larger than this is not read: exporters write a few MB at most. */
const MAX_GLB_JSON = 64 * 1024 * 1024
const GLB_HEADER = 20
const GLB_JSON_CHUNK = 0x4e4f534a

/** Binary glTF: the header, then the JSON chunk, read as it streams (GltfJsonReader) and never held whole. */
class GlbInspector extends BaseInspector {
  /** The file header and the first chunk's header, until all 20 bytes are here. */
  #header = Buffer.alloc(0)
  #reader: GltfJsonReader | undefined
  /** Not dropping a BOM: the JSON chunk must not have one (glTF 2.0, 4.4.3.2), and JSON.parse refused it before. */
  readonly #decoder = new TextDecoder('utf-8', { ignoreBOM: true })
  /** Bytes of the JSON chunk still to come. */
  #jsonLeft = 0
  #jsonLength = 0
  #summary: GltfSummary | undefined

  protected override facts (): Partial<FileReport> { return this.#summary === undefined ? {} : { gltf: this.#summary } }

  protected override consume (chunk: Uint8Array): void {
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (this.#header.length < GLB_HEADER) {
      const take = GLB_HEADER - this.#header.length
      this.#header = Buffer.concat([this.#header, bytes.subarray(0, take)])
      bytes = bytes.subarray(take)
      if (this.#header.length < GLB_HEADER) return
      this.#begin()
    }
    if (this.#reader === undefined || this.#jsonLeft === 0 || bytes.length === 0) return
    const json = bytes.subarray(0, this.#jsonLeft)
    this.#jsonLeft -= json.length
    this.#read(this.#decoder.decode(json, { stream: this.#jsonLeft > 0 }))
  }

  /** With the headers here: whether there is a JSON chunk to read, and how long. */
  #begin (): void {
    const header = this.#header
    const problem = glb(header, this.size)
    if (problem !== undefined) throw new Error(problem)
    const length = header.readUInt32LE(12)
    if (length === 0 || header.readUInt32LE(16) !== GLB_JSON_CHUNK) return
    if (length > MAX_GLB_JSON) {
      this.notes.push(`${this.path}: its JSON chunk is ${length} bytes, more than Heimdall reads (${MAX_GLB_JSON / 1024 / 1024} MB), so its extensions, external files and meshes were not checked`)
      return
    }
    this.#reader = new GltfJsonReader()
    this.#jsonLeft = length
    this.#jsonLength = length
  }

  #read (text: string): void {
    try { this.#reader?.write(text) } catch (err) { throw jsonMismatch(err, GLB_JSON) }
  }

  protected finish (): void {
    const problem = glb(this.head, this.size)
    if (problem !== undefined) throw new Error(problem)
    if (this.#reader === undefined) return
    if (this.#jsonLeft > 0) throw new Error(`is binary glTF cut short: its JSON chunk is ${this.#jsonLength} bytes, and the file ends ${this.#jsonLeft} bytes before its end`)
    let json: GltfJson
    try { json = this.#reader.end() } catch (err) { throw jsonMismatch(err, GLB_JSON) }
    // Overte's test for a GLB's own images, as it makes it (not .vrm, nor .GLB), on the URL it reads a gzipped model by.
    const url = isGzippedModel(this.path) ? this.path.slice(0, -'.gz'.length) : this.path
    this.#summary = gltfFindings(this.path, json, url.endsWith('glb'), this.notes, (target, what, severity, extra) => { this.reference(target, what, severity, extra) })
  }
}

function safeDecode (uri: string): string {
  try { return decodeURIComponent(uri) } catch { return uri }
}

/** A relative URL as the path of the file it fetches: without its query and fragment, percent-decoded. */
function urlPath (url: string | undefined): string | undefined {
  return url === undefined || url === '' || isUrl(url) ? url : safeDecode(fetchedName(url))
}

/** UTF-8, a BOM kept (Overte does not skip it in an .fst). */
const FST_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

const TEXTURE_EXTENSIONS = new Set(['png', 'jpg', 'jpeg', 'tga', 'ktx', 'ktx2', 'webp', 'bmp', 'tif', 'tiff', 'dds', 'psd', 'gif', 'exr', 'hdr'])
const FBX_BINARY_MAGIC = Buffer.from('Kaydara FBX Binary  \0', 'latin1')

/**
 * FBX, binary (`Kaydara FBX Binary`) or ASCII (8-bit text, a BOM allowed).
 * Read node by node as it streams (fbx-reader.ts); each texture a Texture
 * node names becomes one reference, looked up as Overte does (by base name
 * in the texture base), unless the file embeds it.
 */
class FbxInspector extends BaseInspector {
  #start = Buffer.alloc(0)
  /** A note that holds for an ASCII FBX only (Overte knows a binary one by its signature), and only as a model (AnimationReader reads a clip as FBX whatever its name). */
  #asciiNote: string | undefined
  #binary: BinaryFbxReader | undefined
  #ascii: { reader: AsciiFbxReader, stream: TextStream } | undefined
  #summary: FbxSummary | undefined

  protected override consume (chunk: Uint8Array): void {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (this.#binary !== undefined) { this.#binary.write(bytes); return }
    if (this.#ascii !== undefined) { this.#ascii.stream.write(bytes); return }
    this.#start = Buffer.concat([this.#start, bytes])
    if (this.#start.length >= 4096) this.#begin()
  }

  /** Decides binary or ASCII from the first bytes, then hands everything held on. */
  #begin (): void {
    const start = this.#start
    this.#start = Buffer.alloc(0)
    if (start.length >= 27 && start.subarray(0, FBX_BINARY_MAGIC.length).equals(FBX_BINARY_MAGIC)) {
      const version = start.readUInt32LE(23)
      if (version < 6000 || version > 10000) throw new Error(`is binary FBX with an unknown version (${version})`)
      this.#binary = new BinaryFbxReader(version)
      this.#binary.write(start.subarray(27))
      return
    }
    const text = (start.subarray(0, 3).equals(BOM) ? start.subarray(3) : start).toString('latin1')
    if (!/^\s*;\s*FBX|FBXHeaderExtension\s*:/.test(text)) throw new Error('is not FBX (neither the binary header nor an ASCII FBX header)')
    const reader = new AsciiFbxReader()
    this.#ascii = { reader, stream: new TextStream(true, (line) => { reader.line(line) }) }
    this.#ascii.stream.write(start)
  }

  protected override facts (): Partial<FileReport> {
    return { ...(this.#summary === undefined ? {} : { fbx: this.#summary }), ...(this.#asciiNote === undefined || this.#ascii === undefined ? {} : { modelNotes: [this.#asciiNote] }) }
  }

  unlessBinary (note: string): void { this.#asciiNote = note }

  protected finish (): void {
    if (this.#binary === undefined && this.#ascii === undefined) {
      if (this.#start.length < 27 && !/;\s*FBX/.test(this.#start.toString('latin1'))) throw new Error('is too short to be FBX')
      this.#begin()
    }
    let summary: FbxSummary
    if (this.#binary !== undefined) {
      summary = this.#binary.end()
    } else if (this.#ascii !== undefined) {
      const { reader, stream } = this.#ascii
      stream.end()
      const note = stream.encodingNote(this.path)
      if (note !== undefined) this.notes.push(note)
      summary = reader.end()
      // Names were carried in Latin-1 until the encoding was known: decode them all the same way.
      summary.textures = summary.textures.map((t) => stream.decode(t))
      summary.embedded = summary.embedded.map((e) => ({ ...e, name: stream.decode(e.name) }))
      summary.joints = summary.joints.map((j) => stream.decode(j))
      summary.blendshapes = summary.blendshapes.map((b) => stream.decode(b))
    } else {
      throw new Error('is too short to be FBX')
    }
    this.#summary = summary
    // Overte takes a texture's content from the Video whose RelativeFilename matches (FBXSerializer_Material.cpp, getTexture).
    const embedded = new Set(summary.embedded.map((e) => e.name.replaceAll('\\', '/')))
    const seen = new Set<string>()
    for (const name of summary.textures) {
      const key = name.replaceAll('\\', '/')
      if (seen.has(key)) continue
      seen.add(key)
      if (name === '' || isHttp(name) || embedded.has(key) || !TEXTURE_EXTENSIONS.has(extensionOf(key))) continue
      this.reference(name, 'texture', 'warning', { rule: 'fbx-texture' })
    }
  }
}

/** Extensions accepted without a content check (glTF buffers are any bytes). */
class AnyBytesInspector extends BaseInspector {
  protected finish (): void {}
}

/** What a gzipped model may expand to: Overte inflates it whole in memory before reading it, and inflating happens on the event loop here (a deflate bomb of 256 KiB reaches this in ~1 s). */
export const MAX_GUNZIPPED_BYTES = 256 * 1024 * 1024
/** Past its first 8 MiB, a gzipped model may expand at most this many times: models compress 2–20×, deflate bombs 1000× (each costing event-loop time as it inflates). */
export const MAX_GUNZIP_RATIO = 200
const GUNZIP_RATIO_FROM = 8 * 1024 * 1024
/** Input is inflated in pieces this long, so that a limit stops a bomb within a few MB of output, not a 64 KiB chunk's worth (66 MB). */
const GUNZIP_PIECE = 4096

/** A gzipped file's own fault, said as it stands (fflate's errors are translated). */
class GzipRefusal extends Error {}

/**
 * What an upload's gzipped files may expand to together (MAX_GUNZIPPED_BYTES
 * by default): the cap holds per upload, not per file, so that a bundle of
 * many gzipped models costs no more than one at the cap.
 */
export interface GunzipBudget { left: number }

export const gunzipBudget = (): GunzipBudget => ({ left: MAX_GUNZIPPED_BYTES })

const FHCRC = 0x02
const FEXTRA = 0x04
const FNAME = 0x08
const FCOMMENT = 0x10
const MAX_GZIP_HEADER = 1024 * 1024

/**
 * The length of the gzip header at the start of `head` (RFC 1952), or
 * undefined while more is needed; refuses what zlib refuses (Overte
 * inflates with zlib): another method than deflate, reserved flags, a
 * header CRC that does not match. fflate checks none of these.
 */
function gzipHeaderLength (head: Buffer): number | undefined {
  if (head.length >= 2 && (head[0] !== 0x1f || head[1] !== 0x8b)) throw new GzipRefusal('is not gzip data, though its name ends in .gz')
  if (head.length < 10) return undefined
  if (head[2] !== 8) throw new GzipRefusal(`is compressed with method ${head[2] ?? 0}, not deflate: zlib (and so Overte) reads only deflate`)
  const flags = head[3] ?? 0
  if ((flags & 0xe0) !== 0) throw new GzipRefusal('sets reserved gzip header flags, which zlib (and so Overte) refuses')
  let at = 10
  if ((flags & FEXTRA) !== 0) {
    if (head.length < at + 2) return undefined
    at += 2 + head.readUInt16LE(at)
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if ((flags & flag) === 0) continue
    if (head.length <= at) return undefined
    const zero = head.indexOf(0, at)
    if (zero < 0) return undefined
    at = zero + 1
  }
  if ((flags & FHCRC) !== 0) {
    if (head.length < at + 2) return undefined
    if (head.readUInt16LE(at) !== (crc32(head.subarray(0, at)) & 0xffff)) throw new GzipRefusal('has a gzip header CRC that does not match its header, which zlib (and so Overte) refuses')
    at += 2
  }
  return head.length < at ? undefined : at
}

/**
 * A gzipped model (`avatar.fbx.gz`), which Overte gunzips whole and reads
 * as the model the rest of its name says (see contentExtensionOf): its
 * bytes are inflated as they stream past and handed to that model's
 * inspector, whose report becomes this file's. Checked as Overte's zlib
 * would (RFC 1952): the header, a complete deflate stream, the CRC-32 and
 * length in the trailer, one member only. Inflated with fflate, whose
 * streaming inflate is synchronous like the inspectors (Node's zlib
 * streams are not); it checks neither the trailer nor a second member,
 * which is done here.
 */
class GzipInspector implements FileInspector {
  readonly #path: string
  readonly #inner: FileInspector & { note: (text: string) => void }
  readonly #gunzip: Gunzip
  readonly #budget: GunzipBudget
  readonly #notes: string[] = []
  #failure: string | undefined
  #crc = 0
  #inflated = 0
  #compressed = 0
  /** The header's bytes until it is whole and checked (then undefined). */
  #head: Buffer | undefined = Buffer.alloc(0)
  /** The last 8 bytes seen: the trailer, once the input ends. */
  #tail = Buffer.alloc(0)

  /** The model's own inspector. */
  get inner (): FileInspector & { note: (text: string) => void } { return this.#inner }

  /** `inner` is the model's inspector, made for the same (`.gz`) path so that its findings name this file. */
  constructor (path: string, inner: FileInspector & { note: (text: string) => void }, budget: GunzipBudget) {
    this.#path = path
    this.#inner = inner
    this.#budget = budget
    this.#gunzip = new Gunzip((data) => {
      this.#inflated += data.byteLength
      this.#budget.left -= data.byteLength
      if (this.#inflated > MAX_GUNZIPPED_BYTES) throw new GzipRefusal(`expands to more than ${MAX_GUNZIPPED_BYTES} bytes, which Overte would hold in memory at once`)
      if (this.#budget.left < 0) throw new GzipRefusal(`expands, with the upload's other gzipped files, to more than ${MAX_GUNZIPPED_BYTES} bytes in all`)
      if (this.#inflated > GUNZIP_RATIO_FROM && this.#inflated > MAX_GUNZIP_RATIO * this.#compressed) throw new GzipRefusal(`expands more than ${MAX_GUNZIP_RATIO} times, as deflate bombs do and models do not`)
      this.#crc = crc32(data, this.#crc)
      inner.write(data)
    })
    this.#gunzip.onmember = () => { throw new GzipRefusal('holds more than one gzip member, and Overte reads only the first') }
  }

  write (chunk: Uint8Array): void {
    this.#tail = Buffer.concat([this.#tail, chunk.subarray(Math.max(0, chunk.byteLength - 8))]).subarray(-8)
    if (this.#failure !== undefined) return
    try {
      if (this.#head !== undefined) {
        this.#head = Buffer.concat([this.#head, chunk.subarray(0, MAX_GZIP_HEADER + 1 - this.#head.length)])
        if (gzipHeaderLength(this.#head) !== undefined) this.#head = undefined
        else if (this.#head.length > MAX_GZIP_HEADER) throw new GzipRefusal(`has a gzip header longer than ${MAX_GZIP_HEADER} bytes`)
      }
      for (let at = 0; at < chunk.byteLength; at += GUNZIP_PIECE) {
        const piece = chunk.subarray(at, at + GUNZIP_PIECE)
        this.#compressed += piece.byteLength
        this.#gunzip.push(piece)
      }
    } catch (err) {
      this.#fail(err)
    }
  }

  end (): FileReport {
    if (this.#failure === undefined) {
      try {
        if (this.#head !== undefined) throw new GzipRefusal(this.#head.length < 2 || gzipHeaderLength(this.#head) === undefined ? 'is cut short: its gzip header is not whole' : 'is not gzip data, though its name ends in .gz')
        this.#gunzip.push(new Uint8Array(0), true)
        if (this.#tail.length < 8 || this.#tail.readUInt32LE(0) !== this.#crc || this.#tail.readUInt32LE(4) !== this.#inflated % 2 ** 32) {
          throw new GzipRefusal('is damaged or cut short: its gzip trailer (CRC-32 and length) does not match what it expands to')
        }
      } catch (err) {
        this.#fail(err)
      }
    }
    const report = this.#inner.end()
    const mismatch = this.#failure ?? (report.mismatch === undefined ? undefined : `once gunzipped, ${report.mismatch}`)
    return { ...report, path: this.#path, mismatch, references: mismatch === undefined ? report.references : [], notes: [...this.#notes, ...report.notes] }
  }

  note (text: string): void { this.#notes.push(text) }

  #fail (err: unknown): void {
    const reason = err instanceof Error ? err.message : String(err)
    if (err instanceof GzipRefusal) this.#failure = reason
    // The header was checked here first: fflate finding no gzip data after it means bytes after the gzip stream.
    else if (/invalid gzip data/.test(reason)) this.#failure = 'has bytes after the end of its gzip data: remove them (zlib stops before them, other tools refuse the file)'
    else if (/unexpected EOF/.test(reason)) this.#failure = 'is cut short: its gzip data ends inside the compressed stream'
    else this.#failure = `is not readable gzip data (${reason})`
  }
}

/**
 * Extensions Overte matches in lower case only (MediaTypeLibrary's
 * findMediaTypeForURL, GLTFSerializer's `endsWith("glb")`); `.fst` it
 * lower-cases first (ModelCache.cpp). Before the URL, FormatRegistry asks the
 * bytes (a binary FBX's signature: no note, decided once the file is read),
 * and after it the answer's Content-Type: a `.GLTF` loads by the
 * `model/gltf+json` this gateway gives it, and a `.GLB` by
 * `model/gltf-binary`, but without the images it holds.
 */
const CASE_SENSITIVE_EXTENSIONS = new Set(['fbx', 'obj', 'glb', 'vrm'])
/** A gzipped model is read from its gunzipped bytes and its URL without `.gz`, and no Content-Type (ModelCache.cpp, GeometryReader::run): a `.GLTF.gz` has nothing else to be known by. */
const CASE_SENSITIVE_GZIPPED = new Set([...CASE_SENSITIVE_EXTENSIONS, 'gltf'])

/** The inspector for a file, chosen by its extension (a gzipped model's by the model's, its inflating charged to `budget`: one per upload). */
export function inspectorFor (path: string, budget?: GunzipBudget): FileInspector & { note: (text: string) => void } {
  const inspector = chooseInspector(path, budget)
  const gzipped = isGzippedModel(path)
  const named = gzipped ? path.slice(0, -3) : path
  const ext = extensionOf(named)
  const written = named.slice(named.length - ext.length)
  if ((gzipped ? CASE_SENSITIVE_GZIPPED : CASE_SENSITIVE_EXTENSIONS).has(ext) && written !== ext) {
    const note = `${path}: Overte recognises ".${ext}" only in lower case, so it may not load this file (or, for GLB, its embedded textures): rename it to "${baseNameOf(named).slice(0, -ext.length)}${ext}${gzipped ? path.slice(-3) : ''}"`
    const model = inspector instanceof GzipInspector ? inspector.inner : inspector
    if (model instanceof FbxInspector) model.unlessBinary(note)
    else inspector.note(note)
  }
  return inspector
}

function chooseInspector (path: string, budget: GunzipBudget | undefined, ext = extensionOf(path)): FileInspector & { note: (text: string) => void } {
  if (isGzippedModel(path) && ext === 'gz') return new GzipInspector(path, chooseInspector(path, undefined, contentExtensionOf(path)), budget ?? gunzipBudget())
  const signature = SIGNATURES[ext]
  if (signature !== undefined) return new SignatureInspector(path, signature)
  switch (ext) {
    case 'fbx': return new FbxInspector(path)
    case 'glb':
    case 'vrm': return new GlbInspector(path)
    case 'gltf': return new GltfInspector(path)
    case 'json': return new JsonInspector(path)
    case 'fst': return new FstInspector(path)
    case 'obj': return new ObjInspector(path)
    case 'mtl': return new MtlInspector(path)
    // Overte takes a script's bytes as they are (ScriptCache.cpp): 8-bit text is read, with a note, as for OBJ.
    case 'js':
    case 'txt':
    case 'md': return new TextInspector(path, true)
    default: return new AnyBytesInspector(path)
  }
}
