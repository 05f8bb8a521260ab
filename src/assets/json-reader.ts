/**
 * How deep arrays and objects may nest in an uploaded JSON file (.json,
 * .gltf, a GLB's JSON chunk). Real ones nest a few dozen levels at most (an
 * Overte animation graph's children); a file of nothing but `[` must not
 * cost a frame per byte (5 MB of them once took 2.4 GB: found by review).
 */
export const MAX_JSON_DEPTH = 512

/** Strings are handed on cut to this many characters: names and URIs fit; an embedded buffer's data: URI need not be held. */
export const MAX_JSON_STRING = 64 * 1024

/** No real number is written with more digits; a longer one would be held whole while it streams. */
const MAX_NUMBER_LENGTH = 512

/** JSON that is valid but past what Heimdall reads (nesting, a number's length, a reader's own limits). */
export class JsonLimitError extends Error {
  override name = 'JsonLimitError'
}

/** Where a value sits: the keys and array indexes from the root down to it. */
export type JsonPath = ReadonlyArray<string | number>
export type JsonPrimitive = string | number | boolean | null

/** What a reader of the stream is told. `path` is reused: copy it to keep it. */
export interface JsonVisitor {
  /**
   * A string, number, true, false or null. A string longer than
   * MAX_JSON_STRING arrives cut to it (`length`, its whole length in
   * UTF-16 units, says so). Strings are copies, so keeping one keeps
   * nothing else of the text alive, and well-formed (a lone surrogate is
   * U+FFFD), so they can be stored as they are.
   */
  value?: (path: JsonPath, value: JsonPrimitive, length: number) => void
  /** An object or an array begins at `path`. */
  open?: (path: JsonPath, kind: 'object' | 'array') => void
}

/** What may come next, outside a token. */
const Expect = {
  Value: 0, // a value (the root, after ':' or after ',' in an array)
  ValueOrClose: 1, // after '[': a value or ']'
  KeyOrClose: 2, // after '{': a key or '}'
  Key: 3, // after ',' in an object
  Colon: 4,
  CommaOrClose: 5, // after a value inside an object or array
  Nothing: 6 // the root value is complete: only whitespace may follow
} as const
type Expect = typeof Expect[keyof typeof Expect]

/** The token being read, when one spans pieces of text. */
const Token = { None: 0, String: 1, Number: 2, Literal: 3 } as const
type Token = typeof Token[keyof typeof Token]

const OBJECT = 0
const ARRAY = 1

/**
 * A validating JSON reader for text that arrives in pieces, which builds no
 * values: it tells its visitor where each primitive sits and keeps only the
 * open levels (at most MAX_JSON_DEPTH), one string cut to MAX_JSON_STRING
 * and one number. What a file costs is then what its reader chooses to keep,
 * not its size (a 16 MB glTF of empty nodes once took ~770 MB as values;
 * a single 1 GB string would have been held whole). Accepts exactly what
 * JSON.parse accepts (RFC 8259: no BOM, no comments, no trailing commas)
 * but past its limits (JsonLimitError). Messages name the offending
 * character and its offset, and read after "it": "it has an unexpected ','…".
 */
export class JsonReader {
  readonly #visitor: JsonVisitor
  readonly #kinds: number[] = []
  readonly #path: Array<string | number> = []
  #expect: Expect = Expect.Value
  #token: Token = Token.None
  /** Characters read before the current piece, for messages. */
  #offset = 0
  // The string being read: its kept pieces, their length, whether it is a key, and the escape in progress.
  #parts: string[] = []
  /** Characters kept, and characters read (past MAX_JSON_STRING only this grows). */
  #length = 0
  #total = 0
  #isKey = false
  /** 0: none; 1: after '\'; 5, 4, 3, 2: after '\u' and 0, 1, 2, 3 of its hex digits. */
  #escape = 0
  #hex = 0
  #number = ''
  /** Where the number began, counted from the start of the text, for messages. */
  #numberStart = 0
  /** Where in the number's grammar the last character left it (NumberState). */
  #numberState: NumberState = NumberState.Start
  #literal = ''
  #literalAt = 0

  constructor (visitor: JsonVisitor = {}) {
    this.#visitor = visitor
  }

