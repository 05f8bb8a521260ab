import { readFileSync } from 'node:fs'
import { Router } from 'express'

const FAVICON = readFileSync(new URL('../../../web/favicon.svg', import.meta.url))

/** The site's icon, at the address every browser asks for and at the one our pages link. */
export function siteRoutes (): Router {
  const router = Router()
  router.get(['/favicon.ico', '/favicon.svg'], (_req, res) => {
    // Browsers read an SVG icon at /favicon.ico by its content; one small file serves both.
    res.type('image/svg+xml').setHeader('Cache-Control', 'public, max-age=86400').send(FAVICON)
  })
  return router
}
