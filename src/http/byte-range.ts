import type { ServerResponse } from 'node:http'

/**
 * What a `Range` header asks of a representation of `size` bytes (RFC 9110 §14):
 * - `full`: answer 200 with everything (no header, another unit, a malformed
 *   header);
 * - `unsatisfiable`: answer 416 with `Content-Range: bytes *\/size`;
 * - a single `{ start, end }` (inclusive) to answer with 206. Of several
 *   ranges, the first satisfiable one in the client's order, as boxo's
 *   gateway answers them (gateway-conformance takes that or multipart, not a
 *   200).
 *
 * range-parser is not used: it refuses a suffix longer than the file (416)
 * where RFC 9110 §14.1.3 serves the whole file.
 */
export type ByteRange = 'full' | 'unsatisfiable' | { start: number, end: number }

const SPEC = /^(\d*)-(\d*)$/

export function byteRange (size: number, header: string | undefined): ByteRange {
  if (header === undefined) return 'full'
  const eq = header.indexOf('=')
  // Range units are case-insensitive; any unit but bytes is ignored.
  if (eq === -1 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return 'full'
  const specs = header.slice(eq + 1).split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (specs.length === 0) return 'full'
  const satisfiable: Array<{ start: number, end: number }> = []
  for (const spec of specs) {
    const match = SPEC.exec(spec)
    if (match === null) return 'full'
    const [, first = '', last = ''] = match
    if (first === '' && last === '') return 'full'
    if (first === '') {
      // A suffix: the last N bytes, all of them when N is larger than the file.
      const suffix = Number(last)
      if (suffix > 0 && size > 0) satisfiable.push({ start: Math.max(0, size - suffix), end: size - 1 })
      continue
    }
    const start = Number(first)
    const end = last === '' ? size - 1 : Math.min(Number(last), size - 1)
    if (last !== '' && Number(last) < start) return 'full'
    if (start < size) satisfiable.push({ start, end })
  }
  return satisfiable[0] ?? 'unsatisfiable'
}

/**
 * Whether a Range may be honoured under `If-Range` (RFC 9110 §13.1.5): only
 * when it names this representation by its strong ETag. We send no
 * Last-Modified, so a date never matches.
 */
export function ifRangeAllows (ifRange: string | undefined, etag: string): boolean {
  return ifRange === undefined || ifRange.trim() === etag
}

/**
 * Whether `If-None-Match` matches (RFC 9110 §13.1.2): `*`, or any listed
 * tag equal to ours by weak comparison.
 */
export function ifNoneMatch (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  const opaque = (tag: string): string => tag.trim().replace(/^W\//, '')
  return header.split(',').some((tag) => tag.trim() === '*' || opaque(tag) === opaque(etag))
}

/** Representation metadata a 304 does not repeat (RFC 9110 §15.4.5): it keeps ETag, Cache-Control, Vary, Content-Location. */
const NOT_MODIFIED_DROPS = ['Content-Type', 'Content-Length', 'Content-Disposition', 'Content-Range', 'Accept-Ranges']

/** Answers 304 Not Modified, without the headers that describe a body it does not send (as Kubo's gateway). */
export function sendNotModified (res: ServerResponse): void {
  for (const header of NOT_MODIFIED_DROPS) res.removeHeader(header)
  res.statusCode = 304
  res.end()
}
