import type { ErrorRequestHandler, Request, RequestHandler } from 'express'
import multer from 'multer'
import type { Logger } from 'pino'
import { BadRequestError, ClientClosedRequestError, HeimdallError, InsufficientStorageError, isOutOfSpace, NotFoundError, PayloadTooLargeError, ServiceUnavailableError, TooManyRequestsError } from '../../errors.ts'
import { isDatabaseUnavailable } from '../../db/unavailable.ts'
import { wantsHtml } from '../negotiate.ts'

export const notFound: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`no page at ${req.path}`))
}

/**
 * PostgreSQL refusing text it cannot store: a NUL character (which UTF-8
 * allows and PostgreSQL's text does not) or invalid encoding, sent in a name,
 * a search or a credential. The client's input, so a 400, not a 500.
 */
export function isUnstorableText (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return err instanceof Error && 'severity' in err && (code === '22021' || code === '22P05')
}

/** Did the client go away? Then there is no one to answer. */
function clientGone (req: Request, err: unknown): boolean {
  if (err instanceof ClientClosedRequestError) return true
  if (err instanceof Error && (err.message === 'Request aborted' || err.name === 'AbortError')) return true
  return req.destroyed && !req.complete
}

/** Translates what body parsers, the router and multer throw into our own errors. */
function normalize (err: unknown, maxUploadBytes: number): unknown {
  if (err instanceof HeimdallError) return err
  if (err instanceof multer.MulterError) {
    if (err.code === 'LIMIT_FILE_SIZE') return new PayloadTooLargeError(`the upload is larger than ${maxUploadBytes} bytes`)
    if (err.code === 'LIMIT_UNEXPECTED_FILE') return new BadRequestError(`send one file, in the form field "file" (got "${err.field ?? ''}")`)
    return new BadRequestError(`the upload form is malformed: ${err.message}`)
  }
  if (err instanceof URIError || (err instanceof Error && err.message.startsWith('Failed to decode param'))) {
    return new BadRequestError('the address has malformed percent-encoding (such as %zz or a cut-off UTF-8 sequence)')
  }
  if (typeof err === 'object' && err !== null && ('status' in err || 'statusCode' in err)) {
    // body-parser's and the router's errors carry a status (and often a type such as 'entity.parse.failed').
    const status = Number((err as { status?: unknown }).status ?? (err as { statusCode?: unknown }).statusCode)
    if (status === 413) return new PayloadTooLargeError('the request body is too large')
    if (status === 400 || status === 415) return new BadRequestError('the request body could not be read')
    if (status > 400 && status < 500) return new HeimdallError('the request cannot be answered', 'ERR_BAD_REQUEST', status)
  }
  if (err instanceof Error && /Unexpected end of form|Malformed part header|Multipart: Boundary not found|Malformed urlencoded form/i.test(err.message)) {
    return new BadRequestError(`the upload form is malformed: ${err.message}`)
  }
  if (isDatabaseUnavailable(err)) return new ServiceUnavailableError('the database cannot be reached; try again later')
  if (isUnstorableText(err)) return new BadRequestError('text with a NUL character, or bytes that are not UTF-8, cannot be stored or looked up')
  if (isOutOfSpace(err)) return new InsufficientStorageError()
  return err
}

/**
 * One place turns errors into answers: `{ "error", "details" }` for API
 * clients, a readable page for browsers, never a stack trace.
 */
export function errorHandler (logger: Logger, maxUploadBytes: number): ErrorRequestHandler {
  return (rawErr: unknown, req, res, next) => {
    if (clientGone(req, rawErr)) {
      // Normal on the web: a closed tab, a cancelled upload. Nothing to answer.
      logger.info({ reqId: req.id, reason: rawErr instanceof Error ? rawErr.message : String(rawErr) }, 'client closed the request')
      if (!res.headersSent) res.status(499)
      res.destroy()
      return
    }
    const err = normalize(rawErr, maxUploadBytes)
    if (res.headersSent) { next(err); return }
    const known = err instanceof HeimdallError
    if (!known) logger.error({ err, reqId: req.id }, 'unhandled error')
    else if (err instanceof ServiceUnavailableError) logger.warn({ err: rawErr, reqId: req.id }, err.message)
    const status = known ? err.status : 500
    const message = known ? err.message : 'internal error'
    const details = known ? err.details : []
    const code = known ? err.code : 'ERR_INTERNAL'
    // For the metrics (uploads refused, by reason).
    res.locals.errorCode = code
    res.status(status)
    // Refused before its body was all read (too large, a full disk): the connection ends with the answer, rather than
    // read whatever else the client sends.
    if (!req.complete) res.setHeader('Connection', 'close')
    if (err instanceof TooManyRequestsError) res.setHeader('Retry-After', String(err.retryAfterSeconds))
    // RFC 9110: a 401 says how to authenticate (a Bearer token or API key; browsers show no dialog for it).
    if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="heimdall"')
    if (wantsHtml(req)) {
      res.render('error', { title: `Error ${status}`, status, message, details, requestId: req.id }, (renderErr: Error | null, html?: string) => {
        // A page that cannot be drawn (a broken view, a template that needs what this request lacks) still answers.
        if (renderErr !== null) { logger.error({ err: renderErr, reqId: req.id }, 'error page failed to render'); res.type('text/plain').send(`${status} ${message}`); return }
        res.send(html)
      })
    } else {
      // The request id is also in the X-Request-Id header and in the log line: what to quote to an operator.
      res.json({ error: message, code, details, requestId: req.id })
    }
  }
}
