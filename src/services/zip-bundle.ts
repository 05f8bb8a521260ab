import { closeSync, openSync, read } from 'node:fs'
import { open as openFile } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { crc32 } from 'node:zlib'
import yauzl, { type Entry, type ZipFile } from 'yauzl'
import { BadRequestError, listedAtMost, PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors.ts'
import type { ImportCandidate } from '../ipfs/ipfs-backend.ts'
import { codePageNote, DEFAULT_ZIP_NAME_ENCODING, nameReader, type ReadName } from './zip-names.ts'

export interface BundleLimits {
  maxEntries: number
  maxUncompressedBytes: number
  /** Largest uncompressed/compressed ratio allowed for an entry over 1 MiB. */
  maxRatio: number
}

export interface BundleEntry {
  /** Relative path without a trailing slash. */
  path: string
  isDirectory: boolean
  /** Declared uncompressed size; yauzl fails the read if the data disagrees. */
  size: number
}

const RATIO_CHECKED_ABOVE = 1_048_576
/** Stored and Deflate: what every zip tool writes by default, and what the reader inflates. */
const READABLE_METHODS = new Set([0, 8])
const METHOD_NAMES = new Map([[9, 'Deflate64'], [12, 'BZip2'], [14, 'LZMA'], [93, 'Zstandard'], [95, 'XZ'], [98, 'PPMd'], [99, 'AES encryption']])
const S_IFMT = 0o170000
const S_IFLNK = 0o120000

const openZip = promisify<string, yauzl.Options, ZipFile>(yauzl.open)
const openReader = promisify<yauzl.RandomAccessReader, number, yauzl.Options, ZipFile>(yauzl.fromRandomAccessReader)
const EOCD_SIGNATURE = 0x06054b50
const EOCD_SIZE = 22
/** How far from the end a zero-padded archive's end record is looked for: a comment's most, and tar-style blocks of up to 64 KiB. */
const PADDED_TAIL = EOCD_SIZE + 0xffff + 65_536

/**
 * The archive's bytes by range, from one file descriptor. yauzl closes its
 * reader when an open fails as well as with the archive: the descriptor is
 * closed by it only once `opened` (a failed try leaves it for the next).
 */
class FileRangeReader extends yauzl.RandomAccessReader {
  readonly #fd: number
  opened = false
  constructor (fd: number) {
    super()
    this.#fd = fd
  }

  /** Reads by position on the shared descriptor (an fs.ReadStream given it would close it when destroyed, as yauzl does). */
  override _readStreamForRange (start: number, end: number): Readable {
    const fd = this.#fd
    let position = start
    return new Readable({
      read (size) {
        const length = Math.min(size, end - position)
        if (length <= 0) { this.push(null); return }
        const buffer = Buffer.allocUnsafe(length)
        read(fd, buffer, 0, length, position, (err, bytesRead) => {
          if (err !== null) { this.destroy(err); return }
          if (bytesRead === 0) { this.push(null); return }
          position += bytesRead
          this.push(bytesRead < length ? buffer.subarray(0, bytesRead) : buffer)
        })
      }
    })
  }

  override close (callback: (err: Error | null) => void): void {
    if (!this.opened) { callback(null); return }
    try { closeSync(this.#fd) } catch (err) { callback(err as Error); return }
    callback(null)
  }
}

/**
 * Where an archive followed by zero bytes ends: its end-of-central-directory
 * record with its comment, when only zeros come after them (bsdtar and
 * other tar-minded writers pad a zip written to a pipe to their block size;
 * unzip, 7-Zip and Python read it, yauzl refuses any byte after the end
 * record). Undefined when there is no such record or anything but zeros
 * follows it: trailing data of any other kind stays refused.
 */
async function paddedArchiveEnd (file: string): Promise<number | undefined> {
  const handle = await openFile(file, 'r')
  try {
    const { size } = await handle.stat()
    const length = Math.min(size, PADDED_TAIL)
    const tail = Buffer.alloc(length)
    await handle.read(tail, 0, length, size - length)
    for (let i = length - EOCD_SIZE; i >= 0; i--) {
      if (tail.readUInt32LE(i) !== EOCD_SIGNATURE) continue
      const end = i + EOCD_SIZE + tail.readUInt16LE(i + 20)
      if (end > length) continue
      if (end === length) return undefined
      for (let j = end; j < length; j++) if (tail[j] !== 0) return undefined
      return size - length + end
    }
    return undefined
  } finally {
    await handle.close()
  }
}

/**
 * The archive in `file`, read from its central directory; one padded with
 * zeros after its end is read up to its end (looked at first: a failed
 * open's descriptor is closed by yauzl after it answers, so no retry shares
 * the file with it).
 */
async function openArchive (file: string, options: yauzl.Options): Promise<ZipFile> {
  const end = await paddedArchiveEnd(file)
  if (end === undefined) return openZip(file, options)
  const fd = openSync(file, 'r')
  const reader = new FileRangeReader(fd)
  try {
    const zip = await openReader(reader, end, options)
    reader.opened = true
    return zip
  } catch (err) {
    closeSync(fd)
    throw err
  }
}

/** Left out of a bundle, with a warning: what operating systems add to a folder, never part of a model. */
function isSystemMetadata (path: string): boolean {
  const segments = path.split('/')
  const base = segments.at(-1) ?? ''
  return segments[0] === '__MACOSX' || base === '.DS_Store' || base.startsWith('._') || /^(thumbs\.db|desktop\.ini)$/i.test(base)
}

/** C0, DEL and C1 (Unicode's Cc): they break headers and terminals, and no one names a file with them on purpose. */
export const CONTROL_CHARACTER = /\p{Cc}/u

/** Why `name` cannot be a path inside the bundle, or undefined when it can. */
export function pathProblem (name: string): string | undefined {
  if (name.includes('\0')) return 'has a NUL character in its name'
  if (CONTROL_CHARACTER.test(name)) return 'has a control character in its name'
  if (name.includes('\\')) return 'uses backslashes in its path'
  if (name.startsWith('/')) return 'is an absolute path'
  if (/^[a-zA-Z]:/.test(name)) return 'starts with a drive letter'
  const segments = name.replace(/\/$/, '').split('/')
  if (segments.some((s) => s === '..')) return 'has a ".." segment'
  if (segments.some((s) => s === '' || s === '.')) return 'has an empty or "." segment'
  return undefined
}

/**
 * A zip bundle on disk, inspected through its central directory before a byte
 * of content is read. Opening it refuses the whole bundle, listing every
 * offending entry, when it breaks a rule; afterwards `candidates()` streams
 * each entry's content into the importer.
 */
export class ZipBundle {
  readonly entries: readonly BundleEntry[]
  /** Files left out: operating-system metadata (`__MACOSX/`, `._*`, `.DS_Store`, `Thumbs.db`, `desktop.ini`). */
  readonly skipped: readonly string[]
  /** Files whose names were read without a mark that says how (see nameReader and codePageNote). */
  readonly unmarkedNames: ReadonlyMap<string, ReadName>
  readonly #zip: ZipFile
  readonly #raw: ReadonlyMap<string, Entry>

  private constructor (zip: ZipFile, inspected: Inspected) {
    this.#zip = zip
    this.entries = inspected.entries
    this.#raw = inspected.raw
    this.skipped = inspected.skipped
    this.unmarkedNames = inspected.unmarkedNames
  }

  /**
   * Opens and inspects the archive. `nameEncoding` (see zipNameEncoding):
   * what names neither marked nor valid as UTF-8 are read in; code page 437
   * by default.
   */
  static async open (file: string, limits: BundleLimits, options: { nameEncoding?: string } = {}): Promise<ZipBundle> {
    let zip: ZipFile
    try {
      zip = await openArchive(file, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true, strictFileNames: false })
    } catch (err) {
      throw new BadRequestError('the file is not a readable zip archive', [err instanceof Error ? err.message : String(err)])
    }
    try {
      const rawEntries = await readCentralDirectory(zip, limits.maxEntries)
      return new ZipBundle(zip, inspect(rawEntries, limits, nameReader(rawEntries, options.nameEncoding ?? DEFAULT_ZIP_NAME_ENCODING, isSystemMetadata)))
    } catch (err) {
      zip.close()
      throw err
    }
  }

  get files (): BundleEntry[] {
    return this.entries.filter((e) => !e.isDirectory)
  }

  /** Import candidates in central-directory order; each entry's data is opened only when the importer reads it. */
  * candidates (): Iterable<ImportCandidate> {
    for (const entry of this.entries) {
      if (entry.isDirectory) {
        yield { path: entry.path }
      } else {
        const raw = this.#raw.get(entry.path)
        if (raw !== undefined) yield { path: entry.path, content: this.#content(entry.path, raw) }
      }
    }
  }

  async * #content (path: string, entry: Entry): AsyncIterable<Uint8Array> {
    // The entry's CRC-32, on the bytes as they pass: yauzl checks sizes, not CRCs, and a damaged entry (a flipped byte
    // in a stored file, which inflating cannot notice) would be imported and served as the creator's file.
    let crc = 0
    try {
      const open = promisify<Entry, NodeJS.ReadableStream>(this.#zip.openReadStream.bind(this.#zip))
      const stream = await open(entry)
      for await (const chunk of stream) {
        const bytes = chunk as Buffer
        crc = crc32(bytes, crc)
        yield bytes
      }
    } catch (err) {
      // Declared sizes can lie: yauzl counts while inflating and fails the entry.
      throw new BadRequestError('the zip archive is damaged or lies about its contents', [`${path}: ${err instanceof Error ? err.message : String(err)}`])
    }
    if (crc !== entry.crc32) {
      throw new BadRequestError('the zip archive is damaged or lies about its contents', [`${path}: its bytes do not match the CRC-32 the archive records for them`])
    }
  }

  close (): void {
    this.#zip.close()
  }
}

async function readCentralDirectory (zip: ZipFile, maxEntries: number): Promise<Entry[]> {
  if (zip.entryCount > maxEntries) {
    throw new PayloadTooLargeError(`the bundle has ${zip.entryCount} entries; at most ${maxEntries} are allowed`)
  }
  return new Promise((resolve, reject) => {
    const entries: Entry[] = []
    zip.on('entry', (entry: Entry) => { entries.push(entry); zip.readEntry() })
    zip.once('end', () => { resolve(entries) })
    zip.once('error', (err: Error) => { reject(new BadRequestError('the zip archive is damaged', [err.message])) })
    zip.readEntry()
  })
}

/** A name as the bundle uses it: without bsdtar's leading `./` (`./` alone is the folder itself), what it would otherwise be likewise. */
function tidied (read: ReadName): ReadName {
  const tidy = (name: string): string => name.replace(/^(?:\.\/)+/, '')
  return { ...read, name: tidy(read.name), ...(read.otherwise === undefined ? {} : { otherwise: tidy(read.otherwise).replace(/\/+$/, '') }) }
}

interface Inspected { entries: BundleEntry[], raw: Map<string, Entry>, skipped: string[], unmarkedNames: Map<string, ReadName> }

function inspect (rawEntries: Entry[], limits: BundleLimits, readName: (entry: Entry) => ReadName): Inspected {
  const unsafe: string[] = []
  const unreadable: string[] = []
  const skipped: string[] = []
  const unmarkedNames = new Map<string, ReadName>()
  // Refused entries whose names may be misread: the refusal then says how names were read.
  const misread = new Map<string, ReadName>()
  const tooLarge: string[] = []
  const entries: BundleEntry[] = []
  const raw = new Map<string, Entry>()
  const seen = new Map<string, { path: string, read: ReadName, unmarked: boolean, bytes: Buffer }>()
  let total = 0

  for (const entry of rawEntries) {
    // `./avatar.fst`, as bsdtar (Windows' tar.exe) writes a folder's contents; `./` alone is the folder itself.
    const read = tidied(readName(entry))
    const name = read.name
    if (name === '' || name === '.') continue
    const isDirectory = name.endsWith('/')
    const path = name.replace(/\/+$/, '')
    const unmarked = read.encoding !== undefined || read.otherwise !== undefined
    const problem = pathProblem(name)
    if (problem !== undefined) {
      unsafe.push(`${JSON.stringify(name)} ${problem}`)
      if (unmarked) misread.set(path, read)
      continue
    }
    if (isSystemMetadata(path)) { if (!isDirectory) skipped.push(path); continue }
    if (((entry.externalFileAttributes >>> 16) & S_IFMT) === S_IFLNK) { unsafe.push(`${path} is a symbolic link`); continue }
    if (entry.isEncrypted()) { unsafe.push(`${path} is encrypted`); continue }
    if (!isDirectory && !READABLE_METHODS.has(entry.compressionMethod)) {
      unreadable.push(`${path} is compressed with ${METHOD_NAMES.get(entry.compressionMethod) ?? `method ${entry.compressionMethod}`}`)
      continue
    }
    if (!isDirectory && /\.zip$/i.test(path)) { unsafe.push(`${path} is a zip inside the zip`); continue }
    // Lower case can leave a name decomposed again (T + U+0308 against ẗ): composed after folding too.
    const folded = path.toLowerCase().normalize('NFC')
    const other = seen.get(folded)
    const bytes = entry.fileName as unknown as Buffer
    if (other !== undefined) {
      // A folder listed once explicitly and once implied by its files is fine; anything else collides.
      if (!(isDirectory && other.path === path)) {
        const same = other.bytes.equals(bytes)
        unsafe.push(other.path !== path
          ? `${path} collides with ${other.path} (paths must differ in more than letter case)`
          : same
            ? `${path} appears twice (two entries have the same name)`
            : `${path} appears twice (two entries name it, written differently: \\ or / between folders, a leading ./, marked as UTF-8 or not, composed or decomposed)`)
        // A plain duplicate is no misreading.
        if (!same && unmarked) misread.set(path, read)
        if (!same && other.unmarked) misread.set(other.path, other.read)
      }
      continue
    }
    seen.set(folded, { path, read, unmarked, bytes })
    if (!isDirectory) {
      total += entry.uncompressedSize
      if (entry.uncompressedSize > RATIO_CHECKED_ABOVE && entry.uncompressedSize / Math.max(entry.compressedSize, 1) > limits.maxRatio) {
        tooLarge.push(`${path} expands ${Math.round(entry.uncompressedSize / Math.max(entry.compressedSize, 1))}× (at most ${limits.maxRatio}× is allowed)`)
      }
    }
    entries.push({ path, isDirectory, size: isDirectory ? 0 : entry.uncompressedSize })
    if (!isDirectory) raw.set(path, entry)
    if (!isDirectory && unmarked) unmarkedNames.set(path, read)
  }

  // A file whose path is also used as a folder by another entry (`a` and `a/b`).
  for (const entry of entries) {
    const parts = entry.path.split('/')
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/')
      if (!raw.has(parent)) continue
      unsafe.push(`${entry.path} is inside ${parent}, which is a file`)
      for (const path of [entry.path, parent]) { const read = unmarkedNames.get(path); if (read !== undefined) misread.set(path, read) }
    }
  }

  // A backslash or a control character may be a name misread: the refusal says which names were read in a code page.
  if (unsafe.length > 0) {
    const note = misread.size === 0 ? undefined : codePageNote(new Map([...misread, ...unmarkedNames]))
    // A tool that misnames every entry gave a 5 MB answer: a hundred show what is wrong.
    throw new BadRequestError('the bundle has unsafe entries', listedAtMost(unsafe, note))
  }
  if (unreadable.length > 0) {
    throw new UnsupportedMediaTypeError('the bundle uses a compression this server cannot read: zip it again with Deflate (the default of every zip tool) or stored', listedAtMost(unreadable))
  }
  if (total > limits.maxUncompressedBytes) {
    tooLarge.push(`the files add up to ${total} bytes uncompressed; at most ${limits.maxUncompressedBytes} are allowed`)
  }
  if (tooLarge.length > 0) throw new PayloadTooLargeError('the bundle is too large once uncompressed', listedAtMost(tooLarge))
  if (raw.size === 0) throw new BadRequestError('the bundle has no files')
  return { entries, raw, skipped, unmarkedNames }
}
