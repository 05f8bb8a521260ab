import type { Request } from 'express'

/**
 * JSON is the default answer: the Blender add-on sends no Accept header and
 * parses every response. HTML only for a client that prefers it (a browser).
 */
export function wantsHtml (req: Request): boolean {
  return req.accepts(['json', 'html']) === 'html'
}
