import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import { Router, type Request, type Response } from 'express'
import type { Identity } from '../../db/identity-repository.ts'
import type { ResumableUpload } from '../../db/resumable-upload-repository.ts'
import { BadRequestError, ChecksumMismatchError, ConflictError, HeimdallError, NotFoundError, PayloadTooLargeError, PreconditionFailedError, UnsupportedMediaTypeError } from '../../errors.ts'
import type { QuotaService } from '../../services/quota-service.ts'
import type { RateLimiter } from '../../services/rate-limiter.ts'
import type { ResumableUploadService, UploadChecksum } from '../../services/resumable-upload-service.ts'
import type { UploadService } from '../../services/upload-service.ts'
import { requireCaller } from '../authentication.ts'
import { presentAddedItems } from '../presenters.ts'
import { formatUploadMetadata, parseUploadMetadata } from '../tus-metadata.ts'
import { carriesMore, slack } from './upload-routes.ts'

export interface ResumableUploadRoutesDeps {
  quotas: QuotaService
  limiter: RateLimiter
  uploads: UploadService
  resumable: ResumableUploadService
  maxUploadBytes: number
  gatewayUrl: string
  logger: Logger
}

/** Where the tus endpoint is; PLUGIN_ROUTES names it for clients. */
export const RESUMABLE_UPLOAD_PATH = '/upload/resumable'
export const TUS_VERSION = '1.0.0'
export const TUS_EXTENSIONS = 'creation,creation-with-upload,expiration,termination,checksum'
/** tus's checksum extension: the algorithms a request's Upload-Checksum may use (IANA's names, which are node:crypto's; sha1 is required). */
const CHECKSUM_ALGORITHMS = new Set(['md5', 'sha1', 'sha256', 'sha512'])
/**
 * The request's Upload-Checksum (tus checksum extension: `<algorithm> <base64 digest>`), checked before any byte is
 * read: an algorithm not offered, or a digest not of its length, is 400.
 */
function uploadChecksum (req: Request): UploadChecksum | undefined {
  const header = req.get('upload-checksum')
  if (header === undefined) return undefined
  const [name = '', encoded = '', ...rest] = header.trim().split(/ +/)
  const algorithm = name.toLowerCase()
  if (!CHECKSUM_ALGORITHMS.has(algorithm)) throw new BadRequestError(`Upload-Checksum uses "${name}", which this server does not offer: use one of ${[...CHECKSUM_ALGORITHMS].join(', ')}`)
  const digest = Buffer.from(encoded, 'base64')
  if (rest.length > 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || digest.length !== createHash(algorithm).digest().length) {
    throw new BadRequestError('Upload-Checksum must be the algorithm, a space, and the digest in base64')
  }
  return { algorithm, digest }
}

const OFFSET_STREAM = 'application/offset+octet-stream'
const SIGN_IN = 'sign in: send Authorization: Bearer <token or API key>, or sign in in a browser'

/** A non-negative integer header (Upload-Length, Upload-Offset): 400 when missing or not one. */
function byteCount (req: Request, header: string): number {
  const value = req.headers[header]
  const count = typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isSafeInteger(count)) throw new BadRequestError(`send ${header} as a number of bytes`)
  return count
}

/** Whether the request has a body to read (creation-with-upload, PATCH). */
function hasBody (req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
}

function requireOffsetStream (req: Request): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
  if (type !== OFFSET_STREAM) throw new UnsupportedMediaTypeError(`send the bytes with Content-Type: ${OFFSET_STREAM}`)
}

/** What Content-Length announces must fit in what the upload lacks: refused before a byte is written. */
function checkDeclaredLength (req: Request, upload: Pick<ResumableUpload, 'offset' | 'length'>): void {
  const declared = Number(req.headers['content-length'])
  if (Number.isSafeInteger(declared) && upload.offset + declared > upload.length) {
    throw new PayloadTooLargeError(`the request carries ${declared} bytes; the upload lacks ${upload.length - upload.offset} (Upload-Length ${upload.length})`)
  }
}

/** An answer to keep for GET: a refusal of the content (4xx) is final; a failure of ours (5xx) leaves the bytes to try again. */
const isRefusal = (err: unknown): err is HeimdallError => err instanceof HeimdallError && err.status < 500

