import { createRequire } from 'node:module'
import type * as Http from 'node:http'

/**
 * node:http, loaded with require. An ESM `import … from 'node:http'` builds
 * the module's namespace from every one of its exports, and reading
 * http's lazy WebSocket, MessageEvent and CloseEvent exports loads Node's
 * bundled undici (its fetch): ~4 MB of the idle server's resident memory
 * (measured) for a client nothing here uses. Types still come from
 * `import type … from 'node:http'`.
 */
export const http = createRequire(import.meta.url)('node:http') as typeof Http
