import type { Request } from 'express'

// A host name or IPv4 address, or a bracketed IPv6 address, with an optional port.
const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

/**
 * The origin this request was addressed to: its protocol and Host, as Express
 * reads them (X-Forwarded-Proto and X-Forwarded-Host only under `trust proxy`),
 * normalised as a browser writes an Origin header (no default port). Undefined
 * for a Host that is not a plain host name, so it never reaches a header.
 */
export function requestOrigin (req: Request): string | undefined {
  const host = req.host
  if (typeof host !== 'string' || !HOST.test(host)) return undefined
  try {
    return new URL(`${req.protocol}://${host}`).origin
  } catch {
    return undefined
  }
}
