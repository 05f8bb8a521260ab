import { advisoryKey } from './advisory-lock.ts'
import type { Knex } from 'knex'
import { isUniqueViolation } from './database.ts'
import { LOCK_WAIT } from './query-deadline.ts'

export const PIN_STATUSES = ['queued', 'pinning', 'pinned', 'failed'] as const
export type PinStatus = (typeof PIN_STATUSES)[number]
/** Statuses whose request still holds (or will hold) its content: such a request keeps the root pinned. */
export const HOLDING_STATUSES: readonly PinStatus[] = ['queued', 'pinning', 'pinned']
export const TEXT_MATCHES = ['exact', 'iexact', 'partial', 'ipartial'] as const
export type TextMatch = (typeof TEXT_MATCHES)[number]

export interface NewPinRequest {
  requestId: string
  identityId: number
  /** As the client sent it. */
  cid: string
  /** Normalized: what pins and uploads compare. */
  rootCid: string
  name: string | null
  origins: string[]
  meta: Record<string, string>
  /** A replacement's old root, kept pinned while this request is queued or pinning. */
  replacesRootCid?: string | null
  /** The request a replacement replaces: not counted in the owner's quota beside it (it goes once the replacement is made). */
  replacesRequestId?: string | null
}

export interface PinRequest extends NewPinRequest {
  id: number
  status: PinStatus
  statusDetails: string | null
  created: Date
}

export interface PinRequestFilter {
  rootCids?: string[]
  name?: { value: string, match: TextMatch }
  statuses: PinStatus[]
  /** RFC 3339 timestamps, compared by PostgreSQL at its own precision. */
  before?: string
  after?: string
  meta?: Record<string, string>
}

interface PinRequestRow {
  id: number
  request_id: string
  identity_id: number
  cid: string
  root_cid: string
  name: string | null
  origins: string | string[]
  meta: string | Record<string, string>
  status: PinStatus
  status_details: string | null
  created: Date | string
  replaces_root_cid: string | null
  replaces_request_id: string | null
}

const parsed = <T>(value: string | T): T => (typeof value === 'string' ? JSON.parse(value) as T : value)

/** An owner's usage and quota, as the quota functions answer them (bigints as text). */
interface QuotaRow { used_bytes: string | null, used_uploads: string | null, quota_bytes: string | null, quota_uploads: string | null }
type QuotaFigures = { usage: { bytes: number, uploads: number }, quota: { bytes: number, uploads: number } }
const quotaFigures = (row: QuotaRow): QuotaFigures => ({ usage: { bytes: Number(row.used_bytes), uploads: Number(row.used_uploads) }, quota: { bytes: Number(row.quota_bytes), uploads: Number(row.quota_uploads) } })

const toPinRequest = (row: PinRequestRow): PinRequest => ({
  id: row.id,
  requestId: row.request_id,
  identityId: row.identity_id,
  cid: row.cid,
  rootCid: row.root_cid,
  name: row.name,
  origins: parsed(row.origins),
  meta: parsed(row.meta),
  status: row.status,
  statusDetails: row.status_details,
  created: new Date(row.created),
  replacesRootCid: row.replaces_root_cid ?? null,
  replacesRequestId: row.replaces_request_id ?? null
})

/** `%`, `_` and `\` matched as themselves in LIKE. */
const likeEscaped = (text: string): string => text.replace(/[\\%_]/g, (c) => `\\${c}`)

