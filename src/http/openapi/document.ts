import { z } from 'zod'
import { RESPONSE_FORMATS } from '../../gateway/format.ts'
import * as requests from './requests.ts'
import * as answers from './schemas.ts'

/**
 * The OpenAPI 3.1 description of Heimdall's HTTP API, generated from the
 * zod schemas the routes validate requests with (requests.ts) and the
 * schemas of their answers (schemas.ts). Served at /openapi.json; the suite
 * checks every route of the app is described here or listed as a page, real
 * answers against it, and fuzzes it with schemathesis.
 */

type Method = 'get' | 'head' | 'post' | 'patch' | 'delete' | 'options'
type Security = 'none' | 'bearer' | 'bearerOrForm' | 'metrics'

interface Answer {
  description: string
  /** Media type → schema; 'binary' for bytes. */
  content?: Record<string, z.ZodType | 'binary'>
  headers?: Record<string, string>
}

export interface Operation {
  method: Method
  /** OpenAPI path template. */
  path: string
  /** The Express route pattern it documents (for the check that every route is described). */
  route: string
  operationId: string
  summary: string
  description?: string
  tag: string
  security: Security
  path_?: z.ZodObject
  query?: z.ZodObject
  headers?: Array<{ name: string, description: string, schema?: z.ZodType }>
  body?: { required: boolean, content: Record<string, z.ZodType> }
  responses: Record<string, Answer>
}

const json = (schema: z.ZodType): Record<string, z.ZodType> => ({ 'application/json': schema })
const error = (description: string): Answer => ({ description, content: json(answers.errorBody) })
const psaError = (description: string): Answer => ({ description, content: json(answers.psaFailure) })
const UNAUTHORIZED = error('No credentials, or wrong ones')
const TOO_MANY = { ...error('Too many failed sign-ins, uploads or new identities: try again after Retry-After seconds'), headers: { 'Retry-After': 'Seconds to wait' } }
const SERVICE_UNAVAILABLE = error('The database cannot be reached')
const FORBIDDEN = error('An API key without the scope this needs (or content blocked by the operator)')

const gatewayQuery = z.object({
  format: z.enum(Object.keys(RESPONSE_FORMATS) as [string, ...string[]]).optional().describe('A trustless or codec format instead of the deserialized file (wins over Accept)'),
  filename: z.string().optional(),
  download: z.enum(['true', 'false']).optional(),
  'dag-scope': z.enum(['block', 'entity', 'all']).optional().describe('CAR: which blocks (default all; entity when entity-bytes is given)'),
  'entity-bytes': z.string().optional().describe('CAR: from:to byte range of the file; implies dag-scope=entity'),
  'car-version': z.enum(['1']).optional(),
  'car-order': z.enum(['dfs', 'unk']).optional(),
  'car-dups': z.enum(['y', 'n']).optional()
})
const gatewayAnswers = (withPath: boolean): Record<string, Answer> => ({
  200: {
    description: 'The file\'s bytes (type by its name), a directory listing, or the requested format (raw block, CAR, TAR, DAG-JSON, DAG-CBOR)',
    content: { 'application/octet-stream': 'binary', 'application/vnd.ipld.raw': 'binary', 'application/vnd.ipld.car': 'binary', 'application/x-tar': 'binary', 'application/vnd.ipld.dag-json': 'binary', 'application/vnd.ipld.dag-cbor': 'binary', 'text/html': 'binary', '*/*': 'binary' },
    headers: { ETag: 'The CID (quoted); immutable', 'X-Ipfs-Path': 'The content path', 'X-Ipfs-Roots': 'The CID of each path segment' }
  },
  206: { description: 'The byte range asked for with Range', content: { '*/*': 'binary' } },
  301: { description: withPath ? 'A directory: the same URL with a trailing slash' : 'A directory: the same URL with a trailing slash', headers: { Location: 'Where' } },
  304: { description: 'If-None-Match matched the ETag' },
  400: error('Not a CID, or a malformed query (format, entity-bytes…)'),
  404: error('Not held on this node (the gateway never fetches from the network)'),
  406: error('The format asked for cannot be made of this content'),
  410: error('Blocked, or taken down, by the operator\'s denylist (a list may say another status, e.g. 451)'),
  412: error('Cache-Control: only-if-cached and the content is not here'),
  416: { description: 'A Range beyond the file', headers: { 'Content-Range': 'bytes */<size>' } },
  451: error('Blocked by a denylist rule whose gateway_status hint says 451')
})
const cidPath = z.object({ cid: z.string().describe('A CID (v0 or v1)') })
const cidAndPath = cidPath.extend({ path: z.string().describe('A path below it, /-separated') })

