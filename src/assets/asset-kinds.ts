import type { UploadKind } from '../db/upload-repository.ts'

const MODEL_EXTENSIONS = new Set(['fbx', 'glb', 'gltf', 'obj', 'vrm'])
const TEXTURE_EXTENSIONS = new Set(['png', 'jpg', 'jpeg', 'tga', 'ktx', 'webp', 'bmp', 'gif', 'exr'])
const SOUND_EXTENSIONS = new Set(['wav', 'mp3', 'ogg', 'raw'])
const SCRIPT_EXTENSIONS = new Set(['js'])

/** Lower-case extension without the dot; '' when there is none. */
export function extensionOf (path: string): string {
  const name = path.slice(path.lastIndexOf('/') + 1)
  const dot = name.lastIndexOf('.')
  return dot <= 0 ? '' : name.slice(dot + 1).toLowerCase()
}

/**
 * Models Overte reads gzipped: a model URL whose path ends in `.gz` is
 * gunzipped, and its format taken from the rest of the name
 * (GeometryReader::run in ModelCache.cpp), so `avatar.fbx.gz` is an FBX.
 */
const GZIPPED_MODEL_EXTENSIONS = new Set(['fbx', 'obj', 'gltf', 'glb'])

/**
 * The extension a file's content is checked and accepted as: the model's
 * for a gzipped model (`fbx` for `avatar.fbx.gz`, whatever the case of
 * `.gz`), else its own (`gz` for any other `.gz`).
 */
export function contentExtensionOf (path: string): string {
  const ext = extensionOf(path)
  if (ext !== 'gz') return ext
  const inner = extensionOf(path.slice(0, -3))
  return GZIPPED_MODEL_EXTENSIONS.has(inner) ? inner : ext
}

/** The gzipped forms of the accepted models (`fbx.gz` when `fbx` is accepted), for lists shown to people. */
export const gzippedModelExtensions = (accepted: Iterable<string>): string[] => [...accepted].filter((ext) => GZIPPED_MODEL_EXTENSIONS.has(ext)).map((ext) => `${ext}.gz`)

/** A file name without its extension (`box` for `box.fbx`, and for `box.fbx.gz`); the whole name when that would leave nothing. */
export function stemOf (fileName: string): string {
  const named = isGzippedModel(fileName) ? fileName.slice(0, -3) : fileName
  const ext = extensionOf(named)
  return (ext === '' ? named : named.slice(0, named.length - ext.length - 1)) || fileName
}

/** A model Overte gunzips before reading (see contentExtensionOf). */
export const isGzippedModel = (path: string): boolean => extensionOf(path) === 'gz' && contentExtensionOf(path) !== 'gz'

/** FBX, glTF/GLB, VRM or OBJ: the formats a 3D preview loads (not gzipped, which the browser viewer does not read). */
export const isModel = (path: string): boolean => MODEL_EXTENSIONS.has(extensionOf(path))

export function kindOfFile (path: string): UploadKind {
  const ext = contentExtensionOf(path)
  if (ext === 'fst') return 'avatar'
  if (MODEL_EXTENSIONS.has(ext)) return 'model'
  if (TEXTURE_EXTENSIONS.has(ext)) return 'texture'
  if (SOUND_EXTENSIONS.has(ext)) return 'sound'
  if (SCRIPT_EXTENSIONS.has(ext)) return 'script'
  return 'bundle'
}

export interface Classification {
  kind: UploadKind
  isAvatar: boolean
  /** The path to open: the `.fst`, else the only model, else the only file. */
  primaryPath: string | null
}

const byDepthThenName = (a: string, b: string): number =>
  a.split('/').length - b.split('/').length || a.localeCompare(b)

/** What an upload is, from the paths of its files. An `.fst` makes it an avatar. */
export function classify (filePaths: readonly string[]): Classification {
  const avatars = filePaths.filter((p) => extensionOf(p) === 'fst').sort(byDepthThenName)
  if (avatars[0] !== undefined) return { kind: 'avatar', isAvatar: true, primaryPath: avatars[0] }
  const [only] = filePaths
  if (filePaths.length === 1 && only !== undefined) return { kind: kindOfFile(only), isAvatar: false, primaryPath: only }
  const models = filePaths.filter((p) => MODEL_EXTENSIONS.has(contentExtensionOf(p)))
  if (models.length === 1 && models[0] !== undefined) return { kind: 'model', isAvatar: false, primaryPath: models[0] }
  return { kind: 'bundle', isAvatar: false, primaryPath: null }
}
