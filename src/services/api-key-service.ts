import { randomBytes, timingSafeEqual } from 'node:crypto'
import { API_KEY_SCOPES, type ApiKey, type ApiKeyRepository, type ApiKeyScope } from '../db/api-key-repository.ts'
import type { Identity } from '../db/identity-repository.ts'
import { BadRequestError, ConflictError, NotFoundError, UnauthorizedError } from '../errors.ts'
import { hashToken } from './identity-service.ts'

/** `hk_<16 hex: the row>_<43 base64url: 256 random bits>`. A token is 43 characters, so the two never look alike. */
const API_KEY = /^hk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/
const MAX_KEYS_PER_IDENTITY = 100
/** last_used_at is written at most this often per key: a busy key does not cost a write per request. */
const TOUCH_EVERY_MS = 60_000
// Compared against when the public id is unknown, so both paths hash and compare.
const UNKNOWN_KEY_HASH = Buffer.from(hashToken(randomBytes(32).toString('base64url')), 'hex')

export const isApiKey = (secret: string): boolean => API_KEY.test(secret)

export interface NewApiKey {
  name: string
  scopes: readonly ApiKeyScope[]
  expiresAt: Date | null
}

export interface CreatedApiKey {
  key: ApiKey
  /** Shown once; only its hash is stored. */
  secret: string
}

/**
 * Named API keys, each limited to some scopes and optionally expiring. A key
 * can do what its scopes say and nothing else: it cannot make keys, replace
 * the token or see the account (those need the token or a browser session).
 */
export class ApiKeyService {
  readonly #keys: ApiKeyRepository
  readonly #now: () => number
  readonly #onTouchError: (err: unknown) => void

  constructor (keys: ApiKeyRepository, options: { now?: () => number, onTouchError?: (err: unknown) => void } = {}) {
    this.#keys = keys
    this.#now = options.now ?? Date.now
    this.#onTouchError = options.onTouchError ?? (() => {})
  }

  async create (owner: Identity, input: NewApiKey): Promise<CreatedApiKey> {
    const name = input.name.trim()
    if (name === '' || name.length > 64 || /\p{Cc}/u.test(name)) throw new BadRequestError('a key\'s name is 1 to 64 characters, without control characters')
    const scopes = [...new Set(input.scopes)]
    if (scopes.length === 0 || !scopes.every((s) => (API_KEY_SCOPES as readonly string[]).includes(s))) {
      throw new BadRequestError(`give the key at least one scope among ${API_KEY_SCOPES.join(', ')}`)
    }
    if (input.expiresAt !== null && input.expiresAt.getTime() <= this.#now()) throw new BadRequestError('the expiry must be in the future')
    if (await this.#keys.countByIdentity(owner.id) >= MAX_KEYS_PER_IDENTITY) throw new ConflictError(`you have ${MAX_KEYS_PER_IDENTITY} API keys already: revoke one first`)
    const publicId = randomBytes(8).toString('hex')
    const secretPart = randomBytes(32).toString('base64url')
    const key = await this.#keys.create({
      identityId: owner.id,
      publicId,
      secretHash: hashToken(secretPart),
      name,
      scopes: API_KEY_SCOPES.filter((s) => scopes.includes(s)),
      expiresAt: input.expiresAt
    })
    return { key, secret: `hk_${publicId}_${secretPart}` }
  }

  async list (owner: Identity): Promise<ApiKey[]> {
    return this.#keys.listByIdentity(owner.id)
  }

  async revoke (owner: Identity, id: number): Promise<void> {
    if (!await this.#keys.delete(owner.id, id)) throw new NotFoundError('you have no API key with this id')
  }

  /** The key and its identity; UnauthorizedError for an unknown, wrong, or expired key. */
  async verify (secret: string): Promise<{ key: ApiKey, identity: Identity }> {
    const match = API_KEY.exec(secret)
    if (match === null) throw new UnauthorizedError('not an API key')
    const [, publicId = '', secretPart = ''] = match
    const found = await this.#keys.findByPublicId(publicId)
    const expected = found === undefined ? UNKNOWN_KEY_HASH : Buffer.from(found.secretHash, 'hex')
    const given = Buffer.from(hashToken(secretPart), 'hex')
    if (!timingSafeEqual(expected, given) || found === undefined) throw new UnauthorizedError('unknown or revoked API key')
    const now = this.#now()
    if (found.key.expiresAt !== null && found.key.expiresAt.getTime() <= now) throw new UnauthorizedError(`this API key expired at ${found.key.expiresAt.toISOString()}`)
    if (found.key.lastUsedAt === null || now - found.key.lastUsedAt.getTime() >= TOUCH_EVERY_MS) {
      // Bookkeeping, not authentication: the request does not wait for it.
      this.#keys.touch(found.key.id, new Date(now)).catch(this.#onTouchError)
    }
    return found
  }
}
