import type { Request } from 'express'
import { requestOrigin } from './request-origin.ts'

/**
 * The Content-Security-Policy of our own pages: never framed, forms only to
 * us, and scripts and styles only from our built assets under /static/. Not
 * `'self'`: the gateway serves anyone's uploads from /ipfs/ on this origin
 * too (unless GATEWAY_URL is another one), and an uploaded .js must not run
 * as one of our pages' scripts. A source with a path needs an origin, so
 * /static/ is allowed under PUBLIC_URL's and under the one this request came
 * to. The 3D preview fetches models and textures from the gateway (perhaps
 * another origin) and hands embedded textures to the GPU through blob: URLs.
 */
export function pageCsp (settings: { publicUrl: string, gatewayUrl: string }): (req: Request) => string {
  const gateway = new URL(settings.gatewayUrl).origin
  const publicOrigin = new URL(settings.publicUrl).origin
  return (req) => {
    const origins = new Set([publicOrigin, requestOrigin(req) ?? publicOrigin])
    const assets = [...origins].map((origin) => `${origin}/static/`).join(' ')
    // The preview's Draco and KTX2 decoders are WebAssembly run in workers that three.js starts from blob: URLs.
    const decoders = req.path.startsWith('/preview/') ? ` 'wasm-unsafe-eval'; worker-src blob:` : ''
    return `default-src 'self'; img-src 'self' data: blob: ${gateway}; connect-src 'self' blob: data: ${gateway}; ` +
      `style-src ${assets}; script-src ${assets}${decoders}; frame-ancestors 'none'; form-action 'self'; base-uri 'none'`
  }
}
