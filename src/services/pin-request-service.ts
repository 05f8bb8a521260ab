import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { CID } from 'multiformats/cid'
import type { Identity } from '../db/identity-repository.ts'
import type { PinRequest, PinRequestFilter, PinRequestRepository, PinStatus } from '../db/pin-request-repository.ts'
import { HeimdallError, isOutOfSpace, NotFoundError, PayloadTooLargeError, ServiceUnavailableError, TooManyRequestsError } from '../errors.ts'
import { fetchDag } from '../ipfs/fetch-dag.ts'
import type { ImportLease, IpfsBackend } from '../ipfs/ipfs-backend.ts'
import { inspectLocalDag } from '../ipfs/local-dag.ts'
import { overQuota, type Quota } from './quota-service.ts'
import type { UploadService } from './upload-service.ts'

/** A pin as the client asked for it, already validated. */
export interface PinInput {
  cid: CID
  /** The CID as the client wrote it, answered back in `pin.cid`. */
  cidText: string
  name: string | null
  origins: string[]
  meta: Record<string, string>
}

export interface PinRequestServiceOptions {
  requests: PinRequestRepository
  /** The pin journal and per-root lock that uploads use, and what decides whether a root is still referenced. */
  pins: Pick<UploadService, 'changePin' | 'releaseIfUnreferenced'>
  backend: IpfsBackend
  logger: Logger
  /** How long content this node does not hold is waited for before the request fails. */
  fetchTimeoutSeconds: number
  /** The largest DAG pinned, in block bytes: the maximum upload size. */
  maxBytes: number
  /** QUOTA_BYTES and QUOTA_UPLOADS: a pinned request counts in its owner's quota as an upload of its DAG's bytes. */
  quotas: Quota
  /** What content must pass before it is pinned, fetched from the network or held here but not pinned: the upload's checks. */
  gatekeeper: Pick<UploadService, 'inspectFetched' | 'holdsRecorded'>
  /** Requests fetched from the network at once (IPFS_MAX_FETCHES); the others wait `queued`. */
  maxFetches?: number
  /**
   * Requests one identity may have waiting (PSA_MAX_PENDING): each is looked
   * at every few seconds until it settles, and in network mode holds a fetch
   * slot, so one identity's thousands (3,000 made in 6 s, found by review)
   * cost everyone. Default 100.
   */
  maxPending?: number
  /**
   * Whether an operator's denylist took the root down: such content is not
   * pinned again by a request (only an upload accepted once no list names
   * it lifts a take-down), else the request would hold it pinned while
   * counting as no reference (found by review).
   */
  takenDown?: (rootCid: string) => Promise<boolean>
}

/** A counting semaphore: at most `size` holders at once, the rest waiting in order. */
class Slots {
  readonly #waiting: Array<() => void> = []
  #free: number

