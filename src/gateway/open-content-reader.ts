import type { IpfsBackend } from '../ipfs/ipfs-backend.ts'
import type { ContentReader } from './content-reader.ts'
import { writeChunks } from './flow-writer.ts'
import { httpGatewayBytes } from './http-gateway-bytes.ts'
import { UnixfsReader } from './unixfs-reader.ts'

/**
 * The gateway's reader over the configured node. Paths are resolved and
 * directories listed from blocks (cached, so a directory is decoded once, not
 * per request); file bytes come from the blocks for the embedded node, and
 * for Kubo from its private HTTP gateway when IPFS_GATEWAY_URL names one,
 * else from its RPC `cat` with an offset and length.
 */
export function openContentReader (backend: IpfsBackend, options: { cacheBytes: number, ipfsGatewayUrl?: string | undefined }): ContentReader {
  const unixfs = new UnixfsReader(backend, { cacheBytes: options.cacheBytes })
  if (backend.kind === 'helia') return unixfs
  const resolve = unixfs.resolve.bind(unixfs)
  const list = unixfs.list.bind(unixfs)
  const forget = unixfs.forget.bind(unixfs)
  const onForget = unixfs.onForget.bind(unixfs)
  if (options.ipfsGatewayUrl !== undefined) {
    const gateway = httpGatewayBytes(options.ipfsGatewayUrl)
    // A small file's block came with its resolution and is cached: Kubo is not asked for it again.
    const writeTo: ContentReader['writeTo'] = async (node, window, out) => { await (unixfs.holds(node) ? unixfs.writeTo(node, window, out) : gateway.writeTo(node, window, out)) }
    return { resolve, list, forget, onForget, read: gateway.read, writeTo }
  }
  const read: ContentReader['read'] = (node, window) => backend.read(node.cid, [], window)
  return { resolve, list, forget, onForget, read, writeTo: async (node, window, out) => { await writeChunks(read(node, window), out, 1024 * 1024) } }
}