const TUS_RESUMABLE = { name: 'Tus-Resumable', description: 'Required on every tus request: 1.0.0 (else 412)', schema: z.enum(['1.0.0']) }
const PRECONDITION = { ...error('No Tus-Resumable: 1.0.0'), headers: { 'Tus-Version': '1.0.0' } }
const uploadIdPath = z.object({ id: z.string().describe('The upload\'s id, from Location') })
const TUS_STATE = { 'Upload-Offset': 'Bytes the server holds (fsynced)', 'Upload-Length': 'The upload\'s length', 'Upload-Expires': 'When an unfinished upload is removed', 'Tus-Resumable': '1.0.0' }
const LAST_BYTE = {
  400: error('Malformed tus headers'),
  401: UNAUTHORIZED,
  403: FORBIDDEN,
  412: PRECONDITION,
  413: error('Longer than MAX_UPLOAD_BYTES or the quota left (beside what the owner\'s unfinished uploads hold), or more bytes than the upload lacks'),
  415: error('Not application/offset+octet-stream, a type not allowed, or (at the last byte) bytes that do not match the name'),
  422: error('At the last byte: it would not load, files it references are missing'),
  429: TOO_MANY,
  503: error('The database cannot be reached, or this upload\'s bytes are on another instance (retry)'),
  507: error('This node\'s disk is full')
}

const UPLOAD_CHECKSUM = { name: 'Upload-Checksum', description: 'Optional: <md5|sha1|sha256|sha512> <base64 digest> of this request\'s bytes; they count only if they match' }
const CHECKSUM_MISMATCH = error('The bytes do not match Upload-Checksum: none of them were kept, the offset is where it was')

