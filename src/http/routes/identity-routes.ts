import { Router, type Request } from 'express'
import { BadRequestError, ConflictError, HeimdallError, TooManyRequestsError } from '../../errors.ts'
import { normalizeUsername, type IdentityService } from '../../services/identity-service.ts'
import type { RateLimiter } from '../../services/rate-limiter.ts'
import { clientAddress } from '../authentication.ts'
import { wantsHtml } from '../negotiate.ts'
import { newIdentityRequest } from '../openapi/requests.ts'
import type { BrowserSessions } from '../session.ts'
import { sessionIdentity } from '../session-identity.ts'

export const IDENTITY_NOTES = 'Keep this token secret and safe: it is shown once and cannot be recovered. ' +
  'Everything you upload is public: anyone with its link can fetch it, and once other IPFS nodes have copied it, it cannot be recalled from them.'

export function identityRoutes (deps: { identities: IdentityService, sessions: BrowserSessions, limiter: RateLimiter, signIn: { checkSignIn: (req: Request) => void } }): Router {
  const router = Router()

  router.get('/new', (_req, res) => {
    res.render('new', { title: 'New identity', error: null, username: '' })
  })

  router.post('/new', async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>
    try {
      const parsed = newIdentityRequest.safeParse(body)
      if (!parsed.success) throw new BadRequestError(parsed.error.issues[0]?.message ?? 'a username is required')
      // A browser is signed in as the identity it makes: not from another site's page.
      if (wantsHtml(req)) deps.signIn.checkSignIn(req)
      // A name refused as malformed costs nothing of the address's allowance (a taken one does: names are not probed for free).
      const username = normalizeUsername(parsed.data.username)
      await deps.limiter.identityCreation(clientAddress(req))
      const { identity, token } = await deps.identities.create(username)
      res.status(201).setHeader('Cache-Control', 'no-store')
      if (wantsHtml(req)) {
        await deps.sessions.start(req, res, identity)
        // Signed in from this response on: the header says so.
        res.locals.viewer = identity.username
        res.render('identity-created', { title: 'Your new identity', username: identity.username, token, notes: IDENTITY_NOTES })
        return
      }
      res.json({ username: identity.username, secret: token, token, notes: IDENTITY_NOTES })
    } catch (err) {
      if (err instanceof HeimdallError && wantsHtml(req)) {
        if (err instanceof TooManyRequestsError) res.setHeader('Retry-After', String(err.retryAfterSeconds))
        // The page that showed a new token, sent again (a reload): the name is "taken" by this very browser's identity.
        const viewer = sessionIdentity(req)?.username
        const yours = err instanceof ConflictError && viewer !== undefined && typeof body.username === 'string' && normalizeUsername(body.username).toLowerCase() === viewer.toLowerCase()
        const message = yours ? `You created "${viewer}" and are signed in as it; its token was shown once, when it was made. If you did not keep it, replace it on your account page.` : err.message
        res.status(err.status).render('new', { title: 'New identity', error: message, username: typeof body.username === 'string' ? body.username : '' })
        return
      }
      throw err
    }
  })

  return router
}
