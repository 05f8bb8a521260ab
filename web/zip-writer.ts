/**
 * A folder picked or dropped in the browser, sent as the zip bundle the
 * server takes: entries stored (models and textures are compressed
 * already), in path order, each file's bytes read once for its CRC-32 and
 * never held: the zip is a Blob made of its headers and the files
 * themselves, which the browser reads again as it sends them. The same
 * folder makes the same bytes (and the same name, size and date), so a
 * resumable upload of it continues after a reload.
 */

/** A file of the folder by its path inside it, with `/` (`textures/skin.png`). */
export interface FolderFile { path: string, file: File }

const LOCAL_HEADER = 0x04034b50
const CENTRAL_HEADER = 0x02014b50
const END_OF_CENTRAL_DIRECTORY = 0x06054b50
const ZIP64_END = 0x06064b50
const ZIP64_LOCATOR = 0x07064b50
const ZIP64_EXTRA = 0x0001
/** General purpose flag 11: names are UTF-8. */
const UTF8_NAMES = 0x0800
/** Made by Unix (3), so that the external attributes carry a mode: a regular file, rw-r--r--. */
const MADE_BY_UNIX = 3 << 8
const REGULAR_FILE = (0o100644 << 16) >>> 0
const MAX_32 = 0xffffffff
const MAX_16 = 0xffff

/** Hidden files and folders (`.git`, `.DS_Store`) are left out, as the command-line client leaves them out. */
export const isHidden = (path: string): boolean => path.split('/').some((segment) => segment.startsWith('.'))

const CRC_TABLE = ((): Uint32Array[] => {
  // Slicing by 8: eight bytes per step (~4× a byte at a time).
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256))
  const [first] = tables as [Uint32Array]
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) === 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    first[n] = c
  }
  for (let n = 0; n < 256; n++) {
    for (let t = 1; t < 8; t++) {
      const previous = (tables[t - 1] as Uint32Array)[n] as number
      ;(tables[t] as Uint32Array)[n] = (previous >>> 8) ^ (first[previous & 0xff] as number)
    }
  }
  return tables
})()

