import { inflateSync } from 'node:zlib'

/**
 * What Heimdall needs to know about an FBX file, read as its bytes stream
 * past: the textures it names (and which it embeds), its skeleton, its
 * blendshapes, materials, triangles and extent. Binary FBX is walked node by
 * node (only the records read are kept; everything else is skipped as it
 * streams); ASCII FBX line by line.
 */
export interface FbxSummary {
  binary: boolean
  version: number
  /** Texture nodes' `RelativeFilename`, as Overte reads them (FBXSerializer.cpp, `object.name == "Texture"`). */
  textures: string[]
  /** Video nodes' `RelativeFilename` whose `Content` is not empty: embedded images, used before any file. */
  embedded: Array<{ name: string, bytes: number }>
  /** Model nodes of type LimbNode, in file order. */
  joints: string[]
  /** BlendShapeChannel deformers' names. */
  blendshapes: string[]
  materials: number
  triangles: number
  /** Axis-aligned extent of all mesh vertices, in file units; undefined without vertices. */
  extent: { min: [number, number, number], max: [number, number, number] } | undefined
  unitScaleFactor: number
  /** 0 = X, 1 = Y, 2 = Z (GlobalSettings UpAxis). */
  upAxis: number
}

const MAX_KEPT_STRING = 4096
const MAX_FBX_DEPTH = 64
/**
 * A file's arrays are decoded up to this many bytes in all (8 per value, as
 * held), and an array larger than this compressed is skipped: counts then
 * stay incomplete. A real avatar holds a few MB of them.
 */
const MAX_KEPT_ARRAY = 64 * 1024 * 1024

type Request = { read: number } | { skip: number }

/** A pull parser as a generator: it asks for `read` (bytes handed back) or `skip` (bytes dropped). */
type Parser = Generator<Request, void, Buffer>

type Value = string | number | bigint | boolean | Buffer | number[] | Float64Array | undefined

/**
 * Feeds chunks to a pull parser. Only the bytes of one pending `read` are
 * ever held, so memory stays bounded by the largest record read, not the file.
 */
class Feeder {
  readonly #parser: Parser
  #request: Request | undefined
  #pending: Buffer[] = []
  #pendingBytes = 0
  done = false

  constructor (parser: Parser) {
    this.#parser = parser
    this.#advance(undefined)
  }

  #advance (value: Buffer | undefined): void {
    const next = value === undefined ? this.#parser.next() : this.#parser.next(value)
    if (next.done === true) { this.done = true; this.#request = undefined } else this.#request = next.value
  }

  write (chunk: Buffer): void {
    let data = chunk
    while (!this.done && this.#request !== undefined && data.length > 0) {
      const request = this.#request
      if ('skip' in request) {
        const n = Math.min(request.skip, data.length)
        data = data.subarray(n)
        if (request.skip - n === 0) this.#advance(Buffer.alloc(0))
        else this.#request = { skip: request.skip - n }
      } else {
        const need = request.read - this.#pendingBytes
        const take = data.subarray(0, need)
        this.#pending.push(take)
        this.#pendingBytes += take.length
        data = data.subarray(take.length)
        if (this.#pendingBytes === request.read) {
          const whole = this.#pending.length === 1 ? Buffer.from(this.#pending[0] ?? Buffer.alloc(0)) : Buffer.concat(this.#pending)
          this.#pending = []
          this.#pendingBytes = 0
          this.#advance(whole)
        }
      }
    }
  }

  /** Whether the parser stopped where the file may end (between records). */
  get waitingForMore (): boolean { return !this.done }
}

interface Node {
  name: string
  props: Value[]
}

/** Which property values a node keeps; everything else is skipped as it streams. */
function keepArray (path: readonly string[], name: string): boolean {
  return path.at(-1) === 'Geometry' && (name === 'Vertices' || name === 'PolygonVertexIndex')
}

