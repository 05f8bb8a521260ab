import { JSONParser } from '@streamparser/json'
import { extensionOf } from './asset-kinds.ts'
import { parseFst } from './fst.ts'

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
  /** Exporters store paths of the machine they ran on: fall back to the base name anywhere in the upload. */
  byBaseName?: boolean
}

export interface FileReport {
  path: string
  /** Why the bytes do not match the extension; undefined when they do. */
  mismatch: string | undefined
  references: Reference[]
  /** Non-fatal findings about the file itself. */
  notes: string[]
}

/** Sees a file's bytes once, as they stream past, and reports at the end. */
export interface FileInspector {
  write: (chunk: Uint8Array) => void
  end: () => FileReport
}

const HEAD_BYTES = 64
const MAX_FST_BYTES = 1024 * 1024
const MAX_LINE = 64 * 1024
const MAX_FBX_NAME = 4096

/** A URL with a scheme (http:, data:, atp:, …) rather than a path in the upload. */
export const hasScheme = (target: string): boolean => /^[a-z][a-z0-9+.-]*:/i.test(target)
const isHttp = (target: string): boolean => /^https?:\/\//i.test(target)

abstract class BaseInspector implements FileInspector {
  protected readonly path: string
  protected head: Buffer = Buffer.alloc(0)
  protected size = 0
  protected mismatch: string | undefined
  protected readonly references: Reference[] = []
  protected readonly notes: string[] = []

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
    return { path: this.path, mismatch: this.mismatch, references: this.mismatch === undefined ? this.references : [], notes: this.notes }
  }

  protected consume (_chunk: Uint8Array): void {}
  protected abstract finish (): void

  protected reference (target: string, what: string, severity: Reference['severity'], extra: Partial<Reference> = {}): void {
    this.references.push({ from: this.path, target, what, severity, ...extra })
  }
}

/** Formats recognised by their first bytes. */
class SignatureInspector extends BaseInspector {
  readonly #check: (head: Buffer, size: number) => string | undefined

  constructor (path: string, check: (head: Buffer, size: number) => string | undefined) {
    super(path)
    this.#check = check
  }

  protected finish (): void {
    const problem = this.#check(this.head, this.size)
    if (problem !== undefined) throw new Error(problem)
  }
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
  glb,
  vrm: glb,
  png: (h) => startsWith(h, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) ? undefined : 'is not a PNG image (no PNG signature)',
  webp: (h) => startsWith(h, 'RIFF') && startsWith(h, 'WEBP', 8) ? undefined : 'is not a WebP image (no RIFF/WEBP header)',
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

/** UTF-8 text, checked as it streams; subclasses see whole lines. */
class TextInspector extends BaseInspector {
  readonly #decoder = new TextDecoder('utf-8', { fatal: true })
  #partial = ''
  #lineNumber = 0

  protected override consume (chunk: Uint8Array): void {
    let text: string
    try {
      text = this.#decoder.decode(chunk, { stream: true })
    } catch {
      throw new Error('is not UTF-8 text')
    }
    if (text.includes('\0')) throw new Error('is not text (it contains NUL bytes)')
    this.text(text)
  }