/** tus 1.0.0 (creation, creation-with-upload, expiration, termination, checksum): see "Resumable uploads (tus)" in README.md. */
const RESUMABLE_OPERATIONS: readonly Operation[] = [
  {
    method: 'options', path: '/upload/resumable', route: '/upload/resumable', operationId: 'resumableUploadOptions', tag: 'Resumable uploads (tus)', summary: 'What this tus server supports', security: 'none',
    responses: { 204: { description: 'Supported', headers: { 'Tus-Version': '1.0.0', 'Tus-Extension': 'creation,creation-with-upload,expiration,termination,checksum', 'Tus-Checksum-Algorithm': 'md5,sha1,sha256,sha512', 'Tus-Max-Size': 'MAX_UPLOAD_BYTES', 'Tus-Resumable': '1.0.0' } } }
  },
  {
    method: 'post', path: '/upload/resumable', route: '/upload/resumable', operationId: 'createResumableUpload', tag: 'Resumable uploads (tus)', security: 'bearer',
    summary: 'Create an upload (checked like POST /upload before any byte); with a body (application/offset+octet-stream), its first bytes',
    headers: [TUS_RESUMABLE, { name: 'Upload-Length', description: 'The file\'s size in bytes' }, { name: 'Upload-Metadata', description: 'filename <base64> (required), name <base64> (ignored)' }, UPLOAD_CHECKSUM],
    responses: {
      201: { description: 'Created. If its body carried every byte, stored; then, to a client that asks for JSON (Accept: application/json), the answer of POST /upload (else GET the upload for it)', content: json(answers.addedItems), headers: { Location: '/upload/resumable/<id>', ...TUS_STATE } },
      460: CHECKSUM_MISMATCH,
      ...LAST_BYTE
    }
  },
  {
    method: 'head', path: '/upload/resumable/{id}', route: '/upload/resumable/:id', operationId: 'resumableUploadOffset', tag: 'Resumable uploads (tus)', summary: 'How many bytes the server holds', security: 'bearer', path_: uploadIdPath, headers: [TUS_RESUMABLE],
    responses: { 200: { description: 'The offset', headers: { ...TUS_STATE, 'Upload-Metadata': 'filename <base64>', 'Cache-Control': 'no-store' } }, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: error('No such upload of the caller\'s (expired, terminated or refused)'), 412: PRECONDITION, 429: TOO_MANY, 503: LAST_BYTE[503] }
  },
  {
    method: 'patch', path: '/upload/resumable/{id}', route: '/upload/resumable/:id', operationId: 'appendResumableUpload', tag: 'Resumable uploads (tus)', security: 'bearer', path_: uploadIdPath,
    summary: 'Send bytes from Upload-Offset (application/offset+octet-stream); the last one stores the upload as POST /upload does',
    headers: [TUS_RESUMABLE, { name: 'Upload-Offset', description: 'Where these bytes start: the offset HEAD said' }, UPLOAD_CHECKSUM],
    responses: {
      200: { description: 'The last byte, to a client that asks for JSON (Accept: application/json): stored, the answer of POST /upload', content: json(answers.addedItems), headers: TUS_STATE },
      204: { description: 'Written and fsynced; at the last byte, stored (GET the upload for the answer), as tus requires', headers: TUS_STATE },
      404: error('No such upload of the caller\'s (expired, terminated or refused)'),
      409: error('Upload-Offset is not the server\'s offset'),
      460: CHECKSUM_MISMATCH,
      ...LAST_BYTE
    }
  },
  {
    method: 'get', path: '/upload/resumable/{id}', route: '/upload/resumable/:id', operationId: 'resumableUploadResult', tag: 'Resumable uploads (tus)', security: 'bearer', path_: uploadIdPath,
    summary: 'The answer of an upload whose every byte is in: the JSON of POST /upload, or its refusal; an import under way is waited for, one that failed on the server\'s side is run again',
    responses: {
      200: { description: 'Stored', content: json(answers.addedItems) },
      401: UNAUTHORIZED,
      403: FORBIDDEN,
      404: error('No such upload of the caller\'s'),
      409: { ...error('Not finished: bytes missing'), headers: { 'Upload-Offset': 'Bytes the server holds', 'Upload-Length': 'The upload\'s length' } },
      413: LAST_BYTE[413],
      415: LAST_BYTE[415],
      422: LAST_BYTE[422],
      429: TOO_MANY,
      503: LAST_BYTE[503],
      507: LAST_BYTE[507]
    }
  },
  {
    method: 'delete', path: '/upload/resumable/{id}', route: '/upload/resumable/:id', operationId: 'terminateResumableUpload', tag: 'Resumable uploads (tus)', summary: 'Terminate an upload: its bytes and record go (a stored upload stays)', security: 'bearer', path_: uploadIdPath, headers: [TUS_RESUMABLE],
    responses: { 204: { description: 'Terminated', headers: { 'Tus-Resumable': '1.0.0' } }, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: error('No such upload of the caller\'s'), 412: PRECONDITION, 429: TOO_MANY }
  }
]

