import type { Helia } from '@helia/interface'
import type { HeliaInit } from 'helia'

/**
 * Helia's light node (no libp2p, no routers, no block brokers) without the
 * rest of the `helia` package. Its entry module imports libp2p, bitswap and
 * the HTTP routers at load time even when only `createHeliaLight` is called:
 * ~80 MB of resident memory (measured: 183 MB against 106 MB for the whole
 * service's modules) for code this node never runs. The class lives beside
 * the entry module; the package exports only its entry, so it is reached
 * through the entry's resolved URL. The contract suite runs against it.
 *
 * `helia` is the class's only home: @helia/utils exported it up to 2.x
 * (@helia/interface 6), not in 3.x. The package's libp2p wiring
 * (@helia/libp2p) is replaced by stubs/helia-libp2p, which nothing here loads.
 */
const { Helia: HeliaClass } = await import(new URL('./helia.js', import.meta.resolve('helia')).href) as {
  Helia: new (init: Partial<HeliaInit> & { name: string, version: string }) => Helia
}

export function createLightNode (init: Pick<HeliaInit, 'blockstore' | 'datastore'>): Helia {
  return new HeliaClass({ name: 'heimdall', version: '1', blockBrokers: [], routers: [], ...init })
}
