import type { Knex } from 'knex'

/** Roots an operator pinned without an owner (see the operator_pins migration). */
export class OperatorPinRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  /** Records `rootCid` (its CIDv1 spelling, see rootKey) as pinned by `actor`; again is a no-op. */
  async add (rootCid: string, actor: string): Promise<void> {
    await this.#db('operator_pins').insert({ root_cid: rootCid, actor }).onConflict('root_cid').ignore()
  }

  /** How many operator pins hold the root (`rootCids`: its spellings, see rootForms). */
  async countHolding (rootCids: readonly string[]): Promise<number> {
    const result = await this.#db('operator_pins').whereIn('root_cid', rootCids).count<Array<{ count: string | number }>>({ count: '*' })
    return Number(result[0]?.count ?? 0)
  }
}
