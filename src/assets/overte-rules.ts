/**
 * Where Overte looks for the files a model or avatar names, read from
 * Overte's own source (overte-org/overte, master, 2025). The upload checks
 * (references.ts) and the browser preview (web/preview.ts) both ask this
 * module, so what the checks accept is what the preview shows is what Overte
 * loads. No Node or DOM imports: it is bundled into the preview as it is.
 *
 * Paths here are upload-relative POSIX paths ("avatars/textures/skin.png");
 * undefined means "outside the upload".
 */

/** The `.fst` fields that move where a model's files are looked up. */
export interface FstLookup {
  /** The `.fst` itself, upload-relative. */
  path: string
  filename: string | undefined
  texdir: string | undefined
  baseURL: string | undefined
  scale: number
}

/** Where a model's textures are requested from, and why. */
export interface TextureBase {
  /** Upload-relative folder ('' for the root); undefined when it leaves the upload. */
  dir: string | undefined
  /** 'model': beside the model; 'texdir': the `.fst`'s texdir. */
  source: 'model' | 'texdir'
  /** The `.fst` that set it, for messages. */
  fst?: string
  /** The texdir as written. */
  texdir?: string
}

export const dirOf = (path: string): string => {
  const slash = path.lastIndexOf('/')
  return slash === -1 ? '' : path.slice(0, slash)
}

export const baseNameOf = (path: string): string => path.slice(path.lastIndexOf('/') + 1)

/**
 * `target` resolved against folder `dir` as a URL is resolved (QUrl::resolved,
 * the browser's URL): backslashes are not separators in a URL, but every
 * Windows exporter writes them and Overte's FBX reader turns them into `/`
 * first (FBXSerializer.cpp, `filename.replace('\\', '/')`), so we do too.
 */
export function resolveIn (dir: string | undefined, target: string): string | undefined {
  if (dir === undefined) return undefined
  const cleaned = target.replaceAll('\\', '/')
  if (cleaned.startsWith('/') || /^[a-z]:\//i.test(cleaned) || /^[a-z][a-z0-9+.-]*:/i.test(cleaned)) return undefined
  const parts = dir === '' ? [] : dir.split('/')
  for (const segment of cleaned.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') {
      if (parts.length === 0) return undefined
      parts.pop()
    } else {
      parts.push(segment)
    }
  }
  return parts.join('/')
}

/** Where upload paths sit in the URLs `fstBaseDir` resolves: deep enough that `..` can leave the upload, as it leaves /ipfs/<cid>/. */
const UPLOAD_ROOT = new URL('http://upload.invalid/ipfs/root/')

/**
 * The folder an `.fst`'s relative names are resolved against, upload-
 * relative ('' the root); undefined when it leaves the upload. Overte
 * resolves them against `fstUrl.resolved(baseURL)` (ModelCache.cpp), a URL:
 * `baseURL = avatar/` is the folder avatar/, while `baseURL = avatar` names a
 * file, so names then resolve beside it, in the `.fst`'s own folder.
 */
export function fstBaseDir (fstPath: string, baseURL: string | undefined): string | undefined {
  if (baseURL === undefined || baseURL === '') return dirOf(fstPath)
  try {
    const fstUrl = new URL(fstPath.split('/').map(encodeURIComponent).join('/'), UPLOAD_ROOT)
    const base = new URL(baseURL, fstUrl)
    if (base.origin !== UPLOAD_ROOT.origin || !base.pathname.startsWith(UPLOAD_ROOT.pathname)) return undefined
    const encoded = base.pathname.slice(UPLOAD_ROOT.pathname.length)
    // A stray % (`baseURL = 100%/`) stays as written, as QUrl keeps it.
    let relative = encoded
    try { relative = decodeURIComponent(encoded.replace(/%(?![0-9A-Fa-f]{2})/g, '%25')) } catch { /* kept */ }
    return relative.slice(0, Math.max(0, relative.lastIndexOf('/')))
  } catch {
    return undefined
  }
}

/** `key = value` numbers as Overte's FSTReader reads them (QVariant::toFloat: not a number is 0, and Overte then treats 0 as unset). */
export function fstScale (value: string | undefined): number {
  const scale = Number.parseFloat(value ?? '')
  return Number.isFinite(scale) && scale > 0 ? scale : 1
}

