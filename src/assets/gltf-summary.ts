import { MAX_JSON_STRING } from './json-reader.ts'

/**
 * What the avatar report needs from a glTF/GLB's JSON: skeleton, blendshapes,
 * materials, triangles and extent. Overte reads glTF lengths as metres
 * (GLTFSerializer.cpp: the offset is the `.fst` scale alone).
 */
export interface GltfSummary {
  joints: string[]
  blendshapes: string[]
  materials: number
  triangles: number
  /** Extent of the meshes' POSITION bounds through their nodes' transforms, in metres. */
  extent: { min: [number, number, number], max: [number, number, number] } | undefined
  /** Images: an external URI, or bytes in a buffer view (embedded). */
  images: Array<{ uri: string } | { embeddedBytes: number }>
}

export interface GltfPrimitive { attributes?: Record<string, number>, indices?: number, mode?: number }

type Vec3 = [number, number, number]
type Mat4 = number[]

export interface GltfNode { name?: string, children?: number[], mesh?: number, matrix?: number[], translation?: number[], rotation?: number[], scale?: number[] }
/** The parts of a glTF's JSON the summary reads (gltf-json.ts keeps these and nothing else). */
export interface GltfDoc {
  nodes?: GltfNode[]
  skins?: Array<{ joints?: number[] }>
  meshes?: Array<{ primitives?: GltfPrimitive[], extras?: { targetNames?: unknown } }>
  accessors?: Array<{ count?: number, min?: number[], max?: number[] }>
  materials?: unknown[]
  /** `dataBytes`: what a data: URI holds, kept instead of the URI itself (gltf-json.ts). */
  images?: Array<{ uri?: string, bufferView?: number, dataBytes?: number }>
  bufferViews?: Array<{ byteLength?: number }>
}

/** Column-major 4×4 product, as glTF stores matrices. */
function multiply (a: Mat4, b: Mat4): Mat4 {
  const out = new Array<number>(16).fill(0)
  for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) for (let k = 0; k < 4; k++) out[c * 4 + r] = (out[c * 4 + r] ?? 0) + (a[k * 4 + r] ?? 0) * (b[c * 4 + k] ?? 0)
  return out
}

function local (node: GltfNode): Mat4 {
  if (node.matrix?.length === 16) return node.matrix
  const [tx = 0, ty = 0, tz = 0] = node.translation ?? []
  const [x = 0, y = 0, z = 0, w = 1] = node.rotation ?? []
  const [sx = 1, sy = 1, sz = 1] = node.scale ?? []
  return [
    (1 - 2 * (y * y + z * z)) * sx, (2 * (x * y + z * w)) * sx, (2 * (x * z - y * w)) * sx, 0,
    (2 * (x * y - z * w)) * sy, (1 - 2 * (x * x + z * z)) * sy, (2 * (y * z + x * w)) * sy, 0,
    (2 * (x * z + y * w)) * sz, (2 * (y * z - x * w)) * sz, (1 - 2 * (x * x + y * y)) * sz, 0,
    tx, ty, tz, 1
  ]
}

const apply = (m: Mat4, p: Vec3): Vec3 => [0, 1, 2].map((r) => (m[r] ?? 0) * p[0] + (m[4 + r] ?? 0) * p[1] + (m[8 + r] ?? 0) * p[2] + (m[12 + r] ?? 0)) as Vec3

