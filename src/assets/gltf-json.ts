import { dataUriBytes, type GltfDoc, type GltfNode, type GltfPrimitive } from './gltf-summary.ts'
import { JsonLimitError, JsonReader, MAX_JSON_STRING, type JsonPath, type JsonPrimitive } from './json-reader.ts'
import { hasScheme } from './overte-rules.ts'

/**
 * A file (a `.gltf`, or a GLB's JSON chunk) with more buffers, or more
 * images named by a path, than this is refused: Overte would fetch each,
 * and no model has so many.
 */
export const MAX_NAMED_FILES = 100_000

/**
 * What the summary may keep of one file, estimated in bytes of JavaScript
 * objects. An avatar's glTF keeps well under 1 MB; a scene of 100,000 nodes
 * about this much. Past it the summary is dropped (the checks still run):
 * a 16 MB JSON of empty nodes kept as values took ~770 MB (found by review).
 */
export const MAX_KEPT_BYTES = 32 * 1024 * 1024

/** What V8 takes for what is kept (measured on Node 24, rounded up), for the budget. */
const OBJECT_COST = 96
const ARRAY_COST = 160
const NUMBER_COST = 16
const stringCost = (s: string): number => 40 + 2 * s.length

/** Transform and bound arrays: longer ones are not a valid glTF's, and are kept as "too long" (length 17). */
const MAX_VECTOR = 16

/** What the checks and the avatar report read from a glTF's JSON. */
export interface GltfJson {
  /** asset.version, as written (an object or array when the file has one there). */
  version: unknown
  /** extensionsUsed and extensionsRequired together. */
  extensions: string[]
  /** The buffers that have a uri or a byteLength, in order: a uri with a scheme (data:, http:) is left out. */
  buffers: Array<{ uri?: string, byteLength?: number }>
  /** The images' URIs that are paths (not data: or http:), in order. */
  imageUris: string[]
  /** How many images the file lists. */
  images: number
  /** The first image a texture uses that is given by a uri of any kind (a path, data: or http:), shortened for a message; undefined when every such image is in a buffer. */
  imageByUri: string | undefined
  /** Textures given only by EXT_texture_webp (no `source` of their own), as Blender writes a WebP image. */
  webpOnlyTextures: number
  /** What summarizeGltf and gltfGeometryNotes read; undefined when it would have been more than MAX_KEPT_BYTES. */
  doc: GltfDoc | undefined
}

const SECTIONS = new Set(['nodes', 'skins', 'meshes', 'accessors', 'materials', 'images', 'bufferViews'])
const VECTORS = new Set(['matrix', 'translation', 'rotation', 'scale', 'min', 'max'])

/**
 * Reads a glTF's JSON as it streams (JsonReader) and keeps only what the
 * checks and the summary use, within MAX_KEPT_BYTES: no section is held as
 * parsed values, so a file costs what it describes, not what it spells.
 * Throws (from `write` or `end`) when the text is not JSON Heimdall reads,
 * or names more than MAX_NAMED_FILES files.
 */
export class GltfJsonReader {
  readonly #stream = new JsonReader({
    open: (path, kind) => { this.#open(path, kind) },
    value: (path, value, length) => { this.#value(path, value, length) }
  })

  #version: unknown
  readonly #extensions = new Set<string>()
  readonly #buffers = new Map<number, { uri?: string, byteLength?: number }>()
  readonly #imageUris: string[] = []
  #images = 0
  /** The images given by a uri, by index, the uri shortened (MAX_NAMED_FILES of them at most). */
  readonly #uriImages = new Map<number, string>()
  /** Per texture: its `source`, and the one EXT_texture_webp gives (MAX_NAMED_FILES textures at most). */
  readonly #textures = new Map<number, { source?: number, webp?: number }>()
  /** Past MAX_NAMED_FILES textures or uri images, which texture uses which image is not known: any uri image counts as used. */
  #capped = false
  #doc: GltfDoc | undefined = {}
  #kept = 0
  #materials = 0

