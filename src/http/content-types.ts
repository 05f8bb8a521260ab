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

/**
 * A type from a file's first bytes, for a name that gives none (a CID with
 * no path, a file without an extension), as boxo sniffs after the
 * extension: the formats of this service's uploads and JSON (whole, when the
 * file fits in `head`). Only passive types are ever sniffed, so bytes alone
 * never make a page (HTML, SVG) of the gateway's origin. `complete`: `head`
 * is the whole file.
 */
export function sniffContentType (head: Uint8Array, complete: boolean): string | undefined {
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png'
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'image/jpeg'
  if (startsWith(head, ascii('GIF87a')) || startsWith(head, ascii('GIF89a'))) return 'image/gif'
  if (startsWith(head, ascii('RIFF')) && startsWith(head, ascii('WEBP'), 8)) return 'image/webp'
  if (startsWith(head, [0xab, 0x4b, 0x54, 0x58, 0x20, 0x32, 0x30, 0xbb])) return 'image/ktx2'
  if (startsWith(head, ascii('glTF'))) return 'model/gltf-binary'
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) return 'application/zip'
  if (startsWith(head, [0x1f, 0x8b])) return 'application/gzip'
  if (!complete) return undefined
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })
  let body: string
  try { body = text.decode(head) } catch { return undefined }
  const first = body.trimStart()[0]
  if (first !== '{' && first !== '[') return undefined
  try { JSON.parse(body) } catch { return undefined }
  return 'application/json'
}

/** Top-level types a browser shows as media (or not at all), never as a document of the site. */
const PASSIVE_TOP_LEVEL = new Set(['image', 'audio', 'video', 'font', 'model'])
const PASSIVE_TYPES = new Set([
  'application/octet-stream', 'application/json', 'application/wasm', 'application/zip', 'application/gzip',
  'text/plain', 'text/css', 'text/csv', 'text/javascript', 'text/markdown'
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
