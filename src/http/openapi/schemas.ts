import { z } from 'zod'
import { UPLOAD_KINDS } from '../../db/upload-repository.ts'
import { PIN_STATUSES } from '../../db/pin-request-repository.ts'
import { API_KEY_SCOPES } from '../../db/api-key-repository.ts'

/**
 * The shapes of the HTTP API's answers, as zod schemas: the OpenAPI
 * description (document.ts) is generated from them and from the request
 * schemas the routes validate with, and the contract tests check real
 * answers against them. Objects are exact (no undeclared keys): a key added
 * to an answer must be added here, or the tests fail.
 */

const dateTime = z.iso.datetime()
const url = z.string().min(1)
const count = z.number().int().min(0)

export const errorBody = z.object({
  error: z.string().describe('What went wrong, for a person'),
  code: z.string().describe('Stable machine-readable code, e.g. ERR_UNAUTHORIZED'),
  details: z.array(z.string()).describe('One line per offending item (files, fields)'),
  requestId: z.string().optional().describe('The X-Request-Id of the request: quote it to the operator')
}).meta({ title: 'Error' })

export const pluginRoutes = z.object({
  new_user: z.string(),
  asset_upload: z.string(),
  uploads: z.string(),
  oauth: z.boolean(),
  resumable_upload: z.string().describe('The tus 1.0.0 endpoint (resumable uploads)')
}).meta({ title: 'PluginRoutes', description: 'The route map the Blender add-on reads first' })

export const newIdentity = z.object({
  username: z.string(),
  secret: z.string().describe('The token, as the 2018 add-on reads it'),
  token: z.string().describe('The token: shown once, stored only as a hash'),
  notes: z.string()
}).meta({ title: 'NewIdentity' })

const addedItem = z.object({
  Name: z.string(),
  Hash: z.string().describe('CID'),
  Size: z.string().describe('Cumulative DAG size, a decimal string as Kubo prints it')
})

const avatarReport = z.record(z.string(), z.unknown()).describe('What Overte will see of an avatar: skeleton, height, textures, blendshapes, each checked')

const addedRootItem = addedItem.extend({
  primary: url.nullable().describe('The file to open in Overte'),
  kind: z.enum(UPLOAD_KINDS),
  warnings: z.array(z.string()),
  preview: z.string().nullable(),
  avatar: avatarReport.nullable()
})

export const addedItems = z.array(z.union([addedRootItem, addedItem])).min(1)
  .meta({ title: 'AddedItems', description: '`ipfs add -r -w` output, as the Blender add-on reads it: every file and folder, the wrapping root last with what the checks found' })

export const upload = z.object({
  id: z.number().int(),
  name: z.string(),
  kind: z.enum(UPLOAD_KINDS),
  avatar: z.boolean(),
  rootCid: z.string(),
  size: count,
  createdAt: dateTime,
  url,
  primaryUrl: url.nullable(),
  warnings: z.array(z.string()),
  files: z.array(z.object({ path: z.string(), cid: z.string(), size: count, url })),
  previewUrl: z.string().nullable(),
  avatarReport: avatarReport.nullable(),
  blocked: z.boolean().describe('Taken down by the operator\'s denylist')
}).meta({ title: 'Upload' })

const usage = z.object({ bytes: count, uploads: count })

export const pinRequestListed = z.object({
  requestid: z.string(),
  cid: z.string(),
  name: z.string().nullable(),
  status: z.enum(PIN_STATUSES),
  statusDetails: z.string().nullable(),
  created: dateTime,
  url: url.nullable()
})

export const uploadList = z.object({
  username: z.string(),
  total: count,
  limit: count,
  offset: count,
  usage,
  quota: usage,
  ipfs: z.object({ gateway: url, ipfsNetwork: z.enum(['none', 'peers', 'public']), note: z.string() }).optional(),
  pinRequestTotal: count,
  pinRequests: z.array(pinRequestListed),
  uploads: z.array(upload)
}).meta({ title: 'UploadList' })

export const account = z.object({
  username: z.string(),
  createdAt: dateTime,
  usage,
  quota: usage
}).meta({ title: 'Account' })

export const tokenRotated = newIdentity.meta({ title: 'TokenRotated' })

export const apiKey = z.object({
  id: z.number().int(),
  name: z.string(),
  prefix: z.string().describe('The key\'s public part, to tell keys apart'),
  scopes: z.array(z.enum(API_KEY_SCOPES)),
  createdAt: dateTime,
  expiresAt: dateTime.nullable(),
  lastUsedAt: dateTime.nullable()
}).meta({ title: 'ApiKey' })

export const apiKeyCreated = apiKey.extend({ key: z.string().describe('The secret: shown once') }).meta({ title: 'ApiKeyCreated' })
export const apiKeyList = z.object({ keys: z.array(apiKey) })
export const revoked = z.object({ revoked: count })
export const thumbnailSaved = z.object({ saved: count })

export const health = z.object({ status: z.literal('ok') })
export const readiness = z.object({
  status: z.enum(['ready', 'unavailable']),
  checks: z.record(z.string(), z.string())
}).meta({ title: 'Readiness' })

// The Pinning Service API v1.0.0's objects, as the spec names them.
export const psaFailure = z.object({
  error: z.object({ reason: z.string(), details: z.string().optional() })
}).meta({ title: 'Failure' })

export const psaPinStatus = z.object({
  requestid: z.string(),
  status: z.enum(PIN_STATUSES),
  created: dateTime,
  pin: z.object({
    cid: z.string(),
    name: z.string().optional(),
    origins: z.array(z.string()).optional(),
    meta: z.record(z.string(), z.string()).optional()
  }),
  delegates: z.array(z.string()).min(1),
  info: z.record(z.string(), z.string())
}).meta({ title: 'PinStatus' })

export const psaPinResults = z.object({
  count,
  results: z.array(psaPinStatus)
}).meta({ title: 'PinResults' })
