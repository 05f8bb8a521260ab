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
