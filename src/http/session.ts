import { createHmac, timingSafeEqual } from 'node:crypto'
import { parse as parseCookies } from 'cookie'
import type { Request, Response } from 'express'

export const SESSION_COOKIE = 'heimdall_session'
const SESSION_SECONDS = 7 * 24 * 3600

/**
 * A browser session is a signed cookie: `<identity id>.<expiry>.<hmac>`, keyed
 * by SECRET_KEY. Nothing is stored server-side and the token never appears in
 * it; plugins and scripts send the token itself instead.
 */
export class SessionCodec {
  readonly #key: Buffer

  constructor (secretKey: string) {
    this.#key = Buffer.from(secretKey, 'utf8')
  }

  #sign (payload: string): string {
    return createHmac('sha256', this.#key).update(payload).digest('base64url')
  }

  encode (identityId: number, now = Date.now()): string {
    const payload = `${identityId}.${Math.floor(now / 1000) + SESSION_SECONDS}`
    return `${payload}.${this.#sign(payload)}`
  }

  /** The identity id in a valid, unexpired cookie value, else undefined. */
  decode (value: string | undefined, now = Date.now()): number | undefined {
    const match = /^(\d{1,15})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(value ?? '')
    if (match === null) return undefined
    const [, id, expires, signature] = match as unknown as [string, string, string, string]
    const expected = Buffer.from(this.#sign(`${id}.${expires}`))
    if (!timingSafeEqual(expected, Buffer.from(signature))) return undefined
    if (Number(expires) * 1000 < now) return undefined
    return Number(id)
  }

  read (req: Request): number | undefined {
    const header = req.headers.cookie
    return header === undefined ? undefined : this.decode(parseCookies(header)[SESSION_COOKIE])
  }

  set (req: Request, res: Response, identityId: number): void {
    res.cookie(SESSION_COOKIE, this.encode(identityId), {
      httpOnly: true,
      sameSite: 'strict',
      secure: req.secure,
      path: '/',
      maxAge: SESSION_SECONDS * 1000
    })
  }

  clear (res: Response): void {
    res.clearCookie(SESSION_COOKIE, { path: '/' })
  }
}
