import { Validator } from '@seriousme/openapi-schema-validator'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { Response } from 'supertest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { OPERATIONS, PAGE_ROUTES, openApiDocument } from '../../src/http/openapi/document.ts'
import { avatarBundle } from '../support/fixtures.ts'
import { startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

type Document = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>> }

/** Every route the app registers, as `METHOD /pattern`, nested routers included. */
function appRoutes (app: unknown): Set<string> {
  const found = new Set<string>()
  interface Layer { rawPath?: string, route?: { path: string | string[], methods: Record<string, boolean> }, handle: { stack?: Layer[] } }
  const walk = (stack: Layer[], prefix: string): void => {
    for (const layer of stack) {
      if (layer.route !== undefined) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path]
        for (const path of paths) for (const method of Object.keys(layer.route.methods)) if (method !== '_all') found.add(`${method.toUpperCase()} ${prefix}${path}`)
        if (layer.route.methods._all === true) for (const path of paths) found.add(`ALL ${prefix}${path}`)
      } else if (layer.handle.stack !== undefined) {
        walk(layer.handle.stack, layer.rawPath === undefined || layer.rawPath === '/' ? prefix : `${prefix}${layer.rawPath}`)
      }
    }
  }
  walk((app as { router: { stack: Layer[] } }).router.stack, '')
  return found
}

