import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { crc32 } from 'node:zlib'
import yazl from 'yazl'

/** Real files from real exporters, copied from the shared fixtures (see test/fixtures/README.md). */
export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/assets/', import.meta.url))

export const fixture = (path: string): Buffer => readFileSync(`${FIXTURES_DIR}${path}`)

export interface ZipItem {
  path: string
  /** Omitted for a directory entry (`path` then ends with `/`). */
  data?: Buffer | string
  compress?: boolean
  mode?: number
}

/** Builds a zip in memory (test bundles are small), entries in the order given. */
export async function makeZip (items: readonly ZipItem[]): Promise<Buffer> {
  const zip = new yazl.ZipFile()
  for (const item of items) {
    if (item.data === undefined) {
      zip.addEmptyDirectory(item.path.replace(/\/$/, ''), { mtime: new Date(0) })
    } else {
      const data = typeof item.data === 'string' ? Buffer.from(item.data) : item.data
      zip.addBuffer(data, item.path, { compress: item.compress ?? true, mtime: new Date(0), ...(item.mode === undefined ? {} : { mode: item.mode }) })
    }
  }
  zip.end()
  const chunks: Buffer[] = []
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

export interface RawZipEntry {
  /** The name's bytes as written (a string is written as UTF-8). */
  name: Buffer | string
  data?: Buffer | string
  /** General purpose flags; 0 (no UTF-8 flag) unless given. */
  flags?: number
  /** "Version made by" host: 0 MS-DOS/FAT, 3 Unix (the default), 11 NTFS. */
  host?: number
  /** Extra fields of the central header, as written. */
  extra?: Buffer
  /** Compression method recorded (the data is stored as given whatever it says). */
  method?: number
}

/**
 * A zip written byte by byte, stored entries only, for names and headers as
 * other tools write them (yazl always flags its names UTF-8 and writes Unix
 * as the host): code-page names, Windows hosts, extra fields.
 */
export function rawZip (entries: readonly RawZipEntry[]): Buffer {
  const locals: Buffer[] = []
  const centrals: Buffer[] = []
  let offset = 0
  for (const entry of entries) {
    const name = typeof entry.name === 'string' ? Buffer.from(entry.name) : entry.name
    const data = typeof entry.data === 'string' ? Buffer.from(entry.data) : entry.data ?? Buffer.alloc(0)
    const extra = entry.extra ?? Buffer.alloc(0)
    const crc = crc32(data)
    // The fields both headers share, from "version needed" to the name's length; the central header's start 2 bytes later.
    const shared = (header: Buffer, at: number): void => {
      header.writeUInt16LE(20, at)
      header.writeUInt16LE(entry.flags ?? 0, at + 2)
      header.writeUInt16LE(entry.method ?? 0, at + 4)
      header.writeUInt32LE(crc, at + 10)
      header.writeUInt32LE(data.length, at + 14)
      header.writeUInt32LE(data.length, at + 18)
      header.writeUInt16LE(name.length, at + 22)
    }
    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0)
    shared(local, 4)
    const central = Buffer.alloc(46)
    central.writeUInt32LE(0x02014b50, 0)
    central.writeUInt16LE(((entry.host ?? 3) << 8) | 20, 4)
    shared(central, 6)
    central.writeUInt16LE(extra.length, 30)
    central.writeUInt32LE(offset, 42)
    locals.push(local, name, data)
    centrals.push(central, name, extra)
    offset += local.length + name.length + data.length
  }
  const directory = Buffer.concat(centrals)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0)
  end.writeUInt16LE(entries.length, 8)
  end.writeUInt16LE(entries.length, 10)
  end.writeUInt32LE(directory.length, 12)
  end.writeUInt32LE(offset, 16)
  return Buffer.concat([...locals, directory, end])
}

/** The Info-ZIP Unicode Path extra field (0x7075) naming `written` (the header's name bytes) as `name` (UTF-8, or bytes as given). */
export function unicodePathField (written: Buffer, name: string | Buffer): Buffer {
  const utf8 = typeof name === 'string' ? Buffer.from(name) : name
  const field = Buffer.alloc(9 + utf8.length)
  field.writeUInt16LE(0x7075, 0)
  field.writeUInt16LE(5 + utf8.length, 2)
  field.writeUInt8(1, 4)
  field.writeUInt32LE(crc32(written), 5)
  utf8.copy(field, 9)
  return field
}

export const AVATAR_FST = [
  'name = TestAvatar',
  'type = body+head',
  'scale = 1',
  'filename = box.fbx',
  'texdir = textures',
  'joint = jointRoot = Hips',
  '# a comment',
  ''
].join('\n')

/** An avatar bundle as the add-on packs it: `.fst`, model, and a textures folder with its directory entry. */
export async function avatarBundle (): Promise<Buffer> {
  return makeZip([
    { path: 'avatar.fst', data: AVATAR_FST },
    { path: 'box.fbx', data: fixture('fbx/box-binary.fbx') },
    { path: 'textures/' },
    { path: 'textures/skin.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }
  ])
}

/** Renames an entry in a built zip, in its local and central headers (same length), to make names yazl would refuse to write. */
export function renameInZip (zip: Buffer, from: string, to: string): Buffer {
  if (Buffer.byteLength(from) !== Buffer.byteLength(to)) throw new Error('renameInZip keeps lengths equal')
  const out = Buffer.from(zip)
  const needle = Buffer.from(from)
  for (let at = out.indexOf(needle); at !== -1; at = out.indexOf(needle, at + 1)) Buffer.from(to).copy(out, at)
  return out
}

/** Applies `patch` to the central-directory header of `name` (offsets per APPNOTE 4.3.12). */
export function patchCentralHeader (zip: Buffer, name: string, patch: (header: Buffer) => void): Buffer {
  const out = Buffer.from(zip)
  const signature = Buffer.from([0x50, 0x4b, 0x01, 0x02])
  for (let at = out.indexOf(signature); at !== -1; at = out.indexOf(signature, at + 4)) {
    const nameLength = out.readUInt16LE(at + 28)
    if (out.subarray(at + 46, at + 46 + nameLength).toString() === name) { patch(out.subarray(at, at + 46)); return out }
  }
  throw new Error(`no central header for ${name}`)
}

/** The Blender avatar: files written by Blender's own exporters (test/fixtures/blender/make_avatar.py says what they hold). */
export const blenderAvatar = (path: string): Buffer => readFileSync(fileURLToPath(new URL(`../fixtures/blender/avatar/${path}`, import.meta.url)))

/** A GLB whose JSON chunk is `json` (padded to 4 bytes with spaces, as the format wants), and no BIN chunk. */
export function glbWithJson (json: string): Buffer {
  const text = Buffer.from(json)
  const padded = Buffer.concat([text, Buffer.alloc((4 - text.length % 4) % 4, 0x20)])
  const header = Buffer.alloc(20)
  header.write('glTF', 0, 'latin1')
  header.writeUInt32LE(2, 4)
  header.writeUInt32LE(20 + padded.length, 8)
  header.writeUInt32LE(padded.length, 12)
  header.writeUInt32LE(0x4e4f534a, 16)
  return Buffer.concat([header, padded])
}
