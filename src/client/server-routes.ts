import { EXIT, UploadFailure } from './exit-codes.ts'

/**
 * The resumable endpoint the server offers (`GET /plugin_routes`, key
 * `resumable_upload`), absolute; undefined for a server without one (an
 * older Heimdall), which then gets the plain upload.
 */
export async function resumableEndpoint (server: string, signal: AbortSignal): Promise<string | undefined> {
  let res: Response
  try {
    res = await fetch(new URL('/plugin_routes', server), { headers: { Accept: 'application/json' }, signal })
  } catch (err) {
    if (signal.aborted) throw new UploadFailure('interrupted', EXIT.interrupted)
    const cause = (err as { cause?: { code?: string, message?: string } }).cause
    throw new UploadFailure(`cannot reach ${new URL(server).origin}: ${cause?.code ?? cause?.message ?? String(err)}`, EXIT.unavailable)
  }
  if (res.status >= 500) throw new UploadFailure(`the server answered ${res.status}`, EXIT.unavailable, res.status)
  if (!res.ok) return undefined
  const routes = await res.json().catch(() => ({})) as { resumable_upload?: unknown }
  return typeof routes.resumable_upload === 'string' ? new URL(routes.resumable_upload, server).href : undefined
}
