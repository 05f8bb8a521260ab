import { createHash, randomBytes } from 'node:crypto'
import type { Identity } from '../db/identity-repository.ts'
import type { SessionRepository } from '../db/session-repository.ts'

/** How long a browser stays signed in. */
export const SESSION_SECONDS = 7 * 24 * 3600
/**
 * Sessions an identity may have at once: a sign-in beyond it ends the
 * oldest. A script that signs in with `GET /uploads?username&token` without
 * keeping the cookie starts a session each time, and each stayed for
 * SESSION_SECONDS.
 */
export const MAX_SESSIONS_PER_IDENTITY = 50
/** 32 random bytes, base64url: what the session cookie carries. */
export const SESSION_ID = /^[A-Za-z0-9_-]{43}$/

const hashSessionId = (id: string): string => createHash('sha256').update(id, 'utf8').digest('hex')

export interface StartedSession {
  /** The secret for the cookie; only its hash is stored. */
  id: string
  expiresAt: Date
}

/**
 * Browser sessions kept server-side, so they can end: signing out deletes
 * one, and revokeAll() ends every session of an identity (for when its token
 * is replaced). Expired sessions stop working at once and are purged as new
 * ones start, which is the only time the table grows; an identity has at
 * most MAX_SESSIONS_PER_IDENTITY, its oldest ending first.
 */
export class SessionService {
  readonly #sessions: SessionRepository
  readonly #now: () => number

  constructor (sessions: SessionRepository, now: () => number = Date.now) {
    this.#sessions = sessions
    this.#now = now
  }

  async start (identity: Identity): Promise<StartedSession> {
    const now = this.#now()
    await this.#sessions.deleteExpired(new Date(now))
    const id = randomBytes(32).toString('base64url')
    const expiresAt = new Date(now + SESSION_SECONDS * 1000)
    await this.#sessions.create(hashSessionId(id), identity.id, expiresAt, { keep: MAX_SESSIONS_PER_IDENTITY, now: new Date(now) })
    return { id, expiresAt }
  }

  /** The identity of a live session, else undefined. */
  async identify (id: string): Promise<Identity | undefined> {
    if (!SESSION_ID.test(id)) return undefined
    return this.#sessions.findIdentity(hashSessionId(id), new Date(this.#now()))
  }

  async end (id: string): Promise<void> {
    if (!SESSION_ID.test(id)) return
    await this.#sessions.delete(hashSessionId(id))
  }

  /** Signs the identity out everywhere; returns how many sessions ended. */
  async revokeAll (identityId: number): Promise<number> {
    return this.#sessions.deleteByIdentity(identityId)
  }
}
