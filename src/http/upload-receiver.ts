import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { join } from 'node:path'
import { Transform, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Request, RequestHandler } from 'express'
import multer from 'multer'
import type { Identity } from '../db/identity-repository.ts'
import { InsufficientStorageError, isOutOfSpace, PayloadTooLargeError } from '../errors.ts'
import type { ImportedUpload, UploadName, UploadService } from '../services/upload-service.ts'

/** What the receiver leaves on `req.file`: the file imported already, or waiting on disk. */
export interface ReceivedUpload {
  name: UploadName
  size: number
  /** The single asset streamed straight into the node while it arrived. */
  imported?: ImportedUpload
  /** The file on disk under tmpDir: a bundle, or an asset whose owner was not known yet. */
  path?: string
}

export interface UploadReceiverOptions {
  tmpDir: string
  maxUploadBytes: number
  uploads: UploadService
  /**
   * The owner from what arrived before the file part (header, session, or
   * fields sent first); undefined when it cannot be known yet. Rejects bad
   * credentials, so that nothing of the file is read.
   */
  identify: (req: Request) => Promise<Identity | undefined>
  /**
   * What this request's file may have, once `identify` knew its owner (the
   * bytes left in the owner's quota), and the error for a file with more;
   * undefined: only maxUploadBytes.
   */
  byteLimit?: (req: Request, name: UploadName) => ByteLimit | undefined
}

export interface ByteLimit {
  bytes: number
  exceeded: (receivedBytes: number) => Error
}

/** Passes bytes on, counting; fails with `limit.exceeded` as soon as more than `limit.bytes` went through, so nothing past it is stored. */
function capped (limit: ByteLimit | undefined, counted: (bytes: number) => void): Transform {
  let total = 0
  return new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      total += chunk.length
      if (limit !== undefined && total > limit.bytes) { callback(limit.exceeded(total)); return }
      counted(total)
      callback(null, chunk)
    }
  })
}

const NAME = Symbol('upload name')
const OWNER_KNOWN = Symbol('owner known')
type ReceivingRequest = Request & { [NAME]?: UploadName, [OWNER_KNOWN]?: boolean }

/**
 * A multer storage engine for the one `file` part. An asset or a CAR whose
 * owner is already known streams straight into the node: no temp file, and
 * the import runs while the bytes arrive. A zip bundle (its directory is at its end)
 * or an asset whose credentials come after it is written under tmpDir.
 * Nothing is pinned or recorded here; the route commits only after multer
 * has read the whole request without error; a truncated or aborted upload
 * is dropped, its blocks removed.
 */
class ReceivingStorage implements multer.StorageEngine {
  readonly #tmpDir: string
  readonly #uploads: UploadService
  readonly #byteLimit: (req: Request, name: UploadName) => ByteLimit | undefined

  constructor (tmpDir: string, uploads: UploadService, byteLimit: (req: Request, name: UploadName) => ByteLimit | undefined = () => undefined) {
    this.#tmpDir = tmpDir
    this.#uploads = uploads
    this.#byteLimit = byteLimit
  }

