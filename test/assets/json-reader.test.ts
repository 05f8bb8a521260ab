import { describe, expect, it } from 'vitest'
import { JsonReader, MAX_JSON_DEPTH, MAX_JSON_STRING, type JsonPrimitive } from '../../src/assets/json-reader.ts'

type Event = ['open', string, 'object' | 'array'] | ['value', string, JsonPrimitive]

/** Every event JsonReader reports for `text` given in `pieces`, or the error it threw. */
function read (pieces: string[]): { events: Event[], error?: string } {
  const events: Event[] = []
  const stream = new JsonReader({
    open: (path, kind) => { events.push(['open', JSON.stringify(path), kind]) },
    value: (path, value) => { events.push(['value', JSON.stringify(path), value]) }
  })
  try {
    for (const piece of pieces) stream.write(piece)
    stream.end()
    return { events }
  } catch (err) {
    return { events, error: (err as Error).message }
  }
}

/** The same events from JSON.parse's value, in document order, its strings made well-formed as JsonReader hands them on. */
function walk (value: unknown, path: Array<string | number> = [], out: Event[] = []): Event[] {
  if (Array.isArray(value)) {
    out.push(['open', JSON.stringify(path), 'array'])
    value.forEach((item, i) => walk(item, [...path, i], out))
  } else if (typeof value === 'object' && value !== null) {
    out.push(['open', JSON.stringify(path), 'object'])
    for (const [key, item] of Object.entries(value)) walk(item, [...path, key.toWellFormed()], out)
  } else {
    out.push(['value', JSON.stringify(path), typeof value === 'string' ? value.toWellFormed() : value as JsonPrimitive])
  }
  return out
}

/** A small seeded generator (mulberry32), so a failure can be replayed. */
function random (seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const NUMBERS = ['0', '-0', '7', '-12', '3.25', '-0.5', '1e3', '2E-7', '6.02e+23', '1e400', '0.000001', '123456789012345678901234567890']
const STRINGS = ['', 'a', 'tex/skin.png', 'caf\u00e9', '\u{1F600}', 'quote " and \\ back', 'tab\tnew\nline', '\u0000\u001f', '\u2028', '\ud800']

/** JSON text for a random value, written with random whitespace and escapes the way different writers do. */
function generate (next: () => number, depth = 0): string {
  const space = (): string => [' ', '', '\n  ', '\t', '\r\n'][Math.floor(next() * 5)] ?? ''
  const pick = <T>(list: T[]): T => list[Math.floor(next() * list.length)] as T
  const string = (s: string): string => next() < 0.5 ? JSON.stringify(s) : `"${[...s].map((ch) => ch.length === 1 ? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}` : JSON.stringify(ch).slice(1, -1)).join('')}"`
  const r = next()
  if (depth < 6 && r < 0.2) {
    const n = Math.floor(next() * 5)
    return `[${space()}${Array.from({ length: n }, () => generate(next, depth + 1)).join(`${space()},${space()}`)}${space()}]`
  }
  if (depth < 6 && r < 0.4) {
    const n = Math.floor(next() * 5)
    const keys = Array.from({ length: n }, (_, i) => `k${i}${pick(['', '.x', ' y', '\u00e9'])}`)
    return `{${space()}${keys.map((key) => `${string(key)}${space()}:${space()}${generate(next, depth + 1)}`).join(`${space()},${space()}`)}${space()}}`
  }
  if (r < 0.6) return pick(NUMBERS)
  if (r < 0.9) return string(pick(STRINGS))
  return pick(['true', 'false', 'null'])
}

/** `text` cut at random places. */
function split (text: string, next: () => number): string[] {
  const pieces: string[] = []
  let at = 0
  while (at < text.length) {
    const size = 1 + Math.floor(next() * 7)
    pieces.push(text.slice(at, at + size))
    at += size
  }
  return pieces
}

