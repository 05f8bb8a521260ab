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

  /** The held roots after `after` in text order, at most `limit`, each once (as recorded: either spelling). */
  async page (after: string, limit: number): Promise<string[]> {
    const { rows } = await this.#db.raw<{ rows: Array<{ root_cid: string }> }>(`
      SELECT root_cid FROM (
        SELECT root_cid FROM uploads
        UNION SELECT root_cid FROM pin_requests WHERE status = 'pinned'
        UNION SELECT replaces_root_cid FROM pin_requests WHERE replaces_root_cid IS NOT NULL
        UNION SELECT root_cid FROM operator_pins
      ) held WHERE root_cid > :after ORDER BY root_cid LIMIT :limit`, { after, limit })
    return rows.map((row) => row.root_cid)
  }
}
