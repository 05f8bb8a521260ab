import type { Knex } from 'knex'
import { runStatement, Statement } from './prepared-statements.ts'

export interface Usage {
  bytes: number
  uploads: number
}

/** An identity's own quota; null fields take the configured default. */
export interface QuotaOverride {
  bytes: number | null
  uploads: number | null
}

/** Identity $1's usage (see measure) and own quota. */
const MEASURE = new Statement(`select quota_bytes, quota_uploads, usage.used_bytes as bytes, usage.used_uploads as uploads
  from identities, heimdall_identity_usage(identities.id, null) usage where identities.id = $1 limit 1`)

interface MeasureRow { bytes: string | number, uploads: string | number, quota_bytes: string | number | null, quota_uploads: number | null }

/** What an identity's uploads and pins take, and the quotas an operator set for it. */
export class QuotaRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  /**
   * What the identity's uploads and pinned pin requests take (a request
   * counts as an upload of its DAG's bytes: heimdall_identity_usage, what
   * the database's quota checks count), and its own quota, in one query.
   */
  async measure (identityId: number): Promise<{ usage: Usage, override: QuotaOverride }> {
    const [row] = await runStatement<MeasureRow>(this.#db, MEASURE, [identityId])
    return {
      usage: { bytes: Number(row?.bytes ?? 0), uploads: Number(row?.uploads ?? 0) },
      override: { bytes: row?.quota_bytes == null ? null : Number(row.quota_bytes), uploads: row?.quota_uploads ?? null }
    }
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