/** The FBX summary builder shared by the binary and ASCII readers. */
class SummaryBuilder {
  readonly summary: FbxSummary
  #videoName: string | undefined
  #videoContent = 0
  #geometryType: string | undefined
  #geometryId = ''
  #modelId = ''
  readonly #models = new Map<string, ModelTransform>()
  readonly #geometryBoxes = new Map<string, Box>()
  readonly #parents = new Map<string, string>()

  constructor (binary: boolean, version: number) {
    this.summary = { binary, version, textures: [], embedded: [], joints: [], blendshapes: [], materials: 0, triangles: 0, extent: undefined, unitScaleFactor: 1, upAxis: 1 }
  }

  enter (path: readonly string[], node: Node): void {
    const parent = path.at(-1)
    const s = this.summary
    if (parent === 'Objects') {
      const [rawId, rawName, type] = node.props
      const name = typeof rawName === 'string' ? objectName(rawName) : ''
      const id = String(rawId)
      if (node.name === 'Model') { this.#modelId = id; this.#models.set(id, { t: [0, 0, 0], r: [0, 0, 0], pre: [0, 0, 0], s: [1, 1, 1] }) }
      if (node.name === 'Geometry') this.#geometryId = id
      if (node.name === 'Video') { this.#videoName = undefined; this.#videoContent = 0 }
      if (node.name === 'Model' && type === 'LimbNode') s.joints.push(name)
      if (node.name === 'Material') s.materials++
      if (node.name === 'Deformer' && type === 'BlendShapeChannel') s.blendshapes.push(name)
      if (node.name === 'Geometry') this.#geometryType = typeof type === 'string' ? type : undefined
      return
    }
    const owner = path.at(-1)
    const value = node.props[0]
    if (node.name === 'RelativeFilename' && typeof value === 'string') {
      if (owner === 'Texture') s.textures.push(value)
      if (owner === 'Video') this.#videoName = value
    } else if (node.name === 'Content' && owner === 'Video') {
      this.#videoContent += value instanceof Buffer ? value.length : typeof value === 'number' ? value : typeof value === 'string' ? value.length : 0
    } else if (node.name === 'P' && parent === 'Properties70' && path.at(-2) === 'GlobalSettings') {
      const [key, , , , v] = node.props
      if (key === 'UnitScaleFactor' && typeof v === 'number' && v > 0) s.unitScaleFactor = v
      if (key === 'UpAxis' && typeof v === 'number') s.upAxis = v
    } else if (node.name === 'P' && parent === 'Properties70' && path.at(-2) === 'Model' && path.at(-3) === 'Objects') {
      const [key, , , , x, y, z] = node.props
      const model = this.#models.get(this.#modelId)
      const v: [number, number, number] = [Number(x ?? 0), Number(y ?? 0), Number(z ?? 0)]
      if (model !== undefined && v.every(Number.isFinite)) {
        if (key === 'Lcl Translation') model.t = v
        else if (key === 'Lcl Rotation') model.r = v
        else if (key === 'PreRotation') model.pre = v
        else if (key === 'Lcl Scaling') model.s = v
      }
    } else if (node.name === 'C' && owner === 'Connections' && node.props[0] === 'OO') {
      this.#parents.set(String(node.props[1]), String(node.props[2]))
    } else if (owner === 'Geometry' && this.#geometryType === 'Mesh' && (Array.isArray(value) || value instanceof Float64Array)) {
      if (node.name === 'Vertices') this.#vertices(value)
      else if (node.name === 'PolygonVertexIndex') this.#polygons(value)
    }
  }

  leave (path: readonly string[], node: Node): void {
    if (node.name === 'Video' && path.at(-1) === 'Objects' && this.#videoName !== undefined && this.#videoContent > 0) {
      this.summary.embedded.push({ name: this.#videoName, bytes: this.#videoContent })
    }
  }

  #vertices (values: ArrayLike<number>): void {
    const box: Box = { min: [Infinity, Infinity, Infinity], max: [-Infinity, -Infinity, -Infinity] }
    for (let i = 0; i + 2 < values.length; i += 3) {
      for (let axis = 0; axis < 3; axis++) {
        const v = values[i + axis] ?? 0
        if (v < (box.min[axis] ?? 0)) box.min[axis] = v
        if (v > (box.max[axis] ?? 0)) box.max[axis] = v
      }
    }
    if (values.length >= 3) this.#geometryBoxes.set(this.#geometryId, box)
  }

  /**
   * Mesh extents in the file's world space: each geometry's box through its model's world transform (each model's
   * T · PreRotation · R · S, XYZ Euler, then its parent's). A model's world transform is made once, from its parent's:
   * walking every geometry's parent chain cost geometries × chain (3.3 MB of ASCII FBX held the server 45 s).
   */
  finish (): FbxSummary {
    const world: Box = { min: [Infinity, Infinity, Infinity], max: [-Infinity, -Infinity, -Infinity] }
    const transforms = new Map<string, Affine>()
    for (const [geometryId, box] of this.#geometryBoxes) {
      const parent = this.#parents.get(geometryId)
      const m = parent === undefined ? IDENTITY : this.#worldOf(parent, transforms)
      for (const corner of corners(box)) {
        const p = applyAffine(m, corner)
        for (let axis = 0; axis < 3; axis++) {
          world.min[axis] = Math.min(world.min[axis] ?? 0, p[axis] ?? 0)
          world.max[axis] = Math.max(world.max[axis] ?? 0, p[axis] ?? 0)
        }
      }
    }
    this.summary.extent = this.#geometryBoxes.size === 0 ? undefined : world
    return this.summary
  }

  /**
   * The world transform of the model `id` (identity for an id that is no model), made from the first ancestor already
   * known down, each model's kept in `known`. A cycle of parents (a broken file) ends at the model seen twice.
   */
  #worldOf (id: string, known: Map<string, Affine>): Affine {
    const chain: string[] = []
    const onChain = new Set<string>()
    let above = IDENTITY
    for (let at: string | undefined = id; at !== undefined && this.#models.has(at) && !onChain.has(at); at = this.#parents.get(at)) {
      const done = known.get(at)
      if (done !== undefined) { above = done; break }
      chain.push(at)
      onChain.add(at)
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const at = chain[i] ?? ''
      const model = this.#models.get(at)
      if (model !== undefined) above = compose(above, localAffine(model))
      known.set(at, above)
    }
    return known.get(id) ?? above
  }

  /** A polygon ends at a negative index (stored as -index-1); n corners make n-2 triangles. */
  #polygons (indices: ArrayLike<number>): void {
    let corners = 0
    for (let i = 0; i < indices.length; i++) {
      corners++
      if ((indices[i] ?? 0) < 0) { this.summary.triangles += Math.max(0, corners - 2); corners = 0 }
    }
  }
}

type Vec3 = [number, number, number]
interface Box { min: Vec3, max: Vec3 }
interface ModelTransform { t: Vec3, r: Vec3, pre: Vec3, s: Vec3 }

const corners = (b: Box): Vec3[] => [0, 1, 2, 3, 4, 5, 6, 7].map((i) => [(i & 1) === 0 ? b.min[0] : b.max[0], (i & 2) === 0 ? b.min[1] : b.max[1], (i & 4) === 0 ? b.min[2] : b.max[2]])

/** Rotates by Euler degrees in FBX's default XYZ order: X first, then Y, then Z. */
function rotate (p: Vec3, degrees: Vec3): Vec3 {
  let [x, y, z] = p
  const [ax, ay, az] = degrees.map((d) => d * Math.PI / 180) as Vec3
  ;[y, z] = [y * Math.cos(ax) - z * Math.sin(ax), y * Math.sin(ax) + z * Math.cos(ax)]
  ;[x, z] = [x * Math.cos(ay) + z * Math.sin(ay), -x * Math.sin(ay) + z * Math.cos(ay)]
  ;[x, y] = [x * Math.cos(az) - y * Math.sin(az), x * Math.sin(az) + y * Math.cos(az)]
  return [x, y, z]
}

/** `p` → `linear` · p + `t`, the 3×3 `linear` part row by row. */
interface Affine { linear: [Vec3, Vec3, Vec3], t: Vec3 }

const IDENTITY: Affine = { linear: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], t: [0, 0, 0] }

