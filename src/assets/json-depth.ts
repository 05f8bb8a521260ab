/**
 * How deep arrays and objects may nest in an uploaded JSON file (.json,
 * .gltf, a GLB's JSON chunk). Real ones nest a few dozen levels at most (an
 * Overte animation graph's children); a streaming parser keeps a frame per
 * open level, and a file of nothing but `[` built one per byte: 5 MB of them
 * took 2.4 GB, and three at once ended the server (found by review).
 */
export const MAX_JSON_DEPTH = 512

/**
 * Tracks the nesting of JSON text given in pieces (a UTF-8 stream decoded
 * chunk by chunk): the brackets outside strings. Says nothing of validity,
 * which the parser checks.
 */
export class JsonDepth {
  #depth = 0
  #inString = false
  #escaped = false

  /** Reads on; throws when the text opens more than MAX_JSON_DEPTH levels. */
  write (text: string): void {
    let depth = this.#depth
    let inString = this.#inString
    let escaped = this.#escaped
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (inString) {
        if (escaped) escaped = false
        else if (c === 0x5c) escaped = true
        else if (c === 0x22) inString = false
      } else if (c === 0x22) {
        inString = true
      } else if (c === 0x5b || c === 0x7b) {
        if (++depth > MAX_JSON_DEPTH) throw new Error(`nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`)
      } else if (c === 0x5d || c === 0x7d) {
        depth--
      }
    }
    this.#depth = depth
    this.#inString = inString
    this.#escaped = escaped
  }
}
