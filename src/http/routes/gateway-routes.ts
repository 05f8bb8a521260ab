import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Router, type Request, type Response } from 'express'
import parseRange from 'range-parser'
import type { IpfsBackend } from '../../ipfs/ipfs-backend.ts'
import { parseCid } from '../cid-param.ts'
import { formatBytes } from '../format.ts'
import { contentTypeFor } from '../content-types.ts'

/**
 * What the gateway serves is anyone's content: it is sandboxed so that it never
 * runs with this site's origin, even when opened directly.
 */
export const GATEWAY_CSP = "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'"
const IMMUTABLE = 'public, max-age=29030400, immutable'

function setGatewayHeaders (res: Response, ipfsPath: string): void {
  res.setHeader('Cache-Control', IMMUTABLE)
  res.setHeader('Access-Control-Allow-Origin', '*')
  res.setHeader('Access-Control-Expose-Headers', 'Content-Length, Content-Range, ETag, X-Ipfs-Path')
  res.setHeader('X-Content-Type-Options', 'nosniff')
  res.setHeader('Content-Security-Policy', GATEWAY_CSP)
  res.setHeader('X-Ipfs-Path', ipfsPath)
}


/** `GET|HEAD /ipfs/<cid>[/<path>]` over this service's own node, never reaching out to the network. */
export function gatewayRoutes (deps: { backend: IpfsBackend }): Router {
  const router = Router()

  router.options('/ipfs/{*rest}', (_req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*')
    res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS')
    res.setHeader('Access-Control-Allow-Headers', 'Range, If-None-Match')
    res.setHeader('Access-Control-Max-Age', '86400')
    res.status(204).end()
  })

  router.get('/ipfs/:cid{/*path}', async (req: Request, res: Response) => {
    const params = req.params as { cid: string, path?: string[] }
    const cid = parseCid(params.cid)
    const path = (params.path ?? []).filter((segment) => segment !== '')
    const ipfsPath = `/ipfs/${[cid.toString(), ...path].join('/')}`
    const stat = await deps.backend.stat(cid, path)
    const etag = `"${ipfsPath}"`

    if (stat.type === 'directory') {
      if (!req.path.endsWith('/')) {
        // Relative links in the listing (and in the assets themselves) need the slash.
        const query = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?')) : ''
        res.redirect(301, `${req.baseUrl}${req.path}/${query}`)
        return
      }
      setGatewayHeaders(res, ipfsPath)
      res.setHeader('ETag', `"DirIndex-${ipfsPath}"`)
      const entries = []
      for await (const entry of deps.backend.list(cid, path)) entries.push({ ...entry, cid: entry.cid.toString(), sizeText: formatBytes(entry.size) })
      entries.sort((a, b) => (a.type === b.type ? a.name.localeCompare(b.name) : a.type === 'directory' ? -1 : 1))
      res.render('directory', { title: ipfsPath, ipfsPath, parent: path.length > 0 ? '../' : null, entries })
      return
    }

    setGatewayHeaders(res, ipfsPath)
    res.setHeader('ETag', etag)
    res.setHeader('Accept-Ranges', 'bytes')
    res.setHeader('Content-Type', contentTypeFor(path.at(-1) ?? ''))
    if (req.headers['if-none-match']?.split(/\s*,\s*/).includes(etag) === true) {
      res.status(304).end()
      return
    }

    let start = 0
    let end = stat.size - 1
    const rangeHeader = req.headers.range
    if (rangeHeader !== undefined && stat.size > 0) {
      const ranges = parseRange(stat.size, rangeHeader, { combine: true })
      if (ranges === -1) {
        res.status(416).setHeader('Content-Range', `bytes */${stat.size}`).end()
        return
      }
      // A malformed header (-2) or several ranges: answer with the whole file, as RFC 9110 allows.
      if (ranges !== -2 && ranges.length === 1 && ranges[0] !== undefined) {
        ({ start, end } = ranges[0])
        res.status(206).setHeader('Content-Range', `bytes ${start}-${end}/${stat.size}`)
      }
    }
    const length = Math.max(0, end - start + 1)
    res.setHeader('Content-Length', String(length))
    if (req.method === 'HEAD' || length === 0) { res.end(); return }

    const abort = new AbortController()
    res.once('close', () => { abort.abort() })
    const body = Readable.from(deps.backend.read(cid, path, { offset: start, length, signal: abort.signal }))
    await pipeline(body, res).catch((err: unknown) => {
      // A client that goes away mid-file is not an error of ours.
      if (!abort.signal.aborted) throw err
    })
  })

  return router
}