/**
 * The model an `.fst` loads and where its textures come from.
 * Source: libraries/model-networking/src/model-networking/ModelCache.cpp,
 * GeometryResource::downloadFinished — `base = fstUrl.resolved(baseURL)`,
 * `url = base.resolved(filename)`; with `texdir` (a `/` appended when
 * missing) the texture base is `base.resolved(texdir)`, else the model's own
 * folder `url.resolved(".")`. A `baseURL` that is a URL (http:, atp:) moves
 * everything out of the upload.
 */
export function fstTargets (fst: FstLookup): { model: string | undefined, textures: TextureBase } {
  const base = fstBaseDir(fst.path, fst.baseURL)
  const model = fst.filename === undefined || fst.filename === '' ? undefined : resolveIn(base, fst.filename)
  if (fst.texdir !== undefined && fst.texdir !== '') {
    return { model, textures: { dir: resolveIn(base, fst.texdir), source: 'texdir', fst: fst.path, texdir: fst.texdir } }
  }
  return { model, textures: { dir: model === undefined ? undefined : dirOf(model), source: 'model', fst: fst.path } }
}

/**
 * The same rule for absolute URLs, for the preview, which loads from the
 * gateway as Overte does: `fstTargets` with QUrl::resolved in place of paths.
 */
export function fstUrls (fstUrl: string, fst: Omit<FstLookup, 'path'>): { model: string | undefined, textureBase: string | undefined } {
  const base = new URL(fst.baseURL ?? '', fstUrl)
  if (fst.filename === undefined || fst.filename === '') return { model: undefined, textureBase: undefined }
  const model = new URL(fst.filename, base).href
  if (fst.texdir !== undefined && fst.texdir !== '') {
    return { model, textureBase: new URL(fst.texdir.endsWith('/') ? fst.texdir : `${fst.texdir}/`, base).href }
  }
  return { model, textureBase: new URL('.', model).href }
}

/** The texture base of `modelPath`: the `.fst` that loads it decides, else the model's folder. */
export function textureBaseFor (modelPath: string, fsts: readonly FstLookup[]): TextureBase {
  for (const fst of fsts) {
    const { model, textures } = fstTargets(fst)
    if (model === modelPath) return textures
  }
  return { dir: dirOf(modelPath), source: 'model' }
}

/**
 * The file Overte requests for an external FBX texture.
 * Source: libraries/model-serializers/src/FBXSerializer.cpp, `fileOnUrl`:
 * "we assume that all external textures are right beside the loaded model,
 * ignoring any relative paths or absolute paths inside of models" — only the
 * base name of a Texture's `RelativeFilename` is kept; the material then
 * resolves it against the texture base (NetworkMaterial, with the
 * GeometryResource's `_textureBaseURL`). FBX `FileName` (the absolute path on
 * the exporting machine) is never read.
 */
export function fbxTextureRequest (storedName: string, base: TextureBase): string | undefined {
  const name = baseNameOf(storedName.replaceAll('\\', '/'))
  return name === '' ? undefined : resolveIn(base.dir, name)
}

/**
 * The file Overte requests for an OBJ material's texture.
 * Source: libraries/model-serializers/src/OBJSerializer.cpp,
 * `parseTextureLine` keeps the file name as written (after the options) and
 * the material resolves it against the texture base, like FBX but keeping
 * its folders. `.tga` maps are skipped by the OBJ reader ("currently ignoring
 * tga texture").
 */
export function objTextureRequest (storedName: string, base: TextureBase): string | undefined {
  return resolveIn(base.dir, storedName)
}

/**
 * A glTF buffer or image URI: relative to the glTF file itself, `texdir` or
 * not. Source: libraries/model-serializers/src/GLTFSerializer.cpp,
 * `readBinary` and `getHFMTexture` (`_url.resolved(uri)`).
 */
export function gltfRequest (gltfPath: string, uri: string): string | undefined {
  return resolveIn(dirOf(gltfPath), uri)
}

/**
 * glTF extensions Overte's reader does not apply. GLTFSerializer.cpp parses
 * with cgltf and reads accessors with `cgltf_accessor_unpack_floats`; it
 * never decodes Draco (a compressed primitive's accessors have no data, so
 * the mesh is empty), and `getHFMTexture` reads `texture->image` and
 * EXT_texture_webp only, never KHR_texture_basisu (KTX2) or meshopt. (Its
 * reading of EXT_texture_webp has flaws of its own, which gltfTextureNotes
 * in file-inspectors.ts warns of.)
 */
