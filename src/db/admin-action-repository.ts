import type { Knex } from 'knex'

export interface AdminAction {
  id: number
  actor: string
  action: string
  subject: string | null
  details: Record<string, unknown>
  at: Date
}

interface AdminActionRow {
  id: number
  actor: string
  action: string
  subject: string | null
  details: string | Record<string, unknown>
  at: Date | string
}

/** The record of operator commands: who did what to whom, and when. Rows are only ever added. */
export class AdminActionRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  async record (action: { actor: string, action: string, subject?: string, details?: Record<string, unknown> }): Promise<AdminAction> {
    const [row] = await this.#db<AdminActionRow>('admin_actions')
      .insert({ actor: action.actor, action: action.action, subject: action.subject ?? null, details: JSON.stringify(action.details ?? {}) })
      .returning('*')
    if (row === undefined) throw new Error('insert returned no row')
    return toAction(row)
  }

  async latest (limit: number): Promise<AdminAction[]> {
    const rows = await this.#db<AdminActionRow>('admin_actions').orderBy('id', 'desc').limit(limit)
    return rows.map(toAction)
  }
}

function toAction (row: AdminActionRow): AdminAction {
  return {
    id: row.id,
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    details: typeof row.details === 'string' ? JSON.parse(row.details) as Record<string, unknown> : row.details,
    at: new Date(row.at)
  }
}