/**
 * The tus 1.0.0 resumable upload protocol (creation, creation-with-upload,
 * expiration, termination, checksum) beside POST /upload: the same credentials, rate
 * limit, quota and name checks at creation, before any byte is stored; the
 * bytes go to a file under DATA_DIR/resumable; once the last one is in, the
 * file is imported and committed exactly as a plain upload's file on disk,
 * and the final PATCH (or GET afterwards) answers the same JSON. See
 * "Resumable uploads (tus)" in README.md.
 */
/** What a refused upload answers, now and to a GET later: POST /upload's status and JSON. */
function answerOfRefusal (err: HeimdallError): { status: number, body: unknown } {
  return { status: err.status, body: { error: err.message, code: err.code, details: err.details } }
}

/** Whether the client asked for JSON by name (tus clients send no Accept; a missing one is not a request for the answer). */
function asksForJson (req: Request): boolean {
  return /\bapplication\/json\b/i.test(req.get('accept') ?? '')
}

export function resumableUploadRoutes (deps: ResumableUploadRoutesDeps): Router {
  const router = Router()
  const { resumable } = deps

  router.use(RESUMABLE_UPLOAD_PATH, (req, res, next) => {
    res.setHeader('Tus-Resumable', TUS_VERSION)
    // GET (the answer of a finished upload) is ours, not tus's: plain clients may ask it without the header.
    if (req.method === 'OPTIONS' || req.method === 'GET') { next(); return }
    if (req.headers['tus-resumable'] !== TUS_VERSION) {
      res.setHeader('Tus-Version', TUS_VERSION)
      next(new PreconditionFailedError(`send Tus-Resumable: ${TUS_VERSION}, the only tus version this server speaks`))
      return
    }
    // For clients behind proxies that only pass GET and POST (tus-js-client's overridePatchMethod).
    const override = req.headers['x-http-method-override']
    if (req.method === 'POST' && (override === 'PATCH' || override === 'DELETE') && req.path !== '/') req.method = override
    next()
  })

  const options = (_req: Request, res: Response): void => {
    res.setHeader('Tus-Version', TUS_VERSION)
    res.setHeader('Tus-Extension', TUS_EXTENSIONS)
    res.setHeader('Tus-Checksum-Algorithm', [...CHECKSUM_ALGORITHMS].join(','))
    res.setHeader('Tus-Max-Size', String(deps.maxUploadBytes))
    res.status(204).end()
  }
  router.options(RESUMABLE_UPLOAD_PATH, options)
  router.options(`${RESUMABLE_UPLOAD_PATH}/:id`, options)

  const headersOf = (res: Response, upload: ResumableUpload, offset: number, expiresAt = upload.expiresAt): void => {
    res.setHeader('Upload-Offset', String(offset))
    res.setHeader('Upload-Length', String(upload.length))
    res.setHeader('Upload-Expires', expiresAt.toUTCString())
    res.setHeader('Cache-Control', 'no-store')
  }

  /**
   * Every byte is in: the file is imported and committed as POST /upload
   * commits a file on disk. The client leaving does not stop it (its answer
   * is kept for GET); shutting down does, and the bytes stay for a retry.
   */
  async function finish (req: Request, upload: ResumableUpload, identity: Identity, importing: () => void): Promise<unknown> {
    importing()
    const name = deps.uploads.name(upload.fileName)
    let imported
    try {
      imported = await deps.uploads.importReceived(name, resumable.pathOf(upload.id), resumable.closing)
      const outcome = await deps.uploads.commit(identity, imported, deps.quotas)
      const body = presentAddedItems(outcome, deps.gatewayUrl)
      await resumable.complete(upload.id, { status: 200, body, uploadId: outcome.upload.id })
      req.log.info({ rootCid: outcome.upload.rootCid, owner: identity.username, created: outcome.created, size: outcome.upload.size, resumable: upload.id }, 'upload stored')
      return body
    } catch (err) {
      if (isRefusal(err)) await resumable.complete(upload.id, answerOfRefusal(err))
      throw err
    } finally {
      // Not committed: its blocks go. After a commit this does nothing.
      if (imported !== undefined) await deps.uploads.drop(imported)
    }
  }

  /**
   * Writes the request's bytes at the upload's offset, within the upload's lock; imports when they were the last.
   * `checksum`: the request's Upload-Checksum, parsed before the lock was taken.
   */
  async function receive (req: Request, upload: ResumableUpload, identity: Identity, checksum: UploadChecksum | undefined, signal: AbortSignal, importing: () => void, onBodyFailed?: () => Promise<void>): Promise<{ offset: number, expiresAt: Date, body?: unknown }> {
    let { offset, expiresAt } = upload
    // An empty request is checked too: its bytes are none, and they must hash to what it says.
    if (!hasBody(req) && checksum !== undefined && !createHash(checksum.algorithm).digest().equals(checksum.digest)) {
      throw new ChecksumMismatchError(`an empty request does not match its Upload-Checksum (${checksum.algorithm})`)
    }
    if (hasBody(req)) {
      try {
        ({ offset, expiresAt } = await resumable.append(upload, req, signal, checksum))
      } catch (err) {
        await onBodyFailed?.()
        throw err
      }
    }
    if (offset < upload.length) return { offset, expiresAt }
    return { offset, expiresAt, body: await finish(req, { ...upload, offset }, identity, importing) }
  }

  /**
   * The upload's answer, once every byte is in: the one recorded, else the
   * import's. An import under way is waited for; one that failed on the
   * server's side (a 5xx, a restart) is run again. tus clients retry a final
   * PATCH that failed with a HEAD, which then says the upload is complete,
   * and stop there: the GET that follows gets the answer instead of a 409.
   */
  async function answerOf (req: Request, upload: ResumableUpload, identity: Identity): Promise<{ status: number, body: unknown }> {
    if (upload.result !== null) return upload.result
    resumable.assertHere(upload)
    return resumable.exclusive(upload.id, async (_signal, importing) => {
      const current = await resumable.get(upload.id, identity)
      if (current.result !== null) return current.result
      if (current.offset < current.length) throw new ConflictError(`the upload is not finished: ${current.offset} of ${current.length} bytes received`)
      try {
        return { status: 200, body: await finish(req, current, identity, importing) }
      } catch (err) {
        if (!isRefusal(err)) throw err
        return answerOfRefusal(err)
      }
    })
  }

  router.post(RESUMABLE_UPLOAD_PATH, async (req, res) => {
    const { identity } = requireCaller(req, 'upload', SIGN_IN)
    if (req.headers['upload-defer-length'] !== undefined) throw new BadRequestError('Upload-Defer-Length is not supported: send Upload-Length')
    // Not in Tus-Extension, and clients use it unasked (tus-js-client's parallelUploads): a part taken as an upload of
    // its own would be imported, recorded and counted alone. Refused before anything is stored, as a 4xx that clients
    // do not retry.
    if (req.headers['upload-concat'] !== undefined) throw new BadRequestError('Upload-Concat (the concatenation extension) is not supported: send the file as one upload (tus-js-client: parallelUploads 1)')
    const length = byteCount(req, 'upload-length')
    const metadata = parseUploadMetadata(req.get('upload-metadata'))
    const fileName = metadata.get('filename')
    if (fileName === undefined || fileName === '') throw new BadRequestError('Upload-Metadata needs "filename": the file\'s name, in base64')
    const name = deps.uploads.name(fileName)
    if (length > deps.maxUploadBytes) throw new PayloadTooLargeError(`the upload is larger than ${deps.maxUploadBytes} bytes`)
    if (hasBody(req)) requireOffsetStream(req)
    const checksum = uploadChecksum(req)
    checkDeclaredLength(req, { offset: 0, length })
    await deps.limiter.upload(identity.id)
    // As POST /upload checks a file on disk: a bundle's or CAR's own framing is allowed for.
    const declared = carriesMore(name) ? Math.max(0, length - slack(length)) : length
    const status = await deps.quotas.beforeUpload(identity, declared)
    // Beside the owner's other unfinished uploads, which hold their length: partial files stay within the quota.
    const upload = await resumable.create(identity, name.fileName, length, req.get('upload-metadata') ?? null, (unfinished) => { deps.quotas.checkUnfinished(status, declared, unfinished) })
    res.setHeader('Location', `${RESUMABLE_UPLOAD_PATH}/${upload.id}`)
    headersOf(res, upload, 0)
    // A creation whose body fails (too many bytes, a full disk, the client gone) is not answered with its address: the
    // client cannot resume or terminate it, so it goes now rather than hold its length of the quota until it expires.
    const abandon = async (): Promise<void> => {
      res.removeHeader('Location')
      await resumable.terminate(upload.id).catch((err: unknown) => { deps.logger.warn({ err, upload: upload.id }, 'could not remove a resumable upload whose creation failed') })
    }
    const { offset, expiresAt, body } = await resumable.exclusive(upload.id, async (signal, importing) => receive(req, upload, identity, checksum, signal, importing, abandon))
    headersOf(res, upload, offset, expiresAt)
    // 201, as tus requires of a creation; the answer of a completed upload only to a client that asks for JSON (else GET it).
    if (body !== undefined && asksForJson(req)) { res.status(201).json(body); return }
    res.status(201).end()
  })

  /** HEAD: how far the upload got (Express hands HEAD to the GET route; tus asks it with Tus-Resumable). */
  async function head (req: Request, res: Response): Promise<void> {
    const { identity } = requireCaller(req, 'upload', SIGN_IN)
    const id = typeof req.params.id === 'string' ? req.params.id : ''
    let upload = await resumable.get(id, identity)
    const importing = resumable.isImporting(id)
    if (upload.completedAt === null && !importing) {
      resumable.assertHere(upload)
      // A request still writing it is stopped and what it wrote recorded: the offset answered is what is on disk.
      upload = await resumable.exclusive(id, async () => resumable.get(id, identity))
    }
    if (upload.result !== null && upload.result.status !== 200) throw new NotFoundError('this upload was refused and its bytes removed; GET it for the reason')
    headersOf(res, upload, upload.completedAt !== null || importing ? upload.length : upload.offset)
    // As the client sent it, as tus requires (rows from before it was kept: the file name).
    res.setHeader('Upload-Metadata', upload.metadata ?? formatUploadMetadata(new Map([['filename', upload.fileName]])))
    res.status(200).end()
  }

  router.patch(`${RESUMABLE_UPLOAD_PATH}/:id`, async (req, res) => {
    const { identity } = requireCaller(req, 'upload', SIGN_IN)
    const id = typeof req.params.id === 'string' ? req.params.id : ''
    const first = await resumable.get(id, identity)
    requireOffsetStream(req)
    const checksum = uploadChecksum(req)
    const claimed = byteCount(req, 'upload-offset')
    if (first.completedAt === null) resumable.assertHere(first)
    const { upload, offset, expiresAt, body } = await resumable.exclusive(id, async (signal, importing) => {
      // Read again under the lock: a request it stopped may have written more meanwhile.
      const upload = await resumable.get(id, identity)
      if (upload.result !== null) {
        if (upload.result.status !== 200) throw new NotFoundError('this upload was refused and its bytes removed; GET it for the reason')
        // A client whose final PATCH was cut off before the answer sends it again: the same answer.
        if (claimed === upload.length && !hasBody(req)) return { upload, offset: upload.length, expiresAt: upload.expiresAt, body: upload.result.body }
        throw new ConflictError(`this upload is complete: all ${upload.length} bytes were received`)
      }
      if (claimed !== upload.offset) throw new ConflictError(`Upload-Offset is ${claimed}, but the server has ${upload.offset} bytes of this upload: HEAD it and send from there`)
      checkDeclaredLength(req, upload)
      return { upload, ...await receive(req, upload, identity, checksum, signal, importing) }
    })
    headersOf(res, upload, offset, expiresAt)
    // 204, as tus requires (go-tus takes nothing else); the answer of the last PATCH only to a client that asks for JSON (else GET it).
    if (body !== undefined && asksForJson(req)) { res.status(200).json(body); return }
    res.status(204).end()
  })

  router.get(`${RESUMABLE_UPLOAD_PATH}/:id`, async (req, res) => {
    if (req.method === 'HEAD') { await head(req, res); return }
    const { identity } = requireCaller(req, 'upload', SIGN_IN)
    const id = typeof req.params.id === 'string' ? req.params.id : ''
    const upload = await resumable.get(id, identity)
    res.setHeader('Cache-Control', 'no-store')
    if (upload.result === null && upload.offset < upload.length) {
      res.setHeader('Upload-Offset', String(upload.offset))
      res.setHeader('Upload-Length', String(upload.length))
      throw new ConflictError(`the upload is not finished: ${upload.offset} of ${upload.length} bytes received`)
    }
    const { status, body } = await answerOf(req, upload, identity)
    res.status(status).json(status === 200 ? body : { ...(body as object), requestId: req.id })
  })

  router.delete(`${RESUMABLE_UPLOAD_PATH}/:id`, async (req, res) => {
    const { identity } = requireCaller(req, 'upload', SIGN_IN)
    const id = typeof req.params.id === 'string' ? req.params.id : ''
    await resumable.get(id, identity)
    // A request still writing it is stopped first; an import is waited for (the recorded upload stays: DELETE /uploads/<id> removes that).
    await resumable.exclusive(id, async () => { await resumable.terminate(id) })
    res.status(204).end()
  })

  return router
}