  constructor (size: number) { this.#free = size }

  get full (): boolean { return this.#free === 0 }

  async acquire (signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted()
    if (this.#free > 0) { this.#free--; return this.#release() }
    await new Promise<void>((resolve, reject) => {
      const take = (): void => { signal.removeEventListener('abort', leave); resolve() }
      const leave = (): void => {
        const i = this.#waiting.indexOf(take)
        if (i !== -1) this.#waiting.splice(i, 1)
        reject(signal.reason as Error)
      }
      this.#waiting.push(take)
      signal.addEventListener('abort', leave, { once: true })
    })
    return this.#release()
  }

  #release (): () => void {
    let done = false
    return () => {
      if (done) return
      done = true
      const next = this.#waiting.shift()
      if (next !== undefined) next()
      else this.#free++
    }
  }
}

/** A refusal's message and details, as `info.status_details` says it. */
function refusalOf (err: HeimdallError): string {
  const details = err.details
  const listed = details.slice(0, 10).join('; ')
  return `content refused: ${err.message}${listed === '' ? '' : `: ${listed}`}${details.length > 10 ? `; and ${details.length - 10} more` : ''}`
}

const PENDING: readonly PinStatus[] = ['queued', 'pinning']
const TAKEN_DOWN = 'content refused: this content was taken down on this node by its operator (upload it again to restore it, once no list names it)'

/**
 * Pin requests of the Pinning Service API. Content this node already holds
 * is pinned at once, through the uploads' pin journal. Content it does not
 * hold is fetched from the IPFS network when the node is on it (the embedded
 * node with IPFS_NETWORK=private or public): its blocks go under an import
 * lease, the whole DAG must pass the checks an upload passes (the
 * gatekeeper), and only then is it pinned; refused or not found in time, the
 * request fails with the reason and the lease's discard removes what the
 * fetch brought. Off the network (or over Kubo, which Heimdall does not ask
 * to fetch), the content is waited for (it may arrive by upload or CAR
 * import) until the fetch timeout.
 */
export class PinRequestService {
  readonly #options: PinRequestServiceOptions
  /** Requests being waited for, by requestid. */
  readonly #waiting = new Map<string, { controller: AbortController, done: Promise<void> }>()
  readonly #slots: Slots
  #closed = false

  constructor (options: PinRequestServiceOptions) {
    this.#options = options
    this.#slots = new Slots(options.maxFetches ?? 2)
  }

  /** Whether content this node lacks is fetched from the network (else it is waited for). */
  get #fetches (): boolean {
    const { backend } = this.#options
    return backend.network !== undefined && backend.fetchBlock !== undefined
  }

  get #pollMs (): number {
    return Math.max(200, Math.min(5000, this.#options.fetchTimeoutSeconds * 1000 / 10))
  }

  /** Why content this node lacks cannot be had, said in `info.status_details`. */
  get #cannotFetch (): string {
    return this.#options.backend.kind === 'kubo'
      ? 'Kubo is not on the IPFS network (offline, or not reachable when Heimdall started): it pins only content Kubo already holds (upload it, or import a CAR)'
      : 'this node has no IPFS networking (IPFS_NETWORK=off), so it pins only content it already holds (upload it, or import a CAR)'
  }

  /** Records the request; content already held is pinned before this returns, anything else is waited for. */
  async add (owner: Identity, pin: PinInput): Promise<PinRequest> {
    return this.#add(owner, pin, null, true)
  }

  /**
   * Records a request and starts on it. `capped`: refused (429) when the
   * owner already has PSA_MAX_PENDING waiting, unless its content is pinned
   * here (it will not wait). A replace is not capped: it takes the place of
   * a request, and Kubo's MFS pinning replaces at every change.
   */
  async #add (owner: Identity, pin: PinInput, replaces: { rootCid: string | null, requestId: string } | null, capped: boolean): Promise<PinRequest> {
    const fields = {
      requestId: randomUUID(),
      identityId: owner.id,
      cid: pin.cidText,
      rootCid: pin.cid.toString(),
      name: pin.name,
      origins: pin.origins,
      meta: pin.meta,
      replacesRootCid: replaces?.rootCid ?? null,
      replacesRequestId: replaces?.requestId ?? null
    }
    const maxPending = this.#options.maxPending ?? 100
    let request = await this.#options.requests.insert(fields, capped ? maxPending : undefined)
    if (request === undefined && await this.#options.backend.isPinned(pin.cid).catch(() => false)) request = await this.#options.requests.insert(fields)
    if (request === undefined) {
      throw new TooManyRequestsError(`you have ${maxPending} pin requests waiting for their content (PSA_MAX_PENDING); wait for some to be pinned or fail, or delete some`, 60)
    }
    if (await this.#attempt(request) === 'waiting') this.#wait(request)
    return this.#current(request)
  }

  async get (owner: Identity, requestId: string): Promise<PinRequest> {
    const request = await this.#options.requests.findOwned(owner.id, requestId)
    if (request === undefined) throw new NotFoundError(`you have no pin request ${requestId}`)
    return request
  }

  async list (owner: Identity, filter: PinRequestFilter, limit: number): Promise<{ results: PinRequest[], count: number }> {
    return this.#options.requests.list(owner.id, filter, limit)
  }

  /**
   * Replaces a request with a new one (a new requestid; the old one is gone
   * at once). The old root stays pinned until the new request settles
   * (pinned, failed, or deleted): content not here yet is fetched or waited
   * for while the blocks both share stay, which is what the spec's replace
   * is for (Kubo's MFS pinning replaces at every change).
   */
  async replace (owner: Identity, requestId: string, pin: PinInput): Promise<PinRequest> {
    const old = await this.get(owner, requestId)
    const replacement = await this.#add(owner, pin, { rootCid: old.rootCid === pin.cid.toString() ? null : old.rootCid, requestId: old.requestId }, false)
    try {
      await this.remove(owner, requestId)
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err
      // Replaced or deleted meanwhile (three replaces of one request at once, found by review): the replacement made for
      // it goes too, with the hold it put on the old root, and the answer is the 404 the loser of the race gets.
      await this.remove(owner, replacement.requestId).catch(() => {})
      throw err
    }
    if (!PENDING.includes(replacement.status)) await this.#releaseReplaced(replacement.requestId)
    return replacement
  }

  /** Deletes a request; its root is unpinned only when no upload and no other request references it. */
  async remove (owner: Identity, requestId: string): Promise<void> {
    const request = await this.get(owner, requestId)
    this.#waiting.get(requestId)?.controller.abort()
    await this.#options.pins.changePin(request.rootCid, async (intent) => {
      if (!(await this.#options.requests.deleteOwned(owner.id, requestId))) throw new NotFoundError(`you have no pin request ${requestId}`)
      // The request is gone either way: a pin the node cannot release now is left to the pin journal.
      await this.#options.pins.releaseIfUnreferenced(request.rootCid, intent)
    })
    // A pending replacement deleted: the root it kept for the request it replaced goes too, unless held otherwise.
    if (request.replacesRootCid !== null && request.replacesRootCid !== undefined) await this.#release(request.replacesRootCid)
  }

  /** A settled replacement stops holding the root it replaced, which is released unless held otherwise. */
  async #releaseReplaced (requestId: string): Promise<void> {
    const request = await this.#options.requests.findByRequestId(requestId)
    const root = request?.replacesRootCid
    if (root === null || root === undefined || PENDING.includes(request?.status ?? 'queued')) return
    await this.#dropReplaced(requestId, root)
  }

  async #dropReplaced (requestId: string, rootCid: string): Promise<void> {
    await this.#options.requests.clearReplaced(requestId)
    await this.#release(rootCid)
  }

