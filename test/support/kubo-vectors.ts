import { createCipheriv, createHash } from 'node:crypto'
import { Readable } from 'node:stream'

/**
 * The pseudo-random bytes Kubo's CLI tests add (test/cli/testutils, DeterministicRandomReader):
 * the ChaCha20 keystream under key sha256(seed), zero nonce, counter from 0.
 * OpenSSL's chacha20 takes a 16-byte IV of counter and nonce: all zero here too.
 */
export function kuboDeterministicStream (seed: string): (bytes: number) => Buffer {
  const key = createHash('sha256').update(seed).digest()
  const cipher = createCipheriv('chacha20', key, Buffer.alloc(16))
  return (bytes) => cipher.update(Buffer.alloc(bytes))
}

/** `size` deterministic bytes in chunks of at most 1 MiB. */
export function kuboDeterministicBytes (size: number, seed: string): AsyncIterable<Uint8Array> {
  const next = kuboDeterministicStream(seed)
  return Readable.from((function * () {
    for (let left = size; left > 0; left -= 1_048_576) yield next(Math.min(left, 1_048_576))
  })())
}

const ALPHABET_EASY = [...'abcdefghijklmnopqrstuvwxyz01234567890-_']

/**
 * The file names of Kubo's HAMT threshold directories (test/cli/add_test.go,
 * createDeterministicFiles): each name draws its length in bytes from one
 * keystream and maps each byte onto the easy alphabet; every file holds "x".
 */
export function kuboDeterministicNames (count: number, nameLength: number, lastNameLength: number, seed: string): string[] {
  const next = kuboDeterministicStream(seed)
  const names: string[] = []
  for (let i = 0; i < count; i++) {
    const length = i === count - 1 ? lastNameLength : nameLength
    names.push([...next(length)].map((b) => ALPHABET_EASY[b % ALPHABET_EASY.length]).join(''))
  }
  return names
}
