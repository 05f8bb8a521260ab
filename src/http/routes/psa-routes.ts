import express, { Router, type ErrorRequestHandler, type Request } from 'express'
import type { CID } from 'multiformats/cid'
import type { Logger } from 'pino'
import { z } from 'zod'
import type { Identity } from '../../db/identity-repository.ts'
import { PIN_STATUSES, TEXT_MATCHES, type PinRequest, type PinRequestFilter } from '../../db/pin-request-repository.ts'
import { BadRequestError, ContentBlockedError, HeimdallError, NotFoundError, TooManyRequestsError } from '../../errors.ts'
import type { Denylist } from '../../denylist/denylist.ts'
import type { PinInput, PinRequestService } from '../../services/pin-request-service.ts'
import { isDatabaseUnavailable } from '../../db/unavailable.ts'
import { isUnstorableText } from '../middleware/error-handler.ts'
import { requireCaller, type Authenticator } from '../authentication.ts'
// The request schemas the OpenAPI description is generated from.
import { PSA_MAX_CIDS, PSA_MAX_NAME, PSA_MAX_ORIGINS, psaMeta, psaPin, withinCharacters } from '../openapi/requests.ts'
import { parseCid as parseCidParam } from '../cid-param.ts'
import { ipScope } from '../../ipfs/network/address-policy.ts'
import { rootForms } from '../../ipfs/cid-forms.ts'

export interface PsaRoutesDeps {
  /** Bearer tokens and API keys (scope `pin`), rate-limited as everywhere. */
  authenticator: Authenticator
  pinRequests: PinRequestService
  /** Our multiaddrs, each ending in /p2p/<our peer id>: PinStatus.delegates. */
  delegates: readonly string[]
  logger: Logger
  /** The operator's denylists: a pin of blocked content is refused before anything is fetched or pinned. */
  denylist?: Denylist
}

const RFC3339 = z.iso.datetime({ offset: true })

/** One query value: `?x=a` only; `?x=a&x=b` is refused for single-valued parameters. */
function single (req: Request, key: string): string | undefined {
  const value = (req.query as Record<string, unknown>)[key]
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw new BadRequestError(`"${key}" takes one value`)
  return value
}

/** A list: `?x=a&x=b` as the spec writes it, or `?x=a,b` as Kubo's client sends it. */
function list (req: Request, key: string): string[] | undefined {
  const value = (req.query as Record<string, unknown>)[key]
  if (value === undefined) return undefined
  const values = Array.isArray(value) ? value : [value]
  if (!values.every((v) => typeof v === 'string')) throw new BadRequestError(`"${key}" is malformed`)
  return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '')
}

/** The longest CID recorded (in its canonical text): a longer one is an identity CID carrying ~80 bytes or more inline. */
const MAX_CID_TEXT = 128

/** A CID in any multibase, refused (400) as cid-param refuses one, or when too long to record. */
function parseCid (text: string): CID {
  const cid = parseCidParam(text, { anyBase: true })
  if (cid.toString().length > MAX_CID_TEXT) throw new BadRequestError(`"${text.slice(0, 100)}…" is longer than the ${MAX_CID_TEXT} characters pinned here (an identity CID with its content inline)`)
  return cid
}

/**
 * Pin.origins as kept: at most the spec's 20, those a remote node is likeliest
 * to reach first (public addresses, then private, then loopback, then DNS
 * names, which the dial policy dials only where the operator named them), each
 * kind in the client's order.
 */
function keptOrigins (origins: readonly string[]): string[] {
  const unique = [...new Set(origins)]
  if (unique.length <= PSA_MAX_ORIGINS) return unique
  const reach = (origin: string): number => {
    const ip = /^\/ip[46]\/([^/]+)/.exec(origin)?.[1]
    if (ip === undefined) return 3
    const scope = ipScope(ip)
    return scope === 'public' ? 0 : scope === 'private' ? 1 : 2
  }
  return unique.map((origin, i) => ({ origin, i, rank: reach(origin) }))
    .sort((a, b) => a.rank - b.rank || a.i - b.i)
    .slice(0, PSA_MAX_ORIGINS)
    .map(({ origin }) => origin)
}

function invalid (what: string, error: z.ZodError): BadRequestError {
  return new BadRequestError(`${what}: ${error.issues.map((i) => `${i.path.join('.') || 'value'} ${i.message}`).join('; ')}`)
}