export const GLTF_EXTENSIONS_OVERTE_IGNORES: Readonly<Record<string, string>> = {
  KHR_draco_mesh_compression: 'Overte\'s glTF reader does not decode Draco mesh compression: the model will be empty in Overte; export without Draco (Blender: glTF export, uncheck Compression)',
  EXT_meshopt_compression: 'Overte\'s glTF reader does not decode meshopt compression: the model will be empty in Overte; export without it',
  KHR_texture_basisu: 'Overte\'s glTF reader does not read KTX2 (KHR_texture_basisu) textures: they will be missing in Overte; use PNG or JPEG textures'
}

/**
 * The joints Overte needs to animate a humanoid avatar, by their Overte
 * names (docs.overte.org, create/avatars/avatar-standards: the skeleton
 * Overte's default animation graph drives; the `.fst` `jointMap` renames a
 * model's joints to these).
 */
export const REQUIRED_HUMANOID_JOINTS: readonly string[] = [
  'Hips', 'Spine', 'Spine1', 'Spine2', 'Neck', 'Head',
  'LeftShoulder', 'LeftArm', 'LeftForeArm', 'LeftHand',
  'RightShoulder', 'RightArm', 'RightForeArm', 'RightHand',
  'LeftUpLeg', 'LeftLeg', 'LeftFoot', 'LeftToeBase',
  'RightUpLeg', 'RightLeg', 'RightFoot', 'RightToeBase'
]

/** Joints Overte uses when present: eye look-at (LeftEye/RightEye) and the head's top for the avatar's height. */
export const RECOMMENDED_HUMANOID_JOINTS: readonly string[] = ['LeftEye', 'RightEye', 'HeadTop_End']

/**
 * Blendshape names Overte drives for facial expressions
 * (libraries/shared/src/BlendshapeConstants.h, the FaceShift set Overte
 * animates: blinks, jaw and mouth for speech). The `.fst` `bs = Overte = model = weight`
 * lines map other names onto these.
 */
export const EXPRESSION_BLENDSHAPES = {
  blink: ['EyeBlink_L', 'EyeBlink_R'],
  speech: ['JawOpen', 'MouthClose', 'MouthFunnel', 'MouthPucker', 'MouthSmile_L', 'MouthSmile_R']
} as const

/**
 * ReadyPlayerMe's blendshape names and the Overte names its glTF reader
 * drives them as, when an `.fst` maps none and the model looks like a
 * ReadyPlayerMe export (BlendshapeConstants.cpp READYPLAYERME_BLENDSHAPES_MAP;
 * GLTFSerializer.cpp `likelyReadyPlayerMeFile`). Only the pairs that matter
 * to the report's blink and speech checks, and the names that identify one.
 */
const READYPLAYERME_SYNONYMS: Readonly<Record<string, readonly string[]>> = {
  mouthOpen: ['JawOpen'],
  eyeBlinkLeft: ['EyeBlink_L'],
  eyeBlinkRight: ['EyeBlink_R'],
  mouthPucker: ['LipsPucker'],
  viseme_sil: ['MouthClose'],
  mouthSmile: ['MouthSmile_L', 'MouthSmile_R'],
  viseme_CH: ['LipsFunnel'],
  viseme_PP: ['LipsUpperClose']
}
const READYPLAYERME_SIGNS = ['browOuterUpLeft', 'browInnerUp', 'browDownLeft', 'eyeBlinkLeft', 'eyeWideLeft', 'mouthLeft', 'viseme_O', 'mouthShrugLower']

/** The Overte blendshapes a glTF's target names drive: ReadyPlayerMe's mapped as Overte maps them (when no `.fst` `bs` line maps any), else none. */
export function readyPlayerMeBlendshapes (targetNames: readonly string[], fstMapsAny: boolean): string[] {
  if (fstMapsAny || !READYPLAYERME_SIGNS.every((name) => targetNames.includes(name))) return []
  return targetNames.flatMap((name) => READYPLAYERME_SYNONYMS[name] ?? [])
}

/**
 * FBX lengths are centimetres to Overte: the model's offset is
 * `scale * UnitScaleFactor * METERS_PER_CENTIMETER`
 * (FBXSerializer.cpp, "get offset transform from mapping").
 */
