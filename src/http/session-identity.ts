import type { Request, RequestHandler } from 'express'
import type { Identity } from '../db/identity-repository.ts'
import type { IdentityService } from '../services/identity-service.ts'
import type { SessionCodec } from './session.ts'

const resolved = new WeakMap<Request, Identity>()

/**
 * Looks up the identity behind a valid session cookie once per request, for
 * the routes (sessionIdentity) and for the page header (res.locals.viewer).
 */
export function resolveSession (sessions: SessionCodec, identities: IdentityService): RequestHandler {
  return (req, res, next) => {
    const sessionId = sessions.read(req)
    if (sessionId === undefined) { res.locals.viewer = null; next(); return }
    identities.findById(sessionId).then((identity) => {
      if (identity !== undefined) resolved.set(req, identity)
      res.locals.viewer = identity?.username ?? null
      next()
    }, next)
  }
}

/** The browser session's identity, if the request has a valid one. */
export function sessionIdentity (req: Request): Identity | undefined {
  return resolved.get(req)
}