function parseFilter (req: Request): { filter: PinRequestFilter, limit: number } {
  const filter: PinRequestFilter = { statuses: ['pinned'] }
  const cids = list(req, 'cid')
  if (cids !== undefined && cids.length > 0) {
    if (cids.length > PSA_MAX_CIDS) throw new BadRequestError(`"cid" takes at most ${PSA_MAX_CIDS} CIDs`)
    // A CIDv0 and its CIDv1 are one DAG and one pin: either finds the requests of both.
    filter.rootCids = [...new Set(cids.flatMap((c) => rootForms(parseCid(c))))]
  }
  const statuses = list(req, 'status')
  if (statuses !== undefined && statuses.length > 0) {
    const unknown = statuses.filter((s) => !(PIN_STATUSES as readonly string[]).includes(s))
    if (unknown.length > 0) throw new BadRequestError(`"status" must be among ${PIN_STATUSES.join(', ')}; got ${unknown.join(', ').slice(0, 100)}`)
    filter.statuses = [...new Set(statuses)] as PinRequestFilter['statuses']
  }
  const name = single(req, 'name')
  const match = single(req, 'match') ?? 'exact'
  if (!(TEXT_MATCHES as readonly string[]).includes(match)) throw new BadRequestError(`"match" must be one of ${TEXT_MATCHES.join(', ')}`)
  if (name !== undefined) {
    if (!withinCharacters(PSA_MAX_NAME)(name)) throw new BadRequestError(`"name" is at most ${PSA_MAX_NAME} characters`)
    filter.name = { value: name, match: match as (typeof TEXT_MATCHES)[number] }
  }
  for (const key of ['before', 'after'] as const) {
    const value = single(req, key)
    if (value === undefined) continue
    if (!RFC3339.safeParse(value).success) throw new BadRequestError(`"${key}" must be an RFC 3339 date-time, e.g. 2026-11-25T12:00:00Z`)
    filter[key] = value
  }
  const metaText = single(req, 'meta')
  if (metaText !== undefined) {
    let parsed: unknown
    try { parsed = JSON.parse(metaText) } catch { throw new BadRequestError('"meta" must be a JSON object of strings') }
    const checked = psaMeta.safeParse(parsed)
    if (!checked.success) throw invalid('"meta"', checked.error)
    filter.meta = checked.data
  }
  const limitText = single(req, 'limit') ?? '10'
  const limit = /^\d{1,4}$/.test(limitText) ? Number(limitText) : Number.NaN
  if (!(limit >= 1 && limit <= 1000)) throw new BadRequestError('"limit" must be an integer from 1 to 1000')
  return { filter, limit }
}

function parsePin (body: unknown): PinInput {
  const checked = psaPin.safeParse(body)
  if (!checked.success) throw invalid('the pin', checked.error)
  const { cid, name, origins, meta: pinMeta } = checked.data
  return { cid: parseCid(cid), cidText: cid, name: name ?? null, origins: keptOrigins(origins ?? []), meta: pinMeta ?? {} }
}

/** The spec's `reason` for each of our errors. */
function reasonOf (err: HeimdallError): string {
  switch (err.status) {
    case 400: return 'BAD_REQUEST'
    case 401: return 'UNAUTHORIZED'
    case 404: return 'NOT_FOUND'
    case 413: return 'PAYLOAD_TOO_LARGE'
    case 503: return 'SERVICE_UNAVAILABLE'
    case 507: return 'INSUFFICIENT_STORAGE'
    default: return err.code.replace(/^ERR_/, '')
  }
}

/**
 * The IPFS Pinning Service API v1.0.0 (ipfs/pinning-services-api-spec),
 * mounted at /psa: the endpoint `ipfs pin remote service add` is given is
 * `<PUBLIC_URL>/psa`. Only `Authorization: Bearer <token or API key with the `pin` scope>` authenticates (no
 * cookies, so no CSRF), and every error is the spec's
 * `{"error":{"reason","details"}}`.
 */
