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

/** A name read from a zip, and how: `encoding` when read as a legacy code page (`cp437` is a guess: see nameReader). */
export interface ReadName { name: string, encoding?: string }

/** C1 control characters: what some decoders (EUC-KR, Big5, windows-125x…) give bytes they leave unmapped, instead of failing. */
const C1 = /[\u0080-\u009f]/

/**
 * Reads the names of one archive's `entries` as their writer meant them:
 * UTF-8 when flagged; else the Unicode Path extra field (7-Zip, WinRAR and
 * Info-ZIP on Windows add it) when it still matches the name it was made
 * for; else, for names marked neither way, UTF-8 when valid (Python,
 * 7-Zip, Info-ZIP on Linux, macOS), else the code page `encoding` names
 * (Windows Explorer writes the system's OEM one). Code page 437, the
 * format's default (Western European names come out right, others at least
 * as printable characters, never control ones), is a guess. Another code
 * page (ZIP_NAME_ENCODING) is decided for the whole archive: once one of
 * its unmarked names is not valid UTF-8, all are read in it (some names of
 * a code page happen to be valid UTF-8: GBK's 猫 is C3 A8, è in UTF-8); a
 * name invalid in it (or decoded to control characters) is read as code
 * page 437, a guess too. Composed (NFC), as references in models are: macOS writes
 * names decomposed. A Windows tool's `\` separators become `/`.
 */
export function nameReader (entries: readonly Entry[], encoding: string): (entry: Entry) => ReadName {
  const decoder = encoding === DEFAULT_ZIP_NAME_ENCODING ? undefined : new TextDecoder(encoding, { fatal: true })
  const inCodePage = (raw: Buffer): ReadName => {
    if (decoder !== undefined) {
      try {
        const name = decoder.decode(raw)
        if (!C1.test(name)) return { name, encoding }
      } catch { /* not this code page: read as the format's default */ }
    }
    return { name: cp437(raw), encoding: DEFAULT_ZIP_NAME_ENCODING }
  }
  // With code page 437, each name alone: its names are never valid UTF-8 by chance (that takes its box-drawing
  // characters), while a Linux zip of files named in two encodings is UTF-8 but for one name.
  const codePage = decoder !== undefined && entries.some((entry) => { const raw = unmarked(entry); return raw !== undefined && !isUtf8(raw) })
  return (entry) => {
    const raw = entry.fileName as unknown as Buffer
    let read: ReadName
    if ((entry.generalPurposeBitFlag & UTF8_FLAG) !== 0) {
      read = { name: raw.toString('utf8') }
    } else if (unmarked(entry) === undefined) {
      read = { name: unicodePath(entry)?.toString('utf8') ?? '' }
    } else {
      read = isAscii(raw) || (!codePage && isUtf8(raw)) ? { name: raw.toString('utf8') } : inCodePage(raw)
    }
    const name = WINDOWS_HOSTS.has(entry.versionMadeBy >> 8) ? read.name.replaceAll('\\', '/') : read.name
    return { ...read, name: name.normalize('NFC') }
  }
}

/** The Unicode Path extra field's name, when it was made for the header's name as it is. */
function unicodePath (entry: Entry): Buffer | undefined {
  const field = entry.extraFields.find((f) => f.id === UNICODE_PATH)?.data
  return field !== undefined && field.length >= 5 && field[0] === 1 && field.readUInt32LE(1) === crc32(entry.fileName) ? field.subarray(5) : undefined
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
 * What a person is told about names read in a code page: guesses (code
 * page 437) on an accepted upload; every such name on a refusal that may
 * come of a misread name (a file an .fst names and seems missing, a name
 * with a backslash or a control character).
 */
export function codePageNote (names: ReadonlyMap<string, string>, only?: string): string | undefined {
  const byEncoding = new Map<string, string[]>()
  for (const [path, encoding] of names) if (only === undefined || encoding === only) byEncoding.set(encoding, [...(byEncoding.get(encoding) ?? []), path])
  if (byEncoding.size === 0) return undefined
  const parts = [...byEncoding].map(([encoding, paths]) => {
    const listed = `${paths.slice(0, 3).join(', ')}${paths.length > 3 ? `, and ${paths.length - 3} more` : ''}`
    const one = paths.length === 1
    const as = encoding === DEFAULT_ZIP_NAME_ENCODING ? 'code page 437 (the zip format\'s default)' : `${encoding} (this server's setting)`
    return `${paths.length} name${one ? '' : 's'} in the zip ${one ? 'is' : 'are'} not marked as UTF-8 and ${one ? 'was' : 'were'} read as ${as}: ${listed}.`
  })
  return `${parts.join(' ')} If a name looks wrong, zip the folder with a tool that writes UTF-8 names (7-Zip, macOS), or upload the folder itself (on the upload page, or with heimdall upload <folder>)`
}
