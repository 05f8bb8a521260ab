// The types @helia/bitswap and @helia/verified-fetch name from @helia/libp2p,
// as the real package declares them (less its default service map).
import type { Helia } from '@helia/interface'
import type { Libp2p, ServiceMap } from '@libp2p/interface'
import type { Libp2pOptions } from 'libp2p'

export type DefaultLibp2pServices = ServiceMap

export interface CreateLibp2pOptions<T extends ServiceMap = ServiceMap> extends Libp2pOptions<T> {
  config?: 'merge' | 'replace'
}

export interface HeliaWithLibp2p<M extends ServiceMap = DefaultLibp2pServices> extends Helia {
  libp2p: Libp2p<M>
}

/** Throws: not available in Heimdall. */
export declare function libp2pDefaults (): Libp2pOptions<DefaultLibp2pServices>
/** Throws: not available in Heimdall. */
export declare function withLibp2p<H extends Helia, M extends ServiceMap = ServiceMap> (helia: H, opts?: CreateLibp2pOptions<M>): H & HeliaWithLibp2p<DefaultLibp2pServices & M>
/** Throws: not available in Heimdall. */
export declare function withLibp2pLight<H extends Helia, M extends ServiceMap = ServiceMap> (helia: H, opts: CreateLibp2pOptions<M>): H & HeliaWithLibp2p<M>
