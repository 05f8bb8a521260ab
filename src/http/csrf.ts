import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { parse as parseCookies } from 'cookie'
import type { Request, RequestHandler } from 'express'
import { ForbiddenError } from '../errors.ts'
import { wantsHtml } from './negotiate.ts'
import { SESSION_COOKIE } from './session.ts'

export const CSRF_COOKIE = 'heimdall_csrf'
export const CSRF_FIELD = '_csrf'
export const CSRF_HEADER = 'x-csrf-token'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Cross-site request forgery protection for the browser: a random cookie
 * (HttpOnly, SameSite=Strict) issued with pages, and in every form that
 * changes something its HMAC under SECRET_KEY (field `_csrf`, or header
 * X-CSRF-Token from scripts). Only requests that carry our cookies are
 * browser flows; the add-on and scripts send none, or a bearer token, and
 * authenticate with the token itself.
 */
export class CsrfProtection {
  readonly #key: Buffer

  constructor (secretKey: string) {
    this.#key = Buffer.from(`csrf:${secretKey}`, 'utf8')
  }

  #token (cookie: string): string {
    return createHmac('sha256', this.#key).update(cookie).digest('base64url')
  }

  /** Gives pages a token (res.locals.csrfToken), setting the cookie on first visit. */
  issue (): RequestHandler {
    return (req, res, next) => {
      // Any page may hold a form, including one shown again after a refused post.
      if (wantsHtml(req)) {
        let cookie = parseCookies(req.headers.cookie ?? '')[CSRF_COOKIE]
        if (cookie === undefined || !/^[\w-]{43}$/.test(cookie)) {
          cookie = randomBytes(32).toString('base64url')
          res.cookie(CSRF_COOKIE, cookie, { httpOnly: true, sameSite: 'strict', secure: req.secure, path: '/' })
        }
        res.locals.csrfToken = this.#token(cookie)
      }
      next()
    }
  }

  /** Throws ForbiddenError for a browser request that changes something without the right token. */
  verify (req: Request): void {
    if (SAFE_METHODS.has(req.method) || req.headers.authorization !== undefined) return
    const cookies = parseCookies(req.headers.cookie ?? '')
    const cookie = cookies[CSRF_COOKIE]
    if (cookie === undefined && cookies[SESSION_COOKIE] === undefined) return
    const body = (req.body ?? {}) as Record<string, unknown>
    const given = typeof body[CSRF_FIELD] === 'string' ? body[CSRF_FIELD] : req.headers[CSRF_HEADER]
    const expected = cookie === undefined ? undefined : Buffer.from(this.#token(cookie))
    if (typeof given !== 'string' || expected === undefined || given.length !== expected.length || !timingSafeEqual(Buffer.from(given), expected)) {
      throw new ForbiddenError('this form has expired or came from another site: reload the page and try again')
    }
  }

  /** Checks urlencoded and JSON requests; multipart uploads are checked by their route as the form is read. */
  protect (): RequestHandler {
    return (req, _res, next) => {
      if (req.is('multipart/form-data') === 'multipart/form-data') { next(); return }
      try {
        this.verify(req)
        next()
      } catch (err) {
        next(err)
      }
    }
  }
}
