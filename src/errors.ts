import type { CID } from 'multiformats/cid'

/**
 * Every error the service means to show a client is a HeimdallError: a stable
 * `code`, an HTTP `status`, a message fit for a person and optional `details`
 * (one string per offending item). Anything else is a bug and answers 500.
 */
export class HeimdallError extends Error {
  readonly code: string
  readonly status: number
  readonly details: string[]

  constructor (message: string, code: string, status: number, details: string[] = []) {
    super(message)
    this.code = code
    this.status = status
    this.details = details
  }
}

/** How many offending items a refusal lists: enough to show what is wrong (10,000 refused entries made a 2 MB answer). */
export const LISTED_AT_MOST = 100

/** `lines` for an error's details: the first LISTED_AT_MOST, then how many more, then `note` when there is one. */
export function listedAtMost (lines: readonly string[], note?: string): string[] {
  const listed = lines.length <= LISTED_AT_MOST ? [...lines] : [...lines.slice(0, LISTED_AT_MOST), `and ${lines.length - LISTED_AT_MOST} more`]
  return note === undefined ? listed : [...listed, note]
}

export class BadRequestError extends HeimdallError {
  override readonly name = 'BadRequestError'
  constructor (message: string, details?: string[]) { super(message, 'ERR_BAD_REQUEST', 400, details) }
}

export class UnauthorizedError extends HeimdallError {
  override readonly name = 'UnauthorizedError'
  constructor (message = 'unknown username or wrong token') { super(message, 'ERR_UNAUTHORIZED', 401) }
}

export class ForbiddenError extends HeimdallError {
  override readonly name = 'ForbiddenError'
  constructor (message: string) { super(message, 'ERR_FORBIDDEN', 403) }
}

/** An API key without the scope the route needs; the token and browser sessions have every scope. */
export class InsufficientScopeError extends HeimdallError {
  override readonly name = 'InsufficientScopeError'
  constructor (scope: string) { super(`this API key lacks the "${scope}" scope`, 'ERR_INSUFFICIENT_SCOPE', 403) }
}

