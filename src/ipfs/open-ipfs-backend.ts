import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import { HeliaBackend, type SharedStore } from './helia-backend.ts'
import type { IpfsBackend } from './ipfs-backend.ts'

/** IPFS_TIMEOUT_SECONDS as the Kubo backend's bounds: how long a read, and a pin, may wait on Kubo without a word. */
export function kuboBounds (config: Partial<Pick<Config, 'ipfsTimeoutSeconds'>>): { readIdleMs?: number, pinIdleMs?: number } {
  if (config.ipfsTimeoutSeconds === undefined) return {}
  const ms = config.ipfsTimeoutSeconds * 1000
  return { readIdleMs: ms, pinIdleMs: ms }
}

/**
 * Picks the backend the configuration names: Kubo when IPFS_API_URL is set,
 * else the embedded node, on the IPFS network as IPFS_NETWORK says (with
 * the peer key, when given), its blocks in `shared` when given (BLOCKSTORE=s3).
 */
export async function openIpfsBackend (config: Pick<Config, 'dataDir' | 'ipfsApiUrl'> & Partial<Pick<Config, 'network' | 'ipfsTimeoutSeconds'>>, options: { privateKey?: Uint8Array, logger?: Logger, shared?: SharedStore } = {}): Promise<IpfsBackend> {
  if (config.ipfsApiUrl !== undefined) {
    // Loaded only when used: Kubo's RPC client is ~16 MB of resident memory the embedded node never needs.
    const { KuboBackend } = await import('./kubo-backend.ts')
    const kubo = new KuboBackend(config.ipfsApiUrl, kuboBounds(config))
    // Online, Kubo fetches what pin requests ask for; an unreachable or offline Kubo only pins what it holds.
    await kubo.joinNetwork().catch((err: unknown) => { options.logger?.warn({ err }, 'could not ask Kubo whether it is on the IPFS network: pin requests will only pin content it already holds') })
    return kubo
  }
  const { network } = config
  const { privateKey, logger } = options
  const joins = network !== undefined && network.mode !== 'off' && privateKey !== undefined && logger !== undefined
  return HeliaBackend.open(join(config.dataDir, 'ipfs'), { ...(joins ? { network: { config: network, privateKey, logger } } : {}), ...(options.shared === undefined ? {} : { shared: options.shared }) })
}
