import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'

/** packages/streamsearch, as busboy loads it (package.json's overrides put it in streamsearch's place). */
type Callback = (isMatch: boolean, data: Buffer | undefined, start: number, end: number, isDataSafe: boolean) => void
interface StreamSearch { push: (chunk: Buffer, pos?: number) => number, destroy: () => void, matches: number, maxMatches: number }
const StreamSearch = createRequire(import.meta.url)('streamsearch') as new (needle: string | Buffer, cb: Callback) => StreamSearch

/** Feeds `input` cut at `cuts`, then ends; returns the segments between needles as the callback gave them. */
function search (needle: Buffer, input: Buffer, cuts: number[]): Buffer[] {
  const segments: Buffer[][] = [[]]
  const search = new StreamSearch(needle, (isMatch, data, start, end) => {
    // Copied at once: data that is not safe is the search's own buffer, used again.
    if (data !== undefined && end > start) segments.at(-1)?.push(Buffer.from(data.subarray(start, end)))
    if (isMatch) segments.push([])
  })
  let from = 0
  for (const cut of [...cuts, input.length]) {
    search.push(input.subarray(from, cut))
    from = cut
  }
  search.destroy()
  return segments.map((parts) => Buffer.concat(parts))
}

/** What the callbacks must add up to: the input split at each needle, left to right. */
function split (needle: Buffer, input: Buffer): Buffer[] {
  const parts: Buffer[] = []
  let from = 0
  for (let at = input.indexOf(needle); at !== -1; at = input.indexOf(needle, from)) {
    parts.push(input.subarray(from, at))
    from = at + needle.length
  }
  parts.push(input.subarray(from))
  return parts
}

/** Deterministic pseudo-random numbers, so that a failure can be replayed. */
function random (seed: number): (below: number) => number {
  let state = seed
  return (below) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    return state % below
  }
}

describe('the boundary search busboy uses (packages/streamsearch)', () => {
  const needle = Buffer.from('\r\n--heimdall0123456789abcdef')

  it('is the one installed for busboy', () => {
    const required = createRequire(createRequire(import.meta.url).resolve('busboy'))('streamsearch') as unknown
    expect(required).toBe(StreamSearch)
  })

  // A multipart boundary cannot overlap itself (no CR in a boundary), but a needle that does (held-back bytes with a
  // second possible start inside them) must work too.
  it.each([['a multipart boundary', needle], ['a needle that overlaps itself', Buffer.from('abcabcabd')], ['one byte repeated', Buffer.from('aaaa')]])('gives back every byte and every needle of random input however it is cut: %s', (_name, needle) => {
    for (let seed = 1; seed <= 400; seed++) {
      const next = random(seed)
      const pieces: Buffer[] = []
      for (let n = next(12); n >= 0; n--) {
        // Random bytes over a small alphabet of the needle's own bytes, so that near-needles are common.
        pieces.push(Buffer.from(Array.from({ length: next(60) }, () => needle[next(needle.length)] ?? 0)))
        const kind = next(4)
        if (kind === 0) pieces.push(needle)
        else if (kind === 1) pieces.push(needle.subarray(0, 1 + next(needle.length - 1)))
        else if (kind === 2) pieces.push(Buffer.concat([needle.subarray(0, next(needle.length)), needle]))
      }
      const input = Buffer.concat(pieces)
      const cuts = Array.from({ length: next(8) }, () => next(input.length + 1)).sort((a, b) => a - b)
      expect(search(needle, input, cuts), `seed ${seed}`).toEqual(split(needle, input))
    }
  })

  it('finds needles cut at every position, one byte at a time too', () => {
    const input = Buffer.concat([Buffer.from('\r\n--heim\r\n'), needle, Buffer.from('x\r'), needle, needle, Buffer.from('\r\n--')])
    for (let cut = 0; cut <= input.length; cut++) expect(search(needle, input, [cut])).toEqual(split(needle, input))
    expect(search(needle, input, Array.from({ length: input.length }, (_, i) => i))).toEqual(split(needle, input))
    // Held-back bytes in which the needle starts again further on: every pair of cuts.
    const overlapping = Buffer.from('abcabcabd')
    const tricky = Buffer.from('abcabcabcabdabcabcabcabcabdaabcabcab')
    for (let a = 0; a <= tricky.length; a++) {
      for (let b = a; b <= tricky.length; b++) expect(search(overlapping, tricky, [a, b]), `cuts ${a}, ${b}`).toEqual(split(overlapping, tricky))
    }
  })

  it('passes large chunks on as views, not copies, and counts matches', () => {
    const body = randomBytes(1024 * 1024)
    const seen: Array<{ data: Buffer | undefined, safe: boolean }> = []
    const search = new StreamSearch(needle, (_isMatch, data, _start, _end, isDataSafe) => { seen.push({ data, safe: isDataSafe }) })
    const chunk = Buffer.concat([body, needle, body])
    search.push(chunk)
    search.destroy()
    expect(search.matches).toBe(0) // destroy resets, as streamsearch's does
    expect(seen.filter((s) => s.data === chunk).every((s) => s.safe)).toBe(true)
    expect(seen.some((s) => s.data === chunk)).toBe(true)
  })

  it('stops at maxMatches and reports where', () => {
    const search = new StreamSearch('ab', () => {})
    search.maxMatches = 1
    expect(search.push(Buffer.from('xxabyyab'))).toBe(4)
    expect(search.matches).toBe(1)
    expect(search.push(Buffer.from('ab'))).toBe(0)
    expect(search.matches).toBe(1)
    // A match completed from held-back bytes counts too.
    const held = new StreamSearch('\r\n--B', () => {})
    held.maxMatches = 1
    held.push(Buffer.from('xx\r\n-'))
    expect(held.push(Buffer.from('-Byy\r\n--Bzz'))).toBe(2)
    expect(held.matches).toBe(1)
  })
})
