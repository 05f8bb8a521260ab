import { promisify } from 'node:util'
import yauzl, { type Entry, type ZipFile } from 'yauzl'
import { BadRequestError, PayloadTooLargeError } from '../errors.ts'
import type { ImportCandidate } from '../ipfs/ipfs-backend.ts'

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
const S_IFMT = 0o170000
const S_IFLNK = 0o120000
const UTF8_FLAG = 0x800

const openZip = promisify<string, yauzl.Options, ZipFile>(yauzl.open)

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Names are UTF-8 when flagged; unflagged names are too in practice (Python, 7-Zip), else Latin-1. */
function decodeName (entry: Entry): string {
  const raw = entry.fileName as unknown as Buffer
  if ((entry.generalPurposeBitFlag & UTF8_FLAG) !== 0) return raw.toString('utf8')
  try { return utf8.decode(raw) } catch { return raw.toString('latin1') }
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
  readonly #zip: ZipFile
  readonly #raw: ReadonlyMap<string, Entry>

  private constructor (zip: ZipFile, entries: BundleEntry[], raw: Map<string, Entry>) {
    this.#zip = zip
    this.entries = entries
    this.#raw = raw
  }

  static async open (file: string, limits: BundleLimits): Promise<ZipBundle> {
    let zip: ZipFile
    try {
      zip = await openZip(file, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true, strictFileNames: false })
    } catch (err) {
      throw new BadRequestError('the file is not a readable zip archive', [err instanceof Error ? err.message : String(err)])
    }
    try {
      const rawEntries = await readCentralDirectory(zip, limits.maxEntries)
      const { entries, raw } = inspect(rawEntries, limits)
      return new ZipBundle(zip, entries, raw)
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
    try {
      const open = promisify<Entry, NodeJS.ReadableStream>(this.#zip.openReadStream.bind(this.#zip))
      const stream = await open(entry)
      for await (const chunk of stream) yield chunk as Buffer
    } catch (err) {
      // Declared sizes can lie: yauzl counts while inflating and fails the entry.
      throw new BadRequestError('the zip archive is damaged or lies about its contents', [`${path}: ${err instanceof Error ? err.message : String(err)}`])
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

function inspect (rawEntries: Entry[], limits: BundleLimits): { entries: BundleEntry[], raw: Map<string, Entry> } {
  const unsafe: string[] = []
  const tooLarge: string[] = []
  const entries: BundleEntry[] = []
  const raw = new Map<string, Entry>()
  const seen = new Map<string, string>()
  let total = 0

  for (const entry of rawEntries) {
    const name = decodeName(entry)
    const isDirectory = name.endsWith('/')
    const path = name.replace(/\/+$/, '')
    const problem = pathProblem(name)
    if (problem !== undefined) { unsafe.push(`${JSON.stringify(name)} ${problem}`); continue }
    if (((entry.externalFileAttributes >>> 16) & S_IFMT) === S_IFLNK) { unsafe.push(`${path} is a symbolic link`); continue }
    if (entry.isEncrypted()) { unsafe.push(`${path} is encrypted`); continue }
    if (!isDirectory && /\.zip$/i.test(path)) { unsafe.push(`${path} is a zip inside the zip`); continue }
    const folded = path.toLowerCase()
    const other = seen.get(folded)
    if (other !== undefined) {
      // A folder listed once explicitly and once implied by its files is fine; anything else collides.
      if (!(isDirectory && other === path)) unsafe.push(`${path} collides with ${other} (paths must differ in more than letter case)`)
      continue
    }
    seen.set(folded, path)
    if (!isDirectory) {
      total += entry.uncompressedSize
      if (entry.uncompressedSize > RATIO_CHECKED_ABOVE && entry.uncompressedSize / Math.max(entry.compressedSize, 1) > limits.maxRatio) {
        tooLarge.push(`${path} expands ${Math.round(entry.uncompressedSize / Math.max(entry.compressedSize, 1))}× (at most ${limits.maxRatio}× is allowed)`)
      }
    }
    entries.push({ path, isDirectory, size: isDirectory ? 0 : entry.uncompressedSize })
    if (!isDirectory) raw.set(path, entry)
  }

  // A file whose path is also used as a folder by another entry (`a` and `a/b`).
  for (const entry of entries) {
    const parts = entry.path.split('/')
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/')
      if (raw.has(parent)) unsafe.push(`${entry.path} is inside ${parent}, which is a file`)
    }
  }

  if (unsafe.length > 0) throw new BadRequestError('the bundle has unsafe entries', unsafe)
  if (total > limits.maxUncompressedBytes) {
    tooLarge.push(`the files add up to ${total} bytes uncompressed; at most ${limits.maxUncompressedBytes} are allowed`)
  }
  if (tooLarge.length > 0) throw new PayloadTooLargeError('the bundle is too large once uncompressed', tooLarge)
  if (raw.size === 0) throw new BadRequestError('the bundle has no files')
  return { entries, raw }
}
