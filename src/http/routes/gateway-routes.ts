import { Router, type ErrorRequestHandler, type Request, type Response } from 'express'
import type { CID } from 'multiformats/cid'
import { ContentBlockedError, HeimdallError, NotFoundError, ServiceUnavailableError } from '../../errors.ts'
import type { BlockedBy, Denylist } from '../../denylist/denylist.ts'
import type { IpfsBackend } from '../../ipfs/ipfs-backend.ts'
import type { ContentReader, ResolvedNode } from '../../gateway/content-reader.ts'
import { ByteLru } from '../../gateway/byte-lru.ts'
import { byteRange, ifNoneMatch, ifRangeAllows, sendNotModified } from '../byte-range.ts'
import { isIdentity, parseCid } from '../cid-param.ts'
import { formatBytes } from '../format.ts'
import { trustlessGateway } from '../../gateway/trustless-gateway.ts'
import { queryValue } from '../../gateway/format.ts'
import type { Gate } from '../../gateway/dag-walk.ts'
import { contentDisposition, contentTypeFor, isPassive, SNIFF_BYTES, sniffContentType } from '../content-types.ts'
import { extensionOf } from '../../assets/asset-kinds.ts'

/**
 * What the gateway serves is anyone's content: it is sandboxed so that it never
 * runs with this site's origin, even when opened directly.
 */
export const GATEWAY_CSP = "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'"
const IMMUTABLE = 'public, max-age=29030400, immutable'
/** Bump when views/directory.ejs changes what a listing looks like: its ETag names the template too. */
const DIR_INDEX_VERSION = 'v2'
const ALLOWED_METHODS = 'GET, HEAD, OPTIONS'
/**
 * A listing's order, made at the first listing: a collator loads ICU's
 * data, ~3.5 MB of the idle server's resident memory (measured), which a
 * node waits to pay until something needs it.
 */
let nameOrder: Intl.Collator | undefined
/**
 * Memory for rendered listing pages (a 2,000-entry directory renders to
 * ~0.5 MB). A page is a function of its immutable path alone, so it is
 * rendered once, not per request.
 */
const LISTING_PAGES_BYTES = 8 * 1024 * 1024
/** CIDs whose sniffed type is remembered (each weighs 1 in its ByteLru). */
const SNIFFED_TYPES = 10_000
/** A generated listing's, as boxo's gateway sends it (gateway-conformance accepts only this or none). */
const LISTING_CACHE_CONTROL = 'public, max-age=604800, stale-while-revalidate=2678400'
/** Headers that describe a representation; an error answer must not keep them. */
const REPRESENTATION_HEADERS = ['Cache-Control', 'ETag', 'X-Ipfs-Path', 'Accept-Ranges', 'Content-Range', 'Content-Disposition', 'Content-Type', 'Content-Length', 'X-Ipfs-Roots', 'Content-Location']

/**
 * Every answer under /ipfs, errors included: readable cross-origin (boxo's
 * CORS headers, which gateway-conformance checks on GET and OPTIONS alike),
 * never sniffed, sandboxed.
 */
function setCommonHeaders (res: Response): void {
  res.setHeader('Access-Control-Allow-Origin', '*')
  res.setHeader('Access-Control-Allow-Methods', ALLOWED_METHODS)
  res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Range, User-Agent, X-Requested-With, If-None-Match, If-Range, Cache-Control')
  res.setHeader('Access-Control-Expose-Headers', 'Content-Length, Content-Range, Content-Disposition, ETag, X-Ipfs-Path, X-Ipfs-Roots, Content-Location, X-Chunked-Output, X-Stream-Output')
  res.setHeader('X-Content-Type-Options', 'nosniff')
  res.setHeader('Content-Security-Policy', GATEWAY_CSP)
}

/** A successful answer: the same bytes for ever, so cacheable for ever. */
function setContentHeaders (res: Response, ipfsPath: string, etag: string): void {
  res.setHeader('Cache-Control', IMMUTABLE)
  res.setHeader('X-Ipfs-Path', ipfsPath)
  res.setHeader('ETag', etag)
}

/** The content path as a URL path: header values must be ASCII, and names may be in any script. */
function contentPath (cid: CID, path: readonly string[]): string {
  return `/ipfs/${[cid.toString(), ...path.map(encodeURIComponent)].join('/')}`
}

/**
 * `GET|HEAD /ipfs/<cid>[/<path>]` over this service's own node, never reaching
 * out to the network. Mounted before cookies and body parsers: no gateway
 * answer sets a cookie or reads a body. Every /ipfs request ends here.
 */