export function psaRoutes (deps: PsaRoutesDeps): Router {
  const router = Router()
  // Any web page may call it (pinning from a browser app, as with other pinning services): credentials
  // are a bearer header a page must hold, never a cookie the browser adds, so a wildcard origin gives
  // a page nothing it does not already have.
  router.use((req, res, next) => {
    res.setHeader('Access-Control-Allow-Origin', '*')
    res.setHeader('Access-Control-Expose-Headers', 'Retry-After, WWW-Authenticate')
    if (req.method !== 'OPTIONS') { next(); return }
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST, DELETE')
    res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type')
    res.setHeader('Access-Control-Max-Age', '86400')
    res.status(204).end()
  })
  router.use(express.json({ limit: '1mb' }))
  router.use(deps.authenticator.middleware({ bearerOnly: true }))

  // The middleware has checked the credentials already.
  const caller = (req: Request): Identity => requireCaller(req, 'pin', 'send Authorization: Bearer <your Heimdall token, or an API key with the pin scope>').identity

  const present = (request: PinRequest): Record<string, unknown> => ({
    requestid: request.requestId,
    status: request.status,
    created: request.created.toISOString(),
    pin: {
      cid: request.cid,
      ...(request.name !== null ? { name: request.name } : {}),
      ...(request.origins.length > 0 ? { origins: request.origins } : {}),
      ...(Object.keys(request.meta).length > 0 ? { meta: request.meta } : {})
    },
    delegates: deps.delegates,
    info: request.statusDetails !== null ? { status_details: request.statusDetails } : {}
  })

  const requestId = (req: Request): string => {
    const id = (req.params as { requestid: string }).requestid
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new NotFoundError(`no pin request ${id.slice(0, 64)}`)
    return id
  }

  router.get('/pins', async (req, res) => {
    const owner = caller(req)
    const { filter, limit } = parseFilter(req)
    const { results, count } = await deps.pinRequests.list(owner, filter, limit)
    res.setHeader('Cache-Control', 'no-store')
    res.json({ count, results: results.map(present) })
  })

  /** A pin of blocked content is refused (403) as an upload of it is; the rule is logged, not told. */
  const allowed = (req: Request, pin: PinInput): PinInput => {
    const blocked = deps.denylist?.checkCid(pin.cid)
    if (blocked === undefined) return pin
    req.log.warn({ cid: pin.cid.toString(), rule: blocked.rule.text, list: blocked.file }, 'pin request refused: its content is on a denylist')
    throw new ContentBlockedError('this content is blocked on this node by its operator', 403)
  }

  router.post('/pins', async (req, res) => {
    const owner = caller(req)
    res.status(202).json(present(await deps.pinRequests.add(owner, allowed(req, parsePin(req.body)))))
  })

  router.get('/pins/:requestid', async (req, res) => {
    const owner = caller(req)
    res.setHeader('Cache-Control', 'no-store')
    res.json(present(await deps.pinRequests.get(owner, requestId(req))))
  })

  router.post('/pins/:requestid', async (req, res) => {
    const owner = caller(req)
    const id = requestId(req)
    res.status(202).json(present(await deps.pinRequests.replace(owner, id, allowed(req, parsePin(req.body)))))
  })

  router.delete('/pins/:requestid', async (req, res) => {
    const owner = caller(req)
    await deps.pinRequests.remove(owner, requestId(req))
    res.status(202).end()
  })

  router.use((req, _res, next) => { next(new NotFoundError(`no Pinning Service API route ${req.method} /psa${req.path}`)) })

  const errors: ErrorRequestHandler = (err: unknown, req, res, next) => {
    if (res.headersSent) { next(err); return }
    let known: HeimdallError | undefined = err instanceof HeimdallError ? err : undefined
    if (known === undefined && typeof err === 'object' && err !== null && 'status' in err) {
      // body-parser's: malformed JSON, a body too large, a charset it cannot read.
      const status = Number(err.status)
      if (status === 413) known = new HeimdallError('the request body is too large', 'ERR_PAYLOAD_TOO_LARGE', 413)
      else if (status >= 400 && status < 500) known = new BadRequestError('the request body is not JSON it can read')
    }
    if (known === undefined && isDatabaseUnavailable(err)) known = new HeimdallError('the database cannot be reached; try again later', 'ERR_SERVICE_UNAVAILABLE', 503)
    if (known === undefined && isUnstorableText(err)) known = new BadRequestError('text with a NUL character, or bytes that are not UTF-8, cannot be stored or looked up')
    if (known === undefined) deps.logger.error({ err, reqId: req.id }, 'unhandled error in the Pinning Service API')
    else if (known.status >= 500) deps.logger.warn({ err, reqId: req.id }, known.message)
    const status = known?.status ?? 500
    if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer')
    if (known instanceof TooManyRequestsError) res.setHeader('Retry-After', String(known.retryAfterSeconds))
    res.status(status).json({ error: { reason: known === undefined ? 'INTERNAL_SERVER_ERROR' : reasonOf(known), details: known?.message ?? 'internal error' } })
  }
  router.use(errors)
  return router
}