describe('JsonReader', () => {
  it('reports what JSON.parse reads, for any split of the text', () => {
    const next = random(20261126)
    for (let round = 0; round < 2000; round++) {
      const text = generate(next)
      const result = read(split(text, next))
      expect(result.error, text).toBeUndefined()
      expect(result.events, text).toEqual(walk(JSON.parse(text)))
    }
  })

  it('accepts and refuses exactly what JSON.parse does, on every one-character change of valid JSON', () => {
    const next = random(42)
    const alphabet = ['{', '}', '[', ']', ',', ':', '"', '\\', '-', '+', '.', 'e', '0', '1', 't', 'n', ' ', '\u0001', 'x', '/']
    let refused = 0
    for (let round = 0; round < 1500; round++) {
      const valid = generate(next)
      const at = Math.floor(next() * (valid.length + 1))
      const change = next()
      const text = change < 0.4
        ? valid.slice(0, at) + valid.slice(at + 1)
        : change < 0.7
          ? valid.slice(0, at) + (alphabet[Math.floor(next() * alphabet.length)] ?? '') + valid.slice(at)
          : valid.slice(0, at) + (alphabet[Math.floor(next() * alphabet.length)] ?? '') + valid.slice(at + 1)
      let parses = true
      try { JSON.parse(text) } catch { parses = false }
      const result = read(split(text, next))
      expect(result.error === undefined, `${JSON.stringify(text)}: ${result.error ?? 'accepted'}`).toBe(parses)
      if (!parses) refused++
    }
    expect(refused).toBeGreaterThan(500)
  })

  it.each([
    ['empty text', ''],
    ['a BOM', '\ufeff{}'],
    ['a trailing comma', '[1,]'],
    ['a trailing comma in an object', '{"a":1,}'],
    ['two roots', '{} {}'],
    ['a leading zero', '01'],
    ['a bare minus', '-'],
    ['a dot without digits', '1.'],
    ['an exponent without digits', '1e+'],
    ['a single-quoted string', "['a']"],
    ['a comment', '[1 /* x */]'],
    ['a raw line break in a string', '"a\nb"'],
    ['a short \\u escape', '"\\u12"'],
    ['an unknown escape', '"\\x41"'],
    ['a key that is not a string', '{1:2}'],
    ['a missing colon', '{"a" 1}'],
    ['an unclosed array', '[1, 2'],
    ['an unclosed string', '"abc'],
    ['a wrong closing bracket', '[1}'],
    ['a misspelt literal', 'nul'],
    ['NaN', 'NaN']
  ])('refuses %s', (_name, text) => {
    expect(() => { JSON.parse(text) }).toThrow()
    expect(read([text]).error).toBeDefined()
  })

  it(`refuses nesting deeper than ${MAX_JSON_DEPTH} levels, and reads that deep`, () => {
    expect(read(['['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH)]).error).toBeUndefined()
    expect(read(['['.repeat(MAX_JSON_DEPTH + 1)]).error).toMatch(`nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`)
  })

  it('hands a long string on cut, with its whole length, and never half a character', () => {
    const seen: Array<{ kept: number, length: number }> = []
    const stream = new JsonReader({ value: (_path, value, length) => { seen.push({ kept: String(value).length, length }) } })
    const long = `"data:application/octet-stream;base64,${'QUJD'.repeat(100_000)}"`
    stream.write('[')
    for (let at = 0; at < long.length; at += 4096) stream.write(long.slice(at, at + 4096))
    // Cut after the high half of a pair, written as it is and as escapes.
    stream.write(`,"${'a'.repeat(MAX_JSON_STRING - 1)}\u{1F600}", "${'a'.repeat(MAX_JSON_STRING - 1)}\\ud83d\\ude00"]`)
    stream.end()
    const pair = { kept: MAX_JSON_STRING - 1, length: MAX_JSON_STRING + 1 }
    expect(seen).toEqual([{ kept: MAX_JSON_STRING, length: long.length - 2 }, pair, pair])
  })

  it('hands strings on well-formed: a lone surrogate, valid JSON, is U+FFFD (PostgreSQL\'s jsonb refuses it)', () => {
    const seen: JsonPrimitive[] = []
    const stream = new JsonReader({ value: (_path, value) => { seen.push(value) } })
    stream.write('["\\ud800", "a\\udc00b", "\\ud83d\\ude00"]')
    stream.end()
    expect(seen).toEqual(['\ufffd', 'a\ufffdb', '\u{1F600}'])
  })

  it('names the character where the text goes wrong', () => {
    expect(read(['{"a": [1, 2', ' 3]}']).error).toBe("has an unexpected '3' at character 12")
    expect(read(['[1', 'e']).error).toBe('has an incomplete number ("1e") at character 3')
    expect(read(['1', 'e']).error).toBe('has an incomplete number ("1e") at character 2')
    expect(read(['[0, 1', '2'.repeat(300), '3'.repeat(300)]).error).toBe('has a number longer than 512 characters (character 4)')
  })
})
