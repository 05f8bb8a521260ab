import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { parse as parseCookies } from 'cookie'
import type { Request, RequestHandler, Response } from 'express'
import { ForbiddenError } from '../errors.ts'
import { bearerOf } from './authentication.ts'
import { requestOrigin } from './request-origin.ts'
import { SESSION_COOKIE } from './session.ts'

export const CSRF_COOKIE = 'heimdall_csrf'
export const CSRF_FIELD = '_csrf'
export const CSRF_HEADER = 'x-csrf-token'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
const COOKIE_VALUE = /^[\w-]{43}$/
const EXPIRED = 'this form has expired or came from another site: reload the page and try again'

export interface CsrfOptions {
  /** PUBLIC_URL: a request whose Origin is this one's comes from our own pages, whatever Host it reached us by. */
  publicUrl: string
}

/**
 * Cross-site request forgery protection for the browser. Only requests that
 * carry our cookies are browser flows; the add-on and scripts send none, or a
 * bearer token (which no page of another site can add), and authenticate with
 * the token itself. A browser request that changes something must:
 *
 * - not come from another site: `Sec-Fetch-Site` is not `cross-site` or
 *   `same-site`, and `Origin`, when sent, is this site's. SameSite=Strict
 *   cookies travel with requests from the same *site*, so a page on another
 *   port or a sibling subdomain would otherwise post with our session.
 * - carry the token: a random cookie (HttpOnly, SameSite=Strict) and, in the
 *   form (field `_csrf`) or header X-CSRF-Token, its HMAC under SECRET_KEY.
 */
export class CsrfProtection {
  readonly #key: Buffer
  readonly #publicOrigin: string

  constructor (secretKey: string, options: CsrfOptions) {
    this.#key = Buffer.from(`csrf:${secretKey}`, 'utf8')
    this.#publicOrigin = new URL(options.publicUrl).origin
  }

  #token (cookie: string): string {
    return createHmac('sha256', this.#key).update(cookie).digest('base64url')
  }

  /**
   * Gives every page its token: `res.locals.csrfToken` is computed when a view
   * first reads it (res.render copies the locals), and only then is the cookie
   * set, so JSON answers and redirects set none.
   */
  issue (): RequestHandler {
    return (req, res, next) => {
      let token: string | undefined
      Object.defineProperty(res.locals, 'csrfToken', {
        enumerable: true,
        configurable: true,
        get: () => (token ??= this.#tokenFor(req, res))
      })
      next()
    }
  }

  #tokenFor (req: Request, res: Response): string {
    let cookie = parseCookies(req.headers.cookie ?? '')[CSRF_COOKIE]
    if (cookie === undefined || !COOKIE_VALUE.test(cookie)) {
      cookie = randomBytes(32).toString('base64url')
      if (!res.headersSent) res.cookie(CSRF_COOKIE, cookie, { httpOnly: true, sameSite: 'strict', secure: req.secure, path: '/' })
    }
    return this.#token(cookie)
  }

  /**
   * Throws ForbiddenError for a browser request that changes something from
   * another site or without the right token, read from the parsed body or the
   * header. For a multipart form, call it once the fields before the file are read.
   */
  verify (req: Request): void {
    if (!isBrowserWrite(req)) return
    this.#checkOrigin(req)
    this.#checkToken(req)
  }

  /**
   * Checks every browser request that changes something, whatever its body:
   * an unparsed body (multipart) has no `_csrf` field, so only the header can
   * carry its token. The exception is `streamedForms`, the multipart POSTs
   * whose route reads the form as it streams and calls verify() itself; their
   * origin is still checked here.
   */
  protect (options: { streamedForms?: readonly string[] } = {}): RequestHandler {
    const streamed = new Set(options.streamedForms ?? [])
    return (req, _res, next) => {
      try {
        if (isBrowserWrite(req)) {
          this.#checkOrigin(req)
          const readByRoute = req.method === 'POST' && streamed.has(req.path) && req.is('multipart/form-data') === 'multipart/form-data'
          if (!readByRoute) this.#checkToken(req)
        }
        next()
      } catch (err) {
        next(err)
      }
    }
  }

  /**
   * Throws ForbiddenError for a browser sign-in (a form or link that starts
   * a session) from another site, with or without our cookies: a page there
   * could otherwise sign a visitor in as its author, whose uploads the
   * visitor's would then become (login CSRF). Clients that send no Origin and
   * no Sec-Fetch-Site (the add-on, scripts) and a link typed or opened by an
   * application (`none`) pass.
   */
  checkSignIn (req: Request): void {
    this.#checkOrigin(req, 'sign in on this site itself: a sign-in sent from another site is refused')
  }

  #checkOrigin (req: Request, refusal = EXPIRED): void {
    const fetchSite = req.headers['sec-fetch-site']
    if (fetchSite === 'cross-site' || fetchSite === 'same-site') throw new ForbiddenError(refusal)
    const origin = req.headers.origin
    if (origin === undefined) return
    // `null` (a sandboxed frame, a privacy-sensitive redirect) is nobody we know.
    if (origin !== this.#publicOrigin && origin !== requestOrigin(req)) throw new ForbiddenError(refusal)
  }

  #checkToken (req: Request): void {
    const cookie = parseCookies(req.headers.cookie ?? '')[CSRF_COOKIE]
    const body = (req.body ?? {}) as Record<string, unknown>
    const given = typeof body[CSRF_FIELD] === 'string' ? body[CSRF_FIELD] : req.headers[CSRF_HEADER]
    const expected = cookie === undefined ? undefined : Buffer.from(this.#token(cookie))
    const received = typeof given === 'string' ? Buffer.from(given) : undefined
    if (received === undefined || expected === undefined || received.length !== expected.length || !timingSafeEqual(received, expected)) {
      throw new ForbiddenError(EXPIRED)
    }
  }
}

/** A request that changes something and carries our cookies, without a bearer token of its own (another scheme, e.g. Basic that a proxy asked for, is the browser's). */
function isBrowserWrite (req: Request): boolean {
  if (SAFE_METHODS.has(req.method) || bearerOf(req) !== undefined) return false
  const cookies = parseCookies(req.headers.cookie ?? '')
  return cookies[CSRF_COOKIE] !== undefined || cookies[SESSION_COOKIE] !== undefined
}
