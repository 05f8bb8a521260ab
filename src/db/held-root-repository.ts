import type { Knex } from 'knex'

/**
 * Every root the database says the node must keep pinned: what uploads
 * record, what pin requests hold once pinned (and the root a pending
 * replacement replaced), what the operator pinned. Requests still queued or
 * pinning are not among them: they are the pin requests' own work to resume.
 */
export class HeldRootRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  /**
   * The held roots after `after` in text order, at most `limit`, each once
   * (as recorded: either spelling). Each source is read from its index up to
   * `limit` distinct roots past `after` before the union (distinct: a root
   * two uploads share must not take two places of a page and push another
   * past it): PostgreSQL does not push the
   * condition into a UNION, and a page then sorted every upload (1 s a page
   * at a million uploads, measured).
   */
  async page (after: string, limit: number): Promise<string[]> {
    const { rows } = await this.#db.raw<{ rows: Array<{ root_cid: string }> }>(`
      SELECT root_cid FROM (
        (SELECT DISTINCT root_cid FROM uploads WHERE root_cid > :after ORDER BY root_cid LIMIT :limit)
        UNION (SELECT DISTINCT root_cid FROM pin_requests WHERE status = 'pinned' AND root_cid > :after ORDER BY root_cid LIMIT :limit)
        UNION (SELECT DISTINCT replaces_root_cid FROM pin_requests WHERE replaces_root_cid > :after ORDER BY replaces_root_cid LIMIT :limit)
        UNION (SELECT DISTINCT root_cid FROM operator_pins WHERE root_cid > :after ORDER BY root_cid LIMIT :limit)
      ) held ORDER BY root_cid LIMIT :limit`, { after, limit })
    return rows.map((row) => row.root_cid)
  }
}
