import type { Knex } from 'knex'

export interface Thumbnail {
  mediaType: string
  image: Buffer
}

/** Thumbnails of uploads, one per upload, readable and writable by the upload's owner only. */
export class ThumbnailRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  /**
   * Keeps `image` for each of the owner's uploads of `rootCid` that has none
   * yet (the first picture stays); returns how many it was kept for.
   */
  async saveForRoot (identityId: number, rootCid: string, thumbnail: Thumbnail): Promise<number> {
    const result = await this.#db.raw<{ rowCount?: number, affectedRows?: number }>(
      `insert into upload_thumbnails (upload_id, media_type, image)
       select u.id, ?, ? from uploads u
       where u.identity_id = ? and u.root_cid = ? and u.kind in ('model', 'avatar')
       on conflict (upload_id) do nothing`,
      [thumbnail.mediaType, thumbnail.image, identityId, rootCid]
    )
    return result.rowCount ?? result.affectedRows ?? 0
  }

  async find (identityId: number, uploadId: number): Promise<Thumbnail | undefined> {
    const row = await this.#db('upload_thumbnails as t')
      .join('uploads as u', 'u.id', 't.upload_id')
      .where({ 'u.id': uploadId, 'u.identity_id': identityId })
      .first<{ media_type: string, image: Buffer | Uint8Array } | undefined>('t.media_type', 't.image')
    return row === undefined ? undefined : { mediaType: row.media_type, image: Buffer.from(row.image) }
  }
}
