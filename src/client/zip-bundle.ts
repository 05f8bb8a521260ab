import { createReadStream } from 'node:fs'
import { readdir, realpath, stat } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import type { Readable } from 'node:stream'
import { ZipFile } from 'yazl'

/** A file of the folder, by its path inside the bundle (`textures/skin.png`). */
export interface BundleEntry {
  /** Inside the zip, with `/`. */
  path: string
  /** On disk. */
  file: string
  size: number
  mtime: Date
  mode: number
}

/**
 * The regular files under `folder`, sorted by path, so that a bundle made
 * twice is the same bytes. Hidden files and folders (`.git`, `.DS_Store`)
 * are left out: the server accepts asset types only.
 */
export async function bundleEntries (folder: string, onNote: (message: string) => void = () => {}): Promise<BundleEntry[]> {
  const entries: BundleEntry[] = []
  const inside = await realpath(folder)
  for (const dirent of await readdir(folder, { recursive: true, withFileTypes: true })) {
    // A link is followed only to a file inside the folder: what is uploaded is published and cannot be recalled, and a
    // link leading out of it (through a symlinked ~/.ssh, say) could publish anything (found by review). Links to
    // folders are not followed (readdir lists them, it does not enter them). Each link left out is said.
    if (!dirent.isFile() && !dirent.isSymbolicLink()) continue
    const file = join(dirent.parentPath, dirent.name)
    const path = relative(folder, file).split(sep).join('/')
    if (path.split('/').some((segment) => segment.startsWith('.'))) continue
    if (dirent.isSymbolicLink()) {
      const target = await realpath(file).catch(() => undefined)
      if (target === undefined) { onNote(`left out ${path}: a link to nothing`); continue }
      if (target === inside) { onNote(`left out ${path}: it links to the folder itself`); continue }
      if (!target.startsWith(inside + sep)) { onNote(`left out ${path}: it links outside the folder (${target}); copy the file in to upload it`); continue }
      const info = await stat(target)
      if (info.isDirectory()) { onNote(`left out ${path}: it links to a folder, which is not followed`); continue }
      if (!info.isFile()) { onNote(`left out ${path}: it links to something that is not a file`); continue }
      if (relative(inside, target).split(sep).some((segment) => segment.startsWith('.'))) { onNote(`left out ${path}: it links to a hidden file or folder`); continue }
    }
    const info = await stat(file)
    if (!info.isFile()) continue
    entries.push({ path, file, size: info.size, mtime: info.mtime, mode: info.mode })
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/**
 * The folder as a zip, produced as it is read: entries stored, not
 * compressed (models and textures are compressed already, and a stored
 * entry's size is known), so the zip's exact size is known before a byte
 * is made, as a resumable upload needs. Each file is opened only when its
 * turn comes.
 */
export function zipStream (entries: readonly BundleEntry[]): { stream: Readable, size: Promise<number> } {
  const zip = new ZipFile()
  for (const entry of entries) {
    zip.addReadStreamLazy(entry.path, { mtime: entry.mtime, mode: entry.mode, compress: false, size: entry.size }, (cb) => { cb(null, createReadStream(entry.file)) })
  }
  const size = new Promise<number>((resolve, reject) => {
    // @types/yazl predates the size callback (yazl 2.5+).
    const end = zip.end.bind(zip) as unknown as (options: object, calculatedTotalSize: (total: number) => void) => void
    // The ZIP64 end record always: yazl 3.3.1 miscounts the size it announces once the central directory reaches 64 KiB
    // (~800 files; its size check tests 0xffff where its writer tests 0xffffffff), and an upload announcing 76 bytes
    // more than it sends hung (found by review). With the record forced, the two agree; every zip reader takes it.
    end({ forceZip64Format: true }, (total: number) => { if (total < 0) reject(new Error('the bundle\'s size cannot be computed')); else resolve(total) })
  })
  // yazl reports a file that changed size while it was read on the ZipFile, not on its stream.
  const stream = zip.outputStream as unknown as Readable
  zip.on('error', (err: Error) => { stream.destroy(err) })
  return { stream, size }
}
