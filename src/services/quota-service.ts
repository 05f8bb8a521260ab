import type { Identity } from '../db/identity-repository.ts'
import type { QuotaRepository, Usage } from '../db/quota-repository.ts'
import { NotFoundError, QuotaExceededError } from '../errors.ts'
import { formatBytes } from '../http/format.ts'

export interface Quota {
  bytes: number
  uploads: number
}

export interface QuotaStatus {
  usage: Usage
  quota: Quota
}

/**
 * Quotas per identity: total bytes of its uploads and their number. The
 * default comes from configuration (QUOTA_BYTES, QUOTA_UPLOADS); an operator
 * may set another for one identity (`npm run admin -- quota`).
 */
export class QuotaService {
  readonly #repo: QuotaRepository
  readonly #defaults: Quota

  constructor (repo: QuotaRepository, defaults: Quota) {
    this.#repo = repo
    this.#defaults = defaults
  }

  async status (identity: Identity): Promise<QuotaStatus> {
    const { usage, override } = await this.#repo.measure(identity.id)
    return { usage, quota: { bytes: override.bytes ?? this.#defaults.bytes, uploads: override.uploads ?? this.#defaults.uploads } }
  }

  /**
   * Before an upload is read: refuses it when the identity has no upload
   * left, or `declaredBytes` (at least the file's size) exceeds the bytes
   * left. Returns the status, whose bytes left bound the file as it streams.
   */
  async beforeUpload (identity: Identity, declaredBytes?: number): Promise<QuotaStatus> {
    const status = await this.status(identity)
    checkFits(status, declaredBytes ?? 0)
    return status
  }

  /**
   * For a resumable upload about to be created, once `beforeUpload` passed
   * with `status`: its `declaredBytes` must also fit beside what the owner's
   * other unfinished resumable uploads declare (`unfinished`). Those hold
   * their length from creation until they finish, expire or are
   * terminated, so that partial files on disk stay within the quota.
   */
  checkUnfinished (status: QuotaStatus, declaredBytes: number, unfinished: Usage): void {
    if (unfinished.uploads === 0) return
    const held: QuotaStatus = { quota: status.quota, usage: { bytes: status.usage.bytes + unfinished.bytes, uploads: status.usage.uploads + unfinished.uploads } }
    const refused = overQuota(held, declaredBytes)
    if (refused === undefined) return
    const holding = `held by ${unfinished.uploads} unfinished resumable upload(s) until they finish, expire or are terminated: ${formatBytes(unfinished.bytes)} (${unfinished.bytes} bytes)`
    throw new QuotaExceededError(`${refused.message} (counting ${unfinished.uploads} unfinished resumable upload(s) of yours, which hold their length until they finish, expire or are terminated)`, refused.status === 403 ? 403 : 413, [...describe(status), holding])
  }

  /** The error for a file found, while it streams, to be larger than `status` leaves room for. */
  tooLarge (status: QuotaStatus, receivedBytes: number): QuotaExceededError {
    return bytesExceeded(status, receivedBytes)
  }

  /**
   * The error for an upload of `bytes` that UploadRepository.insert refused,
   * with its owner's row locked, because it no longer fits `status` (another
   * upload of the same identity was recorded meanwhile).
   */
  refusal (status: QuotaStatus, bytes: number): QuotaExceededError {
    const refused = overQuota(status, bytes)
    if (refused !== undefined) return refused
    throw new Error(`the database refused an upload of ${bytes} bytes that fits its quota (${describe(status).join('; ')})`)
  }

  /** The operator's change: a number, or null for the default. */
  async set (username: string, quota: { bytes?: number | null, uploads?: number | null }): Promise<void> {
    if (!await this.#repo.setOverride(username, quota)) throw new NotFoundError(`no identity named "${username}"`)
  }

  get defaults (): Quota {
    return this.#defaults
  }
}

function describe ({ usage, quota }: QuotaStatus): string[] {
  return [
    `quota: ${formatBytes(quota.bytes)} (${quota.bytes} bytes) in ${quota.uploads} uploads`,
    `used: ${formatBytes(usage.bytes)} (${usage.bytes} bytes) in ${usage.uploads} uploads`
  ]
}

/** Why one more upload (or pinned request) of `bytes` does not fit `status`; undefined when it does. */
export function overQuota (status: QuotaStatus, bytes: number): QuotaExceededError | undefined {
  const { usage, quota } = status
  if (usage.uploads + 1 > quota.uploads) {
    return new QuotaExceededError(`you have used all of your ${quota.uploads} uploads (a pinned pin request counts as one): delete some to upload or pin more`, 403, describe(status))
  }
  if (usage.bytes + bytes > quota.bytes) return bytesExceeded(status, bytes)
  return undefined
}

function checkFits (status: QuotaStatus, bytes: number): void {
  const refused = overQuota(status, bytes)
  if (refused !== undefined) throw refused
}

function bytesExceeded (status: QuotaStatus, bytes: number): QuotaExceededError {
  const left = Math.max(0, status.quota.bytes - status.usage.bytes)
  return new QuotaExceededError(
    `this upload (at least ${formatBytes(bytes)}) does not fit in your quota: ${formatBytes(left)} of ${formatBytes(status.quota.bytes)} left; delete some uploads or pin requests to make room`,
    413, describe(status))
}
