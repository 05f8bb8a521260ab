import { extensionOf, isModel } from '../assets/asset-kinds.ts'
import type { AvatarReport } from '../assets/avatar-report.ts'
import type { Upload } from '../db/upload-repository.ts'
import type { PinRequest } from '../db/pin-request-repository.ts'
import type { AddedItem, UploadOutcome } from '../services/upload-service.ts'

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
  warnings: string[]
  files: PresentedFile[]
  /** A page showing the upload's model in 3D, when it has one a browser can load. */
  previewUrl: string | null
  /** For an avatar: skeleton, height, textures and blendshapes, each checked against what Overte needs (`avatar` is already the flag). */
  avatarReport: AvatarReport | null
  /** Taken down by the operator's denylist: no longer pinned or served. */
  blocked: boolean
}

/** The file to preview: an avatar's `.fst` (the preview follows it as Overte does), the primary model, else the first model in the upload. */
function previewPath (upload: Upload): string | null {
  // An avatar whose .fst names a gzipped model (or one the report did not find) is not one the browser viewer can open through its .fst.
  const fstModel = upload.avatarReport?.model ?? null
  const fstPreviewable = fstModel === null || isModel(fstModel)
  if (upload.primaryPath !== null && (isModel(upload.primaryPath) || (upload.isAvatar && extensionOf(upload.primaryPath) === 'fst' && fstPreviewable))) return upload.primaryPath
  return upload.entries.find((e) => !e.isDirectory && isModel(e.path))?.path ?? null
}

export function previewLink (rootCid: string, path: string): string {
  return `/preview/${rootCid}/${path.split('/').map(encodeURIComponent).join('/')}`
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
    warnings: upload.warnings,
    previewUrl: ((path) => path === null ? null : previewLink(upload.rootCid, path))(previewPath(upload)),
    avatarReport: upload.avatarReport ?? null,
    blocked: upload.blocked,
    files: upload.entries
      .filter((entry) => !entry.isDirectory)
      .map((entry) => ({ path: entry.path, cid: entry.cid, size: entry.size, url: gatewayLink(gatewayUrl, upload.rootCid, entry.path) }))
  }
}

/** The root item of an upload answer also says what to open, what it is and what the checks found. */
export interface AddedRootItem extends AddedItem {
  primary: string | null
  kind: Upload['kind']
  warnings: string[]
  /** This service's 3D preview page for the upload's model, when it has one. */
  preview: string | null
  /** The avatar report, for an avatar; else null. */
  avatar: AvatarReport | null
}

/**
 * The add-on's answer: `ipfs add`'s list, unchanged in shape (it finds the
 * item by `Name` and reads `Hash`); the root item, last, carries the extras.
 */
export function presentAddedItems (outcome: UploadOutcome, gatewayUrl: string): Array<AddedItem | AddedRootItem> {
  const { upload, items } = outcome
  return items.map((item, index) => index < items.length - 1
    ? item
    : {
        ...item,
        primary: upload.primaryPath === null ? null : gatewayLink(gatewayUrl, upload.rootCid, upload.primaryPath),
        kind: upload.kind,
        warnings: upload.warnings,
        preview: ((path) => path === null ? null : previewLink(upload.rootCid, path))(previewPath(upload)),
        avatar: upload.avatarReport ?? null
      })
}

/** A Pinning Service API request as the person's list of uploads shows it. */
export interface PresentedPinRequest {
  requestid: string
  /** As the client sent it. */
  cid: string
  name: string | null
  status: PinRequest['status']
  /** Why it is pending or failed, or what was fetched: the API's `info.status_details`. */
  statusDetails: string | null
  created: string
  /** The content on the gateway, once pinned. */
  url: string | null
}

export function presentPinRequest (request: PinRequest, gatewayUrl: string): PresentedPinRequest {
  return {
    requestid: request.requestId,
    cid: request.cid,
    name: request.name,
    status: request.status,
    statusDetails: request.statusDetails,
    created: request.created.toISOString(),
    url: request.status === 'pinned' ? gatewayLink(gatewayUrl, request.rootCid) : null
  }
}
