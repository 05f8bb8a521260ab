import { isUtf8 } from 'node:buffer'
import { crc32 } from 'node:zlib'
import type { Entry } from 'yauzl'

/**
 * The names of a zip's entries as their writers meant them. The format's
 * own rule (APPNOTE 4.4.4) is UTF-8 when flagged, code page 437 otherwise;
 * tools since have written UTF-8 without the flag, or the system's code
 * page (Windows Explorer: the OEM one, Shift-JIS on a Japanese system).
 */

const UTF8_FLAG = 0x800

/** Code page 437's upper half, the zip format's default for names without the UTF-8 flag (APPNOTE 4.4.4, appendix D). */
const CP437_HIGH = '\xc7\xfc\xe9\xe2\xe4\xe0\xe5\xe7\xea\xeb\xe8\xef\xee\xec\xc4\xc5\xc9\xe6\xc6\xf4\xf6\xf2\xfb\xf9\xff\xd6\xdc\xa2\xa3\xa5\u20a7\u0192\xe1\xed\xf3\xfa\xf1\xd1\xaa\xba\xbf\u2310\xac\xbd\xbc\xa1\xab\xbb\u2591\u2592\u2593\u2502\u2524\u2561\u2562\u2556\u2555\u2563\u2551\u2557\u255d\u255c\u255b\u2510\u2514\u2534\u252c\u251c\u2500\u253c\u255e\u255f\u255a\u2554\u2569\u2566\u2560\u2550\u256c\u2567\u2568\u2564\u2565\u2559\u2558\u2552\u2553\u256b\u256a\u2518\u250c\u2588\u2584\u258c\u2590\u2580\u03b1\xdf\u0393\u03c0\u03a3\u03c3\xb5\u03c4\u03a6\u0398\u03a9\u03b4\u221e\u03c6\u03b5\u2229\u2261\xb1\u2265\u2264\u2320\u2321\xf7\u2248\xb0\u2219\xb7\u221a\u207f\xb2\u25a0\xa0'
/** The Info-ZIP Unicode Path extra field: version 1, the CRC-32 of the header's name, then that name in UTF-8. */
const UNICODE_PATH = 0x7075
/** "Version made by" hosts whose tools write `\` between folders: MS-DOS/FAT (PowerShell 5.1's Compress-Archive), NTFS, VFAT. */
const WINDOWS_HOSTS = new Set([0, 11, 14])

/** Bytes as code page 437, the low half as ASCII (a control byte stays a control character, and is refused as one). */
function cp437 (raw: Buffer): string {
  let text = ''
  for (const byte of raw) text += byte < 0x80 ? String.fromCharCode(byte) : CP437_HIGH[byte - 0x80] ?? ''
  return text
}

/** The default of ZIP_NAME_ENCODING: what APPNOTE says names without the UTF-8 flag are in. */
export const DEFAULT_ZIP_NAME_ENCODING = 'cp437'

/** Windows' names for its code pages, as operators know them, where the Encoding Standard has none. */
const WINDOWS_CODE_PAGES: Record<string, string> = { cp932: 'shift_jis', ms932: 'shift_jis', cp936: 'gbk', ms936: 'gbk', cp949: 'euc-kr', ms949: 'euc-kr', cp950: 'big5', ms950: 'big5' }
/** Encodings that cannot be a system code page's names: UTF-8 is read first anyway, UTF-16 has no single-byte `/`, ISO-2022-JP is 7-bit (valid UTF-8), x-user-defined maps bytes to private use. */
const NOT_A_CODE_PAGE = /^(utf-|iso-2022-jp$|x-user-defined$|replacement$)/

/**
 * ZIP_NAME_ENCODING's canonical name: `cp437`, or a legacy encoding of the
 * WHATWG Encoding Standard as TextDecoder names it (`shift_jis`, `gbk`,
 * `ibm866`…; Windows' `cp932`, `cp936`, `cp949` and `cp950` too);
 * undefined for a label that is neither.
 */
export function zipNameEncoding (label: string): string | undefined {
  const wanted = label.trim().toLowerCase()
  if (['cp437', 'ibm437', '437'].includes(wanted)) return DEFAULT_ZIP_NAME_ENCODING
  try {
    const { encoding } = new TextDecoder(WINDOWS_CODE_PAGES[wanted] ?? wanted)
    return NOT_A_CODE_PAGE.test(encoding) ? undefined : encoding
  } catch {
    return undefined
  }
}

/**
 * A name read from a zip, and how, where it was not marked: `encoding` when
 * read in a code page (`cp437` is a guess: see nameReader); `otherwise`
 * when read as UTF-8 although a code page is configured, what it would be
 * in that code page.
 */
export interface ReadName { name: string, encoding?: string, otherwise?: string }

/** C1 control characters: what some decoders (EUC-KR, Big5, windows-125x…) give bytes they leave unmapped, instead of failing. */
const C1 = /[\u0080-\u009f]/

/**
 * Reads the names of one archive's `entries` as their writer meant them:
 * UTF-8 when flagged; else the Unicode Path extra field (7-Zip, WinRAR and
 * Info-ZIP on Windows add it) when it holds UTF-8 made for the name as it
 * is; else, for names marked neither way, UTF-8 when valid (Python, 7-Zip,
 * Info-ZIP on Linux, macOS), else the code page `encoding` names (Windows
 * Explorer writes the system's OEM one). Code page 437, the format's
 * default (Western European names come out right, others at least as
 * printable characters, never control ones), is a guess. Another code page
 * (ZIP_NAME_ENCODING) is decided for the whole archive: once one of its
 * unmarked names (operating-system metadata aside: `ignore`) is not valid
 * UTF-8, all are read in it (some names of a code page happen to be valid
 * UTF-8: GBK's 猫 is C3 A8, è in UTF-8); a name invalid in it (or decoded
 * to control characters) is read as code page 437, a guess too. UTF-8 that
 * decodes to control characters is not taken as UTF-8. Composed (NFC), as
 * references in models are: macOS writes names decomposed. A Windows
 * tool's `\` separators become `/`.
 */
