import type { Knex } from 'knex'
import { ConflictError } from '../errors.ts'
import { isUniqueViolation } from './database.ts'

export interface Identity {
  id: number
  username: string
  tokenHash: string
  createdAt: Date
}

export interface IdentityRow {
  id: number
  username: string
  token_hash: string
  created_at: Date | string
}

export const toIdentity = (row: IdentityRow): Identity => ({
  id: row.id,
  username: row.username,
  tokenHash: row.token_hash,
  createdAt: new Date(row.created_at)
})

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
    const row = await this.#db<IdentityRow>('identities').where({ token_hash: tokenHash }).first()
    return row === undefined ? undefined : toIdentity(row)
  }

  async setTokenHash (id: number, tokenHash: string): Promise<void> {
    await this.#db<IdentityRow>('identities').where({ id }).update({ token_hash: tokenHash })
  }

  async findById (id: number): Promise<Identity | undefined> {
    const row = await this.#db<IdentityRow>('identities').where({ id }).first()
    return row === undefined ? undefined : toIdentity(row)
  }
}