  write (text: string): void {
    let i = 0
    const n = text.length
    while (i < n) {
      if (this.#token === Token.String) { i = this.#stringPart(text, i); continue }
      if (this.#token === Token.Number) { i = this.#numberPart(text, i); continue }
      if (this.#token === Token.Literal) { i = this.#literalPart(text, i); continue }
      const c = text.charCodeAt(i)
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) { i++; continue }
      // A number or a literal is read from its first character on, by the branches above.
      if (!this.#structural(c, i)) i++
    }
    this.#offset += n
  }

  /** The text has ended: throws unless it held exactly one complete value. */
  end (): void {
    if (this.#token === Token.Number) this.#endNumber(0)
    if (this.#token !== Token.None || this.#expect !== Expect.Nothing) throw new Error(`ends early (after ${this.#offset} characters)`)
  }

  #fail (what: string, at: number): never {
    throw new Error(`has ${what} at character ${this.#offset + at}`)
  }

  /** Takes the character at `i` outside any token; true when it begins a number or a literal, which is then read from `i`. */
  #structural (c: number, i: number): boolean {
    const expect = this.#expect
    if (c === 0x22) { // "
      if (expect === Expect.Key || expect === Expect.KeyOrClose) this.#startString(true)
      else if (expect === Expect.Value || expect === Expect.ValueOrClose) this.#startString(false)
      else this.#fail('an unexpected \'"\'', i)
      return false
    }
    if (expect === Expect.Value || expect === Expect.ValueOrClose) {
      if (c === 0x7b || c === 0x5b) { this.#open(c === 0x7b ? OBJECT : ARRAY, i); return false }
      if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
        this.#token = Token.Number
        this.#number = ''
        this.#numberStart = this.#offset + i
        this.#numberState = NumberState.Start
        return true
      }
      if (c === 0x74 || c === 0x66 || c === 0x6e) { // t f n
        this.#token = Token.Literal
        this.#literal = c === 0x74 ? 'true' : c === 0x66 ? 'false' : 'null'
        this.#literalAt = 0
        return true
      }
      if (c === 0x5d && expect === Expect.ValueOrClose) { this.#close(); return false }
      this.#fail(`an unexpected ${describe(c)} where a value belongs`, i)
    }
    if (expect === Expect.KeyOrClose && c === 0x7d) { this.#close(); return false }
    if (expect === Expect.Colon) {
      if (c !== 0x3a) this.#fail(`${describe(c)} where ':' belongs`, i)
      this.#expect = Expect.Value
      return false
    }
    if (expect === Expect.CommaOrClose) {
      const kind = this.#kinds[this.#kinds.length - 1]
      if (c === 0x2c) {
        if (kind === ARRAY) {
          (this.#path[this.#path.length - 1] as number)++
          this.#expect = Expect.Value
        } else {
          this.#expect = Expect.Key
        }
        return false
      }
      if ((c === 0x7d && kind === OBJECT) || (c === 0x5d && kind === ARRAY)) { this.#close(); return false }
    }
    this.#fail(`an unexpected ${describe(c)}`, i)
  }

  #open (kind: number, at: number): void {
    if (this.#kinds.length >= MAX_JSON_DEPTH) throw new JsonLimitError(`nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep (character ${this.#offset + at})`)
    this.#visitor.open?.(this.#path, kind === OBJECT ? 'object' : 'array')
    this.#kinds.push(kind)
    this.#path.push(kind === ARRAY ? 0 : '')
    this.#expect = kind === ARRAY ? Expect.ValueOrClose : Expect.KeyOrClose
  }

  /** Closes the innermost object or array (the caller has matched the bracket to it). */
  #close (): void {
    this.#kinds.pop()
    this.#path.pop()
    this.#afterValue()
  }

  #afterValue (): void {
    this.#expect = this.#kinds.length === 0 ? Expect.Nothing : Expect.CommaOrClose
  }

  #emit (value: JsonPrimitive, length = 0): void {
    this.#visitor.value?.(this.#path, value, length)
    this.#afterValue()
  }

  #startString (isKey: boolean): void {
    this.#token = Token.String
    this.#isKey = isKey
    this.#parts = []
    this.#length = 0
    this.#total = 0
    this.#escape = 0
  }

  #keep (piece: string): void {
    this.#total += piece.length
    const room = MAX_JSON_STRING - this.#length
    if (room <= 0) return
    if (piece.length > room) piece = piece.slice(0, room)
    this.#length += piece.length
    this.#parts.push(piece)
  }

  /** Reads the current string from `i`; returns where reading stopped (past its closing quote, or the text's end). */
  #stringPart (text: string, i: number): number {
    const n = text.length
    let run = i
    while (i < n) {
      const c = text.charCodeAt(i)
      if (this.#escape !== 0) {
        this.#escapePart(c, i)
        i++
        run = i
        continue
      }
      if (c === 0x22) {
        if (i > run) this.#keep(text.slice(run, i))
        this.#endString()
        return i + 1
      }
      if (c === 0x5c) {
        if (i > run) this.#keep(text.slice(run, i))
        this.#escape = 1
        i++
        run = i
        continue
      }
      if (c < 0x20) this.#fail(`a control character (U+${c.toString(16).padStart(4, '0')}) inside a string`, i)
      i++
    }
    if (i > run) this.#keep(text.slice(run, i))
    return i
  }

  #escapePart (c: number, at: number): void {
    if (this.#escape === 1) {
      const simple = ESCAPES[c]
      if (simple !== undefined) { this.#keep(simple); this.#escape = 0; return }
      if (c !== 0x75) this.#fail(`an invalid escape (\\${String.fromCharCode(c)}) inside a string`, at)
      this.#escape = 5
      this.#hex = 0
      return
    }
    const digit = hexValue(c)
    if (digit < 0) this.#fail(`an invalid \\u escape (${describe(c)} is not a hex digit)`, at)
    this.#hex = this.#hex * 16 + digit
    if (--this.#escape === 1) {
      this.#keep(String.fromCharCode(this.#hex))
      this.#escape = 0
    }
  }

  #endString (): void {
    this.#token = Token.None
    const value = stringOf(this.#parts, this.#total > this.#length)
    this.#parts = []
    if (this.#isKey) {
      this.#path[this.#path.length - 1] = value
      this.#expect = Expect.Colon
    } else {
      this.#emit(value, this.#total)
    }
  }

  /** Reads number characters from `i`; the number ends at the first character its grammar cannot take. */
  #numberPart (text: string, i: number): number {
    const n = text.length
    const start = i
    let state = this.#numberState
    for (; i < n; i++) {
      const next = NUMBER_STEP(state, text.charCodeAt(i))
      if (next === NumberState.End) break
      state = next
    }
    this.#number += text.slice(start, i)
    this.#numberState = state
    if (this.#number.length > MAX_NUMBER_LENGTH) throw new JsonLimitError(`has a number longer than ${MAX_NUMBER_LENGTH} characters (character ${this.#numberStart})`)
    if (i < n) this.#endNumber(i)
    return i
  }

  #endNumber (at: number): void {
    if (!NUMBER_COMPLETE.has(this.#numberState)) this.#fail(`an incomplete number (${JSON.stringify(this.#number.slice(0, 40))})`, at)
    this.#token = Token.None
    const value = Number(this.#number)
    this.#number = ''
    this.#emit(value)
  }

  #literalPart (text: string, i: number): number {
    const literal = this.#literal
    const n = text.length
    while (i < n && this.#literalAt < literal.length) {
      if (text.charCodeAt(i) !== literal.charCodeAt(this.#literalAt)) this.#fail(`an unexpected ${describe(text.charCodeAt(i))} (expected "${literal}")`, i)
      this.#literalAt++
      i++
    }
    if (this.#literalAt === literal.length) {
      this.#token = Token.None
      this.#emit(literal === 'true' ? true : literal === 'false' ? false : null)
    }
    return i
  }
}

/**
 * A string of its own, not a V8 "sliced string" of the text it was cut
 * from: a slice keeps its whole piece of text (up to 1 MB) alive, and one
 * name kept per piece held the file's size in memory (found by review).
 * Shorter strings are copied by V8 itself; slicing a concatenation copies
 * (5× cheaper than structuredClone, measured).
 */
function detach (value: string): string {
  return value.length < 13 ? value : (value + ' ').slice(0, -1)
}

/** The string made of `parts`, detached and well-formed: a lone surrogate (valid in JSON, refused by PostgreSQL's jsonb) becomes U+FFFD. */
function stringOf (parts: string[], cut: boolean): string {
  let value = parts.length === 1 ? detach(parts[0] ?? '') : parts.join('')
  // Not half a character where the string was cut.
  if (cut) {
    const last = value.charCodeAt(value.length - 1)
    if (last >= 0xd800 && last <= 0xdbff) value = value.slice(0, -1)
  }
  return value.isWellFormed() ? value : value.toWellFormed()
}

const ESCAPES: Record<number, string> = { 0x22: '"', 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' }

function hexValue (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10
  return -1
}

function describe (c: number): string {
  return c >= 0x21 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `U+${c.toString(16).toUpperCase().padStart(4, '0')}`
}

/** RFC 8259's number: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
const NumberState = { Start: 0, Minus: 1, Zero: 2, Int: 3, Dot: 4, Fraction: 5, E: 6, ESign: 7, Exponent: 8, End: 9 } as const
type NumberState = typeof NumberState[keyof typeof NumberState]

const NUMBER_COMPLETE = new Set<NumberState>([NumberState.Zero, NumberState.Int, NumberState.Fraction, NumberState.Exponent])

function NUMBER_STEP (state: NumberState, c: number): NumberState {
  const digit = c >= 0x30 && c <= 0x39
  switch (state) {
    case NumberState.Start: return c === 0x2d ? NumberState.Minus : c === 0x30 ? NumberState.Zero : digit ? NumberState.Int : NumberState.End
    case NumberState.Minus: return c === 0x30 ? NumberState.Zero : digit ? NumberState.Int : NumberState.End
    case NumberState.Zero: return c === 0x2e ? NumberState.Dot : c === 0x65 || c === 0x45 ? NumberState.E : NumberState.End
    case NumberState.Int: return digit ? NumberState.Int : c === 0x2e ? NumberState.Dot : c === 0x65 || c === 0x45 ? NumberState.E : NumberState.End
    case NumberState.Dot: return digit ? NumberState.Fraction : NumberState.End
    case NumberState.Fraction: return digit ? NumberState.Fraction : c === 0x65 || c === 0x45 ? NumberState.E : NumberState.End
    case NumberState.E: return c === 0x2b || c === 0x2d ? NumberState.ESign : digit ? NumberState.Exponent : NumberState.End
    case NumberState.ESign: return digit ? NumberState.Exponent : NumberState.End
    case NumberState.Exponent: return digit ? NumberState.Exponent : NumberState.End
    case NumberState.End: return NumberState.End
  }
}
