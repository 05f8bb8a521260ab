import type { Identity } from '../db/identity-repository.ts'
import type { Thumbnail, ThumbnailRepository } from '../db/thumbnail-repository.ts'
import { PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors.ts'

export const MAX_THUMBNAIL_BYTES = 64 * 1024

/** Formats a browser's canvas writes, recognised by their bytes rather than the client's word. */
function sniff (image: Buffer): string | undefined {
  if (image.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png'
  if (image.subarray(0, 4).toString('latin1') === 'RIFF' && image.subarray(8, 12).toString('latin1') === 'WEBP') return 'image/webp'
  if (image[0] === 0xff && image[1] === 0xd8 && image[2] === 0xff) return 'image/jpeg'
  return undefined
}

/** Pictures of models and avatars, rendered in their creator's browser and kept with the records. */
export class ThumbnailService {
  readonly #thumbnails: ThumbnailRepository

  constructor (thumbnails: ThumbnailRepository) {
    this.#thumbnails = thumbnails
  }

  /** Keeps `image` for the owner's model and avatar uploads of `rootCid` that have none; returns how many. */
  async save (owner: Identity, rootCid: string, image: Buffer): Promise<number> {
    if (image.length > MAX_THUMBNAIL_BYTES) throw new PayloadTooLargeError(`a thumbnail is at most ${MAX_THUMBNAIL_BYTES} bytes`)
    const mediaType = sniff(image)
    if (mediaType === undefined) throw new UnsupportedMediaTypeError('a thumbnail is a PNG, WebP or JPEG image')
    return this.#thumbnails.saveForRoot(owner.id, rootCid, { mediaType, image })
  }

  async find (owner: Identity, uploadId: number): Promise<Thumbnail | undefined> {
    return this.#thumbnails.find(owner.id, uploadId)
  }
}
