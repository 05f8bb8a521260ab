import type { Helia } from '@helia/interface'
import { Key } from 'interface-datastore'
import { base36 } from 'multiformats/bases/base36'
import { CID } from 'multiformats/cid'
import type { PinStore } from './pin-store.ts'

type Datastore = Pick<Helia['datastore'], 'has' | 'put' | 'delete' | 'queryKeys'>

const PREFIX = '/pin/'

/**
 * Helia's record of a recursive pin, byte for byte: CBOR
 * `{ depth: Infinity, metadata: {} }`, as its PinsImpl writes it.
 */
const RECURSIVE = Uint8Array.from([0xa2, 0x65, 0x64, 0x65, 0x70, 0x74, 0x68, 0xf9, 0x7c, 0x00, 0x68, 0x6d, 0x65, 0x74, 0x61, 0x64, 0x61, 0x74, 0x61, 0xa0])

const keyOf = (cid: CID): Key => new Key(`${PREFIX}${(cid.version === 0 ? cid.toV1() : cid).toString(base36)}`)

/**
 * The embedded node's pins: one datastore record per pinned root, in the
 * format and at the keys Helia uses (`/pin/<base36 CIDv1>`), so repos
 * written by earlier versions read the same. Helia also writes a record for
 * every block a pin reaches (`/pinned-block/<multihash>`), read,
 * updated and rewritten one block at a time: six file operations per block
 * on the way to every upload's answer (1,024 for a 1 GiB file, one per file
 * of a bundle). We never ask whether a block is pinned (the collector marks
 * from the roots), so only the roots are recorded; per-block records left
 * by earlier versions are removed by the collector once nothing reaches them.
 */
export class PinRecords implements PinStore {
  readonly #datastore: Datastore

  constructor (datastore: Datastore) {
    this.#datastore = datastore
  }

  async has (cid: CID): Promise<boolean> {
    return this.#datastore.has(keyOf(cid))
  }

  /** Records `cid` as pinned; the caller has checked that its whole DAG is here. */
  async add (cid: CID): Promise<void> {
    await this.#datastore.put(keyOf(cid), RECURSIVE)
  }

  async remove (cid: CID): Promise<void> {
    await this.#datastore.delete(keyOf(cid))
  }

  /** Every pinned root, as a CIDv1 (a CIDv0 pin included). */
  async * list (): AsyncIterable<CID> {
    for await (const key of this.#datastore.queryKeys({ prefix: PREFIX })) {
      yield CID.parse(key.toString().slice(PREFIX.length), base36)
    }
  }
}