  async #release (rootCid: string): Promise<void> {
    const { pins, logger } = this.#options
    try {
      await pins.changePin(rootCid, async () => { await pins.releaseIfUnreferenced(rootCid) })
    } catch (err) {
      logger.error({ err, rootCid }, 'could not release the root a pin request replaced: left to the pin journal')
    }
  }

  /** At start: queued and pinning requests left by the last run are taken up again, their deadlines counted from `created`. */
  async resume (): Promise<number> {
    // Replacements that settled before the last run could release what they replaced.
    for (const { requestId, rootCid } of await this.#options.requests.settledReplacements()) await this.#dropReplaced(requestId, rootCid)
    const pending = await this.#options.requests.pending()
    for (const request of pending) this.#wait(request)
    if (pending.length > 0) this.#options.logger.info({ requests: pending.length }, 'resumed pending pin requests')
    return pending.length
  }

  /** Stops waiting (the requests stay queued or pinning, for the next start to resume). */
  async close (): Promise<void> {
    this.#closed = true
    for (const { controller } of this.#waiting.values()) controller.abort()
    await Promise.all([...this.#waiting.values()].map(async ({ done }) => done))
  }

  async #current (request: PinRequest): Promise<PinRequest> {
    return (await this.#options.requests.findByRequestId(request.requestId)) ?? request
  }

  /** One look for the content: pinned, failed, or still waiting for it. */
  async #attempt (request: PinRequest, signal?: AbortSignal): Promise<'settled' | 'waiting'> {
    const { backend, requests, maxBytes, pins } = this.#options
    const root = CID.parse(request.rootCid)
    try {
      // Held here or fetched from the network alike: taken-down content is not pinned again by a request.
      if (await this.#options.takenDown?.(request.rootCid) === true) {
        await this.#fail(request, TAKEN_DOWN)
        return 'settled'
      }
      const dag = await inspectLocalDag(backend, root, maxBytes, signal)
      switch (dag.state) {
        case 'missing':
          return 'waiting'
        case 'too-large':
          await this.#fail(request, `content refused: the DAG is larger than the maximum upload size (${maxBytes} bytes)`)
          return 'settled'
        case 'unsupported':
          await this.#fail(request, `content refused: only UnixFS content (dag-pb and raw blocks) is pinned here, and ${dag.cid.toString()} is neither`)
          return 'settled'
        case 'complete': {
          // Held is not checked: blocks are kept by their hash alone, so the bytes of an upload (a `.bin`, any bytes)
          // read as another kind of block can be a folder naming `login.html`, and a pinned root's pages are served
          // as themselves (found by review: HTML, SVG, PDF and .exe served so). A root an upload or the operator
          // recorded passed; any other goes through the gatekeeper, as fetched content does. Not "a root pinned here":
          // over Kubo an upload's add pins its root before the upload's checks refuse it (found by review).
          const lease = await this.#options.gatekeeper.holdsRecorded(request.rootCid) ? undefined : await backend.openLease()
          try {
            if (lease !== undefined) {
              try {
                await this.#checkHeld(root, request.name ?? undefined, lease, signal)
              } catch (err) {
                // A block collected since it was found here: the content is not all here after all.
                if (err instanceof NotFoundError) return 'waiting'
                if (!(err instanceof HeimdallError && err.status >= 400 && err.status < 500)) throw err
                this.#options.logger.info({ requestId: request.requestId, rootCid: request.rootCid, reason: err.message }, 'a pin request\'s content was refused')
                await this.#fail(request, refusalOf(err))
                return 'settled'
              }
            }
            await pins.changePin(request.rootCid, async () => {
              // Deleted (or failed) meanwhile: its removal already settled the root under this same lock.
              const current = await requests.findByRequestId(request.requestId)
              if (current === undefined || !PENDING.includes(current.status)) return
              await backend.pin(root, { signal })
              await this.#recordPinned(request, dag.bytes, null)
            })
          } finally {
            // It only kept collections off the blocks while they were checked: nothing was stored under it.
            await lease?.release()
          }
          return 'settled'
        }
      }
    } catch (err) {
      if (signal?.aborted === true) return 'waiting'
      if (err instanceof ServiceUnavailableError) {
        this.#options.logger.warn({ err, requestId: request.requestId }, 'the IPFS node cannot be reached; the pin request waits')
        return 'waiting'
      }
      this.#options.logger.error({ err, requestId: request.requestId }, 'a pin request could not be pinned')
      await this.#fail(request, isOutOfSpace(err) ? 'the server is out of storage space' : 'the IPFS node could not pin it')
      return 'settled'
    }
  }

  /** The gatekeeper's checks on content this node holds, its blocks read from here only: throws what an upload would get. */
  async #checkHeld (root: CID, name: string | undefined, lease: ImportLease, signal?: AbortSignal): Promise<void> {
    const { backend, gatekeeper, maxBytes } = this.#options
    const here = { fetchBlock: async (cid: CID, options: { signal?: AbortSignal }) => backend.getBlock(cid, options) }
    await gatekeeper.inspectFetched(root, fetchDag(here, root, { lease, signal: signal ?? new AbortController().signal, maxBytes }), { fileName: name, signal })
  }

  /**
   * Under the root's lock, once the root is pinned: the request is pinned,
   * holding `bytes`, if that fits its owner's quota (an upload's, counting
   * their uploads and other pinned requests); if not, it fails with the
   * quota's reason. Either way, a root no longer held for it is released.
   * False when the request is not pinned.
   */
  async #recordPinned (request: PinRequest, bytes: number, details: string | null): Promise<boolean> {
    const { requests, pins, quotas } = this.#options
    const recorded = await requests.pinWithinQuota(request.requestId, bytes, details, quotas)
    if (recorded.outcome === 'pinned') return true
    if (recorded.outcome === 'over_quota') {
      const refused = overQuota({ usage: recorded.usage, quota: recorded.quota }, bytes)
      await requests.setStatus(request.requestId, PENDING, 'failed', refused === undefined ? 'content refused: it does not fit in your quota' : refusalOf(refused))
    }
    await pins.releaseIfUnreferenced(request.rootCid)
    return false
  }

  /** Fails a pending request with its reason, releasing the root if it was pinned for it alone. */
  async #fail (request: PinRequest, reason: string): Promise<void> {
    await this.#options.pins.changePin(request.rootCid, async () => {
      if (await this.#options.requests.setStatus(request.requestId, PENDING, 'failed', reason)) {
        await this.#options.pins.releaseIfUnreferenced(request.rootCid)
      }
    })
  }

  /** Waits in the background for content not held yet: `pinning` until it is here (pinned) or the timeout passes (failed). */
  #wait (request: PinRequest): void {
    if (this.#closed || this.#waiting.has(request.requestId)) return
    const controller = new AbortController()
    const done = this.#follow(request, controller.signal)
      .then(async () => { if (!controller.signal.aborted) await this.#releaseReplaced(request.requestId) })
      .catch((err: unknown) => { if (!controller.signal.aborted) this.#options.logger.error({ err, requestId: request.requestId }, 'a pending pin request stopped') })
      .finally(() => { this.#waiting.delete(request.requestId) })
    this.#waiting.set(request.requestId, { controller, done })
  }

  async #follow (request: PinRequest, signal: AbortSignal): Promise<void> {
    const { requests, fetchTimeoutSeconds } = this.#options
    const deadline = request.created.getTime() + fetchTimeoutSeconds * 1000
    if (this.#fetches) { await this.#fetch(request, deadline, signal); return }
    await requests.setStatus(request.requestId, PENDING, 'pinning',
      `not on this node yet: waiting until ${new Date(deadline).toISOString()}; ${this.#cannotFetch}`)
    for (let first = true; ; first = false) {
      if (!first) await sleep(this.#pollMs, undefined, { signal })
      const current = await requests.findByRequestId(request.requestId)
      if (current === undefined || !PENDING.includes(current.status)) return
      if (await this.#attempt(current, signal) === 'settled') return
      signal.throwIfAborted()
      if (Date.now() >= deadline) {
        await this.#fail(current, `not found in time: this node did not get ${current.rootCid} within ${fetchTimeoutSeconds} s; ${this.#cannotFetch}`)
        return
      }
    }
  }

  /**
   * Fetches the DAG from the network (queued while IPFS_MAX_FETCHES others
   * are fetched), through the gatekeeper, then pins it; or fails the request
   * with the reason, the fetched blocks discarded. A shutdown leaves it
   * `queued` or `pinning` for the next start, blocks discarded too.
   */
  async #fetch (request: PinRequest, deadline: number, signal: AbortSignal): Promise<void> {
    const { requests, backend, gatekeeper, maxBytes, fetchTimeoutSeconds, pins, logger } = this.#options
    const network = backend.network
    const fetchBlock = backend.fetchBlock?.bind(backend)
    if (network === undefined || fetchBlock === undefined) return
    const until = new Date(deadline).toISOString()
    const expired = AbortSignal.timeout(Math.max(0, deadline - Date.now()))
    const stop = AbortSignal.any([signal, expired])
    // An owner with no room left is not fetched for, and a fetch stops once the DAG passes the room there is.
    const room = await requests.quotaUsage(request.requestId, this.#options.quotas).catch(() => undefined)
    const full = room === undefined ? undefined : overQuota(room, 1)
    if (full !== undefined) {
      await this.#fail(request, refusalOf(full))
      return
    }
    const fetchBytes = room === undefined ? maxBytes : Math.min(maxBytes, room.quota.bytes - room.usage.bytes)
    if (this.#slots.full) {
      await requests.setStatus(request.requestId, PENDING, 'queued', `waiting for a turn to fetch from the IPFS network (at most ${this.#options.maxFetches ?? 2} at once), until ${until}`)
    }
    let release: () => void
    try {
      release = await this.#slots.acquire(stop)
    } catch {
      if (!signal.aborted) await this.#fail(request, `not found in time: this node did not get its turn to fetch ${request.rootCid} within ${fetchTimeoutSeconds} s`)
      return
    }
    let lease: ImportLease | undefined
    let blocks = 0
    let dagBytes = 0
    try {
      lease = await backend.openLease()
      const held = lease
      const refused = request.origins.map((origin) => [origin, network.originRefusal(origin)] as const).filter(([, why]) => why !== undefined)
      const skipped = refused.length === 0 ? '' : `; origins not dialed: ${refused.map(([o, why]) => `${o} (${why ?? ''})`).join('; ').slice(0, 500)}`
      await requests.setStatus(request.requestId, PENDING, 'pinning', `fetching from the IPFS network (${network.mode}: ${network.peerCount()} peers connected) until ${until}${skipped}`)
      // Dialed alongside: their blocks arrive through the same wants as the connected peers'.
      const dialed = network.connect(request.origins, stop).catch(() => 0)
      const counted = (async function * () {
        for await (const block of fetchDag({ fetchBlock }, CID.parse(request.rootCid), { lease: held, signal: stop, maxBytes: fetchBytes })) { blocks++; dagBytes += block.bytes.byteLength; yield block }
      })()
      const summary = await gatekeeper.inspectFetched(CID.parse(request.rootCid), counted, { fileName: request.name ?? undefined, signal: stop })
      await dialed
      let kept = false
      await pins.changePin(request.rootCid, async () => {
        // Deleted (or failed) meanwhile: nothing to pin, and the discard below removes what came.
        const current = await requests.findByRequestId(request.requestId)
        if (current === undefined || !PENDING.includes(current.status)) return
        // Taken down while it was fetched (the content came from elsewhere on the network): not pinned (found by review).
        if (await this.#options.takenDown?.(request.rootCid) === true) {
          await requests.setStatus(request.requestId, PENDING, 'failed', TAKEN_DOWN)
          return
        }
        await backend.pin(CID.parse(request.rootCid), { signal })
        kept = await this.#recordPinned(request, dagBytes,
          `fetched from the IPFS network: ${blocks} blocks, ${summary.files} files, ${summary.bytes} bytes${summary.warnings.length > 0 ? `; warnings: ${summary.warnings.slice(0, 5).join('; ')}` : ''}`)
      })
      if (kept) { await lease.release(); return }
      await lease.discard()
    } catch (err) {
      await lease?.discard().catch((discardErr: unknown) => { logger.warn({ err: discardErr, requestId: request.requestId }, 'could not remove the blocks of a refused pin request') })
      if (signal.aborted) return
      if (expired.aborted) {
        await this.#fail(request, `not found in time: neither this node nor its peers provided all of ${request.rootCid} within ${fetchTimeoutSeconds} s (${blocks} blocks arrived)`)
      } else if (err instanceof PayloadTooLargeError && room !== undefined && fetchBytes < maxBytes) {
        // Past the owner's room, not the upload limit: the quota's words.
        await this.#fail(request, refusalOf(overQuota(room, fetchBytes + 1) ?? err))
      } else if (err instanceof HeimdallError && err.status >= 400 && err.status < 500) {
        logger.info({ requestId: request.requestId, rootCid: request.rootCid, reason: err.message }, 'a pin request\'s content was refused')
        await this.#fail(request, refusalOf(err))
      } else {
        logger.error({ err, requestId: request.requestId }, 'a pin request could not be fetched')
        await this.#fail(request, isOutOfSpace(err) ? 'the server is out of storage space' : 'the IPFS node could not fetch or pin it')
      }
    } finally {
      release()
    }
  }
}