/** CRC-32 (ISO-HDLC, zip's) of `bytes`, continuing from `crc`. */
export function crc32 (bytes: Uint8Array, crc = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC_TABLE as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array]
  let c = ~crc >>> 0
  let i = 0
  const whole = bytes.length - (bytes.length % 8)
  for (; i < whole; i += 8) {
    const a = (c ^ ((bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24))) >>> 0
    c = (t7[a & 0xff] as number) ^ (t6[(a >>> 8) & 0xff] as number) ^ (t5[(a >>> 16) & 0xff] as number) ^ (t4[a >>> 24] as number) ^
      (t3[bytes[i + 4] as number] as number) ^ (t2[bytes[i + 5] as number] as number) ^ (t1[bytes[i + 6] as number] as number) ^ (t0[bytes[i + 7] as number] as number)
  }
  for (; i < bytes.length; i++) c = (t0[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return ~c >>> 0
}

/** A file of the folder that could not be read: moved, deleted or changed since it was listed, or unreadable by name. */
export class FolderReadError extends Error {
  readonly path: string
  constructor (path: string, cause: unknown) {
    super(`${path} could not be read (${cause instanceof Error && cause.message !== '' ? cause.message : String(cause)})`, { cause })
    this.name = 'FolderReadError'
    this.path = path
  }
}

/** Files up to this size are read whole (one read); larger ones streamed. A stream per small file cost ~1.4 ms each. */
const READ_WHOLE_UP_TO = 4 * 1024 * 1024

async function crcOf (entry: FolderFile, onBytes: (count: number) => void, signal: AbortSignal | undefined): Promise<number> {
  try {
    if (entry.file.size <= READ_WHOLE_UP_TO) {
      const bytes = new Uint8Array(await entry.file.arrayBuffer())
      onBytes(bytes.byteLength)
      return crc32(bytes)
    }
    let crc = 0
    const reader = entry.file.stream().getReader()
    for (;;) {
      signal?.throwIfAborted()
      const { done, value } = await reader.read()
      if (done) return crc
      crc = crc32(value, crc)
      onBytes(value.byteLength)
    }
  } catch (err) {
    if (signal?.aborted === true) throw signal.reason
    throw new FolderReadError(entry.path, err)
  }
}

/** MS-DOS date and time, in local time as zip tools write them (1980 at the earliest). */
function dosDateTime (ms: number): { date: number, time: number } {
  const d = new Date(Math.max(ms, new Date(1980, 0, 1).getTime()))
  return {
    date: ((d.getFullYear() - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1)
  }
}

/** A little-endian record of `fields` ([bytes, value] each), then `tail`. */
function record (fields: Array<[2 | 4 | 8, number]>, ...tail: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const size = fields.reduce((sum, [bytes]) => sum + bytes, 0) + tail.reduce((sum, part) => sum + part.byteLength, 0)
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  let at = 0
  for (const [bytes, value] of fields) {
    if (bytes === 2) view.setUint16(at, value, true)
    else if (bytes === 4) view.setUint32(at, value, true)
    else view.setBigUint64(at, BigInt(value), true)
    at += bytes
  }
  for (const part of tail) { out.set(part, at); at += part.byteLength }
  return out
}

export interface ZipOptions {
  /** Called as the files are read for their checksums: bytes read so far, of `total`. */
  onRead?: (read: number, total: number) => void
  /** Sizes and offsets from this one on are written as ZIP64 (tests lower it; zip's own limit otherwise). */
  zip64From?: number
  /** The largest zip to make: a bigger one is refused (ZipTooLargeError) before a byte of the files is read. */
  maxBytes?: number
  /** Stops the reading (the signal's reason is thrown). */
  signal?: AbortSignal
}

/** The folder's zip would be larger than `maxBytes`. */
export class ZipTooLargeError extends Error {
  readonly size: number
  readonly maxBytes: number
  constructor (size: number, maxBytes: number) {
    super(`the folder's zip would be ${size} bytes; at most ${maxBytes} can be uploaded`)
    this.name = 'ZipTooLargeError'
    this.size = size
    this.maxBytes = maxBytes
  }
}

export interface FolderZip {
  /** `<name>.zip`, dated as the newest of the files. */
  file: File
  /**
   * What the zip holds, in a few characters: its size, its count and a
   * CRC-32 of its central directory (every path, size, date and content
   * CRC). Another folder, or this one with a file renamed or rewritten,
   * has another (a resumable upload is resumed by it).
   */
  fingerprint: string
  /** The files it reads from, as the browser snapshotted them (a changed one can no longer be read). */
  sources: readonly File[]
}

/** An entry where it goes in the zip: all but its CRC is known before its file is read. */
interface Placed { entry: FolderFile, name: Uint8Array<ArrayBuffer>, offset: number, bigSize: boolean, bigOffset: boolean, centralExtra: Uint8Array<ArrayBuffer> }

/**
 * `files` as a stored zip named `<name>.zip`. Paths are sorted, so the same
 * folder gives the same bytes, and ZIP64 records are written only where a
 * size, an offset or the count needs them. The zip's layout, and so its
 * size, is known before the files are read (for their CRC-32s).
 */
export async function zipFolder (name: string, files: readonly FolderFile[], options: ZipOptions = {}): Promise<FolderZip> {
  const zip64From = options.zip64From ?? MAX_32
  const encoder = new TextEncoder()
  const placed: Placed[] = []
  let offset = 0
  let directorySize = 0
  for (const entry of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const { size } = entry.file
    const bigSize = size >= zip64From
    const bigOffset = offset >= zip64From
    const nameBytes = encoder.encode(entry.path)
    // The central header's ZIP64 field holds the values its 32-bit fields cannot, in this order.
    const extra64: Array<[8, number]> = [...(bigSize ? [[8, size], [8, size]] as Array<[8, number]> : []), ...(bigOffset ? [[8, offset]] as Array<[8, number]> : [])]
    const centralExtra = extra64.length === 0 ? new Uint8Array(0) : record([[2, ZIP64_EXTRA], [2, extra64.length * 8], ...extra64])
    placed.push({ entry, name: nameBytes, offset, bigSize, bigOffset, centralExtra })
    offset += 30 + nameBytes.byteLength + (bigSize ? 20 : 0) + size
    directorySize += 46 + nameBytes.byteLength + centralExtra.byteLength
  }
  const count = placed.length
  const needs64 = count >= Math.min(MAX_16, zip64From) || directorySize >= zip64From || offset >= zip64From
  const size = offset + directorySize + (needs64 ? 56 + 20 : 0) + 22
  if (options.maxBytes !== undefined && size > options.maxBytes) throw new ZipTooLargeError(size, options.maxBytes)

  const total = placed.reduce((sum, p) => sum + p.entry.file.size, 0)
  const parts: Array<Blob | Uint8Array<ArrayBuffer>> = []
  const central: Uint8Array<ArrayBuffer>[] = []
  let read = 0
  for (const { entry, name: nameBytes, offset: at, bigSize, bigOffset, centralExtra } of placed) {
    options.signal?.throwIfAborted()
    const { file } = entry
    const crc = await crcOf(entry, (bytes) => { read += bytes; options.onRead?.(read, total) }, options.signal)
    const { date, time } = dosDateTime(file.lastModified)
    const version = bigSize || bigOffset ? 45 : 20
    const size32 = bigSize ? MAX_32 : file.size
    const local = record([[4, LOCAL_HEADER], [2, version], [2, UTF8_NAMES], [2, 0], [2, time], [2, date], [4, crc], [4, size32], [4, size32], [2, nameBytes.byteLength], [2, bigSize ? 20 : 0]],
      nameBytes, ...(bigSize ? [record([[2, ZIP64_EXTRA], [2, 16], [8, file.size], [8, file.size]])] : []))
    central.push(record([[4, CENTRAL_HEADER], [2, MADE_BY_UNIX | version], [2, version], [2, UTF8_NAMES], [2, 0], [2, time], [2, date], [4, crc], [4, size32], [4, size32],
      [2, nameBytes.byteLength], [2, centralExtra.byteLength], [2, 0], [2, 0], [2, 0], [4, REGULAR_FILE], [4, bigOffset ? MAX_32 : at]], nameBytes, centralExtra))
    parts.push(local, file)
  }
  options.signal?.throwIfAborted()
  parts.push(...central)
  if (needs64) {
    parts.push(record([[4, ZIP64_END], [8, 44], [2, MADE_BY_UNIX | 45], [2, 45], [4, 0], [4, 0], [8, count], [8, count], [8, directorySize], [8, offset]]))
    parts.push(record([[4, ZIP64_LOCATOR], [4, 0], [8, offset + directorySize], [4, 1]]))
  }
  parts.push(record([[4, END_OF_CENTRAL_DIRECTORY], [2, 0], [2, 0], [2, needs64 ? MAX_16 : count], [2, needs64 ? MAX_16 : count],
    [4, needs64 ? MAX_32 : directorySize], [4, needs64 ? MAX_32 : offset], [2, 0]]))
  const newest = placed.reduce((latest, p) => Math.max(latest, p.entry.file.lastModified), 0)
  const file = new File(parts, `${name}.zip`, { type: 'application/zip', lastModified: newest })
  if (file.size !== size) throw new Error(`the zip is ${file.size} bytes, not the ${size} laid out`)
  const directoryCrc = central.reduce((crc, header) => crc32(header, crc), 0)
  return { file, fingerprint: `${file.size}-${count}-${directoryCrc.toString(16).padStart(8, '0')}`, sources: placed.map((p) => p.entry.file) }
}
