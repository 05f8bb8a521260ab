import { join } from 'node:path'
import { inject } from 'vitest'
import { KUBO_VERSION, startKubo } from './kubo.ts'

export interface AppBackend {
  name: string
  available: boolean
  /** Starts what the app needs and returns the env that points it there. */
  start: () => Promise<{ env: Record<string, string>, stop: () => Promise<void> }>
}

/** The IPFS backends an app can run on: the embedded node, and a real Kubo when the suite could build one. */
export function appBackends (): AppBackend[] {
  return [
    { name: 'the embedded node', available: true, start: async () => Promise.resolve({ env: {}, stop: async () => {} }) },
    {
      name: `Kubo ${KUBO_VERSION}`,
      available: inject('kuboBin') !== '',
      start: async () => {
        const kubo = await startKubo(inject('kuboBin'))
        // As in docker-compose.yml: blocks from Kubo's flatfs files, its private gateway as the other way to file bytes.
        return { env: { IPFS_API_URL: kubo.apiUrl, IPFS_GATEWAY_URL: kubo.gatewayUrl, IPFS_BLOCKS_DIR: join(kubo.repo, 'blocks') }, stop: kubo.stop }
      }
    }
  ]
}
