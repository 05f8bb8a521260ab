import { z } from 'zod'
import { API_KEY_SCOPES } from '../../db/api-key-repository.ts'
import { PIN_STATUSES, TEXT_MATCHES } from '../../db/pin-request-repository.ts'

/**
 * What requests carry, as the zod schemas the routes validate them with:
 * the OpenAPI description is generated from these same objects, so a route
 * that starts accepting something else changes the description with it.
 */

/** POST /new: a form (browsers, the add-on) or JSON. The identity service checks the name's rules. */
export const newIdentityRequest = z.object({
  username: z.string({ error: 'a username is required' }).max(64, 'a username is at most 32 characters').describe('3–32 letters, digits, dot, dash or underscore, any case (stored lower-case)')
})

/** Credentials as form fields (the Blender add-on sends them with the file), when there is no Authorization header. */
export const formCredentials = z.object({
  username: z.string().max(64).optional(),
  token: z.string().max(256).optional()
})

/** POST /upload: multipart/form-data, one file in the field `file`. */
export const uploadForm = formCredentials.extend({
  file: z.string().meta({ format: 'binary' }).describe('An asset (fbx, glb, gltf, obj, png…), a .zip bundle or a .car')
})

export const MAX_LIST_LIMIT = 1000

/** GET /uploads as JSON. `username` + `token` in the query is the add-on's browser sign-in (a 303 to the list). */
export const uploadListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).optional().describe(`Uploads in this answer (default and at most ${MAX_LIST_LIMIT})`),
  offset: z.coerce.number().int().min(0).optional(),
  q: z.string().max(255).optional().describe('Only uploads whose name contains this (any case)'),
  username: z.string().max(64).optional(),
  token: z.string().max(256).optional()
})

/** A record's id: PostgreSQL `integer`s, so past 2³¹−1 there is nothing to find. */
// In decimal digits without leading zeros: coercion alone also reads `0x10`, `1e1`, ` 16 ` and `016` as 16, so one record had many URLs.
export const idParam = z.object({ id: z.preprocess((id) => (typeof id === 'string' && !/^[1-9]\d*$/.test(id) ? Number.NaN : id), z.coerce.number().int().min(1).max(2_147_483_647)) })

const scopeList = z.preprocess(
  // None ticked on the page's form sends no field at all: that is no scope, said as such.
  (value) => (value === undefined ? [] : typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter((s) => s !== '') : value),
  z.array(z.enum(API_KEY_SCOPES, { error: `scopes are among ${API_KEY_SCOPES.join(', ')}` })).min(1, `give the key at least one scope among ${API_KEY_SCOPES.join(', ')}`)
)
const blankIsAbsent = (value: unknown): unknown => (value === '' || value === null ? undefined : value)

/** A new API key: JSON (`expiresAt` RFC 3339, or `expiresInDays`) or the account page's form. */
export const newApiKeyRequest = z.object({
  name: z.string().trim().min(1, 'a key needs a name').max(64, 'a key\'s name is at most 64 characters'),
  scopes: scopeList,
  expiresAt: z.preprocess(blankIsAbsent, z.iso.datetime({ offset: true, error: 'expiresAt is an RFC 3339 date-time, e.g. 2027-01-01T00:00:00Z' }).optional()),
  expiresInDays: z.preprocess(blankIsAbsent, z.coerce.number().int().min(1).max(3650).optional())
})

// The Pinning Service API v1.0.0.
export const PSA_MAX_NAME = 255
export const PSA_MAX_META_KEYS = 1000
export const PSA_MAX_CIDS = 10
/** The spec's maxItems for Pin.origins: what is kept of a longer list. */
export const PSA_MAX_ORIGINS = 20
/**
 * What a request may send. An online Kubo sends every address it has as
 * origins (`ipfs pin remote add`, and its MFS pinning), 54 of them seen on one
 * host: a 400 there would fail Kubo's own command. The best 20 are kept.
 */
export const PSA_ACCEPTED_ORIGINS = 1000

/** JSON Schema's maxLength counts characters (code points), as PostgreSQL's varchar does, not UTF-16 units as zod's max. */
export const withinCharacters = (max: number) => (text: string): boolean => text.length <= max || [...text].length <= max
const psaName = z.string().refine(withinCharacters(PSA_MAX_NAME), { message: `at most ${PSA_MAX_NAME} characters` }).meta({ maxLength: PSA_MAX_NAME })

/**
 * Pin.meta's size as JSON. The spec bounds only its keys (1000); 1000 values
 * of 4096 characters made each request 4 MB to store and every listing of
 * them hundreds of MB (a page of 500 was 501 MB: found by review).
 */
export const PSA_MAX_META_BYTES = 16 * 1024

/** Pin.meta and the `meta` filter: string values, at most 1000 keys (the spec's maxProperties) and PSA_MAX_META_BYTES as JSON. */
export const psaMeta = z.record(z.string().max(PSA_MAX_NAME), z.string().max(4096))
  .refine((m) => Object.keys(m).length <= PSA_MAX_META_KEYS, { message: `at most ${PSA_MAX_META_KEYS} keys` })
  .refine((m) => Buffer.byteLength(JSON.stringify(m)) <= PSA_MAX_META_BYTES, { message: `at most ${PSA_MAX_META_BYTES} bytes as JSON` })

/** The spec's Pin object. */
export const psaPin = z.object({
  cid: z.string().min(1).max(256),
  name: psaName.nullish(),
  origins: z.array(z.string().regex(/^\//, 'must be a multiaddr').max(1024)).max(PSA_ACCEPTED_ORIGINS)
    .describe(`multiaddrs; more than ${PSA_MAX_ORIGINS} are accepted (Kubo sends all it has) and the ${PSA_MAX_ORIGINS} likeliest to be reachable kept`).optional(),
  meta: psaMeta.optional()
})

/** GET /psa/pins. Lists may be repeated (`?cid=a&cid=b`) or comma-separated (`?cid=a,b`, as Kubo sends them). */
export const psaListQuery = z.object({
  cid: z.string().optional().describe(`Up to ${PSA_MAX_CIDS} CIDs, comma-separated`),
  name: psaName.optional(),
  match: z.enum(TEXT_MATCHES).optional(),
  status: z.string().optional().describe(`Comma-separated, among ${PIN_STATUSES.join(', ')}; default pinned`),
  before: z.iso.datetime({ offset: true }).optional(),
  after: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  meta: z.string().optional().describe('A JSON object of strings, URL-encoded')
})

export const psaRequestIdParam = z.object({ requestid: z.string() })