export function gatewayRoutes (deps: { backend: IpfsBackend, reader: ContentReader, maxTarEntries?: number, denylist?: Denylist, takenDown?: { has: (cid: CID) => boolean, confirm: (cid: CID) => Promise<boolean> }, suspended?: { has: (cid: CID) => boolean, readonly empty: boolean } }): Router {
  const router = Router()
  const listingPages = new ByteLru<Buffer>(LISTING_PAGES_BYTES)
  // A listing of content that garbage collection removed must not outlive it.
  deps.reader.onForget(() => { listingPages.clear() })

  /** The listing page of a resolved directory, rendered on the first request for its path. */
  async function listingPage (res: Response, node: ResolvedNode, cid: CID, path: readonly string[], ipfsPath: string, signal: AbortSignal): Promise<Buffer> {
    const hit = listingPages.get(ipfsPath)
    if (hit !== undefined) return hit
    // Built from the directory's links alone (as boxo does): no child is read, so a
    // sub-directory's link has no slash until its 301 adds one.
    const entries = (await deps.reader.list(node, { signal })).map((entry) => ({ ...entry, cid: entry.cid.toString(), sizeText: formatBytes(entry.size) }))
    const order = nameOrder ??= new Intl.Collator('en')
    entries.sort((a, b) => order.compare(a.name, b.name))
    // ipfsPath is the content path URL-encoded: the breadcrumbs link each of its prefixes.
    const crumbs = [cid.toString(), ...path].map((name, i) => ({ name, href: `/ipfs/${[cid.toString(), ...path.slice(0, i).map(encodeURIComponent)].join('/')}` }))
    const locals = { title: ['/ipfs', cid.toString(), ...path].join('/'), here: ipfsPath, crumbs, parent: path.length > 0, entries }
    const html = await new Promise<string>((resolve, reject) => {
      res.render('directory', locals, (err: Error | null, rendered: string) => { if (err === null) resolve(rendered); else reject(err) })
    })
    const page = Buffer.from(html)
    listingPages.set(ipfsPath, page, page.length + ipfsPath.length * 2)
    return page
  }

  /**
   * Whether a document type (HTML, SVG, XML…) may be served as itself: only
   * below a root pinned here, uploaded by someone. Not for identity CIDs,
   * whose bytes anyone writes into the URL, nor for blocks merely held.
   */
  async function servesDocuments (root: CID): Promise<boolean> {
    return !isIdentity(root) && await deps.backend.isPinned(root)
  }

  /**
   * `X-Ipfs-Roots`: the CID each segment of the path resolves to, root first,
   * as boxo sends, from one walk along the path (its nodes are in the
   * reader's cache from resolving it).
   */
  async function rootsAlong (root: CID, path: readonly string[], signal: AbortSignal): Promise<string> {
    return (await deps.reader.along(root, path, { signal })).map((cid) => cid.toString()).join(',')
  }

  /**
   * The type a file's first bytes give, for a name with no extension (a bare
   * CID): its first bytes are read once per CID (remembered, as they never
   * change); unreadable now, it is left unknown rather than failing the answer,
   * unless the node is not answering (a 503).
   */
  const sniffedTypes = new ByteLru<string>(SNIFFED_TYPES)
  async function sniffed (node: ResolvedNode): Promise<string | undefined> {
    const key = node.cid.toString()
    const known = sniffedTypes.get(key)
    // '' remembers that the bytes showed no type.
    if (known !== undefined) return known === '' ? undefined : known
    const length = Math.min(node.size, SNIFF_BYTES)
    const head = Buffer.allocUnsafe(length)
    let filled = 0
    try {
      for await (const chunk of deps.reader.read(node, { offset: 0, length, gate: gateNow() })) {
        head.set(chunk.subarray(0, length - filled), filled)
        filled += chunk.byteLength
        if (filled >= length) break
      }
    } catch (err) {
      // The node not answering is the answer's failure too (it would wait as long again for the body, or a HEAD give
      // a guessed type as immutable).
      if (err instanceof ServiceUnavailableError) throw err
      return undefined
    }
    const type = sniffContentType(head.subarray(0, Math.min(filled, length)), node.size <= length)
    sniffedTypes.set(key, type ?? '', 1)
    return type
  }

  router.use('/ipfs', (_req, res, next) => { setCommonHeaders(res); next() })

  router.options('/ipfs{/*rest}', (_req, res) => {
    res.setHeader('Access-Control-Max-Age', '86400')
    res.status(204).end()
  })

  // The operator's denylists, before anything is read for an answer: the request's path, then each node it resolves through.
  const { denylist, suspended } = deps
  const refuseBlocked = (blocked: BlockedBy | undefined): void => {
    if (blocked !== undefined) throw new ContentBlockedError('this content is blocked on this node by its operator', blocked.rule.status)
  }
  const refuseSuspended = (cid: CID): void => {
    if (suspended?.has(cid) === true) throw new ContentBlockedError('this content is not served: the operator of this node disabled the identity that uploaded it')
  }
  /** One CID checked against the lists: every CID an answer reaches passes here, whatever path or DAG leads to it. */
  const gate: Gate = (cid) => {
    if (denylist !== undefined && !denylist.empty) refuseBlocked(denylist.checkCid(cid))
  }
  /**
   * The gate while a list is in force; none otherwise, so no answer walks a file's blocks for nothing. Suspension is
   * not a block gate: what a disabled identity holds is its roots, files and folders, checked along the request's
   * path; a chunk inside someone else's file that has the same bytes as one of its files is not its content.
   */
  const gateNow = (): Gate | undefined => (denylist === undefined || denylist.empty) ? undefined : gate
  const refuseSuspendedNode = (cid: CID): void => {
    refuseSuspended(cid)
    gateNow()?.(cid)
  }
  if (denylist !== undefined || suspended !== undefined) {
    router.get('/ipfs/:cid{/*path}', async (req: Request, res: Response, next) => {
      if ((denylist === undefined || denylist.empty) && (suspended === undefined || suspended.empty)) { next(); return }
      const check = refuseSuspendedNode
      const params = req.params as { cid: string, path?: string[] }
      const cid = parseCid(params.cid)
      // The root by the path rules (a list's exceptions below it apply), each node below by its CID.
      refuseSuspended(cid)
      // Content a list took down is gone, whatever path or format asks for it, even while another upload holds its blocks.
      // The set is refreshed every few seconds; a hit is confirmed, since an upload accepted meanwhile lifts a take-down.
      if (deps.takenDown?.has(cid) === true && await deps.takenDown.confirm(cid)) throw new ContentBlockedError('this content was taken down on this node by its operator')
      const path = (params.path ?? []).filter((segment) => segment !== '')
      refuseBlocked(denylist?.checkPath(cid, path))
      // Every node the path passes, from one walk, stopped when the client leaves. Only "not there" ends the walk short
      // (for the trustless handlers, which resolve paths themselves, through dag-cbor and dag-json too, and pass every
      // CID they reach through the same gate, or for the next handler's 404): any other failure (Kubo not answering) is
      // the request's, never a way past the lists.
      const abort = new AbortController()
      res.once('close', () => { abort.abort() })
      for (const passed of (await deps.reader.along(cid, path, { signal: abort.signal })).slice(1)) check(passed)
      next()
    })
  }

  // Formats (raw, CAR, tar, codecs), only-if-cached, index.html; the default answer falls through.
  router.get('/ipfs/:cid{/*path}', trustlessGateway({ ...deps, gate: gateNow }))

  router.get('/ipfs/:cid{/*path}', async (req: Request, res: Response) => {
    const params = req.params as { cid: string, path?: string[] }
    const cid = parseCid(params.cid)
    const path = (params.path ?? []).filter((segment) => segment !== '')
    const ipfsPath = contentPath(cid, path)
    // Work for a client that left is stopped (a listing, a walk along a long path, a file's bytes): nobody waits for it.
    const abort = new AbortController()
    res.once('close', () => { abort.abort() })
    const node = await deps.reader.resolve(cid, path, { signal: abort.signal })
    // A directory served through its index.html (the trustless handler pointed the URL at it) is named by the directory, as boxo does.
    const indexOf = res.locals.indexOf as string[] | undefined
    // A directory's index.html was found after the lists' walk, which saw the directory: the page is checked here, as its own path.
    if (indexOf !== undefined) {
      if (denylist !== undefined && !denylist.empty) refuseBlocked(denylist.checkPath(cid, path))
      refuseSuspendedNode(node.cid)
    }
    const named = indexOf === undefined ? node : await deps.reader.resolve(cid, indexOf, { signal: abort.signal })
    res.setHeader('X-Ipfs-Roots', await rootsAlong(cid, indexOf ?? path, abort.signal))

    if (node.type === 'directory') {
      if (!req.path.endsWith('/')) {
        // Relative links in the listing (and in the assets themselves) need the slash.
        const query = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?')) : ''
        res.setHeader('X-Ipfs-Path', ipfsPath)
        res.redirect(301, `${req.baseUrl}${req.path}/${query}`)
        return
      }
      const etag = `"DirIndex-${DIR_INDEX_VERSION}_CID-${node.cid.toString()}"`
      setContentHeaders(res, `${ipfsPath}/`, etag)
      // The directory is immutable, its generated page is not (a new version of the listing template): boxo's week, revalidated in the background.
      res.setHeader('Cache-Control', LISTING_CACHE_CONTROL)
      if (ifNoneMatch(req.headers['if-none-match'], etag)) { sendNotModified(res); return }
      // HEAD answers from the resolution alone: the listing is not built to be thrown away.
      if (req.method === 'HEAD') { res.type('html').end(); return }
      const page = await listingPage(res, node, cid, path, ipfsPath, abort.signal)
      res.type('html').send(page)
      return
    }

    // As boxo: the file's own CID names its bytes, whatever path led to it.
    const etag = `"${named.cid.toString()}"`
    setContentHeaders(res, indexOf === undefined ? ipfsPath : `${contentPath(cid, indexOf)}/`, etag)
    res.setHeader('Accept-Ranges', 'bytes')
    // A 304 repeats no type: nothing is read or decided for it.
    if (ifNoneMatch(req.headers['if-none-match'], etag)) { sendNotModified(res); return }
    // The type by `?filename=` when given, as boxo does (the listing links each entry's CID so), else by the last path segment;
    // but a name asked for never makes a document (HTML, SVG, PDF…) of bytes stored under another name: uploads are pinned roots.
    const asked = queryValue(req, 'filename')
    const name = asked !== undefined && asked !== '' && isPassive(contentTypeFor(asked)) ? asked : (path.at(-1) ?? '')
    // A symlink's bytes are the path it names, never followed: typed as boxo types one, whatever its name.
    let type = node.type === 'symlink' ? 'inode/symlink' : contentTypeFor(name)
    if (type === 'application/octet-stream' && extensionOf(name) === '' && node.size > 0) type = await sniffed(node) ?? type
    if (!isPassive(type) && !(await servesDocuments(cid))) {
      type = 'text/plain; charset=utf-8'
      res.setHeader('Content-Disposition', contentDisposition('attachment', name))
    }
    res.setHeader('Content-Type', type)

    let start = 0
    let end = node.size - 1
    const range = node.size > 0 && ifRangeAllows(req.get('If-Range'), etag) ? byteRange(node.size, req.headers.range) : 'full'
    if (range === 'unsatisfiable') {
      for (const header of REPRESENTATION_HEADERS) res.removeHeader(header)
      res.status(416).setHeader('Content-Range', `bytes */${node.size}`).end()
      return
    }
    if (range !== 'full') {
      ({ start, end } = range)
      res.status(206).setHeader('Content-Range', `bytes ${start}-${end}/${node.size}`)
    }
    const length = Math.max(0, end - start + 1)
    res.setHeader('Content-Length', String(length))
    if (req.method === 'HEAD' || length === 0) { res.end(); return }

    try {
      await deps.reader.writeTo(node, { offset: start, length, signal: abort.signal, gate: gateNow() }, res)
    } catch (err) {
      // A client that goes away mid-file is not an error of ours.
      if (abort.signal.aborted) return
      // Once bytes are out, the status is sent: the client can only tell from a cut connection.
      if (res.headersSent) { res.destroy(err as Error); return }
      throw err
    }
    res.end()
  })

  // Anything else under /ipfs is answered here too, so that it never reaches the pages' middleware.
  router.all('/ipfs{/*rest}', (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') { next(new NotFoundError(`no content at ${req.path}; ask for /ipfs/<cid>[/<path>]`)); return }
    res.setHeader('Allow', ALLOWED_METHODS)
    next(new HeimdallError(`${req.method} is not allowed on the gateway`, 'ERR_METHOD_NOT_ALLOWED', 405))
  })

  // An error is no representation: it keeps the CORS headers (a browser can read why) and loses the caching.
  const forgetRepresentation: ErrorRequestHandler = (err, _req, res, next) => {
    if (!res.headersSent) for (const header of REPRESENTATION_HEADERS) res.removeHeader(header)
    next(err)
  }
  router.use('/ipfs', forgetRepresentation)

  return router
}
