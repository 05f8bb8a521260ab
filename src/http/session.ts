import { parse as parseCookies } from 'cookie'
import type { Request, Response } from 'express'
import type { Identity } from '../db/identity-repository.ts'
import type { SessionService } from '../services/session-service.ts'

export const SESSION_COOKIE = 'heimdall_session'

/**
 * A browser session on the wire: the cookie carries the session's random id
 * (HttpOnly, SameSite=Strict), the SessionService keeps it server-side. The
 * token never appears in it; plugins and scripts send the token itself instead.
 */
export class BrowserSessions {
  readonly #sessions: SessionService

  constructor (sessions: SessionService) {
    this.#sessions = sessions
  }

  /** The session id the request's cookie carries, if any. */
  read (req: Request): string | undefined {
    const header = req.headers.cookie
    return header === undefined ? undefined : parseCookies(header)[SESSION_COOKIE]
  }

  /** The identity of the request's live session, if any. */
  async identify (req: Request): Promise<Identity | undefined> {
    const id = this.read(req)
    return id === undefined ? undefined : this.#sessions.identify(id)
  }

  /** Signs the browser in as `identity`, ending the session it had before. */
  async start (req: Request, res: Response, identity: Identity): Promise<void> {
    const previous = this.read(req)
    if (previous !== undefined) await this.#sessions.end(previous)
    const { id, expiresAt } = await this.#sessions.start(identity)
    res.cookie(SESSION_COOKIE, id, {
      httpOnly: true,
      sameSite: 'strict',
      secure: req.secure,
      path: '/',
      maxAge: expiresAt.getTime() - Date.now()
    })
  }

  /** Ends the request's session server-side and drops its cookie. */
  async end (req: Request, res: Response): Promise<void> {
    const id = this.read(req)
    if (id !== undefined) await this.#sessions.end(id)
    this.clear(res)
  }

  clear (res: Response): void {
    res.clearCookie(SESSION_COOKIE, { path: '/' })
  }
}