export const fbxMetresPerUnit = (unitScaleFactor: number, fstScale: number): number => fstScale * unitScaleFactor * 0.01

/**
 * The preview's texture lookup: maps a URL three.js's FBXLoader asks for to
 * the one Overte would ask for (the base name in the texture base), so both
 * see the same files. `modelUrl` and `baseUrl` are absolute.
 */
export function previewFbxTextureUrl (requested: string, textureBaseUrl: string): string {
  if (/^(?:blob|data):/i.test(requested)) return requested
  let path = requested
  try { path = decodeURIComponent(new URL(requested).pathname) } catch { /* a bare name */ }
  const name = baseNameOf(path.replaceAll('\\', '/'))
  return new URL(name.split('/').map(encodeURIComponent).join('/'), textureBaseUrl).href
}

/**
 * The keys of an Overte material that it fetches a texture for, by the
 * material's `model` (ProceduralMaterialCache.cpp, parseJSONMaterial;
 * hifi_pbr when none is given). opacityMap is only compared with albedoMap,
 * never fetched; any other model (the procedural hifi_shader_simple, whose
 * shaders and channels are fetched by absolute URL only) names none here.
 */
const MATERIAL_TEXTURE_KEYS: Readonly<Record<string, readonly string[]>> = {
  hifi_pbr: ['emissiveMap', 'albedoMap', 'normalMap', 'bumpMap', 'roughnessMap', 'glossMap', 'metallicMap', 'specularMap', 'occlusionMap', 'scatteringMap', 'lightMap', 'splatMap'],
  vrm_mtoon: ['emissiveMap', 'albedoMap', 'normalMap', 'bumpMap', 'shadeMap', 'shadingShiftMap', 'matcapMap', 'rimMap', 'uvAnimationMaskMap', 'splatMap']
}

/** Every key that names a texture in some material model: what a reader of material files keeps, with `model`. */
export const MATERIAL_TEXTURE_KEY_NAMES: ReadonlySet<string> = new Set(Object.values(MATERIAL_TEXTURE_KEYS).flat())

/** More texture names than any material file holds: past it, a file is not read further. */
const MAX_MATERIAL_TEXTURES = 1000

/**
 * The texture names of a material resource as Overte parses one (a material
 * `.json` file, or a `.fst` materialMap's inline object): `materials` an
 * object or an array of them, each map a name or `{ url }`; "fallthrough"
 * names no file.
 */
export function materialTextureNames (resource: unknown): string[] {
  const materials = (resource as { materials?: unknown } | null)?.materials
  const list = Array.isArray(materials) ? materials : [materials]
  const names: string[] = []
  for (const material of list) {
    if (typeof material !== 'object' || material === null) continue
    const model = (material as { model?: unknown }).model ?? 'hifi_pbr'
    const keys = typeof model === 'string' && Object.hasOwn(MATERIAL_TEXTURE_KEYS, model) ? MATERIAL_TEXTURE_KEYS[model] ?? [] : []
    for (const key of keys) {
      const value = (material as Record<string, unknown>)[key]
      const name = typeof value === 'string' ? value : (value as { url?: unknown } | null)?.url
      if (typeof name === 'string' && name !== '' && name !== 'fallthrough') names.push(name)
      if (names.length >= MAX_MATERIAL_TEXTURES) return names
    }
  }
  return names
}

/** A URL with a scheme (http:, data:, atp:, …) rather than a path in the upload. */
export const hasScheme = (target: string): boolean => /^[a-z][a-z0-9+.-]*:/i.test(target)

/**
 * An `.fst` name that is a URL elsewhere (http:, atp:, file:), not looked for
 * in the upload: `hasScheme` without one-letter schemes, since a Windows
 * drive (`C:\Users\…`) is no URL Overte can fetch: looked for, and not found.
 */
export const isUrl = (target: string): boolean => /^[a-z][a-z0-9+.-]+:/i.test(target)

/** A material or texture name as Overte fetches it: the URL's query and fragment (`#name` picks a material) are not part of the file's name. */
export const fetchedName = (url: string): string => {
  // Cut at the first ? or #, found by a scan: /[?#].*$/ retried from every ? of a name with a line break after them.
  const cut = url.search(/[?#]/)
  return cut === -1 ? url : url.slice(0, cut)
}
