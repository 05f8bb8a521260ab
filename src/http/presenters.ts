import type { Upload } from '../db/upload-repository.ts'

/** `<gateway><cid>/<path>` with each path segment percent-encoded. */
export function gatewayLink (gatewayUrl: string, cid: string, path = ''): string {
  const encoded = path === '' ? '' : path.split('/').map(encodeURIComponent).join('/')
  return `${gatewayUrl}${cid}/${encoded}`
}

export interface PresentedFile {
  path: string
  cid: string
  size: number
  url: string
}

export interface PresentedUpload {
  id: number
  name: string
  kind: Upload['kind']
  avatar: boolean
  rootCid: string
  size: number
  createdAt: string
  /** The directory on the gateway. */
  url: string
  /** The file to open in Overte: the `.fst`, else the model, else the single file. */
  primaryUrl: string | null
  files: PresentedFile[]
}

export function presentUpload (upload: Upload, gatewayUrl: string): PresentedUpload {
  return {
    id: upload.id,
    name: upload.name,
    kind: upload.kind,
    avatar: upload.isAvatar,
    rootCid: upload.rootCid,
    size: upload.size,
    createdAt: upload.createdAt.toISOString(),
    url: gatewayLink(gatewayUrl, upload.rootCid),
    primaryUrl: upload.primaryPath === null ? null : gatewayLink(gatewayUrl, upload.rootCid, upload.primaryPath),
    files: upload.entries
      .filter((entry) => !entry.isDirectory)
      .map((entry) => ({ path: entry.path, cid: entry.cid, size: entry.size, url: gatewayLink(gatewayUrl, upload.rootCid, entry.path) }))
  }
}
