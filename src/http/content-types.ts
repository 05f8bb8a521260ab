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
