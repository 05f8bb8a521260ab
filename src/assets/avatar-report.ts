import { contentExtensionOf, extensionOf } from './asset-kinds.ts'
import type { FileReport, FstFacts } from './file-inspectors.ts'
import {
  EXPRESSION_BLENDSHAPES, fbxMetresPerUnit, fbxTextureRequest, fstTargets, gltfRequest, readyPlayerMeBlendshapes, RECOMMENDED_HUMANOID_JOINTS, REQUIRED_HUMANOID_JOINTS, textureBaseFor
} from './overte-rules.ts'

export type ReportStatus = 'pass' | 'warning' | 'error'

/** One line of the report: what was checked, how it came out, and why. */
export interface ReportLine {
  check: string
  status: ReportStatus
  detail: string
}

export interface ReportTexture {
  /** The file Overte loads (upload path), or the name stored in the FBX when it is embedded. */
  path: string
  embedded: boolean
  /** Undefined when the file is missing. */
  bytes: number | undefined
  width: number | undefined
  height: number | undefined
}

/** What an avatar is, as Overte will see it: kept with the upload, shown on its page and answered as `avatar`. */
export interface AvatarReport {
  fst: string
  model: string | null
  scale: number
  /** The model's joints with the Overte name each answers to after the `.fst` jointMap. */
  joints: Array<{ name: string, overteName: string }>
  missingJoints: string[]
  heightMetres: number | null
  triangles: number | null
  materials: number | null
  textures: ReportTexture[]
  blendshapes: string[]
  lines: ReportLine[]
}

/** Overte's avatar height limits (libraries/shared/src/AvatarConstants.h). */
const DEFAULT_AVATAR_HEIGHT = 1.755
const MIN_AVATAR_HEIGHT = 0.005 * DEFAULT_AVATAR_HEIGHT
const MAX_AVATAR_HEIGHT = 1000 * DEFAULT_AVATAR_HEIGHT

const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits

/**
 * The avatar report of an upload with an `.fst` (the first, as `classify`
 * picks it); null for anything else. Reads only what the inspectors found
 * while the bytes streamed past: nothing is read twice.
 */
