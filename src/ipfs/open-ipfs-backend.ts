import { join } from 'node:path'
import { ConfigError, type Config } from '../config.ts'
import { HeliaBackend } from './helia-backend.ts'
import type { IpfsBackend } from './ipfs-backend.ts'

/** Picks the backend the configuration names: Kubo when IPFS_API_URL is set, else the embedded node. */
export async function openIpfsBackend (config: Pick<Config, 'dataDir' | 'ipfsApiUrl'>): Promise<IpfsBackend> {
  if (config.ipfsApiUrl !== undefined) {
    throw new ConfigError(['IPFS_API_URL: the Kubo backend is not part of this version yet; unset it to use the embedded node'])
  }
  return HeliaBackend.open(join(config.dataDir, 'ipfs'))
}
