import { close, open, read } from 'node:fs'

/**
 * A file's bytes into `into` with one open, one read and one close (callback
 * fs: no FileHandle object per block); the number of bytes read, less than
 * `into.length` for a shorter file; undefined when there is no such file.
 */
export async function readFileInto (path: string, into: Uint8Array): Promise<number | undefined> {
  const fd = await new Promise<number | undefined>((resolve, reject) => {
    open(path, 'r', (err, fd) => {
      if (err === null) resolve(fd)
      else if (err.code === 'ENOENT') resolve(undefined)
      else reject(err)
    })
  })
  if (fd === undefined) return undefined
  try {
    let total = 0
    // One read fills a block from the page cache; a short one is looped, in case.
    for (;;) {
      const n = await new Promise<number>((resolve, reject) => {
        read(fd, into, total, into.length - total, total, (err, bytesRead) => { if (err === null) resolve(bytesRead); else reject(err) })
      })
      total += n
      if (n === 0 || total === into.length) return total
    }
  } finally {
    close(fd, () => {})
  }
}

