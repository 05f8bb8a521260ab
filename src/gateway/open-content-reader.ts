import type { IpfsBackend } from '../ipfs/ipfs-backend.ts'
import { BlockFiles } from './block-files.ts'
import type { ContentReader } from './content-reader.ts'
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
export function openContentReader (backend: IpfsBackend, options: { cacheBytes: number, ipfsGatewayUrl?: string | undefined, ipfsBlocksDir?: string | undefined }): ContentReader {
  if (backend.kind === 'helia') return new UnixfsReader(backend, { cacheBytes: options.cacheBytes })
  // Blocks Kubo keeps elsewhere than its flatfs files (or added since) are asked of it over RPC.
  if (options.ipfsBlocksDir !== undefined) return new UnixfsReader(new BlockFiles(options.ipfsBlocksDir, backend), { cacheBytes: options.cacheBytes })
  const unixfs = new UnixfsReader(backend, { cacheBytes: options.cacheBytes })
  const resolve = unixfs.resolve.bind(unixfs)
  const list = unixfs.list.bind(unixfs)
  const forget = unixfs.forget.bind(unixfs)
  const onForget = unixfs.onForget.bind(unixfs)
  if (options.ipfsGatewayUrl !== undefined) {
    const gateway = httpGatewayBytes(options.ipfsGatewayUrl)
    // A small file's block came with its resolution and is cached: Kubo is not asked for it again.
    // So is a symlink's target, which Kubo will not `cat`. Bytes Kubo sends are let through the gate block by block first.
    const writeTo: ContentReader['writeTo'] = async (node, window, out) => {
      if (await unixfs.inline(node, window.signal)) { await unixfs.writeTo(node, window, out); return }
      await unixfs.checkWindow(node, window)
      await gateway.writeTo(node, window, out)
    }
    const read: ContentReader['read'] = (node, window) => elsewhere(unixfs, node, window, gateway.read)
    return { resolve, list, forget, onForget, read, writeTo }
  }
  const read: ContentReader['read'] = (node, window) => elsewhere(unixfs, node, window, (n, w) => backend.read(n.cid, [], w))
  return { resolve, list, forget, onForget, read, writeTo: async (node, window, out) => { await writeChunks(read(node, window), out, 1024 * 1024) } }
}

/**
 * A file's bytes read elsewhere (`read`: Kubo's gateway or `cat`), once every
 * block of the window passed the gate, which such a reader never sees; bytes
 * the node holds itself (a small raw block, a symlink) from the node.
 */
async function * elsewhere (unixfs: UnixfsReader, node: Parameters<ContentReader['read']>[0], window: Parameters<ContentReader['read']>[1], read: ContentReader['read']): AsyncIterable<Uint8Array> {
  if (await unixfs.inline(node, window.signal)) { yield * unixfs.read(node, window); return }
  await unixfs.checkWindow(node, window)
  yield * read(node, window)
}
