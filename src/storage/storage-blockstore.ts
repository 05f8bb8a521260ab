import { BaseBlockstore } from 'blockstore-core/base'
import type { CID } from 'multiformats/cid'
import { NotFoundError } from '../errors.ts'
import { blockKey } from '../ipfs/block-collector.ts'
import type { BlockStorage } from './block-storage.ts'

interface AbortOptions { signal?: AbortSignal }

/**
 * A BlockStorage as the blockstore Helia reads through (UnixFS stat, cat and
 * ls; the pin walk). `held` answers `has` for blocks known to be in the store
 * without asking it: those a live import lease of this process wrote, which
 * no collection can take while the lease's row lives (see
 * SharedBlockCollector.holds and importedKeys). A pin walk of a 1 GiB
 * upload would otherwise send a HEAD per leaf.
 */
export class StorageBlockstore extends BaseBlockstore {
  readonly #storage: BlockStorage
  readonly #held: (cid: CID) => boolean

  constructor (storage: BlockStorage, held: (cid: CID) => boolean = () => false) {
    super()
    this.#storage = storage
    this.#held = held
  }

  override async has (cid: CID, options?: AbortOptions): Promise<boolean> {
    options?.signal?.throwIfAborted()
    return this.#held(cid) || this.#storage.has(cid)
  }

  override async put (cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: AbortOptions): Promise<CID> {
    options?.signal?.throwIfAborted()
    if (!(bytes instanceof Uint8Array)) throw new TypeError('blocks are put whole here')
    await this.#storage.put(cid, bytes)
    return cid
  }

  override async * get (cid: CID, options?: AbortOptions): AsyncGenerator<Uint8Array> {
    options?.signal?.throwIfAborted()
    const bytes = await this.#storage.get(cid)
    if (bytes === undefined) throw new NotFoundError(`block ${cid.toString()} not found on this node`)
    yield bytes
  }

  override async delete (cid: CID): Promise<void> {
    await this.#storage.delete([blockKey(cid)])
  }
}
