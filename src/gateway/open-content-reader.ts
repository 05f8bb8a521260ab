import type { IpfsBackend } from '../ipfs/ipfs-backend.ts'
import type { ContentReader } from './content-reader.ts'
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
  const read = options.ipfsGatewayUrl !== undefined
    ? httpGatewayBytes(options.ipfsGatewayUrl)
    : (node: Parameters<ContentReader['read']>[0], window: Parameters<ContentReader['read']>[1]) => backend.read(node.cid, [], window)
  return {
    resolve: unixfs.resolve.bind(unixfs),
    list: unixfs.list.bind(unixfs),
    read
  }
}
