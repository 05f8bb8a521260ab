import { createWriteStream } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import yazl from 'yazl'
import { kuboDeterministicStream } from './kubo-vectors.ts'

const MiB = 1024 * 1024
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

/** Writes `size` pseudo-random bytes to `path` without holding them in memory. */
export async function writeRandomFile (path: string, size: number, seed = 'heimdall'): Promise<void> {
  const next = kuboDeterministicStream(seed)
  await pipeline(Readable.from((function * () {
    for (let left = size; left > 0; left -= MiB) yield next(Math.min(left, MiB))
  })()), createWriteStream(path))
}

/** A texture-like entry: the PNG signature, then noise (already compressed data, so stored). */
export function textureBytes (size: number, next: (n: number) => Buffer): Buffer {
  return Buffer.concat([PNG_SIGNATURE, next(size - PNG_SIGNATURE.length)])
}

/** Writes a zip of `count` PNG-signed textures of `entrySize` bytes under textures/, stored, entry by entry. */
export async function writeTextureBundle (path: string, count: number, entrySize: number, seed = 'bundle'): Promise<void> {
  const next = kuboDeterministicStream(seed)
  const zip = new yazl.ZipFile()
  const done = pipeline(zip.outputStream, createWriteStream(path))
  zip.addEmptyDirectory('textures', { mtime: new Date(0) })
  for (let i = 0; i < count; i++) {
    // Each entry's bytes are made only when yazl reaches it, so the bundle never sits in memory.
    const lazy = Readable.from((function * () { yield textureBytes(entrySize, next) })())
    zip.addReadStream(lazy, `textures/t${String(i).padStart(5, '0')}.png`, { compress: false, mtime: new Date(0), size: entrySize })
  }
  zip.end()
  await done
}