export const OPERATIONS: readonly Operation[] = [
  { method: 'get', path: '/plugin_routes', route: '/plugin_routes', operationId: 'pluginRoutes', tag: 'Blender add-on', summary: 'The route map the add-on reads first', security: 'none', responses: { 200: { description: 'Routes', content: json(answers.pluginRoutes) } } },
  {
    method: 'post', path: '/new', route: '/new', operationId: 'createIdentity', tag: 'Identities', summary: 'Create a pseudonymous identity (username + token, shown once)', security: 'none',
    body: { required: false, content: { 'application/x-www-form-urlencoded': requests.newIdentityRequest, 'application/json': requests.newIdentityRequest } },
    responses: { 201: { description: 'Created', content: json(answers.newIdentity) }, 400: error('A username that breaks the rules'), 409: error('The username is taken'), 429: TOO_MANY, 503: SERVICE_UNAVAILABLE }
  },
  {
    method: 'post', path: '/upload', route: '/upload', operationId: 'upload', tag: 'Uploads', summary: 'Upload an asset, a zip bundle or a CAR: checked, added to IPFS, pinned', security: 'bearerOrForm',
    body: { required: true, content: { 'multipart/form-data': requests.uploadForm } },
    responses: {
      200: { description: 'Stored (or already stored by this person under this name)', content: json(answers.addedItems) },
      400: error('No file, a malformed form, or bad names in a bundle'),
      401: UNAUTHORIZED,
      403: FORBIDDEN,
      413: error('Larger than MAX_UPLOAD_BYTES or than the quota left'),
      415: error('A type not allowed, or bytes that do not match the name'),
      422: error('It would not load: files it references are missing'),
      429: TOO_MANY,
      503: SERVICE_UNAVAILABLE,
      507: error('This node\'s disk is full')
    }
  },
  {
    method: 'get', path: '/uploads', route: '/uploads', operationId: 'listUploads', tag: 'Uploads', summary: 'The caller\'s uploads and pin requests, newest first (streamed)', security: 'bearer', query: requests.uploadListQuery,
    responses: { 200: { description: 'The list', content: json(answers.uploadList) }, 303: { description: 'With username and token in the query: signed in, to the list', headers: { Location: '/uploads' } }, 400: error('A malformed query'), 401: UNAUTHORIZED, 403: FORBIDDEN, 429: TOO_MANY, 503: SERVICE_UNAVAILABLE }
  },
  {
    method: 'post', path: '/uploads', route: '/uploads', operationId: 'listUploadsWithForm', tag: 'Uploads', summary: 'The same list, for the add-on\'s form credentials', security: 'none',
    body: { required: true, content: { 'application/x-www-form-urlencoded': requests.formCredentials } },
    responses: { 200: { description: 'The list', content: json(answers.uploadList) }, 400: error('A malformed form'), 401: UNAUTHORIZED, 403: FORBIDDEN, 429: TOO_MANY, 503: SERVICE_UNAVAILABLE }
  },
  { method: 'get', path: '/uploads/{id}', route: '/uploads/:id', operationId: 'getUpload', tag: 'Uploads', summary: 'One of the caller\'s uploads', security: 'bearer', path_: requests.idParam, responses: { 200: { description: 'The upload', content: json(answers.upload) }, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: error('No such upload of the caller\'s'), 429: TOO_MANY } },
  { method: 'delete', path: '/uploads/{id}', route: '/uploads/:id', operationId: 'deleteUpload', tag: 'Uploads', summary: 'Delete one of the caller\'s uploads (unpinned when nothing else references its content)', security: 'bearer', path_: requests.idParam, responses: { 204: { description: 'Deleted' }, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: error('No such upload of the caller\'s'), 429: TOO_MANY } },
  {
    method: 'get', path: '/uploads/{id}/thumbnail', route: '/uploads/:id/thumbnail', operationId: 'uploadThumbnail', tag: 'Uploads', summary: 'The upload\'s picture', security: 'bearer', path_: requests.idParam,
    responses: { 200: { description: 'A picture', content: { 'image/png': 'binary', 'image/webp': 'binary', 'image/jpeg': 'binary', 'image/svg+xml': 'binary' } }, 302: { description: 'A texture: the image itself on the gateway', headers: { Location: 'Gateway URL' } }, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: error('No such upload'), 429: TOO_MANY }
  },
  {
    method: 'post', path: '/uploads/thumbnails/{cid}', route: '/uploads/thumbnails/:cid', operationId: 'saveThumbnail', tag: 'Uploads', summary: 'Store the picture a browser rendered of the caller\'s uploads of this content', security: 'bearer', path_: cidPath,
    body: { required: true, content: { 'image/png': z.string().meta({ format: 'binary' }), 'image/webp': z.string().meta({ format: 'binary' }), 'image/jpeg': z.string().meta({ format: 'binary' }) } },
    responses: { 200: { description: 'Nothing saved (no upload of it, or not an image)', content: json(answers.thumbnailSaved) }, 201: { description: 'Saved', content: json(answers.thumbnailSaved) }, 400: error('Not a CID, or not a picture'), 401: UNAUTHORIZED, 403: FORBIDDEN, 413: error('Too large a picture'), 415: error('Not a PNG, WebP or JPEG'), 429: TOO_MANY }
  },
  { method: 'get', path: '/account', route: '/account', operationId: 'getAccount', tag: 'Account', summary: 'The caller\'s identity, usage and quota (the token or a session; not an API key)', security: 'bearer', responses: { 200: { description: 'The account', content: json(answers.account) }, 401: UNAUTHORIZED, 403: FORBIDDEN, 429: TOO_MANY } },
  { method: 'post', path: '/account/token', route: '/account/token', operationId: 'rotateToken', tag: 'Account', summary: 'Replace the token: the old one stops working at once, every session ends', security: 'bearer', responses: { 200: { description: 'The new token, shown once', content: json(answers.tokenRotated) }, 401: UNAUTHORIZED, 403: FORBIDDEN, 429: TOO_MANY } },
  { method: 'delete', path: '/account/sessions', route: '/account/sessions', operationId: 'revokeSessions', tag: 'Account', summary: 'End every browser session of the caller', security: 'bearer', responses: { 200: { description: 'How many ended', content: json(answers.revoked) }, 401: UNAUTHORIZED, 403: FORBIDDEN, 429: TOO_MANY } },
  { method: 'post', path: '/account/sessions/revoke', route: '/account/sessions/revoke', operationId: 'revokeSessionsWithPost', tag: 'Account', summary: 'The same, for forms', security: 'bearer', responses: { 200: { description: 'How many ended', content: json(answers.revoked) }, 303: { description: 'A browser: signed out, to the home page' }, 401: UNAUTHORIZED, 403: FORBIDDEN, 429: TOO_MANY } },
  { method: 'get', path: '/account/keys', route: '/account/keys', operationId: 'listApiKeys', tag: 'Account', summary: 'The caller\'s API keys (never their secrets)', security: 'bearer', responses: { 200: { description: 'Keys', content: json(answers.apiKeyList) }, 401: UNAUTHORIZED, 403: FORBIDDEN, 429: TOO_MANY } },
  {
    method: 'post', path: '/account/keys', route: '/account/keys', operationId: 'createApiKey', tag: 'Account', summary: 'Create a named API key with scopes and an optional expiry (the secret is shown once)', security: 'bearer',
    body: { required: true, content: { 'application/json': requests.newApiKeyRequest, 'application/x-www-form-urlencoded': requests.newApiKeyRequest } },
    responses: { 201: { description: 'Created', content: json(answers.apiKeyCreated) }, 400: error('A bad name, scope or expiry'), 401: UNAUTHORIZED, 403: FORBIDDEN, 409: error('A key of that name exists'), 429: TOO_MANY }
  },
  { method: 'delete', path: '/account/keys/{id}', route: '/account/keys/:id', operationId: 'revokeApiKey', tag: 'Account', summary: 'Revoke an API key', security: 'bearer', path_: requests.idParam, responses: { 204: { description: 'Revoked' }, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: error('No such key of the caller\'s'), 429: TOO_MANY } },
  { method: 'post', path: '/account/keys/{id}/revoke', route: '/account/keys/:id/revoke', operationId: 'revokeApiKeyWithPost', tag: 'Account', summary: 'The same, for forms', security: 'bearer', path_: requests.idParam, responses: { 204: { description: 'Revoked' }, 303: { description: 'A browser: back to the account page' }, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: error('No such key of the caller\'s'), 429: TOO_MANY } },
  ...(['get', 'head'] as const).flatMap((method) => [
    { method, path: '/ipfs/{cid}', route: '/ipfs/:cid{/*path}', operationId: `${method}Content`, tag: 'Gateway', summary: 'Content by CID: path and trustless gateway (raw, CAR, TAR, DAG-JSON, DAG-CBOR)', security: 'none' as const, path_: cidPath, query: gatewayQuery, headers: [{ name: 'Range', description: 'bytes=from-to (RFC 9110)' }, { name: 'If-None-Match', description: 'An ETag seen before' }], responses: gatewayAnswers(false) },
    { method, path: '/ipfs/{cid}/{path}', route: '/ipfs/:cid{/*path}', operationId: `${method}ContentPath`, tag: 'Gateway', summary: 'A path below a CID', security: 'none' as const, path_: cidAndPath, query: gatewayQuery, headers: [{ name: 'Range', description: 'bytes=from-to (RFC 9110)' }], responses: gatewayAnswers(true) }
  ]),
  { method: 'options', path: '/ipfs/{cid}', route: '/ipfs{/*rest}', operationId: 'contentCors', tag: 'Gateway', summary: 'CORS preflight', security: 'none', path_: cidPath, responses: { 204: { description: 'Allowed methods and headers' } } },
  { method: 'get', path: '/psa/pins', route: '/psa/pins', operationId: 'psaListPins', tag: 'Pinning Service API', summary: 'List pin requests (IPFS Pinning Service API v1.0.0)', security: 'bearer', query: requests.psaListQuery, responses: { 200: { description: 'PinResults', content: json(answers.psaPinResults) }, 400: psaError('A bad filter'), 401: psaError('Bad or no token'), 403: psaError('An API key without the pin scope'), 429: psaError('Too many failed sign-ins') } },
  { method: 'post', path: '/psa/pins', route: '/psa/pins', operationId: 'psaAddPin', tag: 'Pinning Service API', summary: 'Ask for a pin', security: 'bearer', body: { required: true, content: json(requests.psaPin) }, responses: { 202: { description: 'Accepted', content: json(answers.psaPinStatus) }, 400: psaError('A bad pin object'), 401: psaError('Bad or no token'), 403: psaError('Blocked content, or an API key without the pin scope'), 413: psaError('Too large a body'), 429: psaError('Too many failed sign-ins, or PSA_MAX_PENDING requests waiting for content') } },
  { method: 'get', path: '/psa/pins/{requestid}', route: '/psa/pins/:requestid', operationId: 'psaGetPin', tag: 'Pinning Service API', summary: 'One pin request', security: 'bearer', path_: requests.psaRequestIdParam, responses: { 200: { description: 'PinStatus', content: json(answers.psaPinStatus) }, 401: psaError('Bad or no token'), 403: psaError('An API key without the pin scope'), 404: psaError('No such request of the caller\'s'), 429: psaError('Too many failed sign-ins') } },
  { method: 'post', path: '/psa/pins/{requestid}', route: '/psa/pins/:requestid', operationId: 'psaReplacePin', tag: 'Pinning Service API', summary: 'Replace a pin request (a new requestid)', security: 'bearer', path_: requests.psaRequestIdParam, body: { required: true, content: json(requests.psaPin) }, responses: { 202: { description: 'Accepted', content: json(answers.psaPinStatus) }, 400: psaError('A bad pin object'), 401: psaError('Bad or no token'), 403: psaError('Blocked content, or an API key without the pin scope'), 404: psaError('No such request of the caller\'s'), 429: psaError('Too many failed sign-ins, or PSA_MAX_PENDING requests waiting for content') } },
  { method: 'delete', path: '/psa/pins/{requestid}', route: '/psa/pins/:requestid', operationId: 'psaRemovePin', tag: 'Pinning Service API', summary: 'Remove a pin request', security: 'bearer', path_: requests.psaRequestIdParam, responses: { 202: { description: 'Removed' }, 401: psaError('Bad or no token'), 403: psaError('An API key without the pin scope'), 404: psaError('No such request of the caller\'s'), 429: psaError('Too many failed sign-ins') } },
  ...RESUMABLE_OPERATIONS,
  { method: 'get', path: '/healthz', route: '/healthz', operationId: 'health', tag: 'Operations', summary: 'The process answers', security: 'none', responses: { 200: { description: 'Alive', content: json(answers.health) } } },
  { method: 'get', path: '/readyz', route: '/readyz', operationId: 'readiness', tag: 'Operations', summary: 'Database, IPFS node and disk', security: 'none', responses: { 200: { description: 'Ready', content: json(answers.readiness) }, 503: { description: 'Not ready: which component', content: json(answers.readiness) } } },
  { method: 'get', path: '/metrics', route: '/metrics', operationId: 'metrics', tag: 'Operations', summary: 'Prometheus metrics (this machine, or Bearer METRICS_TOKEN)', security: 'metrics', responses: { 200: { description: 'Text exposition format', content: { 'text/plain': 'binary' } }, 401: error('From another machine without a token'), 403: error('A wrong token') } },
  { method: 'get', path: '/openapi.json', route: '/openapi.json', operationId: 'openapi', tag: 'Operations', summary: 'This description', security: 'none', responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': 'binary' } } } }
]

/** Routes that answer browsers with pages (HTML forms and redirects), not part of the API described. */
export const PAGE_ROUTES: ReadonlySet<string> = new Set([
  'GET /', 'GET /new', 'GET /upload', 'GET /uploads/:id/delete', 'POST /uploads/:id/delete', 'POST /signout',
  'GET /preview/:cid/*path', 'GET /favicon.ico', 'GET /favicon.svg'
])

function jsonSchema (schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Record<string, unknown>
  return rest
}

function isOptional (schema: z.ZodType): boolean {
  return schema.safeParse(undefined).success
}

function parameters (operation: Operation): unknown[] {
  const out: unknown[] = []
  for (const [where, object] of [['path', operation.path_], ['query', operation.query]] as const) {
    if (object === undefined) continue
    const shape: Record<string, z.ZodType> = object.shape
    for (const [name, field] of Object.entries(shape)) {
      out.push({ name, in: where, required: where === 'path' || !isOptional(field), schema: jsonSchema(field, 'input'), ...(field.description !== undefined ? { description: field.description } : {}) })
    }
  }
  for (const header of operation.headers ?? []) out.push({ name: header.name, in: 'header', required: false, description: header.description, schema: header.schema === undefined ? { type: 'string' } : jsonSchema(header.schema, 'input') })
  return out
}

function content (media: Record<string, z.ZodType | 'binary'>, io: 'input' | 'output'): Record<string, unknown> {
  return Object.fromEntries(Object.entries(media).map(([type, schema]) => [type, { schema: schema === 'binary' ? {} : jsonSchema(schema, io) }]))
}

const SECURITY: Record<Security, unknown[]> = {
  none: [],
  bearer: [{ bearer: [] }, { session: [] }],
  bearerOrForm: [{ bearer: [] }, { session: [] }, {}],
  metrics: [{ metricsToken: [] }, {}]
}

export function openApiDocument (options: { publicUrl: string, version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const operation of OPERATIONS) {
    const responses = Object.fromEntries(Object.entries(operation.responses).map(([status, answer]) => [status, {
      description: answer.description,
      ...(answer.content !== undefined ? { content: content(answer.content, 'output') } : {}),
      ...(answer.headers !== undefined ? { headers: Object.fromEntries(Object.entries(answer.headers).map(([name, description]) => [name, { description, schema: { type: 'string' } }])) } : {})
    }]))
    paths[operation.path] ??= {}
    paths[operation.path]![operation.method] = {
      operationId: operation.operationId,
      summary: operation.summary,
      ...(operation.description !== undefined ? { description: operation.description } : {}),
      tags: [operation.tag],
      security: SECURITY[operation.security],
      parameters: parameters(operation),
      ...(operation.body !== undefined ? { requestBody: { required: operation.body.required, content: content(operation.body.content, 'input') } } : {}),
      responses
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Heimdall',
      version: options.version,
      description: 'Self-hosted IPFS hosting for Overte avatars and 3D assets: identities, uploads, an IPFS gateway (path and trustless) and the IPFS Pinning Service API. JSON is the default answer; browsers asking for text/html get pages. Errors are {"error","code","details","requestId"} (the Pinning Service API: its spec\'s {"error":{"reason","details"}}).',
      license: { name: 'MIT', identifier: 'MIT' }
    },
    servers: [{ url: options.publicUrl }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'The identity\'s token, or an API key (hk_…) with the scope the operation needs' },
        session: { type: 'apiKey', in: 'cookie', name: 'heimdall_session', description: 'A browser session (forms also need the CSRF token)' },
        metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN' }
      }
    },
    paths
  }
}
