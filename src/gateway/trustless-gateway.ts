import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { CID } from 'multiformats/cid'
import { AbsentPathError, NotAcceptableError, NotFoundError, PreconditionFailedError, UnprocessableContentError } from '../errors.ts'
import { byteRange, ifNoneMatch, sendNotModified } from '../http/byte-range.ts'
import { parseCid } from '../http/cid-param.ts'
import { contentDisposition } from '../http/content-types.ts'
import type { IpfsBackend } from '../ipfs/ipfs-backend.ts'
import type { ContentReader } from './content-reader.ts'
import { absenceBlocks, carBlocks, resolvePath, type Gate, type ResolvedPath } from './dag-walk.ts'
import { carContentType, carParams, negotiateFormat, queryValue, RESPONSE_FORMATS, type CarParams, type Negotiated, type ResponseFormat } from './format.ts'
import { carV1 } from './formats/car.ts'
import { checkTarNames, tarRoot, tarStream } from './formats/tar.ts'
import { xxhash64 } from './xxhash64.ts'

const IMMUTABLE = 'public, max-age=29030400, immutable'
const JSON_CODE = 0x0200
const CBOR_CODE = 0x51
/** The root of a CAR that shows a name is not there, as boxo's (its emptyRoot): the empty identity CID, a root with no content. */
const EMPTY_ROOT = CID.parse('bafkqaaa')

/** The IPLD codecs served as documents, by multicodec, with their media type. */
const CODEC_TYPES = new Map<number, string>([
  [JSON_CODE, RESPONSE_FORMATS.json],
  [CBOR_CODE, RESPONSE_FORMATS.cbor],
  [dagJson.code, RESPONSE_FORMATS['dag-json']],
  [dagCbor.code, RESPONSE_FORMATS['dag-cbor']]
])
/** Plain JSON/CBOR asked for: the block as it is when its codec is of that family (boxo's contentTypeToRaw). */
const SERVED_AS_IS: Partial<Record<ResponseFormat, readonly number[]>> = { json: [JSON_CODE, dagJson.code], cbor: [CBOR_CODE, dagCbor.code] }
const CODEC_OF: Partial<Record<ResponseFormat, number>> = { 'dag-json': dagJson.code, 'dag-cbor': dagCbor.code }

/** `/ipfs/<cid>/<path>` with each name percent-encoded: header values are ASCII. */
function contentPath (cid: string, path: readonly string[]): string {
  return `/ipfs/${[cid, ...path.map(encodeURIComponent)].join('/')}`
}

/**
 * The CAR's weak ETag exactly as boxo's getCarEtag computes it: XXH64 of the
 * immutable path and every parameter that changes the bytes, in base 32.
 */
export function carEtag (immutablePath: string, params: CarParams, root: CID): string {
  const parts: Uint8Array[] = [Buffer.from(immutablePath)]
  if (params.scope !== 'all') parts.push(Buffer.from(`\x00scope=${params.scope}`))
  if (params.order !== 'dfs') parts.push(Buffer.from(`\x00order=${params.order}`))
  if (params.dups) parts.push(Buffer.from('\x00dups=y'))
  if (params.range !== undefined && (params.range.from !== 0 || params.range.to !== null)) {
    parts.push(Buffer.from('\x00range='))
    const number = Buffer.alloc(8)
    number.writeBigInt64LE(BigInt(params.range.from))
    parts.push(Buffer.from(number))
    if (params.range.to !== null) {
      number.writeBigInt64LE(BigInt(params.range.to))
      parts.push(Buffer.from(number))
    }
  }
  return `W/"${root.toString()}.car.${xxhash64(Buffer.concat(parts)).toString(32)}"`
}

interface GatewayRequest {
  root: CID
  /** The root as written in the URL: boxo's ETags and names keep its spelling. */
  rootText: string
  path: string[]
  negotiated: Negotiated
  signal: AbortSignal
  /** What every CID the answer reaches must pass while a list or a suspension is in force. */
  gate: Gate | undefined
}

/**
 * The trustless (verifiable) answers of the gateway, per the IPFS trustless
 * and path gateway specs, as boxo's handler gives them: `?format=` /
 * `Accept` for raw blocks, CARs, tar and IPLD codecs, `only-if-cached`,
 * `?filename=`/`?download=`, a directory's index.html. The default answer
 * (a file's bytes, a listing) is left to the next handler.
 */