describe('the OpenAPI description (/openapi.json)', () => {
  let t: TestHeimdall
  let document: Document
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  addFormats.default(ajv)

  beforeAll(async () => {
    t = await startTestHeimdall()
    document = (await t.request.get('/openapi.json').expect(200).expect('Content-Type', /json/)).body as Document
  })
  afterAll(async () => { await t.close() })

  /** The answer conforms to what the description says of this operation and status. */
  function conforms (method: string, template: string, res: Response): void {
    const operation = document.paths[template]?.[method]
    expect(operation, `${method} ${template} is described`).toBeDefined()
    const answer = operation?.responses[String(res.status)]
    expect(answer, `${method} ${template} describes status ${res.status}: ${String(res.text ?? "").slice(0, 200)}`).toBeDefined()
    const media = String(res.headers['content-type'] ?? '').split(';')[0] ?? ''
    if (answer?.content === undefined) return
    const schema = answer.content[media]?.schema ?? answer.content['*/*']?.schema
    expect(schema, `${method} ${template} ${res.status} describes ${media}`).toBeDefined()
    if (media !== 'application/json' || schema === undefined) return
    const validate = ajv.compile(schema)
    expect(validate(res.body), `${method} ${template} ${res.status}: ${ajv.errorsText(validate.errors)}`).toBe(true)
  }

  it('is valid OpenAPI 3.1, and is what the code generates', async () => {
    const result = await new Validator().validate(document)
    expect(result).toEqual({ valid: true })
    expect(document).toEqual(openApiDocument({ publicUrl: 'http://localhost:8080', version: (await import('../../package.json', { with: { type: 'json' } })).default.version }))
  })

  it('describes every route of the app that is not a page, and nothing the app lacks', () => {
    const routes = appRoutes(t.heimdall.app)
    const described = new Set(OPERATIONS.map((op) => `${op.method === 'head' ? 'GET' : op.method.toUpperCase()} ${op.route}`))
    const undescribed = [...routes].filter((route) => !described.has(route) && !PAGE_ROUTES.has(route) && !route.startsWith('ALL ') && !route.startsWith('OPTIONS '))
    expect(undescribed).toEqual([])
    const missing = [...described].filter((route) => !routes.has(route) && !routes.has(`ALL ${route.split(' ')[1] ?? ''}`) && !route.startsWith('OPTIONS '))
    expect(missing).toEqual([])
  })

  it('matches real answers: identities, uploads, account and keys, the gateway, the Pinning Service API, health', async () => {
    conforms('post', '/new', await t.request.post('/new').type('form').send({}))
    const res = await t.request.post('/new').type('form').send({ username: 'contract' })
    conforms('post', '/new', res)
    expect(res.status, res.text).toBe(201)
    const token = (res.body as { token: string }).token
    const bearer = { Authorization: `Bearer ${token}` }
    conforms('post', '/new', await t.request.post('/new').send({ username: 'x' }))
    conforms('get', '/plugin_routes', await t.request.get('/plugin_routes'))

    const uploaded = await t.request.post('/upload').set(bearer).attach('file', await avatarBundle(), 'contract.zip')
    conforms('post', '/upload', uploaded)
    conforms('post', '/upload', await t.request.post('/upload').set(bearer).attach('file', Buffer.from('MZ'), 'tool.exe'))
    conforms('post', '/upload', await t.request.post('/upload').attach('file', Buffer.from('{}'), 'a.json'))
    expect(uploaded.status, uploaded.text).toBe(200)
    const root = (uploaded.body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''

    const list = await t.request.get('/uploads').set(bearer)
    conforms('get', '/uploads', list)
    conforms('get', '/uploads', await t.request.get('/uploads?limit=0').set(bearer))
    conforms('get', '/uploads', await t.request.get('/uploads?limit=2&offset=0&q=contract').set(bearer))
    const id = (list.body as { uploads: Array<{ id: number }> }).uploads[0]?.id ?? 0
    conforms('get', '/uploads/{id}', await t.request.get(`/uploads/${id}`).set(bearer))
    conforms('get', '/uploads/{id}', await t.request.get('/uploads/999999').set(bearer))
    conforms('get', '/uploads/{id}/thumbnail', await t.request.get(`/uploads/${id}/thumbnail`).set(bearer))
    conforms('post', '/uploads', await t.request.post('/uploads').type('form').send({ token }))

    conforms('get', '/account', await t.request.get('/account').set(bearer))
    const key = await t.request.post('/account/keys').set(bearer).send({ name: 'ci', scopes: ['list', 'pin'], expiresInDays: 30 })
    conforms('post', '/account/keys', key)
    conforms('post', '/account/keys', await t.request.post('/account/keys').set(bearer).send({ name: '', scopes: ['nope'] }))
    conforms('get', '/account/keys', await t.request.get('/account/keys').set(bearer))
    conforms('delete', '/account/sessions', await t.request.delete('/account/sessions').set(bearer))

    conforms('get', '/ipfs/{cid}/{path}', await t.request.get(`/ipfs/${root}/avatar.fst`))
    conforms('get', '/ipfs/{cid}', await t.request.get(`/ipfs/${root}`))
    conforms('get', '/ipfs/{cid}', await t.request.get(`/ipfs/${root}/`).set('Accept', 'application/json'))
    conforms('get', '/ipfs/{cid}', await t.request.get(`/ipfs/${root}?format=car`))
    conforms('get', '/ipfs/{cid}', await t.request.get('/ipfs/not-a-cid'))
    conforms('get', '/ipfs/{cid}', await t.request.get('/ipfs/bafkqaaa?format=nope'))

    const pin = await t.request.post('/psa/pins').set(bearer).send({ cid: root, name: 'contract' })
    conforms('post', '/psa/pins', pin)
    conforms('post', '/psa/pins', await t.request.post('/psa/pins').set(bearer).send({ cid: 'nope' }))
    conforms('get', '/psa/pins', await t.request.get('/psa/pins').set(bearer))
    conforms('get', '/psa/pins', await t.request.get('/psa/pins?limit=0').set(bearer))
    conforms('get', '/psa/pins/{requestid}', await t.request.get(`/psa/pins/${(pin.body as { requestid: string }).requestid}`).set(bearer))
    conforms('get', '/psa/pins', await t.request.get('/psa/pins'))

    conforms('get', '/healthz', await t.request.get('/healthz'))
    conforms('get', '/readyz', await t.request.get('/readyz'))
    conforms('post', '/account/token', await t.request.post('/account/token').set(bearer))
    conforms('get', '/account', await t.request.get('/account').set(bearer))
  })
})
