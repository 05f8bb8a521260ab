'use strict'

/**
 * Heimdall's streamsearch: the same class, constructor, callback and methods
 * as streamsearch 1.1 (busboy's search for the multipart boundary, which
 * multer uses), found with Buffer#indexOf instead of a Boyer-Moore-Horspool
 * loop in JavaScript. That loop looked at every ~boundary-length-th byte of
 * an upload on the event loop's thread: ~0.5 s of a 1 GiB upload, a sixth
 * of the server's main thread; indexOf searches natively (memchr for the
 * needle's first byte, '\r', then a compare). See README.md.
 *
 * The callback gets, in order, every byte pushed: `cb(false, data, start,
 * end, isDataSafe)` for bytes that are not part of the needle, and
 * `cb(true, data, start, end, isDataSafe)` where a needle ends, with the
 * bytes before it since the last call (or `data` undefined and start = end
 * = 0 when there are none). `isDataSafe` is false when `data` is the
 * search's own buffer of held-back bytes, which it reuses: the caller must
 * copy what it keeps. The needle's bytes are never passed on. Bytes at the
 * end of a chunk that could begin the needle are held back until the next
 * push (or destroy) decides.
 */
class StreamSearch {
  constructor (needle, cb) {
    if (typeof cb !== 'function') throw new Error('Missing match callback')
    if (typeof needle === 'string') needle = Buffer.from(needle)
    else if (!Buffer.isBuffer(needle)) throw new Error(`Expected Buffer for needle, got ${typeof needle}`)
    if (needle.length === 0) throw new Error('The needle must not be empty')
    this.maxMatches = Infinity
    this.matches = 0
    this._cb = cb
    this._needle = needle
    /** Held-back bytes: always a proper prefix of the needle. */
    this._held = Buffer.allocUnsafe(needle.length)
    this._heldLength = 0
  }

  reset () {
    this.matches = 0
    this._heldLength = 0
  }

  /** Searches `chunk` from `pos`; returns where it stopped (the chunk's length, or past the last match when maxMatches was reached). */
  push (chunk, pos) {
    if (!Buffer.isBuffer(chunk)) chunk = Buffer.from(chunk, 'latin1')
    let start = pos || 0
    if (this.matches >= this.maxMatches) return start
    if (this._heldLength > 0) {
      const matches = this.matches
      start = this._resolveHeld(chunk, start)
      if (start === -1) return chunk.length
      if (this.matches > matches && this.matches >= this.maxMatches) return start
    }
    return this._scan(chunk, start)
  }

  /** Passes on what is held back: it can no longer begin the needle. */
  destroy () {
    if (this._heldLength > 0) this._cb(false, this._held, 0, this._heldLength, false)
    this.reset()
  }

  /**
   * The held-back bytes followed by `chunk` from `start`: a needle that
   * begins in them is matched (its end is returned), or they stay held with
   * the whole chunk when it is too short to decide (-1); otherwise they are
   * passed on and the search goes on at `start`.
   */
  _resolveHeld (chunk, start) {
    const needle = this._needle
    const held = this._held
    const heldLength = this._heldLength
    const available = chunk.length - start
    for (let k = 0; k < heldLength; k++) {
      const inHeld = heldLength - k
      if (held.compare(needle, 0, inHeld, k, heldLength) !== 0) continue
      const rest = needle.length - inHeld
      if (available >= rest) {
        if (chunk.compare(needle, inHeld, needle.length, start, start + rest) !== 0) continue
        this._heldLength = 0
        this.matches++
        if (k > 0) this._cb(true, held, 0, k, false)
        else this._cb(true, undefined, 0, 0, true)
        return start + rest
      }
      // Too short to decide: it may still be the needle's beginning, held back with what comes before it passed on.
      if (chunk.compare(needle, inHeld, inHeld + available, start, chunk.length) !== 0) continue
      if (k > 0) {
        this._cb(false, held, 0, k, false)
        held.copy(held, 0, k, heldLength)
      }
      chunk.copy(held, inHeld, start)
      this._heldLength = inHeld + available
      return -1
    }
    this._cb(false, held, 0, heldLength, false)
    this._heldLength = 0
    return start
  }

  _scan (chunk, start) {
    const needle = this._needle
    const length = chunk.length
    for (;;) {
      const at = chunk.indexOf(needle, start)
      if (at === -1) break
      this.matches++
      if (at > start) this._cb(true, chunk, start, at, true)
      else this._cb(true, undefined, 0, 0, true)
      start = at + needle.length
      if (this.matches >= this.maxMatches) return start
    }
    // The first place from which the rest of the chunk could begin the needle.
    let tail = Math.max(start, length - needle.length + 1)
    const first = needle[0]
    for (; tail < length; tail++) {
      if (chunk[tail] === first && chunk.compare(needle, 0, length - tail, tail, length) === 0) break
    }
    if (tail > start) this._cb(false, chunk, start, tail, true)
    if (tail < length) {
      chunk.copy(this._held, 0, tail, length)
      this._heldLength = length - tail
    }
    return length
  }
}

module.exports = StreamSearch
