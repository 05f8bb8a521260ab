import type { IpfsBackend } from '../ipfs/ipfs-backend.ts'
import { BlockFiles } from './block-files.ts'
import type { ByteWindow, ContentReader, ResolvedNode } from './content-reader.ts'
import { writeChunks } from './flow-writer.ts'
import { httpGatewayBytes } from './http-gateway-bytes.ts'
import { UnixfsReader } from './unixfs-reader.ts'

/**
 * The gateway's reader over the configured node. Paths are resolved and
 * directories listed from blocks (cached, so a directory is decoded once, not
 * per request); file bytes come from the blocks for the embedded node. For
 * Kubo, from the files of its flatfs blockstore when IPFS_BLOCKS_DIR shares
 * that folder (read-only), like the embedded node's: the fastest, each byte
 * read once from the page cache and written once to the client; else from
 * its private HTTP gateway when IPFS_GATEWAY_URL names one (every byte one
 * more loopback hop), else from its RPC `cat` with an offset and length.
 */
export function openContentReader (backend: IpfsBackend, options: { cacheBytes: number, maxListingEntries?: number, ipfsGatewayUrl?: string | undefined, ipfsBlocksDir?: string | undefined, ipfsTimeoutMs?: number }): ContentReader {
  if (backend.kind === 'helia') return new UnixfsReader(backend, { cacheBytes: options.cacheBytes, maxListingEntries: options.maxListingEntries })
  // Blocks Kubo keeps elsewhere than its flatfs files (or added since) are asked of it over RPC.
  if (options.ipfsBlocksDir !== undefined) return new UnixfsReader(new BlockFiles(options.ipfsBlocksDir, backend), { cacheBytes: options.cacheBytes, maxListingEntries: options.maxListingEntries })
  const unixfs = new UnixfsReader(backend, { cacheBytes: options.cacheBytes, maxListingEntries: options.maxListingEntries })
  const resolve = unixfs.resolve.bind(unixfs)
  const along = unixfs.along.bind(unixfs)
  const list = unixfs.list.bind(unixfs)
  const forget = unixfs.forget.bind(unixfs)
  const onForget = unixfs.onForget.bind(unixfs)
  if (options.ipfsGatewayUrl !== undefined) {
    const gateway = httpGatewayBytes(options.ipfsGatewayUrl, options.ipfsTimeoutMs === undefined ? {} : { idleMs: options.ipfsTimeoutMs })
    // A small file's block came with its resolution and is cached: Kubo is not asked for it again.
    // So is a symlink's target, which Kubo will not `cat`. Bytes Kubo sends are let through the gate block by block first.
    const writeTo: ContentReader['writeTo'] = async (node, window, out) => {
      await ((await fromNode(unixfs, node, window)) ? unixfs.writeTo(node, window, out) : gateway.writeTo(node, window, out))
    }
    const read: ContentReader['read'] = (node, window) => elsewhere(unixfs, node, window, gateway.read)
    return { resolve, along, list, forget, onForget, read, writeTo }
  }
  const read: ContentReader['read'] = (node, window) => elsewhere(unixfs, node, window, (n, w) => backend.read(n.cid, [], w))
  return { resolve, along, list, forget, onForget, read, writeTo: async (node, window, out) => { await writeChunks(read(node, window), out, 1024 * 1024) } }
}

/**
 * For readers whose bytes come from elsewhere (Kubo's gateway or `cat`):
 * true when the node holds its bytes itself (a small raw block, a symlink,
 * which Kubo will not `cat`) and serves them; else false, once every block of
 * the window passed the gate, which such a reader never sees.
 */
async function fromNode (unixfs: UnixfsReader, node: ResolvedNode, window: ByteWindow): Promise<boolean> {
  if (await unixfs.inline(node, window.signal)) return true
  await unixfs.checkWindow(node, window)
  return false
}

/** `read`'s bytes, or the node's own, as `fromNode` decides. */
async function * elsewhere (unixfs: UnixfsReader, node: ResolvedNode, window: ByteWindow, read: ContentReader['read']): AsyncIterable<Uint8Array> {
  yield * ((await fromNode(unixfs, node, window)) ? unixfs.read(node, window) : read(node, window))
}
