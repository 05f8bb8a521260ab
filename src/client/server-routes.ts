import { EXIT, UploadFailure } from './exit-codes.ts'
import { requestText } from './http-text.ts'

/**
 * The resumable endpoint the server offers (`GET /plugin_routes`, key
 * `resumable_upload`), absolute; undefined for a server without one (an
 * older Heimdall), which then gets the plain upload. Asked as the uploads
 * are sent (requestText), on any port they reach.
 */
export async function resumableEndpoint (server: string, signal: AbortSignal): Promise<string | undefined> {
  const url = new URL('/plugin_routes', server)
  let answer: { status: number, text: string }
  try {
    answer = await requestText(url, 'GET', { Accept: 'application/json' }, signal)
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