export function summarizeGltf (json: unknown): GltfSummary {
  const doc = (typeof json === 'object' && json !== null ? json : {}) as GltfDoc
  const nodes = doc.nodes ?? []
  const accessors = doc.accessors ?? []
  const jointIndices = new Set((doc.skins ?? []).flatMap((s) => s.joints ?? []))
  const joints = nodes.flatMap((n, i) => jointIndices.has(i) ? [n.name ?? `node ${i}`] : [])
  const blendshapes = [...new Set((doc.meshes ?? []).flatMap((m) => Array.isArray(m.extras?.targetNames) ? m.extras.targetNames.filter((t): t is string => typeof t === 'string') : []))]
  let triangles = 0
  for (const mesh of doc.meshes ?? []) {
    for (const p of mesh.primitives ?? []) {
      if ((p.mode ?? 4) !== 4) continue
      const count = p.indices !== undefined ? accessors[p.indices]?.count : accessors[p.attributes?.POSITION ?? -1]?.count
      triangles += Math.floor((count ?? 0) / 3)
    }
  }
  // World transforms from the roots down; a node visited twice (a broken file) is not followed again.
  const parents = new Map<number, number>()
  nodes.forEach((n, i) => { for (const c of n.children ?? []) parents.set(c, i) })
  const world = new Map<number, Mat4>()
  const worldOf = (i: number, depth = 0): Mat4 => {
    const known = world.get(i)
    if (known !== undefined) return known
    const parent = parents.get(i)
    const node = nodes[i] ?? {}
    const m = parent === undefined || depth > 256 ? local(node) : multiply(worldOf(parent, depth + 1), local(node))
    world.set(i, m)
    return m
  }
  const min: Vec3 = [Infinity, Infinity, Infinity]
  const max: Vec3 = [-Infinity, -Infinity, -Infinity]
  let any = false
  // Each mesh's box (its primitives' POSITION bounds together) once, then 8 corners per node that uses it: a file of
  // many nodes sharing a mesh of many primitives cost nodes × primitives (212 KB held the server 15 s).
  const meshBoxes = new Map<number, { min: Vec3, max: Vec3 } | undefined>()
  const meshBox = (index: number): { min: Vec3, max: Vec3 } | undefined => {
    if (meshBoxes.has(index)) return meshBoxes.get(index)
    let box: { min: Vec3, max: Vec3 } | undefined
    for (const p of doc.meshes?.[index]?.primitives ?? []) {
      const position = accessors[p.attributes?.POSITION ?? -1]
      if (position?.min?.length !== 3 || position.max?.length !== 3) continue
      box ??= { min: [Infinity, Infinity, Infinity], max: [-Infinity, -Infinity, -Infinity] }
      for (let a = 0; a < 3; a++) {
        box.min[a] = Math.min(box.min[a] ?? 0, position.min[a] ?? 0)
        box.max[a] = Math.max(box.max[a] ?? 0, position.max[a] ?? 0)
      }
    }
    meshBoxes.set(index, box)
    return box
  }
  nodes.forEach((node, i) => {
    if (node.mesh === undefined) return
    const box = meshBox(node.mesh)
    if (box === undefined) return
    const m = worldOf(i)
    for (let c = 0; c < 8; c++) {
      const corner: Vec3 = [0, 1, 2].map((a) => ((c >> a) & 1) === 0 ? box.min[a] ?? 0 : box.max[a] ?? 0) as Vec3
      const q = apply(m, corner)
      for (let a = 0; a < 3; a++) { min[a] = Math.min(min[a] ?? 0, q[a] ?? 0); max[a] = Math.max(max[a] ?? 0, q[a] ?? 0) }
      any = true
    }
  })
  // An image is a file beside the model, or embedded: in a buffer view, or in a data: URI (base64: ¾ of what follows its comma).
  const images = (doc.images ?? []).flatMap((img): GltfSummary['images'] => {
    if (img.dataBytes !== undefined) return [{ embeddedBytes: img.dataBytes }]
    if (typeof img.uri === 'string' && /^data:/i.test(img.uri)) return [{ embeddedBytes: dataUriBytes(img.uri) }]
    if (typeof img.uri === 'string') return [{ uri: img.uri }]
    return img.bufferView !== undefined ? [{ embeddedBytes: doc.bufferViews?.[img.bufferView]?.byteLength ?? 0 }] : []
  })
  return { joints, blendshapes, materials: doc.materials?.length ?? 0, triangles, extent: any ? { min, max } : undefined, images }
}

/**
 * A note for each mesh with a primitive that has no `indices`: Overte's glTF
 * reader stops building the model there (GLTFSerializer.cpp, buildGeometry:
 * "No indices accessor", `return false`). Exporters write indices for
 * triangle meshes; point clouds and some converters do not.
 */
export function gltfGeometryNotes (path: string, json: unknown): string[] {
  const doc = (typeof json === 'object' && json !== null ? json : {}) as GltfDoc
  const meshes = (doc.meshes ?? []).flatMap((mesh, i) => (mesh.primitives ?? []).some((p) => p.indices === undefined) ? [i] : [])
  if (meshes.length === 0) return []
  return [`${path}: ${meshes.length === 1 ? 'mesh' : 'meshes'} ${meshes.join(', ')} ${meshes.length === 1 ? 'has' : 'have'} a primitive without indices, which Overte's glTF reader does not load (the model fails there): export with indices`]
}

/** The bytes a base64 data: URI of `length` characters holds: ¾ of what follows its comma (which comes within MAX_JSON_STRING). */
export function dataUriBytes (uri: string, length = uri.length): number {
  const comma = uri.slice(0, MAX_JSON_STRING).indexOf(',')
  return comma === -1 ? 0 : Math.floor((length - comma - 1) * 3 / 4)
}
