import type { RateLimitRepository } from '../db/rate-limit-repository.ts'
import { TooManyRequestsError } from '../errors.ts'

export interface RateLimits {
  /** Failed authentications per client address before the back-off starts. */
  authFailuresAllowed: number
  /** The first back-off; each further failure doubles it, up to authBackoffMaxSeconds. */
  authBackoffBaseSeconds: number
  authBackoffMaxSeconds: number
  /** Failures are forgotten after this long without one. */
  authFailureMemorySeconds: number
  /** New identities per client address: a bucket of this many, refilled at this many per hour. */
  identitiesPerHour: number
  /** Uploads per identity: a bucket of this many, refilled at this many per hour. */
  uploadsPerHour: number
}

const HOUR_MS = 3_600_000
const PURGE_EVERY_MS = 10 * 60_000
/** Back-offs this instance has seen, so a client hammering through one is refused without a query. */
const KNOWN_BACKOFFS = 10_000

const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000))

/**
 * Rate limits over the `rate_limits` table, so that every instance sharing
 * the database shares them. Each check is one statement; only a refusal or a
 * failed authentication costs a second one.
 */
export class RateLimiter {
  readonly #repo: RateLimitRepository
  readonly #limits: RateLimits
  readonly #now: () => number
  readonly #purge: NodeJS.Timeout
  // A back-off only ever runs out or grows, so remembering its end here cannot let anyone in early.
  readonly #backoffs = new Map<string, number>()

  constructor (repo: RateLimitRepository, limits: RateLimits, options: { now?: () => number, onPurgeError?: (err: unknown) => void } = {}) {
    this.#repo = repo
    this.#limits = limits
    this.#now = options.now ?? Date.now
    const onError = options.onPurgeError ?? (() => {})
    this.#purge = setInterval(() => {
      const now = this.#now()
      this.#repo.purge(now - Math.max(limits.authFailureMemorySeconds * 1000, HOUR_MS), now).catch(onError)
    }, PURGE_EVERY_MS).unref()
  }

  get limits (): Readonly<RateLimits> {
    return this.#limits
  }

  /** Refuses (429) a client address that is in a back-off, before its credentials are looked at. */
  async checkAuthentication (address: string): Promise<void> {
    const now = this.#now()
    const keys = authKeys(address)
    let until = Math.max(0, ...keys.map((k) => this.#backoffs.get(`${k.kind}\0${k.key}`) ?? 0))
    if (until <= now) {
      for (const running of await this.#repo.backoffs(keys, now)) {
        this.#remember(`${running.kind}\0${running.key}`, running.until, now)
        until = Math.max(until, running.until)
      }
    }
    if (until > now) throw new TooManyRequestsError('too many failed sign-ins from this address', seconds(until - now))
  }

  #remember (key: string, until: number, now: number): void {
    if (this.#backoffs.size >= KNOWN_BACKOFFS) {
      for (const [k, end] of this.#backoffs) if (end <= now) this.#backoffs.delete(k)
      if (this.#backoffs.size >= KNOWN_BACKOFFS) this.#backoffs.clear()
    }
    this.#backoffs.set(key, Math.max(until, this.#backoffs.get(key) ?? 0))
  }

  /** Counts a failed authentication against the address; returns the back-off it earned (ms, 0: none yet). */
  async authenticationFailed (address: string): Promise<number> {
    const now = this.#now()
    const { authFailuresAllowed: allowed, authBackoffBaseSeconds: base, authBackoffMaxSeconds: max, authFailureMemorySeconds: memory } = this.#limits
    const backoff = (failures: number): number => (failures <= allowed ? 0 : Math.min(max, base * 2 ** Math.min(failures - allowed - 1, 40)) * 1000)
    let longest = 0
    for (const key of authKeys(address)) {
      const { until } = await this.#repo.fail(key, now, memory * 1000, backoff)
      if (until > now) this.#remember(`${key.kind}\0${key.key}`, until, now)
      longest = Math.max(longest, until - now)
    }
    return longest
  }

  /** One new identity from `address`, or 429. */
  async identityCreation (address: string): Promise<void> {
    await this.#take('identity', address, this.#limits.identitiesPerHour, 'too many new identities from this address')
  }

  /** One upload by the identity, or 429. */
  async upload (identityId: number): Promise<void> {
    await this.#take('upload', String(identityId), this.#limits.uploadsPerHour, 'too many uploads')
  }

  async #take (kind: string, key: string, perHour: number, message: string): Promise<void> {
    const wait = await this.#repo.take({ kind, key }, this.#now(), Math.ceil(HOUR_MS / perHour), perHour)
    if (wait !== undefined) throw new TooManyRequestsError(message, seconds(wait))
  }

  close (): void {
    clearInterval(this.#purge)
  }
}

/**
 * What a failed authentication counts against: the client's address only.
 * Not the username: tokens and API keys are 256 random bits, which no rate
 * of guessing reaches, and a back-off per username let anyone lock a person
 * out of their own sign-in (and the add-on's uploads, which send username +
 * token) with a few wrong tokens from anywhere (found by a security review).
 */
function authKeys (address: string): Array<{ kind: string, key: string }> {
  return [{ kind: 'auth-address', key: address.slice(0, 128) }]
}
