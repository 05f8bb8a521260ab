import { isIPv6 } from 'node:net'
import type { Request, RequestHandler } from 'express'
import { API_KEY_SCOPES, type ApiKey, type ApiKeyScope } from '../db/api-key-repository.ts'
import type { Identity } from '../db/identity-repository.ts'
import { ForbiddenError, InsufficientScopeError, UnauthorizedError } from '../errors.ts'
import { isApiKey, type ApiKeyService } from '../services/api-key-service.ts'
import type { IdentityService } from '../services/identity-service.ts'
import type { RateLimiter } from '../services/rate-limiter.ts'
import { sessionIdentity } from './session-identity.ts'

/** What a caller may do. `account` (keys, token, sessions, usage) is the token's and the browser session's only: no API key has it. */
export type Scope = ApiKeyScope | 'account'
const EVERY_SCOPE: ReadonlySet<Scope> = new Set<Scope>([...API_KEY_SCOPES, 'account'])

/** Who is calling, as the authentication middleware found it. */
export interface Caller {
  identity: Identity
  scopes: ReadonlySet<Scope>
  via: 'token' | 'api-key' | 'session'
  apiKey?: ApiKey
}

interface Resolution {
  /** The secret this resolution was made for; another one (form fields read later) is resolved again. */
  secret?: string
  caller?: Caller
  error?: Error
}

const resolutions = new WeakMap<Request, Resolution>()

export interface AuthenticatorDeps {
  identities: IdentityService
  apiKeys: ApiKeyService
  limiter: RateLimiter
}

/**
 * Answers "who is calling" once per request, from, in this order:
 * `Authorization: Bearer <token or API key>`; `username` + `token` (or
 * `secret`) in the form or JSON body, as the Blender add-on sends them; the
 * browser session. Every credential check goes through the rate limiter:
 * a client address in its back-off gets 429 before its
 * credentials are looked at, and each failure lengthens the back-off.
 * A failure is kept, not thrown: only a route that needs a caller
 * (requireCaller) answers it.
 */
export class Authenticator {
  readonly #deps: AuthenticatorDeps

  constructor (deps: AuthenticatorDeps) {
    this.#deps = deps
  }

  /** The middleware; `bearerOnly` for the Pinning Service API, which takes no cookies and no form fields. */
  middleware (options: { bearerOnly?: boolean } = {}): RequestHandler {
    return (req, _res, next) => { this.identify(req, options).then(() => { next() }, next) }
  }

  /**
   * Resolves the request's caller from what has arrived so far; again after
   * more has (a multipart form's fields). Never rejects for bad credentials.
   */
  async identify (req: Request, options: { bearerOnly?: boolean } = {}): Promise<void> {
    const bearer = bearerOf(req)
    const body = (options.bearerOnly === true ? {} : (req.body ?? {})) as Record<string, unknown>
    const secret = bearer ?? body.token ?? body.secret
    const previous = resolutions.get(req)
    if (secret !== undefined) {
      const seen = typeof secret === 'string' ? secret : JSON.stringify(secret)
      if (previous !== undefined && previous.secret === seen) return
      const username = bearer === undefined ? body.username : undefined
      try {
        resolutions.set(req, { secret: seen, caller: await this.authenticate(req, username, secret) })
      } catch (err) {
        resolutions.set(req, { secret: seen, error: err instanceof Error ? err : new Error(String(err)) })
      }
      return
    }
    if (previous !== undefined) return
    const identity = options.bearerOnly === true ? undefined : sessionIdentity(req)
    resolutions.set(req, identity === undefined ? {} : { caller: { identity, scopes: EVERY_SCOPE, via: 'session' } })
  }

  /**
   * Checks a username (optional) and a token or API key from wherever the
   * route found them (a query string, a form): rate limits first, then the
   * secret; a failure is counted against the client address.
   */
  async authenticate (req: Request, username: unknown, secret: unknown): Promise<Caller> {
    if (typeof secret !== 'string' || secret === '') throw new UnauthorizedError('a token is required')
    const name = typeof username === 'string' && username !== '' ? username.trim().toLowerCase() : undefined
    const address = clientAddress(req)
    const { limiter, apiKeys, identities } = this.#deps
    await limiter.checkAuthentication(address)
    try {
      if (isApiKey(secret)) {
        const { key, identity } = await apiKeys.verify(secret)
        if (name !== undefined && name !== identity.username) throw new UnauthorizedError()
        return { identity, scopes: new Set(key.scopes), via: 'api-key', apiKey: key }
      }
      return { identity: await identities.authenticate(username, secret), scopes: EVERY_SCOPE, via: 'token' }
    } catch (err) {
      if (err instanceof UnauthorizedError) {
        const backoff = await limiter.authenticationFailed(address)
        req.log.info({ address, username: name, backoffMs: backoff }, 'failed authentication')
      }
      throw err
    }
  }
}

/** `Authorization: Bearer <secret>`, if sent. */
export function bearerOf (req: Request): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
}

/** The caller found so far, if any, without requiring one. */
export function callerOf (req: Request): Caller | undefined {
  return resolutions.get(req)?.caller
}

/** Sets the caller a route authenticated itself (e.g. from a query string). */
export function setCaller (req: Request, caller: Caller): void {
  resolutions.set(req, { caller })
}

/**
 * The caller, who must hold `scope`: the credentials' own error (401, 429)
 * if they failed, 401 with `missing` if none were sent, 403 if an API key
 * lacks the scope.
 */
export function requireCaller (req: Request, scope: Scope, missing = 'sign in: send Authorization: Bearer <token or API key>, or sign in in a browser'): Caller {
  const resolution = resolutions.get(req)
  if (resolution?.error !== undefined) throw resolution.error
  const caller = resolution?.caller
  if (caller === undefined) throw new UnauthorizedError(missing)
  if (caller.identity.disabledAt !== null) throw new ForbiddenError('this identity is disabled by the operator of this node')
  if (!caller.scopes.has(scope)) throw scope === 'account' ? new InsufficientScopeError('account (the token or a browser session)') : new InsufficientScopeError(scope)
  return caller
}

/**
 * The client address rate limits are kept by: Express's `req.ip`, which
 * follows TRUST_PROXY (nginx's X-Forwarded-For in production). An IPv4
 * address mapped into IPv6 is the IPv4 one; an IPv6 address counts by its
 * /64, the block one subscriber usually gets.
 */
export function clientAddress (req: Request): string {
  let ip = (req.ip ?? req.socket.remoteAddress ?? 'unknown').replace(/%.*$/, '')
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped?.[1] !== undefined) return mapped[1]
  if (!isIPv6(ip)) return ip
  ip = ip.toLowerCase()
  const [head = '', tail = ''] = ip.split('::')
  const front = head === '' ? [] : head.split(':')
  const back = ip.includes('::') ? (tail === '' ? [] : tail.split(':')) : []
  const groups = [...front, ...Array<string>(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back]
  return `${groups.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16)).join(':')}::/64`
}
