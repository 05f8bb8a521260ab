import type { CID } from 'multiformats/cid'

/**
 * The set of pinned roots. One instance keeps it in its datastore
 * (PinRecords); instances sharing a block store keep it in PostgreSQL
 * (PgPinStore), so that a pin made through one is seen by every collector.
 * A pin is a root only: the collector marks what it reaches.
 */
export interface PinStore {
  has: (cid: CID) => Promise<boolean>
  /** Records `cid` as pinned (a CIDv0 as its CIDv1); pinning a pinned root again changes nothing. The caller has checked that its whole DAG is stored. */
  add: (cid: CID) => Promise<void>
  /** Forgets the pin; removing a root that is not pinned changes nothing. */
  remove: (cid: CID) => Promise<void>
  /** Every pinned root, as a CIDv1 (a CIDv0 pin included). */
  list: () => AsyncIterable<CID>
}
