import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, extname, resolve } from 'node:path'
import { Readable } from 'node:stream'
import { contentExtensionOf, isGzippedModel } from '../assets/asset-kinds.ts'
import { EXIT, UploadFailure } from './exit-codes.ts'
import { bundleEntries, zipStream } from './zip-bundle.ts'

/** What the command sends: a file as it is, or a folder as a zip made while it is sent. */
export interface UploadSource {
  kind: 'file' | 'bundle'
  /** The file name the server sees (its extension says what it is). */
  fileName: string
  /** The upload's name, when `--name` gave one. */
  name: string | undefined
  /** Exact bytes that will be sent. */
  size: number
  /** Says whether this is the same content as an earlier, interrupted run: path, size and modification time of every file. */
  fingerprint: string
  /** The bytes from `start` on. */
  open: (start: number) => Readable
  /** Whether every file still has the size and modification time it had when measured: false for one saved again meanwhile, which the sizes alone would not show. */
  unchanged: () => Promise<boolean>
  /** How many files (1 for a file). */
  files: number
}

/** `--name` as the server's file name: the name, with the file's extension when it lacks it. */
function fileNameFor (name: string | undefined, fallback: string, extension: string): string {
  if (name === undefined || name === '') return fallback
  return name.toLowerCase().endsWith(extension.toLowerCase()) ? name : `${name}${extension}`
}

export async function openSource (path: string, name?: string, onNote?: (message: string) => void): Promise<UploadSource> {
  const absolute = resolve(path)
  const info = await stat(absolute).catch((err: NodeJS.ErrnoException) => {
    throw new UploadFailure(`${path}: ${err.code === 'ENOENT' ? 'no such file or folder' : err.message}`, EXIT.usage)
  })
  if (info.isFile()) {
    return {
      kind: 'file',
      // A gzipped model keeps both parts of its extension: `--name hero` for box.fbx.gz sends hero.fbx.gz.
      fileName: fileNameFor(name, basename(absolute), isGzippedModel(absolute) ? `.${contentExtensionOf(absolute)}${absolute.slice(-3)}` : extname(absolute)),
      name,
      size: info.size,
      fingerprint: `file:${absolute}:${info.size}:${info.mtimeMs}`,
      open: (start) => createReadStream(absolute, { start }),
      unchanged: async () => { const now = await stat(absolute).catch(() => undefined); return now?.size === info.size && now.mtimeMs === info.mtimeMs },
      files: 1
    }
  }
  if (!info.isDirectory()) throw new UploadFailure(`${path}: not a file or a folder`, EXIT.usage)
  const entries = await bundleEntries(absolute, onNote)
  if (entries.length === 0) throw new UploadFailure(`${path}: the folder has no files to upload`, EXIT.usage)
  const { stream, size } = zipStream(entries)
  stream.destroy() // made only to learn the size; each upload attempt makes its own.
  const folderName = basename(absolute)
  return {
    kind: 'bundle',
    fileName: fileNameFor(name === undefined ? undefined : name.replace(/\.zip$/i, ''), `${folderName}.zip`, '.zip'),
    name,
    size: await size,
    fingerprint: `bundle:${absolute}:${entries.map((e) => `${e.path}:${e.size}:${e.mtime.getTime()}`).join('|')}`,
    open: (start) => {
      const { stream } = zipStream(entries)
      return start === 0 ? stream : Readable.from(skipBytes(start)(stream), { objectMode: false })
    },
    unchanged: async () => (await Promise.all(entries.map(async (e) => {
      const now = await stat(e.file).catch(() => undefined)
      return now?.size === e.size && now.mtime.getTime() === e.mtime.getTime()
    }))).every(Boolean),
    files: entries.length
  }
}

/** Drops the first `count` bytes of a stream: a bundle resumed part-way is made again up to where the server stopped. */
function skipBytes (count: number): (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
  return async function * (source) {
    let left = count
    for await (const chunk of source) {
      if (left >= chunk.length) { left -= chunk.length; continue }
      yield left === 0 ? chunk : chunk.subarray(left)
      left = 0
    }
  }
}
