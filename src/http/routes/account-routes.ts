import { Router, type Request, type Response } from 'express'
import { API_KEY_SCOPES, type ApiKey } from '../../db/api-key-repository.ts'
import { BadRequestError, ConflictError, NotFoundError } from '../../errors.ts'
import type { ApiKeyService } from '../../services/api-key-service.ts'
import type { IdentityService } from '../../services/identity-service.ts'
import type { QuotaService } from '../../services/quota-service.ts'
import type { SessionService } from '../../services/session-service.ts'
import { bearerOf, requireCaller } from '../authentication.ts'
import { wantsHtml } from '../negotiate.ts'
import type { BrowserSessions } from '../session.ts'
import { IDENTITY_NOTES } from './identity-routes.ts'
import { idParam, newApiKeyRequest } from '../openapi/requests.ts'

export interface AccountRoutesDeps {
  identities: IdentityService
  apiKeys: ApiKeyService
  quotas: QuotaService
  sessions: SessionService
  browserSessions: BrowserSessions
}

const DAY_MS = 86_400_000


const presentKey = (key: ApiKey): Record<string, unknown> => ({
  id: key.id,
  name: key.name,
  // The key's public part, to tell keys apart; the secret after it is never shown again.
  prefix: `hk_${key.publicId}_`,
  scopes: key.scopes,
  createdAt: key.createdAt.toISOString(),
  expiresAt: key.expiresAt?.toISOString() ?? null,
  lastUsedAt: key.lastUsedAt?.toISOString() ?? null
})

/**
 * The signed-in person's account (`account` scope: the token or a browser
 * session, never an API key): usage and quota, replacing the token, ending
 * every browser session, and API keys. Pages for a browser (forms with the
 * CSRF token), JSON for scripts.
 */
export function accountRoutes (deps: AccountRoutesDeps): Router {
  const router = Router()

  const keyId = (req: Request): number => {
    const parsed = idParam.safeParse(req.params)
    if (!parsed.success) throw new NotFoundError('you have no API key with this id')
    return parsed.data.id
  }

  async function renderAccount (req: Request, res: Response, status = 200, error: string | null = null): Promise<void> {
    const { identity } = requireCaller(req, 'account')
    const [keys, quota] = await Promise.all([deps.apiKeys.list(identity), deps.quotas.status(identity)])
    res.setHeader('Cache-Control', 'no-store')
    res.status(status).render('account', { title: 'Account', username: identity.username, keys: keys.map(presentKey), quota, scopes: API_KEY_SCOPES, error })
  }

  router.get('/account', async (req, res) => {
    if (wantsHtml(req) && bearerOf(req) === undefined) {
      try { requireCaller(req, 'account') } catch { res.redirect(303, '/uploads'); return }
      await renderAccount(req, res)
      return
    }
    const { identity } = requireCaller(req, 'account')
    res.setHeader('Cache-Control', 'no-store')
    res.json({ username: identity.username, createdAt: identity.createdAt.toISOString(), ...(await deps.quotas.status(identity)) })
  })

  // A new token: the old one stops working at once, and every browser session ends (this browser gets a new one).
  router.post('/account/token', async (req, res) => {
    const { identity, via } = requireCaller(req, 'account')
    const token = await deps.identities.rotateToken(identity)
    await deps.sessions.revokeAll(identity.id)
    req.log.info({ username: identity.username }, 'token replaced, every session ended')
    res.setHeader('Cache-Control', 'no-store')
    if (wantsHtml(req)) {
      // The browser whose session asked keeps one; a form's own credentials sign no browser in (from another site, that was a login CSRF).
      if (via === 'session') await deps.browserSessions.start(req, res, identity)
      res.render('token-rotated', { title: 'Your new token', username: identity.username, token, notes: IDENTITY_NOTES })
      return
    }
    res.json({ username: identity.username, token, secret: token, notes: IDENTITY_NOTES })
  })

  async function revokeSessions (req: Request): Promise<number> {
    const { identity } = requireCaller(req, 'account')
    const revoked = await deps.sessions.revokeAll(identity.id)
    req.log.info({ username: identity.username, revoked }, 'every session ended')
    return revoked
  }

  router.delete('/account/sessions', async (req, res) => {
    res.json({ revoked: await revokeSessions(req) })
  })

  router.post('/account/sessions/revoke', async (req, res) => {
    const revoked = await revokeSessions(req)
    if (!wantsHtml(req)) { res.json({ revoked }); return }
    // This browser's cookie only if this browser sent it: a cross-site form's credentials do not reach another browser's.
    if (deps.browserSessions.read(req) !== undefined) deps.browserSessions.clear(res)
    res.redirect(303, '/')
  })

  router.get('/account/keys', async (req, res) => {
    const { identity } = requireCaller(req, 'account')
    res.setHeader('Cache-Control', 'no-store')
    res.json({ keys: (await deps.apiKeys.list(identity)).map(presentKey) })
  })

  router.post('/account/keys', async (req, res) => {
    const { identity } = requireCaller(req, 'account')
    try {
      // The schema the OpenAPI description is generated from.
      const parsed = newApiKeyRequest.safeParse(req.body ?? {})
      if (!parsed.success) throw new BadRequestError(parsed.error.issues.map((i) => i.message).join('; '))
      const { name, scopes, expiresAt, expiresInDays } = parsed.data
      if (expiresAt !== undefined && expiresInDays !== undefined) throw new BadRequestError('give expiresAt or expiresInDays, not both')
      const expiry = expiresAt !== undefined ? new Date(expiresAt) : expiresInDays !== undefined ? new Date(Date.now() + expiresInDays * DAY_MS) : null
      const { key, secret } = await deps.apiKeys.create(identity, { name, scopes, expiresAt: expiry })
      req.log.info({ username: identity.username, key: key.name, scopes: key.scopes }, 'API key created')
      res.status(201).setHeader('Cache-Control', 'no-store')
      if (wantsHtml(req)) { res.render('api-key-created', { title: 'Your new API key', key: presentKey(key), secret }); return }
      res.json({ ...presentKey(key), key: secret })
    } catch (err) {
      if ((err instanceof BadRequestError || err instanceof ConflictError) && wantsHtml(req)) { await renderAccount(req, res, err.status, err.message); return }
      throw err
    }
  })

  router.delete('/account/keys/:id', async (req, res) => {
    const { identity } = requireCaller(req, 'account')
    await deps.apiKeys.revoke(identity, keyId(req))
    res.status(204).end()
  })

  router.post('/account/keys/:id/revoke', async (req, res) => {
    const { identity } = requireCaller(req, 'account')
    await deps.apiKeys.revoke(identity, keyId(req))
    if (!wantsHtml(req)) { res.status(204).end(); return }
    res.redirect(303, '/account')
  })

  return router
}