const applyAffine = (m: Affine, p: Vec3): Vec3 => m.linear.map((row, r) => row[0] * p[0] + row[1] * p[1] + row[2] * p[2] + (m.t[r] ?? 0)) as Vec3

/** A model's own transform, p → T + PreRotation · R · (S p): its columns are the scaled axes, rotated. */
function localAffine (m: ModelTransform): Affine {
  const columns = ([[m.s[0], 0, 0], [0, m.s[1], 0], [0, 0, m.s[2]]] as Vec3[]).map((axis) => rotate(rotate(axis, m.r), m.pre))
  const row = (r: number): Vec3 => columns.map((c) => c[r] ?? 0) as Vec3
  return { linear: [row(0), row(1), row(2)], t: [...m.t] }
}

/** `outer` after `inner`: p → outer(inner(p)). */
function compose (outer: Affine, inner: Affine): Affine {
  const linear = outer.linear.map((row) => [0, 1, 2].map((c) => row[0] * (inner.linear[0][c] ?? 0) + row[1] * (inner.linear[1][c] ?? 0) + row[2] * (inner.linear[2][c] ?? 0))) as [Vec3, Vec3, Vec3]
  return { linear, t: applyAffine(outer, inner.t) }
}

/** `Name\x00\x01Model` (binary) or `Model::Name` (ASCII) → `Name`. */
function objectName (raw: string): string {
  const binary = raw.indexOf('\u0000\u0001')
  if (binary !== -1) return raw.slice(0, binary)
  const ascii = raw.indexOf('::')
  return ascii === -1 ? raw : raw.slice(ascii + 2)
}