export function trustlessGateway (deps: { backend: IpfsBackend, reader: ContentReader, gate?: () => Gate | undefined, maxTarEntries?: number }): RequestHandler {
  const { backend, reader } = deps

  async function serve (req: Request, res: Response, next: NextFunction): Promise<void> {
    const params = req.params as { cid: string, path?: string[] }
    const root = parseCid(params.cid)
    const path = (params.path ?? []).filter((segment) => segment !== '')
    const abort = new AbortController()
    res.once('close', () => { abort.abort() })

    if (req.get('Cache-Control')?.trim().toLowerCase() === 'only-if-cached') {
      // Held means: the path resolves from blocks this node has, without asking anyone.
      const held = await resolvePath(backend, root, path, abort.signal, deps.gate?.()).then(() => true, (err: unknown) => {
        if (err instanceof NotFoundError) return false
        throw err
      })
      if (!held) throw new PreconditionFailedError(`${contentPath(params.cid, path)} is not held by this node`)
      if (req.method === 'HEAD') { res.status(200).end(); return }
    }

    const negotiated = negotiateFormat(req)
    res.vary('Accept')
    const request: GatewayRequest = { root, rootText: params.cid, path, negotiated, signal: abort.signal, gate: deps.gate?.() }
    if (negotiated.fromAccept) res.setHeader('Content-Location', contentLocation(req, negotiated))

    switch (negotiated.format) {
      case undefined: await serveDefault(req, res, next, request); return
      case 'car': await serveCar(req, res, request); return
      case 'raw': await serveRaw(req, res, request); return
      case 'tar': await serveTar(req, res, request); return
      case 'json': case 'cbor': case 'dag-json': case 'dag-cbor': await serveCodec(req, res, next, request); return
    }
  }

  /** Path `?format=…` with the Accept parameters as `format-param=…` (boxo's addContentLocation). */
  function contentLocation (req: Request, negotiated: Negotiated): string {
    const url = new URL(req.originalUrl, 'http://gateway')
    const format = negotiated.format ?? ''
    url.searchParams.set('format', format)
    for (const [key, value] of Object.entries(negotiated.params)) if (!url.searchParams.has(`${format}-${key}`)) url.searchParams.set(`${format}-${key}`, value)
    return `${url.pathname}?${url.searchParams.toString()}`
  }

  function setCommon (res: Response, request: GatewayRequest, etag: string, resolved?: ResolvedPath): void {
    res.setHeader('Cache-Control', IMMUTABLE)
    res.setHeader('X-Ipfs-Path', contentPath(request.rootText, request.path))
    res.setHeader('ETag', etag)
    if (resolved !== undefined) res.setHeader('X-Ipfs-Roots', resolved.roots.map((cid) => cid.toString()).join(','))
  }

  async function stream (res: Response, body: NodeJS.ReadableStream | AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void> {
    await pipeline(body, res).catch((err: unknown) => {
      // A client that goes away mid-stream is not an error of ours.
      if (!signal.aborted) throw err
    })
  }

  async function serveDefault (req: Request, res: Response, next: NextFunction, request: GatewayRequest): Promise<void> {
    const filename = queryValue(req, 'filename')
    if (filename !== undefined && filename !== '') res.setHeader('Content-Disposition', contentDisposition(queryValue(req, 'download') === 'true' ? 'attachment' : 'inline', filename))
    // A JSON or CBOR document by CID, or by a path through one to another: its bytes, typed by its codec.
    if (CODEC_TYPES.has(request.root.code)) {
      const resolved = await resolvePath(backend, request.root, request.path, request.signal, request.gate)
      if (CODEC_TYPES.has(resolved.terminal.cid.code)) { await serveCodec(req, res, next, request, resolved); return }
    }
    // A directory with an index.html is served as that page (the next handler keeps its rules for documents).
    if (req.path.endsWith('/')) {
      // Through the reader's cache: a node's stat would decode the directory (in Kubo, an RPC call) on every listing.
      const index = await reader.resolve(request.root, [...request.path, 'index.html'], { signal: request.signal }).catch((err: unknown) => {
        if (err instanceof NotFoundError) return undefined
        throw err
      })
      // A symlink is not read through (boxo's errIndexNotReadable, 422): the directory is neither its page nor listed.
      if (index?.type === 'symlink') throw new UnprocessableContentError(`${contentPath(request.rootText, [...request.path, 'index.html'])} could not be read: it is a symlink, not a file`)
      if (index?.type === 'file') {
        const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : ''
        req.url = `${req.path}index.html${query}`
        // The page is named as the directory (X-Ipfs-Path, ETag), as boxo names it.
        res.locals.indexOf = request.path
      }
    }
    next()
  }

  async function serveCar (req: Request, res: Response, request: GatewayRequest): Promise<void> {
    const params = carParams(req, request.negotiated.params)
    const last = request.path.at(-1)
    const name = queryValue(req, 'filename') ?? `${request.root.toString()}${last !== undefined ? `_${last}` : ''}.car`
    res.setHeader('Content-Disposition', contentDisposition('attachment', name))
    const etag = carEtag(`/ipfs/${[request.rootText, ...request.path].join('/')}`, params, request.root)
    setCommon(res, request, etag)
    // The ETag names the request, not what it resolves to: a match needs no block.
    if (ifNoneMatch(req.headers['if-none-match'], etag)) { sendNotModified(res); return }
    let resolved: ResolvedPath
    try {
      resolved = await resolvePath(backend, request.root, request.path, request.signal, request.gate)
    } catch (err) {
      if (!(err instanceof AbsentPathError)) throw err
      await sendAbsence(req, res, request, params, err)
      return
    }
    setCommon(res, request, etag, resolved)
    res.setHeader('Accept-Ranges', 'none')
    res.setHeader('Content-Type', carContentType(params))
    if (req.method === 'HEAD') { res.end(); return }
    await stream(res, Readable.from(carV1([resolved.terminal.cid], carBlocks(backend, resolved, params, request.signal, request.gate))), request.signal)
  }

  /**
   * A CAR of a path naming something that is not there, as Kubo v0.42
   * answers it (boxo's BlocksBackend.GetCAR): 200, and the blocks read
   * looking for the name under the empty identity root, whatever the
   * dag-scope, so a verifying client can see the name is absent. A 404
   * instead is a hard failure to boxo's remote CAR backend (Rainbow's):
   * behind it, a missing file was a 502, and so was every listing of a
   * directory without an index.html (it asks for `<dir>/index.html` first).
   * X-Ipfs-Roots names the root alone, as boxo's does. The blocks are those
   * the resolution holds: the CAR is sent whole, with its length.
   */
  async function sendAbsence (req: Request, res: Response, request: GatewayRequest, params: CarParams, absent: AbsentPathError): Promise<void> {
    const chunks: Uint8Array[] = []
    for await (const chunk of carV1([EMPTY_ROOT], absenceBlocks(absent.walked, request.gate))) chunks.push(chunk)
    const body = Buffer.concat(chunks)
    res.setHeader('X-Ipfs-Roots', request.root.toString())
    res.setHeader('Accept-Ranges', 'none')
    res.setHeader('Content-Type', carContentType(params))
    res.setHeader('Content-Length', String(body.byteLength))
    if (req.method === 'HEAD') { res.end(); return }
    res.end(body)
  }

  async function serveRaw (req: Request, res: Response, request: GatewayRequest): Promise<void> {
    const resolved = await resolvePath(backend, request.root, request.path, request.signal, request.gate)
    const { cid, bytes } = resolved.terminal
    const etag = `"${cid.toString()}.raw"`
    res.setHeader('Content-Disposition', contentDisposition('attachment', queryValue(req, 'filename') ?? `${cid.toString()}.bin`))
    setCommon(res, request, etag, resolved)
    res.setHeader('Content-Type', RESPONSE_FORMATS.raw)
    res.setHeader('Accept-Ranges', 'bytes')
    if (ifNoneMatch(req.headers['if-none-match'], etag)) { sendNotModified(res); return }
    sendBytes(req, res, bytes)
  }

  /** A block's bytes, whole or the one range asked for. */
  function sendBytes (req: Request, res: Response, bytes: Uint8Array): void {
    const range = bytes.byteLength > 0 ? byteRange(bytes.byteLength, req.headers.range) : 'full'
    if (range === 'unsatisfiable') {
      res.removeHeader('Content-Disposition')
      res.status(416).setHeader('Content-Range', `bytes */${bytes.byteLength}`).end()
      return
    }
    let body = bytes
    if (range !== 'full') {
      res.status(206).setHeader('Content-Range', `bytes ${range.start}-${range.end}/${bytes.byteLength}`)
      body = bytes.subarray(range.start, range.end + 1)
    }
    res.setHeader('Content-Length', String(body.byteLength))
    if (req.method === 'HEAD') { res.end(); return }
    res.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength))
  }

  async function serveTar (req: Request, res: Response, request: GatewayRequest): Promise<void> {
    const resolved = await resolvePath(backend, request.root, request.path, request.signal, request.gate)
    const target = resolved.terminal.cid
    const etag = `W/"${target.toString()}.x-tar"`
    setCommon(res, request, etag, resolved)
    if (ifNoneMatch(req.headers['if-none-match'], etag)) { sendNotModified(res); return }
    // Checked before the first byte: a block that is not UnixFS is a 404, a name leading out of the folder a 400, rather than a broken tar.
    // The tree the path resolved to (that block, not another resolution of the path), each entry through the gate.
    const root = await tarRoot(backend, target, request.signal)
    res.setHeader('Content-Disposition', contentDisposition('attachment', queryValue(req, 'filename') ?? `${target.toString()}.tar`))
    res.setHeader('Content-Type', RESPONSE_FORMATS.tar)
    // A HEAD answers what a GET would: the same walk decides between 200 and a refusal.
    await checkTarNames(backend, root, request.signal, request.gate, deps.maxTarEntries)
    if (req.method === 'HEAD') { res.end(); return }
    await stream(res, tarStream(backend, root, request.signal, deps.maxTarEntries) as unknown as AsyncIterable<Uint8Array>, request.signal)
  }

  /** IPLD documents (boxo's renderCodec, without codec conversion: IPIP-524). */
  async function serveCodec (req: Request, res: Response, next: NextFunction, request: GatewayRequest, known?: ResolvedPath): Promise<void> {
    const resolved = known ?? await resolvePath(backend, request.root, request.path, request.signal, request.gate)
    const { cid, bytes } = resolved.terminal
    const format = request.negotiated.format
    let type: string
    if (format === undefined) {
      type = CODEC_TYPES.get(cid.code) ?? RESPONSE_FORMATS.raw
    } else if (SERVED_AS_IS[format]?.includes(cid.code) === true) {
      type = RESPONSE_FORMATS[format]
    } else if ((format === 'json' || format === 'cbor') && !CODEC_TYPES.has(cid.code)) {
      // Plain JSON or CBOR asked of UnixFS: boxo answers the file or listing as usual, which no ?format= URL names.
      res.removeHeader('Content-Location')
      next()
      return
    } else if (CODEC_OF[format] === cid.code) {
      type = RESPONSE_FORMATS[format]
    } else if (CODEC_OF[format] !== undefined) {
      throw new NotAcceptableError(`format "${format}" requested but the block's codec is 0x${cid.code.toString(16)}: codec conversion is not supported, fetch the raw block with ?format=raw and convert it client-side`)
    } else {
      throw new NotAcceptableError(`format "${format}" cannot be made of a block with codec 0x${cid.code.toString(16)}`)
    }
    const short = type.slice(Math.max(type.lastIndexOf('/'), type.lastIndexOf('.')) + 1)
    const etag = `"${cid.toString()}.${short}"`
    const isJson = type.endsWith('json')
    const disposition = queryValue(req, 'download') === 'true' || !isJson ? 'attachment' : 'inline'
    res.setHeader('Content-Disposition', contentDisposition(disposition, queryValue(req, 'filename') ?? `${cid.toString()}${isJson ? '.json' : '.cbor'}`))
    setCommon(res, request, etag, resolved)
    res.setHeader('Content-Type', type)
    if (ifNoneMatch(req.headers['if-none-match'], etag)) { sendNotModified(res); return }
    sendBytes(req, res, bytes)
  }

  return (req, res, next) => { serve(req, res, next).catch(next) }
}
