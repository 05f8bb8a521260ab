import { Router } from 'express'

/** The route map the Blender add-on reads first. Keys may be added; these four never change. */
export const PLUGIN_ROUTES = {
  new_user: '/new',
  asset_upload: '/upload',
  uploads: '/uploads',
  oauth: false,
  /** The tus 1.0.0 endpoint for uploads resumed after a cut connection. */
  resumable_upload: '/upload/resumable'
} as const

export function pluginRoutes (): Router {
  const router = Router()
  router.get('/plugin_routes', (_req, res) => { res.json(PLUGIN_ROUTES) })
  return router
}
