import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Identity, IdentityRepository } from '../db/identity-repository.ts'
import { BadRequestError, UnauthorizedError } from '../errors.ts'

export const USERNAME_PATTERN = /^[a-z0-9_.-]{3,32}$/
/** 32 random bytes, base64url: 256 bits, so a fast hash is the right way to store it. */
const TOKEN_BYTES = 32

export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex')

/**
 * A new token: 256 random bits in base64url, never starting with `-`. The
 * person pastes it on command lines (`ipfs pin remote service add heimdall
 * <url> <token>`), where a leading `-` reads as an option: one token in 64
 * failed Kubo's command.
 */
export function newToken (): string {
  for (;;) {
    const token = randomBytes(TOKEN_BYTES).toString('base64url')
    if (!token.startsWith('-')) return token
  }
}

// Compared against when the username is unknown, so both paths hash and compare.
const UNKNOWN_USER_HASH = hashToken(randomBytes(TOKEN_BYTES).toString('base64url'))

export interface CreatedIdentity {
  identity: Identity
  /** Shown to the person once; only its hash is stored. */
  token: string
}

export class IdentityService {
  readonly #identities: IdentityRepository

  constructor (identities: IdentityRepository) {
    this.#identities = identities
  }

  async create (rawUsername: unknown): Promise<CreatedIdentity> {
    const username = normalizeUsername(rawUsername)
    const token = newToken()
    const identity = await this.#identities.create(username, hashToken(token))
    return { identity, token }
  }

  /**
   * The identity the credentials belong to; UnauthorizedError for any mismatch,
   * without saying which. Without a username the token alone identifies (it is
   * unique), which is what `Authorization: Bearer` clients send.
   */
  async authenticate (username: unknown, token: unknown): Promise<Identity> {
    if (typeof token !== 'string' || token === '') throw new UnauthorizedError('a token is required')
    if (username === undefined || username === '') {
      const identity = await this.#identities.findByTokenHash(hashToken(token))
      if (identity === undefined) throw new UnauthorizedError()
      return identity
    }
    if (typeof username !== 'string') throw new UnauthorizedError()
    const identity = USERNAME_PATTERN.test(username.toLowerCase()) ? await this.#identities.findByUsername(username) : undefined
    const expected = Buffer.from(identity?.tokenHash ?? UNKNOWN_USER_HASH, 'hex')
    const given = Buffer.from(hashToken(token), 'hex')
    if (!timingSafeEqual(expected, given) || identity === undefined) throw new UnauthorizedError()
    return identity
  }

  /**
   * Replaces the identity's token: the old one stops working with this
   * statement (every request looks its token up). Returns the new one, to be
   * shown once.
   */
  async rotateToken (identity: Identity): Promise<string> {
    const token = newToken()
    await this.#identities.setTokenHash(identity.id, hashToken(token))
    return token
  }

  async findById (id: number): Promise<Identity | undefined> {
    return this.#identities.findById(id)
  }
}

export function normalizeUsername (raw: unknown): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw new BadRequestError('a username is required')
  const username = raw.trim().toLowerCase()
  if (!USERNAME_PATTERN.test(username)) {
    throw new BadRequestError('a username is 3 to 32 characters of a-z, 0-9, "_", "." and "-"')
  }
  return username
}
