import type { Request, RequestHandler } from 'express'
import type { Identity } from '../db/identity-repository.ts'
import type { BrowserSessions } from './session.ts'

const resolved = new WeakMap<Request, Identity>()

/**
 * Looks up the identity behind the session cookie once per request (one
 * query), for the routes (sessionIdentity) and for the page header
 * (res.locals.viewer). A cookie whose session has ended is dropped.
 */
export function resolveSession (sessions: BrowserSessions): RequestHandler {
  return (req, res, next) => {
    res.locals.viewer = null
    if (sessions.read(req) === undefined) { next(); return }
    sessions.identify(req).then((identity) => {
      if (identity === undefined) {
        sessions.clear(res)
      } else {
        resolved.set(req, identity)
        res.locals.viewer = identity.username
      }
      next()
    }, next)
  }
}

/** The browser session's identity, if the request has a valid one. */
export function sessionIdentity (req: Request): Identity | undefined {
  return resolved.get(req)
}
