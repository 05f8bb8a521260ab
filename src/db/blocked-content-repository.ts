import type { Knex } from 'knex'
import { isDagPb, multihashKey, rootForms, rootKey } from '../ipfs/cid-forms.ts'
import { HOLDING_STATUSES } from './pin-request-repository.ts'

/** A root some upload or pin request holds, with the files and folders inside it that uploads recorded. */
export interface HeldContent {
  rootCid: string
  /** Relative paths and their CIDs; empty for a pin request's content (nothing recorded inside). */
  entries: Array<{ path: string, cid: string }>
}


/** The roots denylists took down (see the blocked_roots migration), and what is held that they are checked against. */
export class BlockedContentRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  /** Records `rootCid` as blocked; blocking it again keeps the first record. */
  async block (rootCid: string, by: { rule: string, list: string }): Promise<void> {
    await this.#db.transaction(async (trx) => {
      await trx('blocked_roots').insert({ root_cid: rootCid, rule: by.rule, list: by.list }).onConflict('root_cid').ignore()
      // An operator's pin of it ends with the take-down: a later upload that lifts it, deleted, must not leave it held.
      await trx('operator_pins').whereIn('root_cid', rootForms(rootCid)).delete()
    })
  }

  /** Pin requests of the root (`rootCids`: its spellings, see rootForms) still queued, pinning or pinned become `failed`, with `details` as their status details. */
  async failPinRequests (rootCids: readonly string[], details: string): Promise<number> {
    return this.#db('pin_requests').whereIn('root_cid', rootCids).whereIn('status', HOLDING_STATUSES)
      .update({ status: 'failed', status_details: details, updated_at: this.#db.fn.now() })
  }

  /** Whether the root (`rootCids`: its spellings, see rootForms) was taken down. */
  async isBlocked (rootCids: readonly string[]): Promise<boolean> {
    return await this.#db('blocked_roots').whereIn('root_cid', rootCids).first('root_cid') !== undefined
  }

  /** Which of `rootCids` are blocked. */
  async blockedAmong (rootCids: readonly string[]): Promise<Set<string>> {
    if (rootCids.length === 0) return new Set()
    const rows = await this.#db<{ root_cid: string }>('blocked_roots').whereIn('root_cid', [...new Set(rootCids)]).select('root_cid')
    return new Set(rows.map((row) => row.root_cid))
  }

  /**
   * The CIDs (roots, and the files and folders uploads recorded in them) that
   * only disabled identities hold: not served while they stay disabled. One
   * cheap query when no identity is disabled.
   */
  async heldOnlyByDisabled (): Promise<string[]> {
    const disabled = await this.#db('identities').whereNotNull('disabled_at').first<{ id: number } | undefined>('id')
    if (disabled === undefined) return []
    const holders = `
        SELECT root_cid, identity_id FROM uploads
        UNION ALL
        SELECT root_cid, identity_id FROM pin_requests WHERE status = ANY(:holding)
        UNION ALL
        -- What a pending replacement still holds counts as its owner's, as it does for take-downs.
        SELECT replaces_root_cid, identity_id FROM pin_requests WHERE replaces_root_cid IS NOT NULL
        UNION ALL
        -- The operator's own pins belong to no identity: what they hold is never suspended.
        SELECT root_cid, NULL FROM operator_pins`
    // The roots some disabled identity holds, then every holder of any spelling of them (a CIDv0 and its CIDv1 are one
    // root, recorded under either), decided per root: suspended when every holder is a disabled identity.
    const { rows: candidates } = await this.#db.raw<{ rows: Array<{ root_cid: string }> }>(`
      SELECT DISTINCT h.root_cid FROM (${holders}) h JOIN identities i ON i.id = h.identity_id WHERE i.disabled_at IS NOT NULL`, { holding: [...HOLDING_STATUSES] })
    if (candidates.length === 0) return []
    const spellings = [...new Set(candidates.flatMap((row) => rootForms(row.root_cid)))]
    const { rows } = await this.#db.raw<{ rows: Array<{ root_cid: string, disabled: boolean }> }>(`
      SELECT h.root_cid, i.disabled_at IS NOT NULL AS disabled FROM (${holders}) h LEFT JOIN identities i ON i.id = h.identity_id
      WHERE h.root_cid = ANY(:spellings)`, { holding: [...HOLDING_STATUSES], spellings })
    const byRoot = new Map<string, { spellings: Set<string>, allDisabled: boolean }>()
    for (const row of rows) {
      const key = rootKey(row.root_cid)
      const root = byRoot.get(key) ?? { spellings: new Set<string>(), allDisabled: true }
      root.spellings.add(row.root_cid)
      root.allDisabled &&= row.disabled
      byRoot.set(key, root)
    }
    const suspended = [...byRoot.values()].filter((root) => root.allDisabled).flatMap((root) => [...root.spellings])
    if (suspended.length === 0) return []
    // Their files and folders, but what an enabled identity or the operator also holds under the same spelling (a file
    // both uploaded, a folder that is someone's whole upload) stays served: filtered in the database, on indexes.
    const { rows: entries } = await this.#db.raw<{ rows: Array<{ cid: string }> }>(`
      SELECT DISTINCT e.cid FROM upload_entries e JOIN uploads u ON u.id = e.upload_id
      WHERE u.root_cid = ANY(:suspended)
        AND NOT EXISTS (SELECT 1 FROM upload_entries e2 JOIN uploads u2 ON u2.id = e2.upload_id JOIN identities i2 ON i2.id = u2.identity_id WHERE e2.cid = e.cid AND i2.disabled_at IS NULL)
        AND NOT EXISTS (SELECT 1 FROM operator_pin_entries o WHERE o.cid = e.cid)`, { suspended })
    // Roots, and folders (dag-pb, which have a CIDv0 spelling too), are also looked up as anyone's root under every
    // spelling: few of them, unlike files.
    const spelled = [...suspended, ...entries.map((row) => row.cid).filter(isDagPb)]
    const forms = [...new Set(spelled.flatMap((cid) => rootForms(cid)))]
    const { rows: kept } = await this.#db.raw<{ rows: Array<{ cid: string }> }>(`
      SELECT u.root_cid AS cid FROM uploads u JOIN identities i ON i.id = u.identity_id WHERE i.disabled_at IS NULL AND u.root_cid = ANY(:forms)
      UNION SELECT p.root_cid FROM pin_requests p JOIN identities i ON i.id = p.identity_id WHERE i.disabled_at IS NULL AND p.status = ANY(:holding) AND p.root_cid = ANY(:forms)
      UNION SELECT o.root_cid FROM operator_pins o WHERE o.root_cid = ANY(:forms)
      UNION SELECT e.cid FROM upload_entries e JOIN uploads u ON u.id = e.upload_id JOIN identities i ON i.id = u.identity_id WHERE i.disabled_at IS NULL AND e.cid = ANY(:forms)
      UNION SELECT o.cid FROM operator_pin_entries o WHERE o.cid = ANY(:forms)`, { forms, holding: [...HOLDING_STATUSES] })
    const refused = [...new Set([...suspended, ...entries.map((row) => row.cid)])]
    if (kept.length === 0) return refused
    const keptKeys = new Set(kept.map((row) => multihashKey(row.cid)))
    return refused.filter((cid) => !keptKeys.has(multihashKey(cid)))
  }

  /** Every blocked root, a batch at a time. */
  async * blockedRoots (batch = 500): AsyncIterable<string> {
    let after = ''
    for (;;) {
      const rows = await this.#db<{ root_cid: string }>('blocked_roots').where('root_cid', '>', after).orderBy('root_cid').limit(batch).select('root_cid')
      for (const row of rows) yield row.root_cid
      if (rows.length < batch) return
      after = rows.at(-1)?.root_cid ?? after
    }
  }

  async count (): Promise<number> {
    const row = await this.#db('blocked_roots').count<{ count: string | number }>('* as count').first()
    return Number(row?.count ?? 0)
  }

  /**
   * Every root held and not yet blocked, with the entries its uploads
   * recorded, a batch of roots at a time (keyset paging on the root CID), so
   * that a sweep over a large store holds one batch in memory.
   */
  async * held (batch = 200): AsyncIterable<HeldContent> {
    let after = ''
    for (;;) {
      // Each source read from its index past the cursor before the union: PostgreSQL does not push the condition into
      // a UNION, and every page then sorted every held root (seconds a page at a million uploads). Taken-down roots are
      // left out inside each source, so that a full page means more may follow.
      const unblocked = (column: string): string => `${column} > :after AND NOT EXISTS (SELECT 1 FROM blocked_roots b WHERE b.root_cid = ${column})`
      const { rows: roots } = await this.#db.raw<{ rows: Array<{ root_cid: string }> }>(`
        SELECT root_cid FROM (
          (SELECT DISTINCT root_cid FROM uploads WHERE ${unblocked('uploads.root_cid')} ORDER BY root_cid LIMIT :batch)
          UNION
          (SELECT DISTINCT root_cid FROM pin_requests WHERE status = ANY(:holding) AND ${unblocked('pin_requests.root_cid')} ORDER BY root_cid LIMIT :batch)
          UNION
          -- The root a pending replacement still holds (countHolding counts it): checked like any held root.
          (SELECT DISTINCT replaces_root_cid FROM pin_requests WHERE ${unblocked('pin_requests.replaces_root_cid')} ORDER BY replaces_root_cid LIMIT :batch)
          UNION
          (SELECT DISTINCT root_cid FROM operator_pins WHERE ${unblocked('operator_pins.root_cid')} ORDER BY root_cid LIMIT :batch)
        ) AS held
        ORDER BY root_cid
        LIMIT :batch`, { holding: [...HOLDING_STATUSES], after, batch })
      if (roots.length === 0) return
      const rootCids = roots.map((row) => row.root_cid)
      const { rows: entries } = await this.#db.raw<{ rows: Array<{ root_cid: string, path: string, cid: string }> }>(`
        SELECT DISTINCT u.root_cid, e.path, e.cid FROM upload_entries e JOIN uploads u ON u.id = e.upload_id WHERE u.root_cid = ANY(?)
        UNION
        SELECT o.root_cid, o.path, o.cid FROM operator_pin_entries o WHERE o.root_cid = ANY(?)`, [rootCids, rootCids])
      const byRoot = new Map<string, HeldContent>(rootCids.map((rootCid) => [rootCid, { rootCid, entries: [] }]))
      for (const entry of entries) byRoot.get(entry.root_cid)?.entries.push({ path: entry.path, cid: entry.cid })
      yield * byRoot.values()
      after = rootCids.at(-1) ?? after
      if (roots.length < batch) return
    }
  }
}
