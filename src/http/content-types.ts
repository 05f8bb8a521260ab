import mime from 'mime-types'
import { extensionOf } from '../assets/asset-kinds.ts'

/** Types for the formats Overte loads that mime-db does not know or gets wrong for us. */
const ASSET_TYPES: Readonly<Record<string, string>> = {
  glb: 'model/gltf-binary',
  vrm: 'model/gltf-binary',
  gltf: 'model/gltf+json',
  obj: 'model/obj',
  mtl: 'model/mtl',
  fbx: 'application/octet-stream',
  fst: 'text/plain; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  json: 'application/json; charset=utf-8',
  tga: 'image/x-tga',
  ktx: 'image/ktx',
  ktx2: 'image/ktx2'
}

/** Content-Type from the file name alone; unknown is application/octet-stream. */
export function contentTypeFor (fileName: string): string {
  const ext = extensionOf(fileName)
  if (ext === '') return 'application/octet-stream'
  return ASSET_TYPES[ext] ?? (mime.contentType(ext) || 'application/octet-stream')
}

/** How many leading bytes `sniffContentType` looks at (mimetype's, which boxo's gateway uses, reads 3 KiB). */
export const SNIFF_BYTES = 3072

const startsWith = (head: Uint8Array, bytes: readonly number[], at = 0): boolean => bytes.every((byte, i) => head[at + i] === byte)
const ascii = (text: string): number[] => Array.from(text, (c) => c.charCodeAt(0))

/** Whether `text` has one of WHATWG MIME Sniffing's binary data bytes (a C0 control other than TAB, LF, FF, CR, ESC): then it is not text. */
function hasBinaryByte (text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0c && code !== 0x0d && code !== 0x1b) return true
  }
  return false
}
/** The DIB header sizes a BMP file's second header can have (OS/2 1.x, BITMAPINFOHEADER and its successors). */
const BMP_DIB_SIZES = new Set([12, 40, 52, 56, 64, 108, 124])

/**
 * A type from a file's first bytes, for a name that gives none (a CID with
 * no path, a file without an extension), as boxo sniffs after the extension
 * (with gabriel-vasile/mimetype): the formats of this service's uploads
 * (images, glTF binary, sounds, archives), JSON (whole, when the file fits
 * in `head`), and UTF-8 text as `text/plain` (an .fst, .obj, .mtl or
 * script). Only passive types are ever sniffed, so bytes alone never make a
 * page (HTML, SVG) of the gateway's origin: text that opens with markup is
 * left unsniffed. `complete`: `head` is the whole file.
 */
export function sniffContentType (head: Uint8Array, complete: boolean): string | undefined {
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png'
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'image/jpeg'
  if (startsWith(head, ascii('GIF87a')) || startsWith(head, ascii('GIF89a'))) return 'image/gif'
  if (startsWith(head, ascii('RIFF')) && startsWith(head, ascii('WEBP'), 8)) return 'image/webp'
  if (startsWith(head, ascii('BM')) && head.length >= 18 && BMP_DIB_SIZES.has(Buffer.from(head.buffer, head.byteOffset, head.byteLength).readUInt32LE(14))) return 'image/bmp'
  if (startsWith(head, [0xab, 0x4b, 0x54, 0x58, 0x20, 0x32, 0x30, 0xbb])) return 'image/ktx2'
  if (startsWith(head, ascii('glTF'))) return 'model/gltf-binary'
  if (startsWith(head, ascii('RIFF')) && startsWith(head, ascii('WAVE'), 8)) return 'audio/wav'
  // An Ogg stream whose first packet is Vorbis, Opus, Speex or FLAC audio (a video or an unknown codec is left alone).
  if (startsWith(head, ascii('OggS')) && (startsWith(head, [0x01, ...ascii('vorbis')], 28) || startsWith(head, ascii('OpusHead'), 28) || startsWith(head, ascii('Speex   '), 28) || startsWith(head, [0x7f, ...ascii('FLAC')], 28))) return 'audio/ogg'
  // MP3: an ID3v2 tag, or an MPEG audio frame's sync word (layer III, with or without CRC, MPEG-1 or -2).
  if (startsWith(head, ascii('ID3')) || (head[0] === 0xff && [0xfb, 0xfa, 0xf3, 0xf2].includes(head[1] ?? 0))) return 'audio/mpeg'
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) return 'application/zip'
  if (startsWith(head, [0x1f, 0x8b])) return 'application/gzip'
  let body: string
  try {
    // A head cut short may end inside a character: `stream` leaves that tail undecoded instead of failing.
    body = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(head, { stream: !complete })
  } catch {
    return undefined
  }
  if (body.length === 0 || hasBinaryByte(body)) return undefined
  const first = body.trimStart()[0]
  if (first === '<') return undefined
  if (complete && (first === '{' || first === '[')) {
    try { JSON.parse(body); return 'application/json' } catch { /* text that is not JSON */ }
  }
  return 'text/plain; charset=utf-8'
}

/** Top-level types a browser shows as media (or not at all), never as a document of the site. */
const PASSIVE_TOP_LEVEL = new Set(['image', 'audio', 'video', 'font', 'model'])
const PASSIVE_TYPES = new Set([
  'application/octet-stream', 'application/json', 'application/wasm', 'application/zip', 'application/gzip',
  'text/plain', 'text/css', 'text/csv', 'text/javascript', 'text/markdown',
  // A UnixFS symlink's target path, as boxo types it: no browser renders it.
  'inode/symlink'
])

/**
 * Whether a browser could render this type as a page of our origin: HTML,
 * XHTML, SVG, any XML (XSLT can build HTML), PDF, and anything else not known
 * to be passive. What is not passive is served as such only for content that
 * was uploaded here.
 */
export function isPassive (contentType: string): boolean {
  const essence = contentType.split(';')[0]?.trim().toLowerCase() ?? ''
  const [top = '', sub = ''] = essence.split('/')
  if (sub.endsWith('+xml') || sub === 'xml') return false
  return PASSIVE_TOP_LEVEL.has(top) || PASSIVE_TYPES.has(essence)
}

/** RFC 8187 attr-char: everything else in a `filename*` value is percent-encoded. */
const NOT_ATTR_CHAR = /[^A-Za-z0-9!#$&+.^_`|~-]/gu

/**
 * `Content-Disposition` for any Unicode name (RFC 6266, RFC 8187): an ASCII
 * `filename` for old clients, and `filename*` with the name in UTF-8.
 */
export function contentDisposition (type: 'attachment' | 'inline', fileName: string): string {
  const fallback = fileName.replace(/[^\x20-\x7e]|["\\%]/gu, '_')
  const encoded = fileName.replace(NOT_ATTR_CHAR, (char) => Array.from(Buffer.from(char, 'utf8'), (byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join(''))
  return `${type}; filename="${fallback}"; filename*=UTF-8''${encoded}`
}