export function nameReader (entries: readonly Entry[], encoding: string, ignore: (path: string) => boolean = () => false): (entry: Entry) => ReadName {
  const decoder = encoding === DEFAULT_ZIP_NAME_ENCODING ? undefined : new TextDecoder(encoding, { fatal: true })
  const decode = (raw: Buffer): string | undefined => {
    try {
      const name = decoder?.decode(raw)
      return name === undefined || C1.test(name) ? undefined : name
    } catch {
      return undefined
    }
  }
  const inCodePage = (raw: Buffer): ReadName => {
    const name = decode(raw)
    return name !== undefined ? { name, encoding } : { name: cp437(raw), encoding: DEFAULT_ZIP_NAME_ENCODING }
  }
  // With code page 437, each name alone: its names are never valid UTF-8 by chance (that takes its box-drawing
  // characters), while a Linux zip of files named in two encodings is UTF-8 but for one name.
  const codePage = decoder !== undefined && entries.some((entry) => {
    const raw = unmarked(entry)
    return raw !== undefined && !ignore(raw.toString('latin1')) && asUtf8(raw) === undefined
  })
  const read = (entry: Entry): ReadName => {
    const raw = entry.fileName as unknown as Buffer
    if ((entry.generalPurposeBitFlag & UTF8_FLAG) !== 0) return { name: raw.toString('utf8') }
    const unicode = unicodePath(entry)
    if (unicode !== undefined) return { name: unicode.toString('utf8') }
    if (isAscii(raw)) return { name: raw.toString('latin1') }
    const text = codePage ? undefined : asUtf8(raw)
    if (text === undefined) return inCodePage(raw)
    const otherwise = decode(raw)
    return otherwise === undefined || otherwise === text ? { name: text } : { name: text, otherwise: otherwise.normalize('NFC') }
  }
  return (entry) => {
    const { name, otherwise, ...how } = read(entry)
    const slashes = WINDOWS_HOSTS.has(entry.versionMadeBy >> 8) ? (text: string): string => text.replaceAll('\\', '/') : (text: string): string => text
    return { ...how, name: slashes(name).normalize('NFC'), ...(otherwise === undefined ? {} : { otherwise: slashes(otherwise) }) }
  }
}

/** The bytes as UTF-8 when they are valid UTF-8 and name no control character of C1 (U+0080–U+009F). */
function asUtf8 (raw: Buffer): string | undefined {
  if (!isUtf8(raw)) return undefined
  const text = raw.toString('utf8')
  return C1.test(text) ? undefined : text
}

/** The Unicode Path extra field's name, when it is UTF-8 made for the header's name as it is (else the header's name stands). */
function unicodePath (entry: Entry): Buffer | undefined {
  const field = entry.extraFields.find((f) => f.id === UNICODE_PATH)?.data
  if (field === undefined || field.length <= 5 || field[0] !== 1 || field.readUInt32LE(1) !== crc32(entry.fileName)) return undefined
  const name = field.subarray(5)
  return isUtf8(name) ? name : undefined
}

/** The header's name when nothing says what it is in: no UTF-8 flag, no Unicode Path field. */
function unmarked (entry: Entry): Buffer | undefined {
  if ((entry.generalPurposeBitFlag & UTF8_FLAG) !== 0 || unicodePath(entry) !== undefined) return undefined
  return entry.fileName as unknown as Buffer
}

function isAscii (raw: Buffer): boolean {
  return raw.every((byte) => byte < 0x80)
}

/**
 * What a person is told about names read without a mark: guesses (code
 * page 437; `guessesOnly`) on an accepted upload; on a refusal that may
 * come of a misread name (a file an .fst names seems missing, a name with
 * a backslash or a control character), every name read in a code page,
 * and every one read as UTF-8 that a configured code page would read
 * otherwise. At most three named per kind.
 */
export function codePageNote (names: ReadonlyMap<string, ReadName>, options: { guessesOnly?: boolean } = {}): string | undefined {
  const kinds = new Map<string, { count: number, listed: string[] }>()
  for (const [path, read] of names) {
    const kind = read.encoding ?? (read.otherwise !== undefined ? 'utf-8' : undefined)
    if (kind === undefined || (options.guessesOnly === true && kind !== DEFAULT_ZIP_NAME_ENCODING)) continue
    const entry = kinds.get(kind) ?? { count: 0, listed: [] }
    entry.count++
    if (entry.listed.length < 3) entry.listed.push(kind === 'utf-8' ? `${path} (${read.otherwise ?? ''} in this server's code page)` : path)
    kinds.set(kind, entry)
  }
  if (kinds.size === 0) return undefined
  const parts = [...kinds].map(([kind, { count, listed }]) => {
    const one = count === 1
    const as = kind === DEFAULT_ZIP_NAME_ENCODING
      ? 'code page 437 (the zip format\'s default)'
      : kind === 'utf-8' ? `UTF-8, which ${one ? 'it is' : 'they are'} valid as` : `${kind} (this server's setting)`
    return `${count} name${one ? '' : 's'} in the zip ${one ? 'is' : 'are'} not marked as UTF-8 and ${one ? 'was' : 'were'} read as ${as}: ${listed.join(', ')}${count > 3 ? `, and ${count - 3} more` : ''}.`
  })
  return `${parts.join(' ')} If a name looks wrong, zip the folder with a tool that writes UTF-8 names (7-Zip, macOS), or upload the folder itself (on the upload page, or with heimdall upload <folder>)`
}
