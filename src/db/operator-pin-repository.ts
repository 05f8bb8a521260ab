import type { Knex } from 'knex'

/** Roots an operator pinned without an owner (see the operator_pins migration). */
export class OperatorPinRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  /** Records `rootCid` (its CIDv1 spelling, see rootKey) as pinned by `actor`, with its files and folders; again is a no-op. */
  async add (rootCid: string, actor: string, entries: ReadonlyArray<{ path: string, cid: string }> = []): Promise<void> {
    await this.#db.transaction(async (trx) => {
      const inserted = await trx('operator_pins').insert({ root_cid: rootCid, actor }).onConflict('root_cid').ignore().returning('root_cid')
      if (inserted.length === 0) return
      for (let i = 0; i < entries.length; i += 1000) {
        await trx('operator_pin_entries').insert(entries.slice(i, i + 1000).map((entry) => ({ root_cid: rootCid, path: entry.path, cid: entry.cid }))).onConflict(['root_cid', 'path']).ignore()
      }
    })
  }

  /** Ends the operator's pin of the root (`rootCids`: its spellings) with its entries; how many rows went. */
  async remove (rootCids: readonly string[]): Promise<number> {
    return this.#db('operator_pins').whereIn('root_cid', rootCids).delete()
  }

  /** How many roots the operator pinned. */
  async count (): Promise<number> {
    const result = await this.#db('operator_pins').count<Array<{ count: string | number }>>({ count: '*' })
    return Number(result[0]?.count ?? 0)
  }

  /** How many operator pins hold the root (`rootCids`: its spellings, see rootForms). */
  async countHolding (rootCids: readonly string[]): Promise<number> {
    const result = await this.#db('operator_pins').whereIn('root_cid', rootCids).count<Array<{ count: string | number }>>({ count: '*' })
    return Number(result[0]?.count ?? 0)
  }
}
