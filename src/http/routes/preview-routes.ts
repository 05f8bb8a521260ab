import { Router, type Request } from 'express'
import { extensionOf, isModel } from '../../assets/asset-kinds.ts'
import { BadRequestError } from '../../errors.ts'
import { parseCid } from '../cid-param.ts'
import { gatewayLink } from '../presenters.ts'

/**
 * `/preview/<cid>/<path>`: a page with a 3D viewer that loads the model from
 * the gateway, so its relative textures resolve as they will in Overte.
 */
export function previewRoutes (deps: { gatewayUrl: string }): Router {
  const router = Router()
  router.get('/preview/:cid/*path', (req: Request, res) => {
    const params = req.params as { cid: string, path: string[] }
    const cid = parseCid(params.cid)
    // A segment is decoded on its own, so `..%2F..%2Fipfs%2F<cid>` is one segment holding slashes: split again.
    const segments = params.path.join('/').split('/').filter((s) => s !== '')
    // The browser resolves `.` and `..` (and their %2E spellings) in the model's URL: `<cid>/../../ipfs/<other>/x.glb`
    // previewed another person's model, whose picture went to the viewer's uploads of <cid> as their thumbnail.
    if (segments.some((s) => s === '.' || s === '..')) throw new BadRequestError('a preview\'s path has no "." or ".." segments: give the file\'s path inside its folder')
    const path = segments.join('/')
    // An avatar is previewed through its .fst, as Overte loads it: texdir and scale applied.
    if (!isModel(path) && extensionOf(path) !== 'fst') throw new BadRequestError('only FBX, glTF/GLB/VRM and OBJ files, and avatars (.fst), can be previewed')
    // A signed-in viewer's browser sends the picture it rendered as the thumbnail of their uploads of this content.
    const thumbnailUrl = res.locals.viewer === null || res.locals.viewer === undefined ? null : `/uploads/thumbnails/${cid.toString()}`
    res.render('preview', { title: `Preview of ${path}`, modelUrl: gatewayLink(deps.gatewayUrl, cid.toString(), path), path, cid: cid.toString(), thumbnailUrl })
  })
  return router
}