/** Binary FBX: a header, then nested node records (FBX SDK's layout, as Blender's io_scene_fbx documents it). */
function * binaryParser (builder: SummaryBuilder, version: number, decodeName: (b: Buffer) => string): Parser {
  const wide = version >= 7500
  const headerSize = wide ? 25 : 13
  let offset = 27
  const path: string[] = []
  /** Bytes of decoded array values held so far, against MAX_KEPT_ARRAY. */
  let kept = 0

  function * readNode (): Generator<Request, boolean, Buffer> {
    const header = yield { read: headerSize }
    offset += headerSize
    const endOffset = wide ? Number(header.readBigUInt64LE(0)) : header.readUInt32LE(0)
    const propCount = wide ? Number(header.readBigUInt64LE(8)) : header.readUInt32LE(4)
    const nameLength = header[headerSize - 1] ?? 0
    if (endOffset === 0) return false
    const name = (yield { read: nameLength }).toString('latin1')
    offset += nameLength
    const props: Value[] = []
    for (let i = 0; i < propCount; i++) props.push(yield * readProperty(name))
    const node = { name, props }
    builder.enter(path, node)
    if (offset < endOffset) {
      // Real files nest a handful of levels; each level is a generator the next read goes through.
      if (path.length >= MAX_FBX_DEPTH) throw new Error(`is not readable FBX (nodes nested more than ${MAX_FBX_DEPTH} deep)`)
      path.push(name)
      while (offset < endOffset) {
        if (!(yield * readNode())) break
      }
      path.pop()
    }
    if (offset < endOffset) { yield { skip: endOffset - offset }; offset = endOffset }
    builder.leave(path, node)
    return true
  }

  function * readProperty (nodeName: string): Generator<Request, Value, Buffer> {
    const type = String.fromCharCode((yield { read: 1 })[0] ?? 0)
    offset += 1
    const fixed: Record<string, number> = { Y: 2, C: 1, I: 4, F: 4, D: 8, L: 8 }
    const size = fixed[type]
    if (size !== undefined) {
      const b = yield { read: size }
      offset += size
      switch (type) {
        case 'Y': return b.readInt16LE(0)
        case 'C': return (b[0] ?? 0) !== 0
        case 'I': return b.readInt32LE(0)
        case 'F': return b.readFloatLE(0)
        case 'D': return b.readDoubleLE(0)
        default: return b.readBigInt64LE(0)
      }
    }
    if (type === 'S' || type === 'R') {
      const length = (yield { read: 4 }).readUInt32LE(0)
      offset += 4
      if (type === 'S' && length <= MAX_KEPT_STRING) {
        const b = yield { read: length }
        offset += length
        return decodeName(b)
      }
      if (length > 0) yield { skip: length }
      offset += length
      // An embedded image is not kept: its size is all we need.
      return type === 'R' ? length : undefined
    }
    if ('fdlib'.includes(type) && type !== '') {
      const h = yield { read: 12 }
      offset += 12
      const count = h.readUInt32LE(0)
      const encoding = h.readUInt32LE(4)
      const length = h.readUInt32LE(8)
      // Vertices as Overte reads them (doubles or floats), indices as int32; held as 8-byte values, within the file's budget.
      const readable = nodeName === 'Vertices' ? type === 'd' || type === 'f' : type === 'i'
      const width = type === 'd' ? 8 : 4
      if (!keepArray(path, nodeName) || !readable || length > MAX_KEPT_ARRAY || count * 8 > MAX_KEPT_ARRAY - kept) {
        if (length > 0) yield { skip: length }
        offset += length
        return undefined
      }
      kept += count * 8
      const raw = length > 0 ? yield { read: length } : Buffer.alloc(0)
      offset += length
      let data = raw
      if (encoding === 1) {
        // Inflated no further than the count declares: a few KB of zlib may expand a thousandfold (a bomb), and this runs
        // on the event loop. An array that inflates to more than its count says is skipped, not decoded.
        try {
          data = inflateSync(raw, { maxOutputLength: Math.max(1, count * width) })
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ERR_BUFFER_TOO_LARGE') throw err
          return undefined
        }
      }
      const values = new Float64Array(Math.min(count, Math.floor(data.length / width)))
      for (let i = 0; i < values.length; i++) {
        values[i] = type === 'd' ? data.readDoubleLE(i * 8) : type === 'f' ? data.readFloatLE(i * 4) : data.readInt32LE(i * 4)
      }
      return values
    }
    throw new Error(`is not readable FBX (unknown property type 0x${type.charCodeAt(0).toString(16)} at byte ${offset - 1})`)
  }

  while (true) {
    if (!(yield * readNode())) return
  }
}

