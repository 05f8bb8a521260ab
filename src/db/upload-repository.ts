import type { Knex } from 'knex'
import type { AvatarReport } from '../assets/avatar-report.ts'
import { runStatement, statementVariants } from './prepared-statements.ts'

export const UPLOAD_KINDS = ['avatar', 'model', 'texture', 'script', 'sound', 'bundle'] as const
export type UploadKind = (typeof UPLOAD_KINDS)[number]

export interface UploadEntry {
  /** Relative path inside the upload's root directory. */
  path: string
  cid: string
  /** File bytes; the cumulative DAG size for directories. */
  size: number
  isDirectory: boolean
}

export interface NewUpload {
  identityId: number
  name: string
  rootCid: string
  kind: UploadKind
  /** Total bytes of the files. */
  size: number
  isAvatar: boolean
  /** The file to open: the `.fst`, else the model, else the single file. */
  primaryPath: string | null
  /** What the asset checks found that does not stop the upload from loading. */
  warnings: string[]
  /** For an avatar: what Overte will see (skeleton, height, textures, blendshapes); else null. */
  avatarReport?: AvatarReport | null
  entries: UploadEntry[]
}

export interface Upload extends NewUpload {
  id: number
  createdAt: Date
  /** Taken down by the operator's denylist: unpinned, no longer served. */
  blocked: boolean
}

interface UploadRow {
  id: number
  identity_id: number
  name: string
  root_cid: string
  kind: UploadKind
  size: string | number
  is_avatar: boolean
  primary_path: string | null
  warnings: string | string[]
  avatar_report?: string | AvatarReport | null
  created_at: Date | string
  /** Selected with BLOCKED (see #rows); absent on a row just inserted, which a denylist cannot have taken down. */
  blocked?: boolean
}

interface EntryRow {
  upload_id: number
  path: string
  cid: string
  size: string | number
  is_directory: boolean
}

/** What heimdall_record_upload answers (see its migration). */
interface RecordRow {
  outcome: 'created' | 'existing' | 'over_quota'
  id: number | null
  created_at: Date | string | null
  used_bytes: string | number | null
  used_uploads: string | number | null
  quota_bytes: string | number | null
  quota_uploads: string | number | null
}

/**
 * The record's statement (see UploadRepository.insert), one per combination
 * of what it also does. Its columns named: a `*` prepared would fail once a
 * migration gave the function another.
 */
const recordStatement = statementVariants((lifts: boolean, closesImportPin: boolean) => {
  const record = 'select outcome, id, created_at, used_bytes, used_uploads, quota_bytes, quota_uploads from heimdall_record_upload($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11, $12, $13)'
  // Their values follow the record's 13, in this order. Done only once the upload is recorded: a refused one keeps
  // its import's row until its pin is released.
  const closing = lifts ? 15 : 14
  const alsoDone = [
    ...(lifts ? ['lifted as (delete from blocked_roots where root_cid = any($14::text[]) and exists (select 1 from rec where rec.id is not null))'] : []),
    ...(closesImportPin ? [`closed as (delete from import_pin_intents where id = $${closing} and exists (select 1 from rec where rec.id is not null))`] : [])
  ]
  return alsoDone.length === 0 ? record : `with rec as (${record}), ${alsoDone.join(', ')} select * from rec`
})

/** An upload's bytes and count: what an owner's uploads take, or what it may have. */
export interface Amount { bytes: number, uploads: number }

/** The quota an upload is recorded under: the configured defaults, and the error to throw when it does not fit. */
export interface QuotaCheck extends Amount {
  refuse: (status: { usage: Amount, quota: Amount }) => Error
}

/** Whether a denylist took an upload's content down (blocked_roots), selected with its row. */
const BLOCKED = 'exists (select 1 from blocked_roots where blocked_roots.root_cid = uploads.root_cid) as blocked'

