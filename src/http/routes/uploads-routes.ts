import express, { Router, type Request, type Response } from 'express'
import { extensionOf } from '../../assets/asset-kinds.ts'
import type { Identity } from '../../db/identity-repository.ts'
import { BadRequestError, ForbiddenError, HeimdallError, NotFoundError, TooManyRequestsError, UnauthorizedError } from '../../errors.ts'
import type { UploadService } from '../../services/upload-service.ts'
import { MAX_THUMBNAIL_BYTES, type ThumbnailService } from '../../services/thumbnail-service.ts'
import { parseCid } from '../cid-param.ts'
import { credentialsFrom } from '../credentials.ts'
import { bearerOf, callerOf, requireCaller, type Authenticator, type Caller, type Scope } from '../authentication.ts'
import type { QuotaService } from '../../services/quota-service.ts'
import { wantsHtml } from '../negotiate.ts'
import { map, streamJsonList } from '../json-stream.ts'
import { gatewayLink, presentPinRequest, presentUpload } from '../presenters.ts'
import { describeReach, type IpfsReach } from '../ipfs-reach.ts'
import { PIN_STATUSES } from '../../db/pin-request-repository.ts'
import type { PinRequestService } from '../../services/pin-request-service.ts'
import type { BrowserSessions } from '../session.ts'
import { idParam, MAX_LIST_LIMIT, uploadListQuery } from '../openapi/requests.ts'

export interface UploadsRoutesDeps {
  authenticator: Authenticator
  quotas: QuotaService
  uploads: UploadService
  sessions: BrowserSessions
  /** Refuses a sign-in sent from another site (CsrfProtection.checkSignIn). */
  signIn: { checkSignIn: (req: Request) => void }
  thumbnails: ThumbnailService
  gatewayUrl: string
  /** The person's Pinning Service API requests, listed with their uploads. */
  pinRequests?: Pick<PinRequestService, 'list'>
  /** Where content can be fetched from, said in the JSON list. */
  ipfsReach?: IpfsReach
}

/** Pin requests listed on the page and in the JSON list: the newest. */
const PIN_REQUESTS_LISTED = 50
const PIN_REQUESTS_IN_JSON = 1000

/** Textures a browser shows itself: their thumbnail is the file, sized by the page. */
const BROWSER_IMAGES = new Set(['png', 'jpg', 'jpeg', 'webp', 'gif', 'bmp'])

/** Shown until a model or avatar has its picture, and for what has none. */
const NEUTRAL_ICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="8" fill="#1d2230"/>' +
  '<path d="M32 12 50 22v20L32 52 14 42V22z" fill="none" stroke="#8a93a6" stroke-width="3" stroke-linejoin="round"/><path d="M14 22l18 10 18-10M32 32v20" fill="none" stroke="#8a93a6" stroke-width="3"/></svg>'

const PAGE_SIZE = 50

const intParam = (value: unknown, fallback: number, max: number): number => {
  const n = typeof value === 'string' ? Number.parseInt(value, 10) : Number.NaN
  return Number.isFinite(n) && n >= 0 ? Math.min(n, max) : fallback
}