/**
 * The binary FBX reader: feed it the bytes after the 27-byte header. Texture
 * names are UTF-8 (Overte's QByteArray → QString conversions are UTF-8).
 */
export class BinaryFbxReader {
  readonly #builder: SummaryBuilder
  readonly #feeder: Feeder

  constructor (version: number) {
    this.#builder = new SummaryBuilder(true, version)
    this.#feeder = new Feeder(binaryParser(this.#builder, version, (b) => b.toString('utf8')))
  }

  write (chunk: Buffer): void { this.#feeder.write(chunk) }

  end (): FbxSummary { return this.#builder.finish() }
}

/** `Name: rest` of a trimmed line; a trailing `{` is taken off `rest` by hand (a lazy `(.*?)\s*(\{)?\s*$` backtracked cubically on a run of spaces: 3 KB held the server 14 s). */
const ASCII_NODE = /^([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)$/
const ASCII_STRING = /"((?:[^"]|"")*)"/g

/**
 * ASCII FBX, one line at a time (lines arrive as text already decoded with
 * the file's one encoding). Nodes open with `Name: props {` and close with
 * `}`; array values (`a: 1,2,3`) may continue over following lines.
 */
export class AsciiFbxReader {
  readonly #builder = new SummaryBuilder(false, 0)
  readonly #path: string[] = []
  readonly #open: Node[] = []
  #array: { node: Node, values: number[] } | undefined
  /** Array values held so far, against MAX_KEPT_ARRAY (8 bytes each, as the binary reader counts them). */
  #kept = 0
  #contentOf: Node | undefined

