import type { Request } from 'express'
import { BadRequestError } from '../errors.ts'

/**
 * The representations of `/ipfs/<cid>[/<path>]` besides the default
 * (deserialized UnixFS), by their `?format=` name, as in boxo's handler.go.
 */
export const RESPONSE_FORMATS = {
  raw: 'application/vnd.ipld.raw',
  car: 'application/vnd.ipld.car',
  tar: 'application/x-tar',
  json: 'application/json',
  cbor: 'application/cbor',
  'dag-json': 'application/vnd.ipld.dag-json',
  'dag-cbor': 'application/vnd.ipld.dag-cbor'
} as const

export type ResponseFormat = keyof typeof RESPONSE_FORMATS

export interface Negotiated {
  /** `undefined`: the default answer (a file's bytes, a listing). */
  format: ResponseFormat | undefined
  /** Media type parameters from `Accept` (CAR `version`, `order`, `dups`) when they name the chosen format. */
  params: Readonly<Record<string, string>>
  /** Chosen by `Accept` alone: the answer names its URL in `Content-Location`. */
  fromAccept: boolean
}

const BY_MEDIA_TYPE = new Map<string, ResponseFormat>(Object.entries(RESPONSE_FORMATS).map(([name, type]) => [type, name as ResponseFormat]))
/** Accept values boxo looks at; anything else (`text/html`, `*\/*`) leaves the default answer. */
const VENDOR_PREFIXES = ['application/vnd.ipld', 'application/vnd.ipfs', 'application/x-tar', 'application/json', 'application/cbor']
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

function parseMediaType (value: string): { type: string, params: Record<string, string> } {
  const [type = '', ...rest] = value.split(';').map((part) => part.trim())
  const params: Record<string, string> = {}
  for (const part of rest) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const key = eq === -1 ? '' : part.slice(0, eq).trim().toLowerCase()
    let val = eq === -1 ? '' : part.slice(eq + 1).trim()
    if (val.startsWith('"') && val.endsWith('"') && val.length >= 2) val = val.slice(1, -1)
    if (!TOKEN.test(key)) throw new BadRequestError(`the Accept header is malformed: "${value.slice(0, 100)}"`)
    params[key] = val
  }
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(type)) throw new BadRequestError(`the Accept header is malformed: "${value.slice(0, 100)}"`)
  return { type: type.toLowerCase(), params }
}

/** The first value of a query parameter: Express gives arrays for repeated keys. */
export function queryValue (req: Request, key: string): string | undefined {
  const value: unknown = (req.query as Record<string, unknown>)[key]
  const first: unknown = Array.isArray(value) ? value[0] : value
  return typeof first === 'string' ? first : undefined
}

/**
 * `?format=` wins over `Accept` (IPIP-523); of `Accept`, the first vendor
 * type listed counts (boxo ignores q-values too). An unknown `?format=` or a
 * vendor type we do not serve is the client's error.
 */
export function negotiateFormat (req: Request): Negotiated {
  const formatParam = queryValue(req, 'format')
  let fromQuery: ResponseFormat | undefined
  if (formatParam !== undefined && formatParam !== '') {
    if (!Object.hasOwn(RESPONSE_FORMATS, formatParam)) {
      throw new BadRequestError(`unsupported format "${formatParam.slice(0, 40)}": ask for one of ${Object.keys(RESPONSE_FORMATS).join(', ')}`)
    }
    fromQuery = formatParam as ResponseFormat
  }
  let accepted: { format: ResponseFormat, params: Record<string, string> } | undefined
  for (const value of (req.get('Accept') ?? '').split(',')) {
    const trimmed = value.trim().toLowerCase()
    if (!VENDOR_PREFIXES.some((prefix) => trimmed.startsWith(prefix))) continue
    const { type, params } = parseMediaType(value.trim())
    const format = BY_MEDIA_TYPE.get(type)
    if (format === undefined) {
      if (fromQuery !== undefined) break
      throw new BadRequestError(`unsupported response format "${type}" in Accept`)
    }
    accepted = { format, params }
    break
  }
  if (fromQuery !== undefined) return { format: fromQuery, params: accepted?.format === fromQuery ? accepted.params : {}, fromAccept: false }
  if (accepted !== undefined) return { format: accepted.format, params: accepted.params, fromAccept: true }
  return { format: undefined, params: {}, fromAccept: false }
}

