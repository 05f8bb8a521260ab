/**
 * Overte's avatar descriptor, read as Overte's FSTReader reads it: one
 * `key = value` per line, `#` comments, keys that repeat (`script`, `joint`),
 * and `key = sub = value` forms (`joint`, `jointMap`, `jointIndex`, `bs`).
 */
export interface FstEntry {
  key: string
  /** The middle part of `key = sub = value`, else undefined. */
  sub: string | undefined
  value: string
  line: number
}

export const KNOWN_FST_KEYS = new Set([
  'name', 'type', 'filename', 'texdir', 'scale', 'script', 'joint', 'jointMap', 'jointIndex',
  'bs', 'materialMap', 'animGraphUrl', 'baseURL', 'marketplaceID', 'flowPhysicsData', 'flowCollisionsData',
  'freeJoint', 'rx', 'ry', 'rz', 'tx', 'ty', 'tz', 'comment', 'fileFormatVersion', 'author'
])

/**
 * Keys whose value is everything after the first `=`, `=` included
 * (FSTReader.cpp, SINGLE_VALUE_PROPERTIES): `filename = box=v2.fbx` names
 * `box=v2.fbx`.
 */
const SINGLE_VALUE_KEYS = new Set(['name', 'filename', 'texdir', 'script', 'waitForWearables', 'comment'])

export class FstDocument {
  readonly entries: readonly FstEntry[]

  constructor (entries: FstEntry[]) {
    this.entries = entries
  }

  /** The last value of `key` (later lines win, as in Overte). */
  get (key: string): string | undefined {
    return this.entries.findLast((e) => e.key === key && e.sub === undefined)?.value
  }

  all (key: string): FstEntry[] {
    return this.entries.filter((e) => e.key === key)
  }
}

/** QByteArray::trimmed: ASCII white space only (a BOM or a no-break space stays, as in Overte; String's trim takes them). */
function trimmed (text: string): string {
  const space = (code: number): boolean => code === 0x20 || (code >= 0x09 && code <= 0x0d)
  let start = 0
  let end = text.length
  while (start < end && space(text.charCodeAt(start))) start++
  while (end > start && space(text.charCodeAt(end - 1))) end--
  return text.slice(start, end)
}

export function parseFst (text: string): FstDocument {
  const entries: FstEntry[] = []
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = trimmed(raw)
    if (line === '' || line.startsWith('#')) return
    const parts = line.split('=').map(trimmed)
    const [key] = parts
    if (key === undefined || key === '' || parts.length < 2) return
    if (SINGLE_VALUE_KEYS.has(key)) {
      entries.push({ key, sub: undefined, value: trimmed(line.slice(line.indexOf('=') + 1)), line: index + 1 })
    } else if (parts.length === 2) {
      entries.push({ key, sub: undefined, value: parts[1] ?? '', line: index + 1 })
    } else {
      entries.push({ key, sub: parts[1], value: parts.slice(2).join(' = '), line: index + 1 })
    }
  })
  return new FstDocument(entries)
}