  line (line: string): void {
    const trimmed = line.trim()
    if (trimmed === '' || trimmed.startsWith(';')) return
    if (this.#array !== undefined && trimmed !== '}') {
      const body = trimmed.startsWith('a:') ? trimmed.slice(2) : trimmed
      for (const n of body.split(',')) {
        const v = Number.parseFloat(n)
        if (!Number.isFinite(v)) continue
        // Past the file's budget the rest is dropped, as the binary reader skips such arrays: counts then stay incomplete.
        if ((this.#kept += 8) > MAX_KEPT_ARRAY) break
        this.#array.values.push(v)
      }
      return
    }
    if (this.#contentOf !== undefined) {
      // Base64 content continues `Content: ,` on the next lines, each a quoted string.
      if (trimmed.startsWith('"') || trimmed.startsWith(',"')) { this.#count(trimmed.replace(/[",\s]/g, '').length); return }
      this.#contentOf = undefined
    }
    if (trimmed === '}') {
      const node = this.#open.pop()
      // The path is not copied per array: a copy as long as the nesting per array cost nesting × arrays.
      this.#path.pop()
      if (this.#array !== undefined) {
        const { node, values } = this.#array
        this.#array = undefined
        this.#builder.enter(this.#path, { name: node.name, props: [values] })
      }
      if (node !== undefined) this.#builder.leave(this.#path, node)
      return
    }
    const match = ASCII_NODE.exec(trimmed)
    if (match === null) return
    const [, name = ''] = match
    let rest = (match[2] ?? '').trim()
    const brace = rest.endsWith('{') ? '{' : undefined
    if (brace !== undefined) rest = rest.slice(0, -1).trimEnd()
    const props = parseAsciiProps(rest)
    const node = { name, props }
    if (name === 'Content' && this.#path.at(-1) === 'Video') {
      this.#contentOf = node
      this.#count(rest.replace(/[",\s]/g, '').length)
      return
    }
    if (brace !== undefined && (name === 'Vertices' || name === 'PolygonVertexIndex') && this.#path.at(-1) === 'Geometry') {
      this.#array = { node, values: [] }
      this.#open.push(node)
      this.#path.push(name)
      return
    }
    this.#builder.enter(this.#path, node)
    if (brace === undefined) { this.#builder.leave(this.#path, node); return }
    // As deep as the binary reader goes: no real file nests past a handful of levels.
    if (this.#path.length >= MAX_FBX_DEPTH) throw new Error(`is not readable FBX (nodes nested more than ${MAX_FBX_DEPTH} deep)`)
    this.#open.push(node)
    this.#path.push(name)
  }

  #count (chars: number): void {
    // The Video's `Content` closes before the Video does: report it as one more Content record.
    if (chars > 0) this.#builder.enter(this.#path, { name: 'Content', props: [Math.floor(chars * 3 / 4)] })
  }

  end (): FbxSummary { return this.#builder.finish() }
}

function parseAsciiProps (rest: string): Value[] {
  const values: Value[] = []
  let last = 0
  const strings = [...rest.matchAll(ASCII_STRING)]
  if (strings.length === 0) {
    for (const part of rest.split(',')) {
      const t = part.trim()
      if (t === '') continue
      const n = Number(t)
      values.push(Number.isFinite(n) ? n : t)
    }
    return values
  }
  for (const m of strings) {
    for (const part of rest.slice(last, m.index).split(',')) {
      const t = part.trim()
      if (t !== '') { const n = Number(t); values.push(Number.isFinite(n) ? n : t) }
    }
    values.push((m[1] ?? '').replaceAll('""', '"'))
    last = (m.index ?? 0) + m[0].length
  }
  for (const part of rest.slice(last).split(',')) {
    const t = part.trim()
    if (t !== '') { const n = Number(t); values.push(Number.isFinite(n) ? n : t) }
  }
  return values
}
