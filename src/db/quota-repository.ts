import type { Knex } from 'knex'

export interface Usage {
  bytes: number
  uploads: number
}

/** An identity's own quota; null fields take the configured default. */
export interface QuotaOverride {
  bytes: number | null
  uploads: number | null
}

/** What an identity's uploads take, and the quotas an operator set for it. */
export class QuotaRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  /** Sum of the sizes and number of the identity's uploads: one indexed aggregate. */
  async usage (identityId: number, db: Knex = this.#db): Promise<Usage> {
    const row = await db('uploads').where({ identity_id: identityId })
      .first<{ bytes: string | number | null, uploads: string | number }>(db.raw('COALESCE(SUM(size), 0) AS bytes'), db.raw('COUNT(*) AS uploads'))
    return { bytes: Number(row.bytes ?? 0), uploads: Number(row.uploads) }
  }

  /**
   * Inside an upload's transaction: locks the identity's row, so that two
   * uploads of one identity are recorded one after the other, and measures
   * what its uploads take with that lock held.
   */
  async lockAndMeasure (trx: Knex.Transaction, identityId: number): Promise<Usage> {
    await trx('identities').where({ id: identityId }).forUpdate().first('id')
    return this.usage(identityId, trx)
  }

  async override (identityId: number, db: Knex = this.#db): Promise<QuotaOverride> {
    const row = await db('identities').where({ id: identityId }).first<{ quota_bytes: string | number | null, quota_uploads: number | null } | undefined>('quota_bytes', 'quota_uploads')
    return { bytes: row?.quota_bytes == null ? null : Number(row.quota_bytes), uploads: row?.quota_uploads ?? null }
  }

  /** Sets the identity's own quota (null: back to the default); false if there is no such username. */
  async setOverride (username: string, quota: Partial<QuotaOverride>): Promise<boolean> {
    const changes: Record<string, number | null> = {}
    if (quota.bytes !== undefined) changes.quota_bytes = quota.bytes
    if (quota.uploads !== undefined) changes.quota_uploads = quota.uploads
    if (Object.keys(changes).length === 0) return (await this.#db('identities').where({ username: username.toLowerCase() }).first('id')) !== undefined
    return (await this.#db('identities').where({ username: username.toLowerCase() }).update(changes)) > 0
  }
}