export function uploadsRoutes (deps: UploadsRoutesDeps): Router {
  const router = Router()

  async function renderList (req: Request, res: Response, identity: Identity): Promise<void> {
    const search = typeof req.query.q === 'string' ? req.query.q.trim().slice(0, 100) : ''
    if (wantsHtml(req)) {
      let page = Math.max(1, intParam(req.query.page, 1, 1_000_000))
      const [listed, quota, pins] = await Promise.all([
        deps.uploads.list(identity, { limit: PAGE_SIZE, offset: (page - 1) * PAGE_SIZE, search }),
        deps.quotas.status(identity),
        listPinRequests(identity, PIN_REQUESTS_LISTED)
      ])
      let { uploads, total } = listed
      // Past the last page (a stale Next link after a delete, a narrower search): the last page, not "nothing yet".
      if (uploads.length === 0 && total > 0 && page > 1) {
        page = Math.ceil(total / PAGE_SIZE)
        ;({ uploads, total } = await deps.uploads.list(identity, { limit: PAGE_SIZE, offset: (page - 1) * PAGE_SIZE, search }))
      }
      res.setHeader('Cache-Control', 'no-store')
      res.render('uploads', {
        title: 'My uploads',
        username: identity.username,
        uploads: uploads.map((u) => presentUpload(u, deps.gatewayUrl)),
        page,
        pages: Math.max(1, Math.ceil(total / PAGE_SIZE)),
        total,
        search,
        quota,
        pinRequests: pins.results.map((p) => presentPinRequest(p, deps.gatewayUrl)),
        pinRequestCount: pins.count
      })
      return
    }
    // The JSON list's query, parsed with the schema its OpenAPI description is made of.
    const query = uploadListQuery.safeParse(req.query)
    if (!query.success) throw new BadRequestError(`the query is malformed: ${query.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`)
    const limit = query.data.limit ?? MAX_LIST_LIMIT
    const offset = query.data.offset ?? 0
    const [total, { usage, quota }, pins] = await Promise.all([deps.uploads.count(identity, search), deps.quotas.status(identity), listPinRequests(identity, PIN_REQUESTS_IN_JSON)])
    res.setHeader('Cache-Control', 'no-store')
    // Keys are only ever added here: the add-on reads `uploads`. Pin requests (every status, newest first) and where content can be fetched come first.
    await streamJsonList(res, {
      username: identity.username,
      total,
      limit,
      offset,
      usage,
      quota,
      ...(deps.ipfsReach === undefined ? {} : { ipfs: describeReach(deps.ipfsReach, deps.gatewayUrl) }),
      pinRequestTotal: pins.count,
      pinRequests: pins.results.map((p) => presentPinRequest(p, deps.gatewayUrl))
    }, 'uploads',
      map(deps.uploads.listStream(identity, { limit, offset, search }), (u) => presentUpload(u, deps.gatewayUrl)))
  }

  /** The person's pin requests of every status, newest first. */
  async function listPinRequests (identity: Identity, limit: number): Promise<{ results: Awaited<ReturnType<PinRequestService['list']>>['results'], count: number }> {
    if (deps.pinRequests === undefined) return { results: [], count: 0 }
    return deps.pinRequests.list(identity, { statuses: [...PIN_STATUSES] }, limit)
  }

  function renderSignIn (res: Response, err: HeimdallError | null, username = ''): void {
    if (err instanceof TooManyRequestsError) res.setHeader('Retry-After', String(err.retryAfterSeconds))
    if (err?.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="heimdall"')
    res.status(err?.status ?? 200).render('sign-in', { title: 'My uploads', error: err?.message ?? null, username })
  }

  /**
   * Signs a browser in: cookie set, then a redirect so the token leaves the
   * address bar and history. Only with the identity's token: a session has
   * the `account` scope (keys, token, sessions), which no API key may give,
   * and would outlive the key's revocation. A disabled identity gets none.
   */
  async function signInAndRedirect (req: Request, res: Response, caller: Caller): Promise<void> {
    if (caller.via === 'api-key') throw new ForbiddenError('an API key cannot sign a browser in: sign in with your username and token')
    if (caller.identity.disabledAt !== null) throw new ForbiddenError('this identity is disabled by the operator of this node')
    await deps.sessions.start(req, res, caller.identity)
    res.redirect(303, '/uploads')
  }

  router.get('/uploads', async (req, res) => {
    const { username, token } = req.query
    if (token !== undefined) {
      // The add-on opens /uploads?username=…&token=… in a browser.
      try {
        deps.signIn.checkSignIn(req)
        await signInAndRedirect(req, res, await deps.authenticator.authenticate(req, username, token))
      } catch (err) {
        if ((err instanceof UnauthorizedError || err instanceof ForbiddenError || err instanceof TooManyRequestsError) && wantsHtml(req)) { renderSignIn(res, err, typeof username === 'string' ? username : ''); return }
        throw err
      }
      return
    }
    if (bearerOf(req) !== undefined || callerOf(req) !== undefined) {
      await renderList(req, res, requireOwner(req, 'list'))
      return
    }
    if (wantsHtml(req)) { renderSignIn(res, null); return }
    throw new UnauthorizedError('sign in: POST username and token, or send Authorization: Bearer <token>')
  })

  router.post('/uploads', async (req, res) => {
    const { username, token } = credentialsFrom(req)
    try {
      // The credentials of this form, not a browser session's: a sign-in.
      if (token === undefined) throw new UnauthorizedError('a token is required')
      const caller = requireCaller(req, 'list')
      if (wantsHtml(req)) { deps.signIn.checkSignIn(req); await signInAndRedirect(req, res, caller); return }
      await renderList(req, res, caller.identity)
    } catch (err) {
      if (err instanceof HeimdallError && wantsHtml(req)) { renderSignIn(res, err, typeof username === 'string' ? username : ''); return }
      throw err
    }
  })

  /** The signed-in owner, allowed `scope`: a bearer token or API key (API clients), or the browser session. */
  const requireOwner = (req: Request, scope: Scope): Identity => requireCaller(req, scope).identity

  const uploadId = (req: Request): number => {
    const parsed = idParam.safeParse(req.params)
    if (!parsed.success) throw new NotFoundError('no such upload')
    return parsed.data.id
  }

  router.get('/uploads/:id', async (req, res) => {
    let owner: Identity | undefined
    try {
      owner = requireOwner(req, 'list')
    } catch (err) {
      if (!(err instanceof UnauthorizedError && wantsHtml(req))) throw err
    }
    if (owner === undefined) { res.redirect(303, '/uploads'); return }
    const upload = presentUpload(await deps.uploads.get(owner, uploadId(req)), deps.gatewayUrl)
    res.setHeader('Cache-Control', 'no-store')
    if (wantsHtml(req)) { res.render('upload-detail', { title: upload.name, upload }); return }
    res.json(upload)
  })

  // The picture of an upload: the one its creator's browser rendered, the texture itself, or a neutral icon.
  router.get('/uploads/:id/thumbnail', async (req, res) => {
    const owner = requireOwner(req, 'list')
    const upload = await deps.uploads.get(owner, uploadId(req))
    res.setHeader('Cache-Control', 'private, no-cache')
    const stored = await deps.thumbnails.find(owner, upload.id)
    if (stored !== undefined) { res.type(stored.mediaType).send(stored.image); return }
    if (upload.kind === 'texture' && upload.primaryPath !== null && BROWSER_IMAGES.has(extensionOf(upload.primaryPath))) {
      res.redirect(302, gatewayLink(deps.gatewayUrl, upload.rootCid, upload.primaryPath))
      return
    }
    res.type('image/svg+xml').send(NEUTRAL_ICON)
  })

  // The preview page sends the picture it rendered, once, for the owner's uploads of that content.
  router.post('/uploads/thumbnails/:cid', express.raw({ type: ['image/png', 'image/webp', 'image/jpeg'], limit: MAX_THUMBNAIL_BYTES }), async (req, res) => {
    const owner = requireOwner(req, 'upload')
    const cid = parseCid(req.params.cid).toString()
    const saved = await deps.thumbnails.save(owner, cid, Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0))
    res.status(saved > 0 ? 201 : 200).json({ saved })
  })

  // The confirmation a browser sees before deleting: it works without JavaScript.
  router.get('/uploads/:id/delete', async (req, res) => {
    const upload = presentUpload(await deps.uploads.get(requireOwner(req, 'delete'), uploadId(req)), deps.gatewayUrl)
    res.setHeader('Cache-Control', 'no-store')
    res.render('confirm-delete', { title: `Delete ${upload.name}?`, upload })
  })

  router.delete('/uploads/:id', async (req, res) => {
    await deps.uploads.remove(requireOwner(req, 'delete'), uploadId(req))
    res.status(204).end()
  })

  // Browser forms cannot send DELETE. The session cookie is SameSite=Strict, so another site cannot post this.
  router.post('/uploads/:id/delete', async (req, res) => {
    await deps.uploads.remove(requireOwner(req, 'delete'), uploadId(req))
    res.redirect(303, '/uploads')
  })

  // Ends the session server-side: a copy of the cookie signs nobody in afterwards.
  router.post('/signout', async (req, res) => {
    // Only a request that carries the session ends it: a post from another site carries no cookie (SameSite=Strict), and must not drop this browser's.
    if (deps.sessions.read(req) !== undefined) await deps.sessions.end(req, res)
    res.redirect(303, '/')
  })

  return router
}
