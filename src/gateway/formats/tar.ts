import { pack, type Pack } from 'tar-stream'
import type { CID } from 'multiformats/cid'
import type { IpfsBackend } from '../../ipfs/ipfs-backend.ts'

type TreeReader = Pick<IpfsBackend, 'stat' | 'read' | 'list'>

/** Files and directories below `cid/path`, depth-first, directories before their entries. */
async function * entries (backend: TreeReader, cid: CID, path: readonly string[], name: string, signal?: AbortSignal): AsyncGenerator<{ name: string, type: 'file' | 'directory', size: number, path: readonly string[] }> {
  const stat = await backend.stat(cid, path)
  if (stat.type === 'file') { yield { name, type: 'file', size: stat.size, path }; return }
  yield { name, type: 'directory', size: 0, path }
  const children = []
  for await (const child of backend.list(cid, path)) children.push(child)
  for (const child of children) {
    signal?.throwIfAborted()
    yield * entries(backend, cid, [...path, child.name], `${name}/${child.name}`, signal)
  }
}

/**
 * `?format=tar`: the file or directory as a tar named by its CID, as boxo
 * writes it; each file's bytes streamed in, one at a time.
 */
export function tarStream (backend: TreeReader, cid: CID, path: readonly string[], top: CID, signal?: AbortSignal): Pack {
  const tar = pack()
  void (async () => {
    for await (const entry of entries(backend, cid, path, top.toString(), signal)) {
      if (entry.type === 'directory') {
        tar.entry({ name: `${entry.name}/`, type: 'directory', mode: 0o755, mtime: new Date(0) })
        continue
      }
      await new Promise<void>((resolve, reject) => {
        const sink = tar.entry({ name: entry.name, type: 'file', size: entry.size, mode: 0o644, mtime: new Date(0) }, (err) => { if (err != null) reject(err); else resolve() })
        void (async () => {
          // The entry pushes back when the tar's reader is slow: one file's bytes are never all held.
          for await (const chunk of backend.read(cid, entry.path, { signal })) {
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
