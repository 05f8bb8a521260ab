import type { IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { http } from '../node-http.ts'
import { EXIT, UploadFailure } from './exit-codes.ts'

/**
 * The resumable endpoint the server offers (`GET /plugin_routes`, key
 * `resumable_upload`), absolute; undefined for a server without one (an
 * older Heimdall), which then gets the plain upload. Asked with node:http,
 * as the uploads are sent: fetch refuses the ports on the Fetch standard's
 * blocked list (10080, 6000…), where the uploads themselves went through.
 */
export async function resumableEndpoint (server: string, signal: AbortSignal): Promise<string | undefined> {
  const url = new URL('/plugin_routes', server)
  const send = url.protocol === 'https:' ? httpsRequest : http.request
  let answer: { status: number, text: string }
  try {
    answer = await new Promise((resolve, reject) => {
      const req = send(url, { headers: { Accept: 'application/json' }, signal }, (res: IncomingMessage) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }) })
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end()
    })
  } catch (err) {
    if (signal.aborted) throw new UploadFailure('interrupted', EXIT.interrupted)
    const { code, message } = err as NodeJS.ErrnoException
    throw new UploadFailure(`cannot reach ${url.origin}: ${code ?? message}`, EXIT.unavailable)
  }
  if (answer.status >= 500) throw new UploadFailure(`the server answered ${answer.status}`, EXIT.unavailable, answer.status)
  if (answer.status < 200 || answer.status >= 300) return undefined
  let routes: { resumable_upload?: unknown } = {}
  try { routes = JSON.parse(answer.text) as { resumable_upload?: unknown } } catch { /* not JSON: no routes */ }
  return typeof routes.resumable_upload === 'string' ? new URL(routes.resumable_upload, server).href : undefined
}