export function buildAvatarReport (fstPath: string | null, reports: readonly FileReport[], fileSizes: ReadonlyMap<string, number>): AvatarReport | null {
  if (fstPath === null || extensionOf(fstPath) !== 'fst') return null
  const fst = reports.find((r) => r.path === fstPath)?.fst
  if (fst === undefined) return null
  const lines: ReportLine[] = []
  const { model } = fstTargets(fst)
  const modelReport = model === undefined ? undefined : reports.find((r) => r.path === model)
  const report: AvatarReport = {
    fst: fstPath, model: model ?? null, scale: fst.scale, joints: [], missingJoints: [], heightMetres: null, triangles: null, materials: null, textures: [], blendshapes: [], lines
  }
  if (modelReport === undefined) {
    lines.push({ check: 'model', status: 'error', detail: `the .fst's model ${fst.filename ?? '(none)'} is not in the upload` })
    return report
  }
  const facts = modelFacts(modelReport, fst.scale, reports, fileSizes, [fst])
  if (facts === undefined) {
    lines.push({ check: 'model', status: 'warning', detail: `${modelReport.path} is neither FBX nor glTF: its skeleton, height and blendshapes are not read` })
    return report
  }
  lines.push({ check: 'model', status: 'pass', detail: `${modelReport.path}: ${facts.format}` })
  // jointMap: Overte name = model name (FSTReader, "jointMap"); a model joint not mapped keeps its own name.
  const toOverte = new Map(Object.entries(fst.jointMap).map(([overte, modelName]) => [modelName, overte]))
  report.joints = facts.joints.map((name) => ({ name, overteName: toOverte.get(name) ?? name }))
  const overteNames = new Set(report.joints.map((j) => j.overteName))
  report.missingJoints = REQUIRED_HUMANOID_JOINTS.filter((j) => !overteNames.has(j))
  const mapped = Object.keys(fst.jointMap).length
  const source = 'Overte\'s avatar standards (docs.overte.org, create/avatars/avatar-standards)'
  if (facts.joints.length === 0) {
    lines.push({ check: 'skeleton', status: 'error', detail: 'the model has no skeleton (no FBX LimbNode or glTF skin joints): Overte cannot animate it as an avatar' })
  } else if (report.missingJoints.length > 0) {
    lines.push({ check: 'skeleton', status: 'error', detail: `${facts.joints.length} joints${mapped > 0 ? ` (${mapped} renamed by jointMap)` : ''}; missing the humanoid joints ${report.missingJoints.join(', ')} that ${source} requires: add them, or map yours with "jointMap = Overte name = your name" in the .fst` })
  } else {
    lines.push({ check: 'skeleton', status: 'pass', detail: `${facts.joints.length} joints${mapped > 0 ? ` (${mapped} renamed by jointMap)` : ''}, every humanoid joint ${source} requires` })
  }
  const missingRecommended = RECOMMENDED_HUMANOID_JOINTS.filter((j) => !overteNames.has(j))
  if (facts.joints.length > 0) {
    lines.push(missingRecommended.length === 0
      ? { check: 'eyes and head top', status: 'pass', detail: 'LeftEye, RightEye and HeadTop_End are present' }
      : { check: 'eyes and head top', status: 'warning', detail: `no ${missingRecommended.join(', ')}: the eyes will not follow what the avatar looks at, and Overte estimates the head's top` })
  }

  const height = facts.heightMetres
  if (height !== undefined) {
    report.heightMetres = round(height, 3)
    const limits = `Overte allows ${round(MIN_AVATAR_HEIGHT, 4)}–${MAX_AVATAR_HEIGHT} m and its default avatar is ${DEFAULT_AVATAR_HEIGHT} m (AvatarConstants.h)`
    const detail = `${round(height, 2)} m tall with scale = ${fst.scale} (${facts.units})`
    if (height < MIN_AVATAR_HEIGHT || height > MAX_AVATAR_HEIGHT) lines.push({ check: 'height', status: 'error', detail: `${detail}; ${limits}` })
    else if (height < 0.5 || height > 3) lines.push({ check: 'height', status: 'warning', detail: `${detail}: unusual for a person, often a units mistake — check "scale" in the .fst; ${limits}` })
    else lines.push({ check: 'height', status: 'pass', detail })
  } else {
    lines.push({ check: 'height', status: 'error', detail: 'the model has no mesh vertices: Overte refuses a model with no meshes ("empty geometry", ModelCache.cpp)' })
  }
  report.triangles = facts.triangles
  report.materials = facts.materials
  lines.push({ check: 'triangles and materials', status: facts.triangles > 0 ? 'pass' : 'error', detail: `${facts.triangles} triangles, ${facts.materials} materials` })
  report.textures = facts.textures
  const missing = report.textures.filter((t) => t.bytes === undefined)
  lines.push(missing.length > 0
    ? { check: 'textures', status: 'warning', detail: `${missing.map((t) => t.path).join(', ')} not in the upload (see the warnings)` }
    : { check: 'textures', status: 'pass', detail: report.textures.length === 0 ? 'no textures' : report.textures.map((t) => `${t.path}${t.embedded ? ' (embedded)' : ''}: ${t.width !== undefined ? `${t.width}×${t.height ?? 0} px, ` : ''}${t.bytes ?? 0} bytes`).join('; ') })

  // Blendshapes the model has, plus those an .fst `bs` line maps onto (BlendshapeConstants.h names).
  const readyPlayerMe = facts.format.endsWith('glTF') ? readyPlayerMeBlendshapes(facts.blendshapes, fst.blendshapes.length > 0) : []
  report.blendshapes = [...new Set([...facts.blendshapes, ...fst.blendshapes, ...readyPlayerMe])]
  const has = (names: readonly string[]): boolean => names.some((n) => report.blendshapes.includes(n))
  lines.push(has(EXPRESSION_BLENDSHAPES.blink)
    ? { check: 'blinks', status: 'pass', detail: EXPRESSION_BLENDSHAPES.blink.filter((n) => report.blendshapes.includes(n)).join(', ') }
    : { check: 'blinks', status: 'warning', detail: `no ${EXPRESSION_BLENDSHAPES.blink.join(' / ')} blendshapes: the avatar will not blink` })
  lines.push(has(EXPRESSION_BLENDSHAPES.speech)
    ? { check: 'speech', status: 'pass', detail: EXPRESSION_BLENDSHAPES.speech.filter((n) => report.blendshapes.includes(n)).join(', ') }
    : { check: 'speech', status: 'warning', detail: `none of ${EXPRESSION_BLENDSHAPES.speech.join(', ')}: the mouth will not move when the avatar speaks` })
  return report
}