/** Too many requests of one kind from one client, address or identity: try again after `retryAfterSeconds` (the Retry-After header). */
export class TooManyRequestsError extends HeimdallError {
  override readonly name = 'TooManyRequestsError'
  readonly retryAfterSeconds: number
  constructor (message: string, retryAfterSeconds: number) {
    super(`${message}; try again in ${retryAfterSeconds} s`, 'ERR_TOO_MANY_REQUESTS', 429)
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/**
 * An upload that would take its owner past their quota. 413 for bytes: the
 * content is larger than what is left, and a client may be refused before it
 * sends it; 403 for the number of uploads: no content would fit.
 */
export class QuotaExceededError extends HeimdallError {
  override readonly name = 'QuotaExceededError'
  constructor (message: string, status: 403 | 413, details: string[]) { super(message, 'ERR_QUOTA_EXCEEDED', status, details) }
}

export class NotFoundError extends HeimdallError {
  override readonly name: string = 'NotFoundError'
  constructor (message = 'not found') { super(message, 'ERR_NOT_FOUND', 404) }
}

/**
 * A content path naming something that is not there (a name no directory
 * holds, a key no map has, a name below a file), found from blocks this
 * node has. `walked` holds the blocks read to find so, in the order read:
 * a CAR answers 200 with them, the proof a verifying client checks (as
 * Kubo does); every other answer is a NotFoundError's 404.
 */
export class AbsentPathError extends NotFoundError {
  override readonly name = 'AbsentPathError'
  readonly walked: ReadonlyArray<{ cid: CID, bytes: Uint8Array }>
  constructor (message: string, walked: ReadonlyArray<{ cid: CID, bytes: Uint8Array }>) {
    super(message)
    this.walked = walked
  }
}

/** The representation asked for (`?format=`, `Accept`) cannot be made of this content. */
export class NotAcceptableError extends HeimdallError {
  override readonly name = 'NotAcceptableError'
  constructor (message: string) { super(message, 'ERR_NOT_ACCEPTABLE', 406) }
}

/** Something the request asks that this server does not do, e.g. a path that ends inside an IPLD block on a value that is not a link (boxo's 501). */
export class NotImplementedError extends HeimdallError {
  override readonly name = 'NotImplementedError'
  constructor (message: string) { super(message, 'ERR_NOT_IMPLEMENTED', 501) }
}

/** A request precondition does not hold, e.g. `Cache-Control: only-if-cached` for content not held here. */
export class PreconditionFailedError extends HeimdallError {
  override readonly name = 'PreconditionFailedError'
  constructor (message: string) { super(message, 'ERR_PRECONDITION_FAILED', 412) }
}

export class ConflictError extends HeimdallError {
  override readonly name = 'ConflictError'
  constructor (message: string) { super(message, 'ERR_CONFLICT', 409) }
}

/**
 * Content an operator's denylist blocks. The gateway answers with the rule's
 * status (410 unless a `gateway_status` hint says otherwise); an upload or a
 * pin request of it is refused with 403. Which rule matched is logged for
 * the operator, not told to the client (as Kubo does).
 */
export class ContentBlockedError extends HeimdallError {
  override readonly name = 'ContentBlockedError'
  constructor (message = 'this content is blocked on this node by its operator', status = 410) { super(message, 'ERR_CONTENT_BLOCKED', status) }
}

export class PayloadTooLargeError extends HeimdallError {
  override readonly name = 'PayloadTooLargeError'
  constructor (message: string, details?: string[]) { super(message, 'ERR_PAYLOAD_TOO_LARGE', 413, details) }
}

export class UnsupportedMediaTypeError extends HeimdallError {
  override readonly name = 'UnsupportedMediaTypeError'
  constructor (message: string, details?: string[]) { super(message, 'ERR_UNSUPPORTED_MEDIA_TYPE', 415, details) }
}

export class UnprocessableContentError extends HeimdallError {
  override readonly name = 'UnprocessableContentError'
  constructor (message: string, details?: string[]) { super(message, 'ERR_UNPROCESSABLE_CONTENT', 422, details) }
}

export class ServiceUnavailableError extends HeimdallError {
  override readonly name = 'ServiceUnavailableError'
  constructor (message: string) { super(message, 'ERR_SERVICE_UNAVAILABLE', 503) }
}

/** tus's checksum extension: the bytes of a request do not hash to its Upload-Checksum; none of them were kept. */
export class ChecksumMismatchError extends HeimdallError {
  override readonly name = 'ChecksumMismatchError'
  constructor (message: string) { super(message, 'ERR_CHECKSUM_MISMATCH', 460) }
}

/** The client went away before the answer: nothing to answer, nothing wrong on our side. */
export class ClientClosedRequestError extends HeimdallError {
  override readonly name = 'ClientClosedRequestError'
  // 499 as nginx logs it; never sent, the connection is gone.
  constructor (message = 'the client closed the request') { super(message, 'ERR_CLIENT_CLOSED_REQUEST', 499) }
}

/** The disk under DATA_DIR (or the IPFS node's) is full: nothing of the upload was kept. */
export class InsufficientStorageError extends HeimdallError {
  override readonly name = 'InsufficientStorageError'
  constructor (message = 'the server is out of storage space; the upload was not kept, try again later') { super(message, 'ERR_INSUFFICIENT_STORAGE', 507) }
}

const OUT_OF_SPACE_CODES = new Set(['ENOSPC', 'EDQUOT'])
const OUT_OF_SPACE_MESSAGE = /\bENOSPC\b|\bEDQUOT\b|no space left on device|disk quota exceeded/i

/** A full disk or an exceeded quota, here or in the IPFS node, however deep in `cause`s or messages it was wrapped. */
export function isOutOfSpace (err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof InsufficientStorageError) return true
    const code = (e as NodeJS.ErrnoException).code
    if (typeof code === 'string' && OUT_OF_SPACE_CODES.has(code)) return true
    if (OUT_OF_SPACE_MESSAGE.test(e.message)) return true
  }
  return false
}
