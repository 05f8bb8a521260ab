import type { ErrorRequestHandler, RequestHandler } from 'express'
import multer from 'multer'
import type { Logger } from 'pino'
import { BadRequestError, HeimdallError, NotFoundError, PayloadTooLargeError } from '../../errors.ts'
import { wantsHtml } from '../negotiate.ts'

export const notFound: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`no page at ${req.path}`))
}

/** Translates what body parsers and multer throw into our own errors. */
function normalize (err: unknown, maxUploadBytes: number): unknown {
  if (err instanceof multer.MulterError) {
    if (err.code === 'LIMIT_FILE_SIZE') return new PayloadTooLargeError(`the upload is larger than ${maxUploadBytes} bytes`)
    if (err.code === 'LIMIT_UNEXPECTED_FILE') return new BadRequestError(`send one file, in the form field "file" (got "${err.field ?? ''}")`)
    return new BadRequestError(`the upload form is malformed: ${err.message}`)
  }
  if (typeof err === 'object' && err !== null && 'type' in err && 'status' in err) {
    // body-parser's errors carry a status and a type such as 'entity.parse.failed'.
    const status = Number(err.status)
    if (status === 413) return new PayloadTooLargeError('the request body is too large')
    if (status === 400 || status === 415) return new BadRequestError('the request body could not be read')
  }
  if (err instanceof Error && /Unexpected end of form|Malformed part header|Multipart: Boundary not found/i.test(err.message)) {
    return new BadRequestError(`the upload form is malformed: ${err.message}`)
  }
  return err
}

/**
 * One place turns errors into answers: `{ "error", "details" }` for API
 * clients, a readable page for browsers, never a stack trace.
 */
export function errorHandler (logger: Logger, maxUploadBytes: number): ErrorRequestHandler {
  return (rawErr: unknown, req, res, next) => {
    const err = normalize(rawErr, maxUploadBytes)
    if (res.headersSent) { next(err); return }
    const known = err instanceof HeimdallError
    if (!known) logger.error({ err, reqId: req.id }, 'unhandled error')
    const status = known ? err.status : 500
    const message = known ? err.message : 'internal error'
    const details = known ? err.details : []
    res.status(status)
    if (wantsHtml(req)) {
      res.render('error', { title: `Error ${status}`, status, message, details })
    } else {
      res.json({ error: message, code: known ? err.code : 'ERR_INTERNAL', details })
    }
  }
}
