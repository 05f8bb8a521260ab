import type { Knex } from 'knex'
import { advisoryKey } from './advisory-lock.ts'
import type { Usage } from './quota-repository.ts'
import { LOCK_WAIT } from './query-deadline.ts'

/** An upload sent with the tus protocol, as its row says. */
export interface ResumableUpload {
  id: string
  identityId: number
  fileName: string
  /** Upload-Metadata as the client sent it (null for rows older than the column). */
  metadata: string | null
  length: number
  /** Bytes durably written (fsynced) on the instance that holds them. */
  offset: number
  /** The instance whose DATA_DIR/resumable holds the bytes. */
  instanceId: string
  createdAt: Date
  expiresAt: Date
  /** Set once the file was imported or refused: the final answer, kept for GET. */
  completedAt: Date | null
  result: { status: number, body: unknown } | null
}

interface ResumableUploadRow {
  id: string
  identity_id: number
  file_name: string
  upload_metadata: string | null
  upload_length: string | number
  upload_offset: string | number
  instance_id: string
  created_at: Date | string
  expires_at: Date | string
  completed_at: Date | string | null
  result_status: number | null
  result: unknown
  upload_id: number | null
}

function toResumableUpload (row: ResumableUploadRow): ResumableUpload {
  return {
    id: row.id,
    identityId: row.identity_id,
    fileName: row.file_name,
    metadata: row.upload_metadata,
    length: Number(row.upload_length),
    offset: Number(row.upload_offset),
    instanceId: row.instance_id,
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
    completedAt: row.completed_at === null ? null : new Date(row.completed_at),
    result: row.result_status === null ? null : { status: row.result_status, body: typeof row.result === 'string' ? JSON.parse(row.result) as unknown : row.result }
  }
}

/** The rows of tus uploads: who sends what, how far it got, and the answer once it is done. */
export class ResumableUploadRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  /**
   * Inserts a new upload. With `admit`, what the owner's other unfinished,
   * unexpired uploads declare (their Upload-Length, summed, and their
   * number) is counted first and handed to `admit`, which throws to refuse:
   * counted and inserted under a transaction lock per owner, so uploads
   * created at once cannot all pass one count.
   */
  async create (upload: { id: string, identityId: number, fileName: string, metadata: string | null, length: number, instanceId: string, expiresAt: Date }, admit?: (unfinished: Usage) => void): Promise<ResumableUpload> {
    return this.#db.transaction(async (trx) => {
      if (admit !== undefined) {
        await trx.raw('select pg_advisory_xact_lock(?, ?)', advisoryKey(`heimdall:resumable-uploads:${upload.identityId}`)).options(LOCK_WAIT)
        const [row] = await trx('resumable_uploads')
          .where({ identity_id: upload.identityId })
          .whereNull('completed_at')
          .andWhere('expires_at', '>', trx.fn.now())
          .select<Array<{ bytes: string | number, uploads: string | number }>>(trx.raw('coalesce(sum(upload_length), 0) as bytes'), trx.raw('count(*) as uploads'))
        admit({ bytes: Number(row?.bytes ?? 0), uploads: Number(row?.uploads ?? 0) })
      }
      const [row] = await trx<ResumableUploadRow>('resumable_uploads').insert<ResumableUploadRow[]>({
        id: upload.id,
        identity_id: upload.identityId,
        file_name: upload.fileName,
        upload_metadata: upload.metadata,
        upload_length: upload.length,
        upload_offset: 0,
        instance_id: upload.instanceId,
        expires_at: upload.expiresAt
      }).returning('*')
      if (row === undefined) throw new Error('the resumable upload was not inserted')
      return toResumableUpload(row)
    })
  }

  /** The upload of this id unexpired at `now`, whoever owns it. */
  async find (id: string, now: Date): Promise<ResumableUpload | undefined> {
    const row = await this.#db<ResumableUploadRow>('resumable_uploads').where({ id }).andWhere('expires_at', '>', now).first()
    return row === undefined ? undefined : toResumableUpload(row)
  }

  /** Records bytes durably written up to `offset`; the upload lives until `expiresAt`. */
  async advance (id: string, offset: number, expiresAt: Date): Promise<void> {
    await this.#db<ResumableUploadRow>('resumable_uploads').where({ id }).whereNull('completed_at').update({ upload_offset: offset, expires_at: expiresAt })
  }

  /** Moves the expiry of an upload a request is working on to `expiresAt`, never earlier. */
  async renew (id: string, expiresAt: Date): Promise<void> {
    await this.#db<ResumableUploadRow>('resumable_uploads').where({ id }).where('expires_at', '<', expiresAt).update({ expires_at: expiresAt })
  }

  /** Keeps the final answer (the bytes are gone by then); `uploadId` ties it to the recorded upload, whose deletion removes it. */
  async complete (id: string, result: { status: number, body: unknown, uploadId?: number }, expiresAt: Date): Promise<void> {
    await this.#db<ResumableUploadRow>('resumable_uploads').where({ id }).update({
      completed_at: new Date(),
      result_status: result.status,
      result: JSON.stringify(result.body),
      upload_id: result.uploadId ?? null,
      expires_at: expiresAt
    })
  }

  async delete (id: string): Promise<void> {
    await this.#db<ResumableUploadRow>('resumable_uploads').where({ id }).delete()
  }

  /** Removes every upload expired at `now`, of every instance; returns their ids. */
  async deleteExpired (now: Date): Promise<string[]> {
    const rows = await this.#db<ResumableUploadRow>('resumable_uploads').where('expires_at', '<=', now).delete<Array<{ id: string }>>().returning('id')
    return rows.map((r) => r.id)
  }

  /** The ids of this instance's uploads whose bytes are still being received. */
  async receivingOn (instanceId: string): Promise<Set<string>> {
    const rows = await this.#db<ResumableUploadRow>('resumable_uploads').where({ instance_id: instanceId }).whereNull('completed_at').select('id')
    return new Set(rows.map((r) => r.id))
  }
}