  write (text: string): void { this.#stream.write(text) }

  end (): GltfJson {
    this.#stream.end()
    const doc = this.#doc
    if (doc !== undefined) doc.materials = new Array<unknown>(this.#materials)
    const textures = [...this.#textures.entries()].sort(([a], [b]) => a - b).map(([, t]) => t)
    const webpOnlyTextures = textures.filter((t) => t.webp !== undefined && t.source === undefined).length
    const used = textures.flatMap((t) => [t.source, t.webp]).find((image) => image !== undefined && this.#uriImages.has(image))
    // Past the caps, any: a named file rather than a data: URI where there is one, for the message.
    const any = (): string | undefined => [...this.#uriImages.values()].find((uri) => uri !== 'data:…') ?? this.#uriImages.values().next().value
    const imageByUri = this.#capped ? any() : used === undefined ? undefined : this.#uriImages.get(used)
    return { version: this.#version, extensions: [...this.#extensions], buffers: [...this.#buffers.values()], imageUris: this.#imageUris, images: this.#images, imageByUri, webpOnlyTextures, doc }
  }

  #keep (cost: number): boolean {
    if (this.#doc === undefined) return false
    this.#kept += cost
    if (this.#kept <= MAX_KEPT_BYTES) return true
    this.#doc = undefined
    return false
  }

  #named (): void {
    if (this.#buffers.size + this.#imageUris.length >= MAX_NAMED_FILES) throw new JsonLimitError(`names more than ${MAX_NAMED_FILES.toLocaleString('en')} buffers and images`)
  }

  /** A uri as kept: a path whole (one longer than MAX_JSON_STRING is refused), one with a scheme not at all. */
  #path (value: string, length: number): string | undefined {
    if (hasScheme(value)) return undefined
    if (length > value.length) throw new JsonLimitError(`has a uri of ${length} characters, longer than any file's name (at most ${MAX_JSON_STRING})`)
    return value
  }

  /** The object at `index` of a kept section, made on first sight; undefined once the budget is spent. */
  #item<K extends keyof GltfDoc> (section: K, index: number): Record<string, unknown> | undefined {
    const doc = this.#doc
    if (doc === undefined) return undefined
    const list = (doc[section] ??= []) as unknown[]
    let item = list[index] as Record<string, unknown> | undefined
    if (item === undefined) {
      if (!this.#keep(OBJECT_COST)) return undefined
      item = {}
      list[index] = item
    }
    return item
  }

  #open (path: JsonPath, kind: 'object' | 'array'): void {
    const [section, index, field] = path
    if (path.length === 2 && section === 'asset' && index === 'version') { this.#version = kind === 'object' ? {} : []; return }
    if (typeof index !== 'number' || typeof section !== 'string' || !SECTIONS.has(section)) return
    if (path.length === 2) this.#element(section, index)
    else if (path.length === 3 && typeof field === 'string' && LISTS[section]?.has(field) === true) {
      // A list written twice: the last one counts, as in JSON.parse.
      const item = this.#doc?.[section as keyof GltfDoc]?.[index] as Record<string, unknown> | undefined
      if (item !== undefined) item[field] = undefined
    } else if (path.length === 4 && section === 'meshes' && path[2] === 'primitives' && typeof path[3] === 'number') {
      // A primitive is seen even when it is empty: gltfGeometryNotes asks whether it has indices.
      this.#primitive(index, path[3])
    }
  }

  #element (section: string, index: number): void {
    if (section === 'images') this.#images = Math.max(this.#images, index + 1)
    if (section === 'materials') this.#materials = Math.max(this.#materials, index + 1)
    else this.#item(section as keyof GltfDoc, index)
  }

  #primitive (mesh: number, index: number): GltfPrimitive | undefined {
    const item = this.#item('meshes', mesh)
    if (item === undefined) return undefined
    let primitives = item.primitives as GltfPrimitive[] | undefined
    if (primitives === undefined) {
      if (!this.#keep(ARRAY_COST)) return undefined
      primitives = []
      item.primitives = primitives
    }
    let primitive = primitives[index]
    if (primitive === undefined) {
      if (!this.#keep(OBJECT_COST)) return undefined
      primitive = {}
      primitives[index] = primitive
    }
    return primitive
  }

  #value (path: JsonPath, value: JsonPrimitive, length: number): void {
    const [section, index, field] = path
    if (section === 'asset' && index === 'version' && path.length === 2) { this.#version = value; return }
    if ((section === 'extensionsUsed' || section === 'extensionsRequired') && path.length === 2) {
      if (typeof value === 'string' && this.#extensions.size < 1000) this.#extensions.add(value)
      return
    }
    if (typeof index !== 'number') return
    if (section === 'buffers' && path.length === 3) { this.#buffer(index, field, value, length); return }
    if (section === 'textures') { this.#texture(path, index, value); return }
    if (typeof section !== 'string' || !SECTIONS.has(section)) return
    if (path.length === 2) { this.#element(section, index); return }
    if (section === 'meshes') { this.#meshValue(path, index, value); return }
    if (section === 'images' && field === 'uri' && path.length === 3 && typeof value === 'string') { this.#image(index, value, length); return }
    const item = this.#item(section as keyof GltfDoc, index)
    if (item === undefined || typeof field !== 'string') return
    if (path.length === 3) {
      if (KEPT_FIELDS[section]?.[field] === typeof value && this.#keep(typeof value === 'string' ? stringCost(value) : NUMBER_COST)) item[field] = value
      return
    }
    const at = path[3]
    if (path.length !== 4 || typeof at !== 'number' || typeof value !== 'number') return
    const list = LISTS[section]
    if (list === undefined || !list.has(field)) return
    let array = item[field] as number[] | undefined
    if (array === undefined) {
      if (!this.#keep(ARRAY_COST)) return
      array = []
      item[field] = array
    }
    if (VECTORS.has(field)) {
      // A transform or bound by position (a gap of at most MAX_VECTOR); a longer one is kept as too long.
      if (at >= MAX_VECTOR) array.length = MAX_VECTOR + 1
      else if (this.#keep(NUMBER_COST)) array[at] = value
    } else if (this.#keep(NUMBER_COST)) {
      // Children and joints are read as sets of node indexes: appended, so that a far index leaves no gap to allocate.
      array.push(value)
    }
  }

  /** textures[i].source, and textures[i].extensions.EXT_texture_webp.source: which textures have an image only as WebP. */
  #texture (path: JsonPath, index: number, value: JsonPrimitive): void {
    const isSource = path.length === 3 && path[2] === 'source'
    const isWebp = path.length === 5 && path[2] === 'extensions' && path[3] === 'EXT_texture_webp' && path[4] === 'source'
    if ((!isSource && !isWebp) || typeof value !== 'number') return
    let texture = this.#textures.get(index)
    if (texture === undefined) {
      if (this.#textures.size >= MAX_NAMED_FILES) { this.#capped = true; return }
      texture = {}
      this.#textures.set(index, texture)
    }
    // cgltf reads an index with atoi, Overte's WebP step with a cast: 0.5 is image 0.
    if (isSource) texture.source = Math.trunc(value)
    else texture.webp = Math.trunc(value)
  }

  /** An image's uri: a path is a file it names; a data: URI is kept as its size only, for the summary's embedded bytes. */
  #image (index: number, value: string, length: number): void {
    if (this.#uriImages.has(index) || this.#uriImages.size < MAX_NAMED_FILES) this.#uriImages.set(index, /^data:/i.test(value) ? 'data:…' : value.slice(0, 200))
    else this.#capped = true
    const path = this.#path(value, length)
    if (path !== undefined && path !== '') {
      this.#named()
      this.#imageUris.push(path)
    }
    const item = this.#item('images', index)
    if (item === undefined) return
    // A uri written twice: the last one counts.
    delete item.dataBytes
    delete item.uri
    if (/^data:/i.test(value)) {
      if (this.#keep(NUMBER_COST)) item.dataBytes = dataUriBytes(value, length)
    } else if (this.#keep(stringCost(value))) {
      item.uri = value
    }
  }

  #buffer (index: number, field: unknown, value: JsonPrimitive, length: number): void {
    if (field !== 'uri' && field !== 'byteLength') return
    let buffer = this.#buffers.get(index)
    if (buffer === undefined) {
      this.#named()
      buffer = {}
      this.#buffers.set(index, buffer)
    }
    if (field === 'uri' && typeof value === 'string') buffer.uri = this.#path(value, length)
    if (field === 'byteLength' && typeof value === 'number') buffer.byteLength = value
  }

  /** meshes[i].primitives[j].{indices, mode, attributes.POSITION} and meshes[i].extras.targetNames[k]. */
  #meshValue (path: JsonPath, mesh: number, value: JsonPrimitive): void {
    const [, , field, sub, key, attribute] = path
    // A primitive that is not an object (a broken file) still counts as one, without indices.
    if (path.length === 4 && field === 'primitives' && typeof sub === 'number') { this.#primitive(mesh, sub); return }
    if (field === 'primitives' && typeof sub === 'number' && typeof value === 'number') {
      const isField = path.length === 5 && (key === 'indices' || key === 'mode')
      const isPosition = path.length === 6 && key === 'attributes' && attribute === 'POSITION'
      if (!isField && !isPosition) return
      const primitive = this.#primitive(mesh, sub)
      if (primitive === undefined || !this.#keep(isPosition ? OBJECT_COST : NUMBER_COST)) return
      if (isPosition) primitive.attributes = { POSITION: value }
      else if (key === 'indices') primitive.indices = value
      else primitive.mode = value
      return
    }
    if (field === 'extras' && sub === 'targetNames' && path.length === 5 && typeof key === 'number' && typeof value === 'string') {
      const item = this.#item('meshes', mesh)
      if (item === undefined) return
      if (item.extras === undefined && !this.#keep(OBJECT_COST + ARRAY_COST)) return
      const extras = (item.extras ??= { targetNames: [] }) as { targetNames: string[] }
      if (this.#keep(stringCost(value))) extras.targetNames.push(value)
    }
  }
}

/** The single values kept, by section and field, with their JSON type. */
const KEPT_FIELDS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  nodes: { name: 'string', mesh: 'number' },
  accessors: { count: 'number' },
  images: { bufferView: 'number' },
  bufferViews: { byteLength: 'number' }
}

/** The number lists kept, by section: a node's children and transform, a skin's joints, an accessor's bounds. */
const LISTS: Readonly<Record<string, ReadonlySet<string>>> = {
  nodes: new Set<keyof GltfNode>(['children', 'matrix', 'translation', 'rotation', 'scale']),
  skins: new Set(['joints']),
  accessors: new Set(['min', 'max'])
}
