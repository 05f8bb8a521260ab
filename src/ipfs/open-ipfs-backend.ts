import { join } from 'node:path'
import type { Config } from '../config.ts'
import { HeliaBackend } from './helia-backend.ts'
import { KuboBackend } from './kubo-backend.ts'
import type { IpfsBackend } from './ipfs-backend.ts'

/** Picks the backend the configuration names: Kubo when IPFS_API_URL is set, else the embedded node. */
export async function openIpfsBackend (config: Pick<Config, 'dataDir' | 'ipfsApiUrl'>): Promise<IpfsBackend> {
  if (config.ipfsApiUrl !== undefined) return new KuboBackend(config.ipfsApiUrl)
  return HeliaBackend.open(join(config.dataDir, 'ipfs'))
}