export type DagScope = 'block' | 'entity' | 'all'

/** `entity-bytes=from:to`: negative offsets count from the end, `to` may be `*` (null). */
export interface EntityBytes { from: number, to: number | null }

export interface CarParams {
  scope: DagScope
  range: EntityBytes | undefined
  /** Only depth-first is served: `unk` (any order) is answered in it too. */
  order: 'dfs' | 'unk'
  dups: boolean
}

const INTEGER = /^-?\d{1,16}$/

function parseEntityBytes (value: string): EntityBytes {
  const bad = (why: string): never => { throw new BadRequestError(`invalid entity-bytes "${value.slice(0, 60)}": ${why}`) }
  const parts = value.split(':')
  if (parts.length !== 2) return bad("expected two numbers separated by ':'")
  const [fromText = '', toText = ''] = parts
  if (!INTEGER.test(fromText)) return bad('"from" must be an integer')
  const from = Number(fromText)
  if (toText === '*') return { from, to: null }
  if (!INTEGER.test(toText)) return bad('"to" must be an integer or *')
  const to = Number(toText)
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to)) return bad('out of range')
  if ((from >= 0 && to >= 0 && from > to) || (from < 0 && to < 0 && from > to)) return bad("'from' is after 'to'")
  return { from, to }
}

/**
 * CAR parameters as boxo's buildCarParams reads them: `dag-scope`,
 * `entity-bytes`, then `version`/`order`/`dups` from `Accept`, overridden by
 * `car-version`/`car-order`/`car-dups` in the URL. One difference: with
 * `entity-bytes` and no `dag-scope` the scope is `entity`, as the spec
 * says, where boxo takes `all` and sends the whole DAG for a range.
 */
export function carParams (req: Request, acceptParams: Readonly<Record<string, string>>): CarParams {
  const scopeText = queryValue(req, 'dag-scope')
  const rangeText = queryValue(req, 'entity-bytes')
  const range = rangeText === undefined ? undefined : parseEntityBytes(rangeText)
  // `entity-bytes` "implies dag-scope=entity" (trustless gateway spec): alone, it asks for the range's blocks, not the DAG.
  let scope: DagScope = range === undefined ? 'all' : 'entity'
  if (scopeText !== undefined) {
    if (scopeText !== 'block' && scopeText !== 'entity' && scopeText !== 'all') throw new BadRequestError(`unsupported dag-scope "${scopeText.slice(0, 40)}": block, entity or all`)
    scope = scopeText
  }
  const pick = (key: string): string => {
    const fromUrl = queryValue(req, `car-${key}`)
    return fromUrl !== undefined && fromUrl !== '' ? fromUrl : acceptParams[key] ?? ''
  }
  const version = pick('version')
  if (version !== '' && version !== '1') throw new BadRequestError('unsupported application/vnd.ipld.car version: only version=1 is supported')
  const orderText = pick('order')
  if (orderText !== '' && orderText !== 'dfs' && orderText !== 'unk') throw new BadRequestError(`unsupported application/vnd.ipld.car order "${orderText.slice(0, 20)}": dfs or unk`)
  const dupsText = pick('dups')
  if (dupsText !== '' && dupsText !== 'y' && dupsText !== 'n') throw new BadRequestError(`unsupported application/vnd.ipld.car dups "${dupsText.slice(0, 20)}": y or n`)
  return { scope, range, order: orderText === 'unk' ? 'unk' : 'dfs', dups: dupsText === 'y' }
}

/** `application/vnd.ipld.car; version=1; order=dfs; dups=n`, as boxo writes it. */
export function carContentType (params: CarParams): string {
  return `${RESPONSE_FORMATS.car}; version=1; order=${params.order}; dups=${params.dups ? 'y' : 'n'}`
}