export class UploadRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  /**
   * Records an upload with its entries, atomically and in one round trip
   * (the heimdall_record_upload function). The unique index on (owner, root
   * CID, name) decides duplicates: the same content under the same name
   * again returns the first record and `created: false`; under another name
   * it is a record of its own that shares the content.
   *
   * With `quota` (the configured defaults; an identity's own quota, where an
   * operator set one, wins), the owner's row is locked while the upload is
   * measured against what its other uploads take, so two uploads of one
   * identity are recorded one after the other. An upload that no longer fits
   * is not written: `refuse` is given the usage and the quota that refused it,
   * and what it returns is thrown.
   * A retry of a recorded upload is answered with its record whatever the
   * quota would say of a new one.
   *
   * Once recorded (or found recorded), in the same transaction, the root is
   * no longer blocked (a denylist's take-down that the upload got past), the
   * pin journal row `settles` is removed, and so is the import's pin row
   * `closesImportPin` (the record holds the pin its add made from now on).
   */
  async insert (upload: NewUpload, options: { quota?: QuotaCheck, settles?: number, alsoLifts?: readonly string[], closesImportPin?: number } = {}): Promise<{ upload: Upload, created: boolean }> {
    // `alsoLifts`: the root's other spellings (its CIDv0 beside its CIDv1), whose take-down the record lifts too, in
    // the same statement: a lift of one spelling left the other blocked, and a blocked root counts as held by no one.
    const others = (options.alsoLifts ?? []).filter((form) => form !== upload.rootCid && /^[A-Za-z0-9]+$/.test(form))
    const rows = await runStatement<RecordRow>(this.#db, recordStatement(others.length > 0, options.closesImportPin !== undefined), [
      upload.identityId,
      upload.name,
      upload.rootCid,
      upload.kind,
      upload.size,
      upload.isAvatar,
      upload.primaryPath,
      JSON.stringify(upload.warnings),
      upload.avatarReport == null ? null : JSON.stringify(upload.avatarReport),
      JSON.stringify(upload.entries.map((entry) => ({ path: entry.path, cid: entry.cid, size: entry.size, is_directory: entry.isDirectory }))),
      options.quota?.bytes ?? null,
      options.quota?.uploads ?? null,
      options.settles ?? null,
      ...(others.length === 0 ? [] : [`{${others.join(',')}}`]),
      ...(options.closesImportPin === undefined ? [] : [options.closesImportPin])
    ])
    const [row] = rows
    if (row === undefined) throw new Error('heimdall_record_upload returned no row')
    switch (row.outcome) {
      case 'created':
        return { upload: { ...upload, avatarReport: upload.avatarReport ?? null, id: Number(row.id), createdAt: new Date(row.created_at ?? Date.now()), blocked: false }, created: true }
      case 'existing': {
        const existing = await this.#findOne(this.#db, { id: Number(row.id) })
        if (existing === undefined) throw new Error('upload conflicted but cannot be found')
        return { upload: existing, created: false }
      }
      case 'over_quota':
        throw (options.quota as QuotaCheck).refuse({
          usage: { bytes: Number(row.used_bytes), uploads: Number(row.used_uploads) },
          quota: { bytes: Number(row.quota_bytes), uploads: Number(row.quota_uploads) }
        })
      default:
        throw new Error(`heimdall_record_upload answered ${String(row.outcome)}`)
    }
  }

  /** The owner's first upload of this content. */
  async findByOwnerAndRoot (identityId: number, rootCid: string): Promise<Upload | undefined> {
    const rows = await this.#rows(this.#db).where({ identity_id: identityId, root_cid: rootCid }).orderBy('id').limit(1)
    const [upload] = await this.#withEntries(this.#db, rows)
    return upload
  }

  async findOwned (identityId: number, uploadId: number): Promise<Upload | undefined> {
    return this.#findOne(this.#db, { identity_id: identityId, id: uploadId })
  }

  /** Deletes one of the owner's uploads (its entries follow by cascade); false when there was none. */
  async deleteOwned (identityId: number, uploadId: number): Promise<boolean> {
    return (await this.#db('uploads').where({ identity_id: identityId, id: uploadId }).delete()) > 0
  }

  /** The owner's uploads, newest first, each with its entries. */
  async listByOwner (identityId: number, page: { limit: number, offset: number, search?: string } = { limit: 1000, offset: 0 }): Promise<Upload[]> {
    return this.#withEntries(this.#db, await this.#page(identityId, page))
  }

  /**
   * The same list one upload at a time, each with its entries: however many
   * uploads and files a page holds, only one upload's entries are in memory.
   * Upload rows are fetched `batch` at a time.
   */
  async * streamByOwner (identityId: number, page: { limit: number, offset: number, search?: string }, batch = 50): AsyncIterable<Upload> {
    for (let done = 0; done < page.limit; done += batch) {
      const rows = await this.#page(identityId, { search: page.search, offset: page.offset + done, limit: Math.min(batch, page.limit - done) })
      for (const row of rows) {
        const [upload] = await this.#withEntries(this.#db, [row])
        if (upload !== undefined) yield upload
      }
      if (rows.length < batch) return
    }
  }

  async #page (identityId: number, page: { limit: number, offset: number, search?: string }): Promise<UploadRow[]> {
    return this.#owned(identityId, page.search)
      .select('uploads.*', this.#db.raw(BLOCKED))
      .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])
      .limit(page.limit)
      .offset(page.offset)
  }

  async countByOwner (identityId: number, search?: string): Promise<number> {
    const result = await this.#owned(identityId, search).count<Array<{ count: string | number }>>({ count: '*' })
    return Number(result[0]?.count ?? 0)
  }

  /** The owner's uploads, those whose name contains `search` (any case) when given. */
  #owned (identityId: number, search: string | undefined): Knex.QueryBuilder<UploadRow, UploadRow[]> {
    const query = this.#db<UploadRow>('uploads').where({ identity_id: identityId })
    if (search !== undefined && search !== '') {
      // ILIKE with the pattern characters escaped: a search for "50%" finds "50%", not everything.
      query.whereILike('name', `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`)
    }
    return query
  }

  /** Every upload of anyone: how many, of how many distinct contents, and their bytes as uploaded. */
  async totals (): Promise<{ uploads: number, roots: number, bytes: number }> {
    const row = await this.#db('uploads').first<{ uploads: string | number, roots: string | number, bytes: string | number } | undefined>(
      this.#db.raw('count(*) as uploads'), this.#db.raw('count(distinct root_cid) as roots'), this.#db.raw('coalesce(sum(size), 0) as bytes'))
    return { uploads: Number(row?.uploads ?? 0), roots: Number(row?.roots ?? 0), bytes: Number(row?.bytes ?? 0) }
  }

  /** How many uploads, of anyone, reference the root (`rootCids`: its spellings, see rootForms). Content is unpinned only at zero. */
  async countByRootCid (rootCids: readonly string[]): Promise<number> {
    const result = await this.#db('uploads').whereIn('root_cid', rootCids).count<Array<{ count: string | number }>>({ count: '*' })
    return Number(result[0]?.count ?? 0)
  }

  async #findOne (db: Knex, where: Partial<UploadRow>): Promise<Upload | undefined> {
    const rows = await this.#rows(db).where(where).limit(1)
    const [upload] = await this.#withEntries(db, rows)
    return upload
  }

  async #withEntries (db: Knex, rows: UploadRow[]): Promise<Upload[]> {
    if (rows.length === 0) return []
    const entries = await db<EntryRow>('upload_entries')
      .whereIn('upload_id', rows.map((row) => row.id))
      .orderBy([{ column: 'upload_id' }, { column: 'path' }])
    const byUpload = new Map<number, UploadEntry[]>()
    for (const entry of entries) {
      const list = byUpload.get(entry.upload_id) ?? []
      list.push({ path: entry.path, cid: entry.cid, size: Number(entry.size), isDirectory: entry.is_directory })
      byUpload.set(entry.upload_id, list)
    }
    return rows.map((row) => toUpload(row, byUpload.get(row.id) ?? []))
  }

  /** Upload rows with whether a denylist took their content down, in the same query. */
  #rows (db: Knex): Knex.QueryBuilder<UploadRow, UploadRow[]> {
    return db<UploadRow>('uploads').select('uploads.*', db.raw(BLOCKED))
  }
}

function toUpload (row: UploadRow, entries: UploadEntry[]): Upload {
  return {
    id: row.id,
    identityId: row.identity_id,
    name: row.name,
    rootCid: row.root_cid,
    kind: row.kind,
    size: Number(row.size),
    isAvatar: row.is_avatar,
    primaryPath: row.primary_path,
    warnings: typeof row.warnings === 'string' ? JSON.parse(row.warnings) as string[] : row.warnings,
    avatarReport: typeof row.avatar_report === 'string' ? JSON.parse(row.avatar_report) as AvatarReport : row.avatar_report ?? null,
    createdAt: new Date(row.created_at),
    blocked: row.blocked === true,
    entries
  }
}
