import type { Knex } from 'knex'
import { CID } from 'multiformats/cid'
import type { PinStore } from '../ipfs/pin-store.ts'
import { advisoryKey } from './advisory-lock.ts'
import { LOCK_WAIT } from './query-deadline.ts'

interface PinRow {
  cid: string
  seq: string
}

const PAGE = 1000

/**
 * Taken shared by every add and exclusively by the collector's reads of
 * `seq`. A sequence hands out numbers before the transactions using them
 * commit, so without it a pin numbered 11 could commit after one numbered 12
 * was read, and a collector that moved its mark to 12 would never see 11.
 * Waiting for adds in flight makes every number at or below the one read
 * visible, and every add after it gets a higher one.
 */
const SEQ_LOCK = advisoryKey('heimdall/ipfs_pins/seq')

const v1 = (cid: CID): string => (cid.version === 0 ? cid.toV1() : cid).toString()

/** The pinned roots shared by every instance (table `ipfs_pins`), as base32 CIDv1. */
export class PgPinStore implements PinStore {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  async has (cid: CID): Promise<boolean> {
    const row = await this.#db<PinRow>('ipfs_pins').where({ cid: v1(cid) }).first('cid')
    return row !== undefined
  }

  async add (cid: CID): Promise<void> {
    await this.#db.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock_shared(?, ?)', SEQ_LOCK).options(LOCK_WAIT)
      await trx('ipfs_pins').insert({ cid: v1(cid) }).onConflict('cid').ignore()
    })
  }

  async remove (cid: CID): Promise<void> {
    await this.#db('ipfs_pins').where({ cid: v1(cid) }).delete()
  }

  /** Every pinned root, a page of 1,000 at a time in `seq` order (a pin added meanwhile may or may not be listed). */
  async * list (): AsyncIterable<CID> {
    let after = '0'
    for (;;) {
      const rows: PinRow[] = await this.#db<PinRow>('ipfs_pins').where('seq', '>', after).orderBy('seq').limit(PAGE).select('cid', 'seq')
      for (const row of rows) yield CID.parse(row.cid)
      const last = rows.at(-1)
      if (last === undefined || rows.length < PAGE) return
      after = String(last.seq)
    }
  }

  /** The highest `seq` of any pin (0 when there is none); every pin added later has a higher one. */
  async maxSeq (): Promise<bigint> {
    return this.#exclusively(async (trx) => {
      const row = await trx('ipfs_pins').max({ seq: 'seq' }).first() as { seq: string | null } | undefined
      return BigInt(row?.seq ?? 0)
    })
  }

  /**
   * Pins added after `seq` that are still pinned, in order, and the mark to
   * ask from next time (the last one's `seq`, or `seq` itself when there is
   * none). `limit` bounds one answer; without it every such pin is returned.
   * `within`: a transaction of the caller's to read in (the collector's sweep
   * batch, which must not wait for a second connection while it holds the
   * lock that registrations queue behind); the seq lock is then held until
   * that transaction ends.
   */
  async addedSince (seq: bigint | number, limit?: number, within?: Knex.Transaction): Promise<{ seq: bigint, cids: CID[] }> {
    return this.#exclusively(async (trx) => {
      const query = trx<PinRow>('ipfs_pins').where('seq', '>', String(seq)).orderBy('seq').select('cid', 'seq')
      if (limit !== undefined) void query.limit(limit)
      const rows: PinRow[] = await query
      const last = rows.at(-1)
      return { seq: last === undefined ? BigInt(seq) : BigInt(last.seq), cids: rows.map((row) => CID.parse(row.cid)) }
    }, within)
  }

  async #exclusively<T> (read: (trx: Knex.Transaction) => Promise<T>, within?: Knex.Transaction): Promise<T> {
    return (within ?? this.#db).transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?, ?)', SEQ_LOCK).options(LOCK_WAIT)
      return read(trx)
    })
  }
}