  _handleFile (req: ReceivingRequest, file: Express.Multer.File, cb: (error?: unknown, info?: Partial<Express.Multer.File> & Partial<ReceivedUpload>) => void): void {
    const name = req[NAME]
    if (name === undefined) { cb(new Error('the file part was not named by the filter')); return }
    let size = 0
    const cap = capped(this.#byteLimit(req, name), (bytes) => { size = bytes })
    // Past MAX_UPLOAD_BYTES busboy stops passing the file on but reads to the part's end, which a chunked body may put
    // off forever; multer would wait for this file's storage until then. Failing it at once lets multer give up now.
    file.stream.once('limit', () => { cap.destroy(new PayloadTooLargeError('the file is larger than the upload limit')) })
    if (!name.isBundle && req[OWNER_KNOWN] === true) {
      const abort = new AbortController()
      req.once('close', () => { if (!req.complete) abort.abort() })
      // The client leaving once all is sent, its import still waiting on the node, stops it too: no one waits for its answer.
      req.res?.once('close', () => { if (req.res?.writableEnded !== true) abort.abort() })
      // The importer reads the cap, and a failure of the part's stream is passed on to it: the importer's to report. Not
      // the other way: an import that fails (a full disk) stops reading, which tears the cap down with an AbortError;
      // passed back to the part's stream, that error reached the route first and read as the client leaving (no answer).
      file.stream.pipe(cap)
      file.stream.once('error', (err) => { cap.destroy(err) })
      this.#uploads.importStream(name, cap, abort.signal).then(
        (imported) => { cb(null, { name, imported, size: [...imported.fileSizes.values()].reduce((a, b) => a + b, 0) }) },
        (err: unknown) => { cb(err) }
      )
      return
    }
    const path = join(this.#tmpDir, `upload-${randomUUID()}`)
    pipeline(file.stream, cap, createWriteStream(path)).then(
      () => { cb(null, { name, path, size }) },
      (err: unknown) => { void rm(path, { force: true }).finally(() => { cb(isOutOfSpace(err) ? new InsufficientStorageError() : err) }) }
    )
  }

  /** multer gives back what it stored when the request fails after the file (a limit, the client leaving): nothing of it may stay. */
  _removeFile (_req: Request, file: Express.Multer.File & Partial<ReceivedUpload>, cb: (error: Error | null) => void): void {
    if (file.imported !== undefined) { this.#uploads.drop(file.imported).then(() => { cb(null) }, (err: unknown) => { cb(err as Error) }); return }
    if (file.path === undefined) { cb(null); return }
    rm(file.path, { force: true }).then(() => { cb(null) }, (err: unknown) => { cb(err as Error) })
  }
}

/**
 * Feeds the body to busboy as multer does, except that a chunked request
 * multer gives up on before its end (a size or quota limit, bad
 * credentials, a malformed body) is handed on at once. multer reads the
 * rest of a refused body, thrown away, before it calls `next` with the
 * error, so that a client still sending (a browser, Python's http.client)
 * reads the answer rather than meeting a reset. A body with a length is
 * bounded (the route refuses one over MAX_UPLOAD_BYTES before reading it),
 * so that stays; a chunked body has no end the server knows, and one over
 * the limit was read for as long as the client went on sending. Its answer
 * now comes first, and the lingering close (middleware/lingering-close.ts)
 * reads the rest for a bounded time.
 *
 * multer gives up by unpiping the request from busboy; it then waits for
 * the request's end only while `req.readable` holds. That is turned off
 * from that moment until multer hands the request on (see `uploadReceiver`),
 * once it has removed what it stored.
 */
function feedBusboy (maxBodyBytes: number) {
  return (req: IncomingMessage, busboy: Writable): void => {
    const chunked = req.headers['content-length'] === undefined
    busboy.once('unpipe', () => {
      if (!chunked || req.readableEnded || req.destroyed) return
      ;(req as AbandonedRequest)[ABANDONED] = true
      req.readable = false
    })
    if (chunked) {
      // What the route refuses by its length when it has one: busboy checks a file's size as it comes, but a field's
      // only at its end, which an endless field never reaches (16 GB were read, never answered).
      let received = 0
      const count = (chunk: Buffer): void => {
        received += chunk.length
        if (received <= maxBodyBytes) return
        req.off('data', count)
        busboy.destroy(new PayloadTooLargeError(`the upload is larger than ${maxBodyBytes} bytes with its form`))
      }
      req.on('data', count)
    }
    req.pipe(busboy)
  }
}

/** What a form may add to its file: framing and fields (at most 16 of 8 KiB), as the route's check of a Content-Length allows. */
export const FORM_SLACK_BYTES = 1024 * 1024

const ABANDONED = Symbol('body abandoned')
type AbandonedRequest = IncomingMessage & { [ABANDONED]?: boolean }

/**
 * Receives exactly one file, field `file`, never holding it in memory. multer
 * enforces the size and part limits and removes a partial temp file when a
 * limit trips or the client goes away; the route removes it after use. A
 * chunked request refused before its body's end is answered without reading
 * the rest first (feedBusboy).
 */
export function uploadReceiver (options: UploadReceiverOptions): RequestHandler {
  const receive = multer({
    // Not in multer's types (multer 2.5).
    ...{ streamHandler: feedBusboy(options.maxUploadBytes + FORM_SLACK_BYTES) } as object,
    storage: new ReceivingStorage(options.tmpDir, options.uploads, options.byteLimit),
    // Browsers put raw UTF-8 in filename="…" without saying so.
    defParamCharset: 'utf8',
    limits: { fileSize: options.maxUploadBytes, files: 1, fields: 16, fieldSize: 8192, parts: 20, headerPairs: 50 },
    fileFilter: (req: ReceivingRequest, file, cb) => {
      try {
        req[NAME] = options.uploads.name(file.originalname)
      } catch (err) {
        cb(err as Error)
        return
      }
      options.identify(req).then((owner) => { req[OWNER_KNOWN] = owner !== undefined; cb(null, true) }, (err: unknown) => { cb(err as Error) })
    }
  }).single('file')
  return (req, res, next) => {
    receive(req, res, (err?: unknown) => {
      // The request is readable again for whatever comes next (the error handler, the lingering close).
      if ((req as AbandonedRequest)[ABANDONED] === true) req.readable = true
      next(err)
    })
  }
}