/** The Pinning Service API's pin requests (see the pin_requests migration). */
export class PinRequestRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  /**
   * Inserts a request `queued`, its `created` the clock's millisecond or one
   * past the owner's newest, whichever is later: unique per owner, so
   * `before` pages without skipping or repeating. Two inserts racing for one
   * millisecond meet the unique index; the loser takes the next. With
   * `maxPending`, nothing is inserted (undefined) when the owner already has
   * that many queued or pinning: counted and inserted under a transaction
   * lock per owner, so requests sent at once cannot all pass one count (60
   * at once all passed a cap of 5: found by review).
   */
  async insert (request: NewPinRequest, maxPending?: number): Promise<PinRequest | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#db.transaction(async (trx) => {
          if (maxPending !== undefined) {
            await trx.raw('select pg_advisory_xact_lock(?, ?)', advisoryKey(`heimdall:pin-requests:${request.identityId}`)).options(LOCK_WAIT)
            const [counted] = await trx('pin_requests').where({ identity_id: request.identityId }).whereIn('status', ['queued', 'pinning']).count<Array<{ count: string | number }>>('* as count')
            if (Number(counted?.count ?? 0) >= maxPending) return undefined
          }
          const { rows } = await trx.raw<{ rows: PinRequestRow[] }>(`
          insert into pin_requests (request_id, identity_id, cid, root_cid, name, origins, meta, status, replaces_root_cid, replaces_request_id, created)
          values (?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, 'queued', ?, ?, greatest(
            date_trunc('milliseconds', clock_timestamp()),
            (select max(created) + interval '1 millisecond' from pin_requests where identity_id = ?)))
          returning *`, [request.requestId, request.identityId, request.cid, request.rootCid, request.name, JSON.stringify(request.origins), JSON.stringify(request.meta), request.replacesRootCid ?? null, request.replacesRequestId ?? null, request.identityId])
          const [row] = rows
          if (row === undefined) throw new Error('insert returned no row')
          return toPinRequest(row)
        })
      } catch (err) {
        if (!isUniqueViolation(err) || attempt >= 20) throw err
      }
    }
  }

  async findOwned (identityId: number, requestId: string): Promise<PinRequest | undefined> {
    const row = await this.#db<PinRequestRow>('pin_requests').where({ identity_id: identityId, request_id: requestId }).first()
    return row === undefined ? undefined : toPinRequest(row)
  }

  async findByRequestId (requestId: string): Promise<PinRequest | undefined> {
    const row = await this.#db<PinRequestRow>('pin_requests').where({ request_id: requestId }).first()
    return row === undefined ? undefined : toPinRequest(row)
  }

  /** Moves a request on, only from one of `from`: a request deleted or settled meanwhile is left alone (false). */
  async setStatus (requestId: string, from: readonly PinStatus[], status: PinStatus, details: string | null = null): Promise<boolean> {
    const changed = await this.#db('pin_requests')
      .where({ request_id: requestId })
      .whereIn('status', from)
      .update({ status, status_details: details, updated_at: this.#db.fn.now() })
    return changed > 0
  }

  /**
   * Marks a queued or pinning request pinned, holding `size` bytes, if that
   * fits its owner's quota beside their uploads and other pinned requests
   * (`defaults` for an owner without their own), the owner's row locked
   * meanwhile as an upload's record locks it. 'gone': no longer pending.
   */
  async pinWithinQuota (requestId: string, size: number, details: string | null, defaults: { bytes: number, uploads: number }): Promise<{ outcome: 'pinned' | 'gone' } | ({ outcome: 'over_quota' } & QuotaFigures)> {
    const result = await this.#db.raw<{ rows: Array<{ outcome: 'pinned' | 'gone' | 'over_quota' } & QuotaRow> }>(
      'select * from heimdall_pin_within_quota(?, ?, ?, ?, ?)', [requestId, size, details, defaults.bytes, defaults.uploads])
    const row = result.rows[0]
    if (row === undefined) throw new Error('heimdall_pin_within_quota answered nothing')
    return row.outcome === 'over_quota' ? { outcome: 'over_quota', ...quotaFigures(row) } : { outcome: row.outcome }
  }

  /** What a pending request's owner has used and may use, the request it replaces left out; undefined once it is not pending. */
  async quotaUsage (requestId: string, defaults: { bytes: number, uploads: number }): Promise<QuotaFigures | undefined> {
    const result = await this.#db.raw<{ rows: QuotaRow[] }>('select * from heimdall_pin_quota_usage(?, ?, ?)', [requestId, defaults.bytes, defaults.uploads])
    const row = result.rows[0]
    return row === undefined ? undefined : quotaFigures(row)
  }

  async deleteOwned (identityId: number, requestId: string): Promise<boolean> {
    return (await this.#db('pin_requests').where({ identity_id: identityId, request_id: requestId }).delete()) > 0
  }

  /** The owner's requests matching `filter`, newest first, and how many match in all. */
  async list (identityId: number, filter: PinRequestFilter, limit: number): Promise<{ results: PinRequest[], count: number }> {
    const [rows, counted] = await Promise.all([
      this.#filtered(identityId, filter).orderBy('created', 'desc').limit(limit),
      this.#filtered(identityId, filter).count<Array<{ count: string | number }>>({ count: '*' })
    ])
    return { results: rows.map(toPinRequest), count: Number(counted[0]?.count ?? 0) }
  }

  /**
   * How many requests, of anyone, hold the root (`rootCids`: its spellings,
   * see rootForms): theirs (queued, pinning or pinned), or the root a
   * pending replacement replaced. Content is unpinned only when this and
   * the uploads are at zero.
   */
  async countHolding (rootCids: readonly string[]): Promise<number> {
    const result = await this.#db('pin_requests')
      .where((q) => { void q.whereIn('root_cid', rootCids).whereIn('status', HOLDING_STATUSES) })
      .orWhere((q) => { void q.whereIn('replaces_root_cid', rootCids) })
      .count<Array<{ count: string | number }>>({ count: '*' })
    return Number(result[0]?.count ?? 0)
  }

  /** The replaced roots held by requests that have settled or are gone: each once, to be released. */
  async settledReplacements (): Promise<Array<{ requestId: string, rootCid: string }>> {
    const rows = await this.#db<PinRequestRow>('pin_requests').whereNotNull('replaces_root_cid').whereIn('status', ['pinned', 'failed']).select('request_id', 'replaces_root_cid')
    return rows.map((row) => ({ requestId: row.request_id, rootCid: row.replaces_root_cid ?? '' }))
  }

  /** Stops `requestId` holding the root it replaced (once released, or never needed). */
  async clearReplaced (requestId: string): Promise<void> {
    await this.#db('pin_requests').where({ request_id: requestId }).update({ replaces_root_cid: null })
  }

  /** Requests not yet settled (queued or pinning), oldest first: the work a start resumes. */
  async pending (): Promise<PinRequest[]> {
    const rows = await this.#db<PinRequestRow>('pin_requests').whereIn('status', ['queued', 'pinning']).orderBy('created')
    return rows.map(toPinRequest)
  }

  #filtered (identityId: number, filter: PinRequestFilter): Knex.QueryBuilder<PinRequestRow, PinRequestRow[]> {
    const query = this.#db<PinRequestRow>('pin_requests').where({ identity_id: identityId }).whereIn('status', filter.statuses)
    if (filter.rootCids !== undefined) query.whereIn('root_cid', filter.rootCids)
    if (filter.before !== undefined) query.whereRaw('created < ?::timestamptz', [filter.before])
    if (filter.after !== undefined) query.whereRaw('created > ?::timestamptz', [filter.after])
    if (filter.meta !== undefined && Object.keys(filter.meta).length > 0) query.whereRaw('meta @> ?::jsonb', [JSON.stringify(filter.meta)])
    if (filter.name !== undefined) {
      const { value, match } = filter.name
      switch (match) {
        case 'exact': query.where('name', value); break
        case 'iexact': query.whereRaw('lower(name) = lower(?)', [value]); break
        case 'partial': query.whereLike('name', `%${likeEscaped(value)}%`); break
        case 'ipartial': query.whereILike('name', `%${likeEscaped(value)}%`); break
      }
    }
    return query
  }
}
