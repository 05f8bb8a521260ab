import type { Knex } from 'knex'
import { ConflictError } from '../errors.ts'
import { isUniqueViolation } from './database.ts'
import { toIdentity, type Identity, type IdentityRow } from './identity-repository.ts'

export const API_KEY_SCOPES = ['upload', 'list', 'pin', 'delete'] as const
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number]

/** What an API key is, without its secret (which is never stored). */
export interface ApiKey {
  id: number
  identityId: number
  publicId: string
  name: string
  scopes: ApiKeyScope[]
  createdAt: Date
  expiresAt: Date | null
  lastUsedAt: Date | null
}

interface ApiKeyRow {
  id: number
  identity_id: number
  public_id: string
  secret_hash: string
  name: string
  scopes: string
  created_at: Date | string
  expires_at: Date | string | null
  last_used_at: Date | string | null
}

const date = (value: Date | string | null): Date | null => (value === null ? null : new Date(value))

const toApiKey = (row: ApiKeyRow): ApiKey => ({
  id: row.id,
  identityId: row.identity_id,
  publicId: row.public_id,
  name: row.name,
  scopes: row.scopes.split(',').filter((s): s is ApiKeyScope => (API_KEY_SCOPES as readonly string[]).includes(s)),
  createdAt: new Date(row.created_at),
  expiresAt: date(row.expires_at),
  lastUsedAt: date(row.last_used_at)
})

export class ApiKeyRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  /** A name is unique per identity, decided by the unique index. */
  async create (key: { identityId: number, publicId: string, secretHash: string, name: string, scopes: readonly ApiKeyScope[], expiresAt: Date | null }): Promise<ApiKey> {
    try {
      const [row] = await this.#db<ApiKeyRow>('api_keys').insert({
        identity_id: key.identityId,
        public_id: key.publicId,
        secret_hash: key.secretHash,
        name: key.name,
        scopes: key.scopes.join(','),
        expires_at: key.expiresAt
      }).returning('*')
      if (row === undefined) throw new Error('insert returned no row')
      return toApiKey(row)
    } catch (err) {
      // Often the page that showed a new key, sent again by a reload: say what became of the first one.
      if (isUniqueViolation(err)) throw new ConflictError(`you already have an API key named "${key.name}" (its secret was shown once, when it was made): give this one another name, or revoke that one first if you did not keep it`)
      throw err
    }
  }

  /** The key with this public id, its secret's hash and its identity, in one query. */
  async findByPublicId (publicId: string): Promise<{ key: ApiKey, secretHash: string, identity: Identity } | undefined> {
    const row = await this.#db('api_keys')
      .join('identities', 'identities.id', 'api_keys.identity_id')
      .where('api_keys.public_id', publicId)
      .first<(ApiKeyRow & { username: string, token_hash: string, identity_created_at: Date | string, disabled_at: Date | string | null }) | undefined>(
        'api_keys.*', 'identities.username', 'identities.token_hash', 'identities.created_at as identity_created_at', 'identities.disabled_at')
    if (row === undefined) return undefined
    const identityRow: IdentityRow = { id: row.identity_id, username: row.username, token_hash: row.token_hash, created_at: row.identity_created_at, disabled_at: row.disabled_at }
    return { key: toApiKey(row), secretHash: row.secret_hash, identity: toIdentity(identityRow) }
  }

  async listByIdentity (identityId: number): Promise<ApiKey[]> {
    const rows = await this.#db<ApiKeyRow>('api_keys').where({ identity_id: identityId }).orderBy('id')
    return rows.map(toApiKey)
  }

  async countByIdentity (identityId: number): Promise<number> {
    const [row] = await this.#db('api_keys').where({ identity_id: identityId }).count<Array<{ n: string | number }>>({ n: '*' })
    return Number(row?.n ?? 0)
  }

  /** Deletes one of the identity's keys; false if it has none with this id. */
  async delete (identityId: number, id: number): Promise<boolean> {
    return (await this.#db<ApiKeyRow>('api_keys').where({ identity_id: identityId, id }).delete()) > 0
  }

  async touch (id: number, at: Date): Promise<void> {
    await this.#db<ApiKeyRow>('api_keys').where({ id }).update({ last_used_at: at })
  }
}
