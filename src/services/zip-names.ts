import { crc32 } from 'node:zlib'
import type { Entry } from 'yauzl'

/**
 * The names of a zip's entries as their writers meant them. The format's
 * own rule (APPNOTE 4.4.4) is UTF-8 when flagged, code page 437 otherwise;
 * tools since have written UTF-8 without the flag, or the system's code
 * page (Windows Explorer: the OEM one, Shift-JIS on a Japanese system).
 */

const UTF8_FLAG = 0x800
const utf8 = new TextDecoder('utf-8', { fatal: true })

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

/**
 * ZIP_NAME_ENCODING's canonical name (`cp437`, or an encoding of the WHATWG
 * Encoding Standard as TextDecoder names it: `shift_jis`, `gbk`, `ibm866`…);
 * undefined for a label neither knows.
 */
export function zipNameEncoding (label: string): string | undefined {
  const wanted = label.trim().toLowerCase()
  if (['cp437', 'ibm437', '437'].includes(wanted)) return DEFAULT_ZIP_NAME_ENCODING
  try {
    const { encoding } = new TextDecoder(wanted)
    // Names that are not valid UTF-8 are never UTF-16 either (their separators are single bytes).
    return encoding.startsWith('utf-') ? undefined : encoding
  } catch {
    return undefined
  }
}

/**
 * Names in `encoding`; bytes that are not valid in it (a zip from
 * elsewhere) as code page 437, never replacement characters. `guessed`:
 * read as code page 437, which may not be what the writer meant; a name
 * read in an encoding the operator chose is taken as meant.
 */
export function legacyDecoder (encoding: string): (raw: Buffer) => { name: string, guessed: boolean } {
  if (encoding === DEFAULT_ZIP_NAME_ENCODING) return (raw) => ({ name: cp437(raw), guessed: true })
  const decoder = new TextDecoder(encoding, { fatal: true })
  return (raw) => {
    try {
      return { name: decoder.decode(raw), guessed: false }
    } catch {
      return { name: cp437(raw), guessed: true }
    }
  }
}

/**
 * An entry's name as its writer meant it: UTF-8 when flagged; else the
 * Unicode Path extra field (7-Zip, WinRAR and Info-ZIP on Windows add it)
 * when it still matches the name it was made for; else UTF-8 when the bytes
 * are valid UTF-8 (Python, 7-Zip, macOS); else `legacy`: code page 437 by
 * default, the format's (Windows Explorer writes the system's OEM code page:
 * Western European names come out right, others at least as printable
 * characters, never control ones), or the one ZIP_NAME_ENCODING names.
 * `guessed` when read as code page 437 (see legacyDecoder): the name may be wrong.
 * Composed (NFC), as references in models are: macOS writes names
 * decomposed. A Windows tool's `\` separators become `/`.
 */
export function decodeName (entry: Entry, legacy: (raw: Buffer) => { name: string, guessed: boolean }): { name: string, guessed: boolean } {
  const raw = entry.fileName as unknown as Buffer
  let name: string
  let guessed = false
  if ((entry.generalPurposeBitFlag & UTF8_FLAG) !== 0) {
    name = raw.toString('utf8')
  } else {
    const unicode = entry.extraFields.find((field) => field.id === UNICODE_PATH)?.data
    if (unicode !== undefined && unicode.length >= 5 && unicode[0] === 1 && unicode.readUInt32LE(1) === crc32(raw)) {
      name = unicode.subarray(5).toString('utf8')
    } else {
      try {
        name = utf8.decode(raw)
      } catch {
        ;({ name, guessed } = legacy(raw))
      }
    }
  }
  if (WINDOWS_HOSTS.has(entry.versionMadeBy >> 8)) name = name.replaceAll('\\', '/')
  return { name: name.normalize('NFC'), guessed }
}
