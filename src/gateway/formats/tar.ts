import { posix } from 'node:path'
import { pack, type Pack } from 'tar-stream'
import type { CID } from 'multiformats/cid'
import { BadRequestError, UnprocessableContentError } from '../../errors.ts'
import { cidKey } from '../../ipfs/cid-key.ts'
import type { DirectoryEntry, IpfsBackend, NodeStat } from '../../ipfs/ipfs-backend.ts'
import { gateFileBlocks, type Gate } from '../dag-walk.ts'
import { LISTING_MAX_ENTRIES } from '../unixfs-reader.ts'

type TreeReader = Pick<IpfsBackend, 'stat' | 'read' | 'list'>

/** One entry of the tar: its name in the archive and what its node is (a file's length, a symlink's target). */
type TarEntry = NodeStat & { name: string }

/**
 * Most entries a tar may have unless the caller says (gatewayEntryLimit of
 * ZIP_MAX_ENTRIES): as many as a listing. A tar writes a folder linked
 * twice twice (as Kubo does), so a few small blocks can name entries
 * without end: four levels of folders each linking 1,000 times to the one
 * below, a 10.8 KB zip, named 10^12 entries, walked before the first byte
 * while a core burned for as long as the client waited (found by review).
 */
export const TAR_MAX_ENTRIES = LISTING_MAX_ENTRIES

/** One walk of a tree: the entries named so far (at most `max`), and each folder's children as listed once. */
interface TarWalk { count: number, max: number, listed: Map<string, DirectoryEntry[]> }

const newWalk = (max: number): TarWalk => ({ count: 0, max, listed: new Map() })

/**
 * The entries below `node`, depth-first, directories before their entries,
 * named as boxo names them: `<top>/<link names>`, normalised, so a link
 * named `directory/../file` is `file` in its folder, and a name that leads
 * out of the top folder is refused (400). Past the walk's maximum, counted
 * as each folder is listed, a 422. Memory is bounded by the entries named:
 * a folder met again is not listed again.
 */
async function * entries (backend: TreeReader, node: TarEntry, top: string, walk: TarWalk, signal?: AbortSignal, gate?: Gate): AsyncGenerator<TarEntry> {
  signal?.throwIfAborted()
  gate?.(node.cid)
  yield node
  if (node.type !== 'directory') return
  const key = cidKey(node.cid)
  let children = walk.listed.get(key)
  if (children === undefined) {
    children = []
    for await (const child of backend.list(node.cid, [], { signal })) {
      if (walk.count + children.length >= walk.max) throw tooManyEntries(walk.max)
      children.push(child)
    }
    walk.listed.set(key, children)
  }
  walk.count += children.length
  if (walk.count > walk.max) throw tooManyEntries(walk.max)
  for (const child of children) {
    const name = posix.normalize(`${node.name}/${child.name}`)
    if (!name.startsWith(`${top}/`) || name.length === top.length + 1) {
      throw new BadRequestError(`"${child.name}" in ${node.name} leads out of the archive's folder: relative paths outside the root are not allowed in a tar`)
    }
    yield * entries(backend, { ...child, name }, top, walk, signal, gate)
  }
}

function tooManyEntries (max: number): UnprocessableContentError {
  return new UnprocessableContentError(`this tree has more than ${max} entries (a folder linked twice is written twice): too many for a tar here; ask for ?format=car, or for a folder inside it`)
}

/** The archive's top entry: the file, directory or symlink `cid` (what the path resolved to), named by it. */
export async function tarRoot (backend: TreeReader, cid: CID, signal?: AbortSignal): Promise<TarEntry> {
  return { ...await backend.stat(cid, [], { signal }), name: cid.toString() }
}

/**
 * Walks the tree once to check every name and CID, before an answer is
 * sent: a name leading out of the folder is then a 400, not a tar cut
 * short. Reads directory nodes (and, with a gate, files' inner nodes, not
 * their leaves); holds nothing.
 */
export async function checkTarNames (backend: TreeReader & Pick<IpfsBackend, 'getBlock'>, root: TarEntry, signal?: AbortSignal, gate?: Gate, maxEntries = TAR_MAX_ENTRIES): Promise<void> {
  // Every entry, and every block of each file, through the gate too: refused content is a 410 before the first byte, not a tar cut short.
  // A block shared by several files (or one file linked many times) is checked and read once.
  const gated = new Set<string>()
  for await (const entry of entries(backend, root, root.name, newWalk(maxEntries), signal, gate)) {
    if (gate !== undefined && entry.type === 'file') await gateFileBlocks(backend, entry.cid, gate, signal, gated)
  }
}

/**
 * `?format=tar`: the file or directory as a tar named by its CID, as boxo
 * writes it, once `checkTarNames` let every name and block through; a
 * symlink as a symlink to its target (boxo's, never followed); each file's
 * length as its node says (not its link), its bytes streamed in, one file
 * at a time.
 */
export function tarStream (backend: TreeReader, root: TarEntry, signal?: AbortSignal, maxEntries = TAR_MAX_ENTRIES): Pack {
  const tar = pack()
  void (async () => {
    for await (const entry of entries(backend, root, root.name, newWalk(maxEntries), signal)) {
      // Each header as boxo's TarWriter writes it: the name as walked (a directory's too, with no slash after it), the node's mode, its mtime.
      const header = { name: entry.name, mode: entry.mode, mtime: mtimeOf(entry) }
      if (entry.type === 'directory') {
        tar.entry({ ...header, type: 'directory' })
        continue
      }
      if (entry.type === 'symlink') {
        tar.entry({ ...header, type: 'symlink', linkname: entry.target ?? '' })
        continue
      }
      const { size } = entry
      await new Promise<void>((resolve, reject) => {
        const sink = tar.entry({ ...header, type: 'file', size }, (err) => { if (err != null) reject(err); else resolve() })
        // How the entry fails (the tar destroyed as its client left; a file that ended short of its length, tar-stream's
        // "Size mismatch") comes to the callback above. tar-stream emits it on the entry as well, where unheard it
        // ended the process: any client that left a tar download took the server down.
        sink.on('error', () => {})
        void (async () => {
          // The entry pushes back when the tar's reader is slow: one file's bytes are never all held.
          for await (const chunk of backend.read(entry.cid, [], { signal })) {
            // A destroyed entry takes no more bytes, and sends no 'drain': leaving the loop ends the read.
            if (sink.destroyed) return
            if (!sink.write(chunk)) await drained(sink)
          }
          sink.end(undefined)
        })().catch(reject)
      })
    }
    tar.finalize()
  })().catch((err: unknown) => { tar.destroy(err instanceof Error ? err : new Error(String(err))) })
  return tar
}

/**
 * An entry's mtime in the header, as boxo writes it: the node's, else the
 * time the header is written (boxo's TarWriter takes time.Now() for a node
 * with none, which is why a tar's ETag is weak), rounded to the second
 * (Go's tar rounds a header's time when no format is asked for).
 */
function mtimeOf (entry: TarEntry): Date {
  const secs = entry.mtime === undefined ? Math.round(Date.now() / 1000) : entry.mtime.secs + (entry.mtime.nsecs >= 500_000_000 ? 1 : 0)
  return new Date(secs * 1000)
}

/** Until `entry` takes more bytes, or is destroyed (then it never drains). */
async function drained (entry: { once: (event: 'drain' | 'close', listener: () => void) => unknown, off: (event: 'drain' | 'close', listener: () => void) => unknown }): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => { entry.off('drain', done); entry.off('close', done); resolve() }
    entry.once('drain', done)
    entry.once('close', done)
  })
}
