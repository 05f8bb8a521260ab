import { posix } from 'node:path'
import { pack, type Pack } from 'tar-stream'
import type { CID } from 'multiformats/cid'
import { BadRequestError } from '../../errors.ts'
import type { IpfsBackend } from '../../ipfs/ipfs-backend.ts'

type TreeReader = Pick<IpfsBackend, 'stat' | 'read' | 'list'>

/** One entry of the tar: its name in the archive and the node that holds it. */
export interface TarEntry { name: string, type: 'file' | 'directory', size: number, cid: CID }

/**
 * Every entry below `cid/path`, depth-first, directories before their
 * entries, named as boxo names them: `<top>/<link names>`, normalised, so a
 * link named `directory/../file` is `file` in its folder. A name that leads
 * out of the top folder is refused (400) before anything is sent. Only
 * directory nodes and each file's root are read; the files' bytes are read
 * when written.
 */
export async function tarEntries (backend: TreeReader, cid: CID, path: readonly string[], top: string, signal?: AbortSignal): Promise<TarEntry[]> {
  const stat = await backend.stat(cid, path)
  const entries: TarEntry[] = []
  const walk = async (node: CID, name: string, type: TarEntry['type'], size: number): Promise<void> => {
    signal?.throwIfAborted()
    entries.push({ name, type, size, cid: node })
    if (type !== 'directory') return
    const children = []
    for await (const child of backend.list(node)) children.push(child)
    for (const child of children) {
      const childName = posix.normalize(`${name}/${child.name}`)
      if (!childName.startsWith(`${top}/`) || childName.length === top.length + 1) {
        throw new BadRequestError(`"${child.name}" in ${name} leads out of the archive's folder: relative paths outside the root are not allowed in a tar`)
      }
      // The entry's size must be the file's length to the byte: its node says, not the link.
      const stat = child.type === 'directory' ? undefined : await backend.stat(child.cid)
      await walk(child.cid, childName, stat?.type ?? 'directory', stat?.size ?? 0)
    }
  }
  await walk(stat.cid, top, stat.type === 'directory' ? 'directory' : 'file', stat.size)
  return entries
}

/**
 * `?format=tar`: the entries `tarEntries` listed, as boxo writes them; each
 * file's bytes streamed in, one at a time.
 */
export function tarStream (backend: TreeReader, entries: readonly TarEntry[], signal?: AbortSignal): Pack {
  const tar = pack()
  void (async () => {
    for (const entry of entries) {
      signal?.throwIfAborted()
      if (entry.type === 'directory') {
        tar.entry({ name: `${entry.name}/`, type: 'directory', mode: 0o755, mtime: new Date(0) })
        continue
      }
      await new Promise<void>((resolve, reject) => {
        const sink = tar.entry({ name: entry.name, type: 'file', size: entry.size, mode: 0o644, mtime: new Date(0) }, (err) => { if (err != null) reject(err); else resolve() })
        void (async () => {
          // The entry pushes back when the tar's reader is slow: one file's bytes are never all held.
          for await (const chunk of backend.read(entry.cid, [], { signal })) {
            if (!sink.write(chunk)) await new Promise<void>((resolve) => sink.once('drain', () => { resolve() }))
          }
          sink.end(undefined)
        })().catch(reject)
      })
    }
    tar.finalize()
  })().catch((err: unknown) => { tar.destroy(err instanceof Error ? err : new Error(String(err))) })
  return tar
}
