import { rm } from 'node:fs/promises'
import { Router, type Request, type Response } from 'express'
import type { Identity } from '../../db/identity-repository.ts'
import { BadRequestError, ClientClosedRequestError } from '../../errors.ts'
import type { IdentityService } from '../../services/identity-service.ts'
import type { UploadService } from '../../services/upload-service.ts'
import { credentialsFrom } from '../credentials.ts'
import { wantsHtml } from '../negotiate.ts'
import { presentAddedItems, presentUpload } from '../presenters.ts'
import type { CsrfProtection } from '../csrf.ts'
import { sessionIdentity } from '../session-identity.ts'
import { uploadReceiver, type ReceivedUpload } from '../upload-receiver.ts'

export interface UploadRoutesDeps {
  identities: IdentityService
  uploads: UploadService
  csrf: CsrfProtection
  tmpDir: string
  maxUploadBytes: number
  /** Extensions accepted at the top level, shown on the upload page. */
  assetExtensions: ReadonlySet<string>
  gatewayUrl: string
}

const OWNER = Symbol('owner')
type WithOwner = Request & { [OWNER]?: Identity }

export function uploadRoutes (deps: UploadRoutesDeps): Router {
  const router = Router()

  /** A browser session, else the credentials sent so far (header, or form fields before the file). */
  async function owner (req: WithOwner, final: boolean): Promise<Identity | undefined> {
    if (req[OWNER] !== undefined) return req[OWNER]
    const { username, token } = credentialsFrom(req)
    if (token === undefined) {
      const identity = sessionIdentity(req)
      if (identity !== undefined || !final) return (req[OWNER] = identity)
    }
    return (req[OWNER] = await deps.identities.authenticate(username, token))
  }

  const receive = uploadReceiver({
    tmpDir: deps.tmpDir,
    maxUploadBytes: deps.maxUploadBytes,
    uploads: deps.uploads,
    // Refuse a forged browser post, or bad credentials, before a byte of the file is read.
    identify: async (req) => { deps.csrf.verify(req); return owner(req, false) }
  })

  router.get('/upload', (req, res) => {
    const identity = sessionIdentity(req)
    res.render('upload', { title: 'Upload', signedInAs: identity?.username ?? null, maxUploadBytes: deps.maxUploadBytes, extensions: [...deps.assetExtensions, 'zip', 'car'] })
  })

  router.post('/upload', receive, async (req: Request, res: Response) => {
    const file = req.file as (Express.Multer.File & ReceivedUpload) | undefined
    let imported = file?.imported
    try {
      deps.csrf.verify(req)
      const identity = await owner(req, true)
      if (identity === undefined) throw new BadRequestError('username and token are required')
      if (file === undefined) throw new BadRequestError('send the file as multipart/form-data in the field "file"')
      // A client that leaves while its file is imported from disk stops the import, as on the streaming path.
      const abort = new AbortController()
      res.once('close', () => { if (!res.writableEnded) abort.abort(new ClientClosedRequestError()) })
      imported ??= await deps.uploads.importReceived(file.name, file.path, abort.signal)
      abort.signal.throwIfAborted()
      const outcome = await deps.uploads.commit(identity, imported)
      req.log.info({ rootCid: outcome.upload.rootCid, owner: identity.username, created: outcome.created, size: outcome.upload.size }, 'upload stored')
      if (wantsHtml(req)) {
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