/** What the report reads from the model, whichever format. */
interface ModelFacts {
  format: string
  joints: string[]
  blendshapes: string[]
  materials: number
  triangles: number
  heightMetres: number | undefined
  /** How lengths become metres, for the height line. */
  units: string
  textures: ReportTexture[]
}

function modelFacts (model: FileReport, scale: number, reports: readonly FileReport[], fileSizes: ReadonlyMap<string, number>, fsts: readonly FstFacts[]): ModelFacts | undefined {
  const imageOf = (path: string): FileReport['image'] => reports.find((r) => r.path === path)?.image
  const fbx = model.fbx
  if (fbx !== undefined) {
    const axis = fbx.upAxis === 0 || fbx.upAxis === 2 ? fbx.upAxis : 1
    const textures: ReportTexture[] = []
    const base = textureBaseFor(model.path, fsts)
    const embedded = new Map(fbx.embedded.map((e) => [e.name.replaceAll('\\', '/'), e.bytes]))
    const seen = new Set<string>()
    for (const stored of fbx.textures) {
      const key = stored.replaceAll('\\', '/')
      const embeddedBytes = embedded.get(key)
      const path = embeddedBytes !== undefined ? key : fbxTextureRequest(stored, base)
      if (path === undefined || seen.has(path)) continue
      seen.add(path)
      const image = embeddedBytes !== undefined ? undefined : imageOf(path)
      textures.push({ path, embedded: embeddedBytes !== undefined, bytes: embeddedBytes ?? fileSizes.get(path), width: image?.width, height: image?.height })
    }
    return {
      format: fbx.binary ? `binary FBX ${fbx.version}` : 'ASCII FBX',
      joints: fbx.joints,
      blendshapes: fbx.blendshapes,
      materials: fbx.materials,
      triangles: fbx.triangles,
      heightMetres: fbx.extent === undefined ? undefined : ((fbx.extent.max[axis] ?? 0) - (fbx.extent.min[axis] ?? 0)) * fbxMetresPerUnit(fbx.unitScaleFactor, scale),
      units: `FBX units are centimetres × UnitScaleFactor ${fbx.unitScaleFactor}`,
      textures
    }
  }
  const gltf = model.gltf
  if (gltf === undefined) return undefined
  const textures = gltf.images.flatMap((img, i): ReportTexture[] => {
    if ('embeddedBytes' in img) return [{ path: `${model.path} image ${i}`, embedded: true, bytes: img.embeddedBytes, width: undefined, height: undefined }]
    let uri = img.uri
    try { uri = decodeURIComponent(uri) } catch { /* kept as written */ }
    const path = gltfRequest(model.path, uri)
    if (path === undefined) return []
    const image = imageOf(path)
    return [{ path, embedded: false, bytes: fileSizes.get(path), width: image?.width, height: image?.height }]
  })
  return {
    format: contentExtensionOf(model.path) === 'gltf' ? 'glTF' : 'binary glTF',
    joints: gltf.joints,
    blendshapes: gltf.blendshapes,
    materials: gltf.materials,
    triangles: gltf.triangles,
    // glTF is Y-up and in metres; Overte applies the .fst scale alone (GLTFSerializer.cpp).
    heightMetres: gltf.extent === undefined ? undefined : ((gltf.extent.max[1] ?? 0) - (gltf.extent.min[1] ?? 0)) * scale,
    units: 'glTF lengths are metres',
    textures
  }
}
