import type { Knex } from 'knex'
import { ConflictError } from '../errors.ts'
import { isUniqueViolation } from './database.ts'
import { runStatement, Statement } from './prepared-statements.ts'

export interface Identity {
  id: number
  username: string
  tokenHash: string
  createdAt: Date
  /** Set by the operator (npm run admin -- disable): no sign-in, content only it holds not served. */
  disabledAt: Date | null
}

export interface IdentityRow {
  id: number
  username: string
  token_hash: string
  created_at: Date | string
  disabled_at?: Date | string | null
}

/** The columns toIdentity reads, for queries that join identities to something else. */
export const IDENTITY_COLUMNS = ['identities.id', 'identities.username', 'identities.token_hash', 'identities.created_at', 'identities.disabled_at'] as const

/** The identity whose token hashes to $1: every request with a token asks this. */
const BY_TOKEN_HASH = new Statement(`select ${IDENTITY_COLUMNS.join(', ')} from identities where token_hash = $1 limit 1`)

export const toIdentity = (row: IdentityRow): Identity => ({
  id: row.id,
  username: row.username,
  tokenHash: row.token_hash,
  createdAt: new Date(row.created_at),
  disabledAt: row.disabled_at == null ? null : new Date(row.disabled_at)
})

/** An identity as the operator's list shows it. */
export interface IdentitySummary extends Identity {
  uploads: number
  bytes: number
}

export class IdentityRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  /** Inserts a new identity; a taken username is a ConflictError, decided by the unique index. */
  async create (username: string, tokenHash: string): Promise<Identity> {
    try {
      const [row] = await this.#db<IdentityRow>('identities')
        .insert({ username: username.toLowerCase(), token_hash: tokenHash })
        .returning('*')
      if (row === undefined) throw new Error('insert returned no row')
      return toIdentity(row)
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`the username "${username}" is taken`)
      throw err
    }
  }

  async findByUsername (username: string): Promise<Identity | undefined> {
    const row = await this.#db<IdentityRow>('identities').where({ username: username.toLowerCase() }).first()
    return row === undefined ? undefined : toIdentity(row)
  }

  async findByTokenHash (tokenHash: string): Promise<Identity | undefined> {
    const [row] = await runStatement<IdentityRow>(this.#db, BY_TOKEN_HASH, [tokenHash])
    return row === undefined ? undefined : toIdentity(row)
  }

  async setTokenHash (id: number, tokenHash: string): Promise<void> {
    await this.#db<IdentityRow>('identities').where({ id }).update({ token_hash: tokenHash })
  }

  async findById (id: number): Promise<Identity | undefined> {
    const row = await this.#db<IdentityRow>('identities').where({ id }).first()
    return row === undefined ? undefined : toIdentity(row)
  }

  /** How many identities there are, and how many are disabled. */
  async counts (): Promise<{ identities: number, disabled: number }> {
    const row = await this.#db('identities').first<{ identities: string | number, disabled: string | number } | undefined>(this.#db.raw('count(*) as identities'), this.#db.raw('count(disabled_at) as disabled'))
    return { identities: Number(row?.identities ?? 0), disabled: Number(row?.disabled ?? 0) }
  }

  /** Disables (`at`) or enables (`null`) an identity; false when there is none of that name. */
  async setDisabled (username: string, at: Date | null): Promise<boolean> {
    return await this.#db<IdentityRow>('identities').where({ username: username.toLowerCase() }).update({ disabled_at: at }) > 0
  }

  /** Identities whose name contains `search`, with what their uploads hold: newest first, or those holding most bytes first. */
  async list (options: { search?: string, limit: number, by?: 'newest' | 'bytes' }): Promise<IdentitySummary[]> {
    const query = this.#db('identities')
      .leftJoin('uploads', 'uploads.identity_id', 'identities.id')
      .groupBy('identities.id')
      .orderByRaw(options.by === 'bytes' ? 'coalesce(sum(uploads.size), 0) desc, identities.id desc' : 'identities.id desc')
      .limit(options.limit)
      .select<Array<IdentityRow & { uploads: string | number, bytes: string | number | null }>>([...IDENTITY_COLUMNS, this.#db.raw('count(uploads.id) as uploads'), this.#db.raw('sum(uploads.size) as bytes')])
    if (options.search !== undefined && options.search !== '') query.whereILike('identities.username', `%${options.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`)
    const rows = await query
    return rows.map((row) => ({ ...toIdentity(row), uploads: Number(row.uploads), bytes: Number(row.bytes ?? 0) }))
  }
}
