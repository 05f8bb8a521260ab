import { rm } from 'node:fs/promises'
import { Router, type Request, type RequestHandler, type Response } from 'express'
import { gzippedModelExtensions } from '../../assets/asset-kinds.ts'
import type { Identity } from '../../db/identity-repository.ts'
import { BadRequestError, ClientClosedRequestError, PayloadTooLargeError } from '../../errors.ts'
import type { QuotaService, QuotaStatus } from '../../services/quota-service.ts'
import type { RateLimiter } from '../../services/rate-limiter.ts'
import type { UploadName, UploadService } from '../../services/upload-service.ts'
import { wantsHtml } from '../negotiate.ts'
import { presentAddedItems, presentUpload } from '../presenters.ts'
import type { CsrfProtection } from '../csrf.ts'
import { callerOf, requireCaller, type Authenticator } from '../authentication.ts'
import { credentialsFrom } from '../credentials.ts'
import { FORM_SLACK_BYTES, uploadReceiver, type ReceivedUpload } from '../upload-receiver.ts'

export interface UploadRoutesDeps {
  authenticator: Authenticator
  quotas: QuotaService
  limiter: RateLimiter
  uploads: UploadService
  csrf: CsrfProtection
  tmpDir: string
  maxUploadBytes: number
  /** Extensions accepted at the top level, shown on the upload page. */
  assetExtensions: ReadonlySet<string>
  gatewayUrl: string
}

const OWNER = Symbol('owner')
const QUOTA = Symbol('quota')
type WithOwner = Request & { [OWNER]?: Identity, [QUOTA]?: QuotaStatus }

/**
 * What a request may carry beyond the bytes it stores: multipart framing and
 * fields, a zip's headers and directory, a CAR's block headers and directory
 * nodes. Checks on what is received allow this much; the upload's exact size
 * is checked when it is recorded.
 */
export const slack = (bytes: number): number => Math.max(1024 * 1024, Math.ceil(bytes * 0.02))
export const carriesMore = (name: UploadName): boolean => name.isBundle || name.isCar === true

export function uploadRoutes (deps: UploadRoutesDeps): Router {
  const router = Router()

  /**
   * The credentials sent so far (header, or form fields before the file),
   * else a browser session; allowed to upload, within its rate limit and
   * quota. `fileBytes`: the file's size once it is known (on disk).
   */
  async function owner (req: WithOwner, final: boolean, fileBytes?: number): Promise<Identity | undefined> {
    if (req[OWNER] !== undefined) {
      if (fileBytes !== undefined && req[QUOTA] === undefined) req[QUOTA] = await deps.quotas.beforeUpload(req[OWNER], fileBytes)
      return req[OWNER]
    }
    // What identify() sees: it reads the fields at once, and more may arrive while it waits on the database.
    const sent = credentialsFrom(req).token !== undefined
    await deps.authenticator.identify(req)
    if (callerOf(req) === undefined && !final && !sent) return undefined
    const { identity } = requireCaller(req, 'upload', 'username and token are required')
    await deps.limiter.upload(identity.id)
    // Before a byte of the file: the declared length (the file and its framing) must fit; while it streams, the file itself.
    const declared = Number(req.headers['content-length'])
    req[QUOTA] = await deps.quotas.beforeUpload(identity, fileBytes ?? (Number.isSafeInteger(declared) ? Math.max(0, declared - slack(declared)) : 0))
    return (req[OWNER] = identity)
  }

  const receive = uploadReceiver({
    tmpDir: deps.tmpDir,
    maxUploadBytes: deps.maxUploadBytes,
    uploads: deps.uploads,
    // What the file may have once its owner is known: the bytes left in the owner's quota.
    byteLimit: (req: WithOwner, name) => {
      const status = req[QUOTA]
      if (status === undefined) return undefined
      const left = Math.max(0, status.quota.bytes - status.usage.bytes)
      return { bytes: carriesMore(name) ? left + slack(left) : left, exceeded: (received: number) => deps.quotas.tooLarge(status, received) }
    },
    // Refuse a forged browser post, or bad credentials, before a byte of the file is read.
    identify: async (req) => { deps.csrf.verify(req); return owner(req, false) }
  })

  router.get('/upload', (req, res) => {
    const identity = callerOf(req)?.identity
    res.render('upload', { title: 'Upload', signedInAs: identity?.username ?? null, maxUploadBytes: deps.maxUploadBytes, extensions: [...deps.assetExtensions, ...gzippedModelExtensions(deps.assetExtensions), 'zip', 'car'] })
  })

  // Credentials in a header (the add-on's bearer form, scripts, API keys): the owner, rate limit and quota
  // (by Content-Length) are checked before multer, which would read the whole body before answering an error. So is a
  // Content-Length no file within MAX_UPLOAD_BYTES reaches, with its framing and the form's fields (at most 16 × 8 KiB).
  const early: RequestHandler = (req, _res, next) => {
    const declared = Number(req.headers['content-length'])
    if (Number.isSafeInteger(declared) && declared > deps.maxUploadBytes + FORM_SLACK_BYTES) { next(new PayloadTooLargeError(`the upload is larger than ${deps.maxUploadBytes} bytes`)); return }
    if (req.headers.authorization === undefined) { next(); return }
    owner(req, false).then(() => { next() }, next)
  }

  router.post('/upload', early, receive, async (req: Request, res: Response) => {
    const file = req.file as (Express.Multer.File & ReceivedUpload) | undefined
    let imported = file?.imported
    // A client that leaves while its owner is checked or its file is imported from disk stops the import, as on the streaming path.
    const abort = new AbortController()
    const left = (): void => { if (!res.writableEnded) abort.abort(new ClientClosedRequestError()) }
    // Gone already while multer waited for the file's storage (an import finishing after the client left): nothing is committed.
    if (res.closed) left(); else res.once('close', left)
    try {
      deps.csrf.verify(req)
      if (file === undefined) throw new BadRequestError('send the file as multipart/form-data in the field "file"')
      const identity = await owner(req, true, carriesMore(file.name) ? Math.max(0, file.size - slack(file.size)) : file.size)
      if (identity === undefined) throw new BadRequestError('username and token are required')
      abort.signal.throwIfAborted()
      imported ??= await deps.uploads.importReceived(file.name, file.path, abort.signal)
      abort.signal.throwIfAborted()
      const outcome = await deps.uploads.commit(identity, imported, deps.quotas)
      req.log.info({ rootCid: outcome.upload.rootCid, owner: identity.username, created: outcome.created, size: outcome.upload.size }, 'upload stored')
      if (wantsHtml(req)) {
        // Links only: kept for Back (a no-store answer to a POST is Chromium's "Confirm Form Resubmission" on the way back).
        res.setHeader('Cache-Control', 'private')
        res.render('upload-result', { title: 'Uploaded', upload: presentUpload(outcome.upload, deps.gatewayUrl), created: outcome.created })
        return
      }
      res.json(presentAddedItems(outcome, deps.gatewayUrl))
    } finally {
      // Not committed (refused before commit, or the client left): its blocks go. After a commit this does nothing.
      if (imported !== undefined) await deps.uploads.drop(imported)
      if (file?.path !== undefined) await rm(file.path, { force: true })
    }
  })

  return router
}
