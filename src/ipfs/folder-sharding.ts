import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { importer, type ImporterOptions, type InProgressImportResult } from 'ipfs-unixfs-importer'
import { Readable } from 'node:stream'
import type { CID } from 'multiformats/cid'
import type { ImportProfile } from './import-profiles.ts'
import type { ImportedNode } from './ipfs-backend.ts'

/** Kubo's Import.UnixFSHAMTDirectorySizeThreshold (and ipfs-unixfs-importer's): a folder past it is sharded. */
const SHARD_THRESHOLD = 256 * 1024
/** A dag-pb link's bytes beyond its name and CID, at most (field tags, lengths, Tsize). */
const LINK_FRAMING = 20
const DIRECTORY = new UnixFS({ type: 'directory' })

interface BlockSource {
  get: (cid: CID) => Promise<Uint8Array>
}

/** Nodes already built, handed over as the importer's DAG builder hands over each file it built. */
const alreadyBuilt = (entries: readonly InProgressImportResult[]): AsyncIterable<() => Promise<InProgressImportResult>> =>
  Readable.from(entries.map((entry) => async () => Promise.resolve(entry)))

const parentOf = (path: string): string => path.slice(0, Math.max(0, path.lastIndexOf('/')))
const nameOf = (path: string): string => path.slice(path.lastIndexOf('/') + 1)
const utf8Length = (text: string): number => Buffer.byteLength(text, 'utf8')

/**
 * What Kubo's `ipfs add` decides for every folder, where ipfs-unixfs-importer
 * (17.1.1) decides otherwise: the importer weighs a subfolder's link as 0
 * bytes while it builds (the subfolder has no CID yet) and decides only as
 * files are added, so a folder past the HAMT threshold by its subfolders'
 * links stays one flat block where Kubo shards it, and its CID and every
 * parent's differ from Kubo's. Such a folder, found by its block (flat, and
 * over the threshold as the profile measures it), is built again from its
 * children's CIDs with the importer's own tree builder, which then weighs
 * every link as Kubo does; then each folder above it, deepest first. The
 * import's other nodes are kept (`nodes` itself is returned when no folder
 * was built again); the folders' first blocks are left to the
 * next collection. Nothing is read again but those folders' blocks: a
 * folder is looked at only when its links could pass the threshold.
 */
export async function shardFoldersAsKubo (nodes: ImportedNode[], folders: ReadonlySet<string>, blocks: BlockSource, options: ImporterOptions & Pick<ImportProfile, 'shardSplitStrategy'>, writer: Parameters<typeof importer>[1]): Promise<ImportedNode[]> {
  const byPath = new Map(nodes.map((node) => [node.path, node]))
  const children = new Map<string, ImportedNode[]>()
  for (const node of nodes) {
    if (node.path === '') continue
    const parent = parentOf(node.path)
    const list = children.get(parent)
    if (list === undefined) children.set(parent, [node])
    else list.push(node)
  }
  const isFolder = (path: string): boolean => path === '' || folders.has(path) || children.has(path)
  // A flat folder's block is at least its links' names and CIDs: below the threshold so counted, it cannot be over.
  const worthALook = [...children].filter(([, list]) => list.reduce((sum, child) => sum + utf8Length(nameOf(child.path)) + child.cid.byteLength + LINK_FRAMING, 0) > SHARD_THRESHOLD)
  const leftFlat: string[] = []
  for (const [path] of worthALook) {
    const node = byPath.get(path)
    if (node === undefined) continue
    const bytes = await blocks.get(node.cid)
    const block = dagPb.decode(bytes)
    if (block.Data === undefined || UnixFS.unmarshal(block.Data).type !== 'directory') continue
    const size = options.shardSplitStrategy === 'block-bytes'
      ? bytes.byteLength
      : block.Links.reduce((sum, link) => sum + utf8Length(link.Name ?? '') + link.Hash.byteLength, 0)
    if (size > SHARD_THRESHOLD) leftFlat.push(path)
  }
  if (leftFlat.length === 0) return nodes

  // The folders left flat and every folder above them, deepest first.
  const again = new Set<string>()
  for (const path of leftFlat) {
    for (let at = path; ; at = parentOf(at)) {
      again.add(at)
      if (at === '') break
    }
  }
  const depth = (path: string): number => (path === '' ? 0 : path.split('/').length)
  const rebuilt = new Map<string, ImportedNode>()
  for (const path of [...again].sort((a, b) => depth(b) - depth(a))) {
    const entries: InProgressImportResult[] = (children.get(path) ?? []).map((child) => {
      const current = rebuilt.get(child.path) ?? child
      return { path: nameOf(child.path), cid: current.cid, size: current.dagSize, ...(isFolder(child.path) ? { unixfs: DIRECTORY } : {}) }
    })
    let root: { cid: CID, size: bigint } | undefined
    // The children are built already: the importer's DAG builder is given their nodes, its tree builder makes the folder.
    for await (const entry of importer([], writer, { ...options, wrapWithDirectory: true, dagBuilder: () => alreadyBuilt(entries) })) {
      if (entry.path === '' || entry.path === undefined) root = entry
    }
    if (root === undefined) throw new Error(`rebuilding folder "${path}" gave no root`)
    rebuilt.set(path, { path, cid: root.cid, dagSize: root.size })
  }
  return nodes.map((node) => rebuilt.get(node.path) ?? node)
}
