import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Logger } from 'pino'
import { pinoHttp } from 'pino-http'

/** Query parameters that carry secrets (the add-on opens `/uploads?username=…&token=…`). */
const SECRET_PARAMS = ['token', 'secret']

export function redactUrl (url: string): string {
  const q = url.indexOf('?')
  if (q === -1) return url
  const params = new URLSearchParams(url.slice(q + 1))
  for (const name of SECRET_PARAMS) if (params.has(name)) params.set(name, '[Redacted]')
  return `${url.slice(0, q)}?${params.toString()}`
}

/** One JSON line per request, with a request id; secrets are redacted by the serializer and the logger's `redact` paths. */
export function requestLogger (logger: Logger) {
  return pinoHttp({
    logger,
    genReqId: (req, res) => {
      const given = req.headers['x-request-id']
      const id = typeof given === 'string' && /^[\w-]{1,64}$/.test(given) ? given : randomUUID()
      res.setHeader('X-Request-Id', id)
      return id
    },
    serializers: {
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      req: (req: IncomingMessage & { id?: unknown, raw?: IncomingMessage & { ip?: string } }) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.url ?? ''),
        // The client's address as Express sees it: behind a trusted proxy, from X-Forwarded-For.
        remoteAddress: req.raw?.ip ?? req.socket?.remoteAddress
      })
    },
    customLogLevel: (_req, res, err) => {
      // A client that leaves mid-request (pino-http's "Aborted", our 499) is normal traffic, not an error.
      if (res.statusCode === 499 || err?.message === 'Aborted') return 'info'
      // A 503 is a dependency away for a while (the database, the IPFS node), already logged once with its cause by
      // the error handler at warn, as /readyz logs it: an outage is not an error line per request on top of that.
      if (res.statusCode === 503) return 'warn'
      return err !== undefined || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'
    }
  })
}
