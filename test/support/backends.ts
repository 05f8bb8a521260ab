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
        // As in docker-compose.yml: file bytes through Kubo's private gateway.
        return { env: { IPFS_API_URL: kubo.apiUrl, IPFS_GATEWAY_URL: kubo.gatewayUrl }, stop: kubo.stop }
      }
    }
  ]
}