  protected finish (): void {
    try {
      this.#decoder.decode()
    } catch {
      throw new Error('is not UTF-8 text (it ends inside a character)')
    }
    if (this.#partial !== '') this.line(this.#partial, ++this.#lineNumber)
    this.#partial = ''
    this.done()
  }

  /** Called with decoded text; by default splits it into lines. */
  protected text (text: string): void {
    const lines = (this.#partial + text).split('\n')
    this.#partial = lines.pop() ?? ''
    // A line longer than any real one is not worth keeping whole.
    if (this.#partial.length > MAX_LINE) this.#partial = this.#partial.slice(0, MAX_LINE)
    for (const line of lines) this.line(line.replace(/\r$/, ''), ++this.#lineNumber)
  }

  protected line (_line: string, _number: number): void {}
  protected done (): void {}
}

/** Wavefront OBJ: text; `mtllib` names its material libraries. */
class ObjInspector extends TextInspector {
  protected override line (line: string): void {
    const match = /^\s*mtllib\s+(.+?)\s*$/.exec(line)
    if (match?.[1] === undefined) return
    // One name with spaces, or several names.
    const names = (match[1].match(/\.mtl\b/gi) ?? []).length > 1 ? match[1].split(/\s+/) : [match[1]]
    for (const name of names) this.reference(name, 'material library', 'warning')
  }
}

const MTL_MAPS = /^\s*(map_Ka|map_Kd|map_Ks|map_Ke|map_Ns|map_d|map_bump|map_Bump|bump|disp|decal|refl|norm|map_Pr|map_Pm|map_Ps)\s+(.+?)\s*$/
const MTL_OPTIONS = /^(?:-[a-z_]+(?:\s+(?:on|off|[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?))*\s+)*/i

/** Wavefront MTL: text; `map_*` lines name textures, after any options. */
class MtlInspector extends TextInspector {
  protected override line (line: string): void {
    const match = MTL_MAPS.exec(line)
    if (match?.[2] === undefined) return
    const target = match[2].replace(MTL_OPTIONS, '').trim()
    if (target !== '') this.reference(target, 'texture', 'warning', { byBaseName: true })
  }
}

/** Overte avatar descriptor. */
class FstInspector extends TextInspector {
  #text = ''

  protected override text (text: string): void {
    this.#text += text
    if (this.#text.length > MAX_FST_BYTES) throw new Error(`is larger than ${MAX_FST_BYTES} bytes, which no avatar descriptor is`)
  }

  protected override done (): void {
    const fst = parseFst(this.#text)
    const baseUrl = fst.get('baseURL')
    if (baseUrl !== undefined && baseUrl !== '') {
      this.notes.push(`${this.path} sets baseURL = ${baseUrl}: its relative paths load from there, not from this upload`)
      return
    }
    const filename = fst.get('filename')
    if (filename === undefined || filename === '') {
      this.notes.push(`${this.path} names no model (no "filename" line)`)
    } else if (!isHttp(filename)) {
      this.reference(filename, 'model file', 'error')
    }
    const texdir = fst.get('texdir')
    if (texdir !== undefined && texdir !== '' && !hasScheme(texdir)) this.reference(texdir, 'texture folder', 'warning', { folder: true })
    for (const script of fst.all('script')) {
      if (script.value !== '' && !isHttp(script.value)) this.reference(script.value, 'script', 'warning')
    }
    const animGraph = fst.get('animGraphUrl')
    if (animGraph !== undefined && animGraph !== '' && !isHttp(animGraph)) this.reference(animGraph, 'animation graph', 'warning')
  }
}

/** JSON, parsed as it streams; glTF also reports its version and external URIs. */
class JsonInspector extends TextInspector {
  readonly #parser: JSONParser
  readonly #gltf: boolean
  #version: unknown

  constructor (path: string, gltf: boolean) {
    super(path)
    this.#gltf = gltf
    // Only the parts we read are kept; the rest is checked and dropped.
    this.#parser = new JSONParser({ paths: gltf ? ['$.asset.version', '$.buffers.*.uri', '$.images.*.uri'] : ['$.\u0000'], keepStack: false })
    this.#parser.onValue = ({ value, key, stack }) => {
      if (!this.#gltf) return
      const section = stack[1]?.key
      if (key === 'version' && section === 'asset') this.#version = value
      else if (key === 'uri' && typeof value === 'string' && !hasScheme(value)) {
        this.reference(safeDecode(value), section === 'buffers' ? 'buffer' : 'image', 'error')
      }
    }
  }

  protected override text (text: string): void {
    try {
      this.#parser.write(text)
    } catch (err) {
      throw new Error(`is not valid JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
  }

  protected override done (): void {
    if (!this.#parser.isEnded) {
      try { this.#parser.end() } catch (err) { throw new Error('is not valid JSON (it ends early)', { cause: err }) }
    }
    if (this.size === 0) throw new Error('is empty, which is not JSON')
    if (this.#gltf && !(typeof this.#version === 'string' && /^2\.\d+$/.test(this.#version))) {
      throw new Error(`is not glTF 2.x (asset.version is ${JSON.stringify(this.#version ?? null)})`)
    }
  }
}

function safeDecode (uri: string): string {
  try { return decodeURIComponent(uri) } catch { return uri }
}

const TEXTURE_EXTENSIONS = new Set(['png', 'jpg', 'jpeg', 'tga', 'ktx', 'ktx2', 'webp', 'bmp', 'tif', 'tiff', 'dds', 'psd', 'gif', 'exr', 'hdr'])
const FBX_BINARY_MAGIC = Buffer.from('Kaydara FBX Binary  \0', 'latin1')
const FBX_NAME_RECORDS = ['FileName', 'Filename', 'RelativeFilename'].map((name) => Buffer.concat([Buffer.from([name.length]), Buffer.from(name, 'latin1'), Buffer.from('S', 'latin1')]))
const FBX_ASCII_NAMES = /\b(?:RelativeFilename|FileName|Filename)\s*:\s*"([^"\r\n]*)"/g

/**
 * FBX, binary (`Kaydara FBX Binary`) or ASCII. Texture file names are found
 * in the `FileName`/`RelativeFilename` records of Video and Texture nodes,
 * scanning the stream with a small carry-over so records split across chunks
 * are still seen.
 */
class FbxInspector extends BaseInspector {
  #binary: boolean | undefined
  #carry: Buffer = Buffer.alloc(0)
  readonly #names = new Set<string>()

  protected override consume (chunk: Uint8Array): void {
    const data = Buffer.concat([this.#carry, chunk])
    if (this.#binary === undefined) {
      if (data.length < 27) { this.#carry = data; return }
      this.#binary = data.subarray(0, FBX_BINARY_MAGIC.length).equals(FBX_BINARY_MAGIC)
      if (this.#binary) {
        const version = data.readUInt32LE(23)
        if (version < 6000 || version > 10000) throw new Error(`is binary FBX with an unknown version (${version})`)
      } else if (!/^(\uFEFF)?\s*;\s*FBX|FBXHeaderExtension\s*:/.test(data.subarray(0, 4096).toString('latin1'))) {
        throw new Error('is not FBX (neither the binary header nor an ASCII FBX header)')
      }
    }
    this.#carry = this.#binary ? this.#scanBinary(data) : this.#scanAscii(data)
  }

  #scanBinary (data: Buffer): Buffer {
    let keepFrom = Math.max(0, data.length - 32)
    for (const record of FBX_NAME_RECORDS) {
      for (let at = data.indexOf(record); at !== -1; at = data.indexOf(record, at + 1)) {
        const lengthAt = at + record.length
        if (lengthAt + 4 > data.length) { keepFrom = Math.min(keepFrom, at); break }
        const length = data.readUInt32LE(lengthAt)
        if (length > MAX_FBX_NAME) continue
        if (lengthAt + 4 + length > data.length) { keepFrom = Math.min(keepFrom, at); break }
        this.#add(data.subarray(lengthAt + 4, lengthAt + 4 + length).toString('utf8'))
      }
    }
    return Buffer.from(data.subarray(keepFrom))
  }

  #scanAscii (data: Buffer): Buffer {
    const text = data.toString('latin1')
    const lastNewline = text.lastIndexOf('\n')
    const complete = lastNewline === -1 ? '' : text.slice(0, lastNewline)
    for (const match of complete.matchAll(FBX_ASCII_NAMES)) if (match[1] !== undefined) this.#add(Buffer.from(match[1], 'latin1').toString('utf8'))
    const rest = data.subarray(lastNewline + 1)
    return rest.length > MAX_LINE ? Buffer.alloc(0) : Buffer.from(rest)
  }

  #add (name: string): void {
    // The same record names hold animation takes (`Take_001.tak`) and the source file: keep images only.
    if (name !== '' && !isHttp(name) && TEXTURE_EXTENSIONS.has(extensionOf(name.replaceAll('\\', '/')))) this.#names.add(name)
  }

  protected finish (): void {
    if (this.#binary === undefined) {
      this.consume(new Uint8Array(0))
      if (this.#binary === undefined) throw new Error('is too short to be FBX')
    }
    if (this.#binary === false) {
      for (const match of this.#carry.toString('latin1').matchAll(FBX_ASCII_NAMES)) if (match[1] !== undefined) this.#add(match[1])
    }
    for (const name of this.#names) this.reference(name, 'texture', 'warning', { byBaseName: true })
  }
}

/** Extensions accepted without a content check (glTF buffers are any bytes). */
class AnyBytesInspector extends BaseInspector {
  protected finish (): void {}
}

/** The inspector for a file, chosen by its extension. */
export function inspectorFor (path: string): FileInspector {
  const ext = extensionOf(path)
  const signature = SIGNATURES[ext]
  if (signature !== undefined) return new SignatureInspector(path, signature)
  switch (ext) {
    case 'fbx': return new FbxInspector(path)
    case 'gltf': return new JsonInspector(path, true)
    case 'json': return new JsonInspector(path, false)
    case 'fst': return new FstInspector(path)
    case 'obj': return new ObjInspector(path)
    case 'mtl': return new MtlInspector(path)
    case 'js': return new TextInspector(path)
    default: return new AnyBytesInspector(path)
  }
}
