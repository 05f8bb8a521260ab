import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openPostgres, type Database } from '../../src/db/database.ts'
import { BlockedContentRepository } from '../../src/db/blocked-content-repository.ts'
import { HeldRootRepository } from '../../src/db/held-root-repository.ts'
import { IdentityRepository } from '../../src/db/identity-repository.ts'
import { OperatorPinRepository } from '../../src/db/operator-pin-repository.ts'
import { DirectoryMigrationSource } from '../../src/db/migration-source.ts'
import { PinIntentRepository } from '../../src/db/pin-intent-repository.ts'
import { UploadRepository, type NewUpload } from '../../src/db/upload-repository.ts'
import { ConflictError } from '../../src/errors.ts'
import { databaseFactories } from '../support/databases.ts'

const upload = (identityId: number, rootCid: string, overrides: Partial<NewUpload> = {}): NewUpload => ({
  identityId,
  name: 'avatar',
  rootCid,
  kind: 'avatar',
  size: 300,
  isAvatar: true,
  primaryPath: 'avatar.fst',
  warnings: [],
  entries: [
    { path: 'avatar.fst', cid: 'bafkreiaaaa', size: 100, isDirectory: false },
    { path: 'textures', cid: 'bafybeitex', size: 250, isDirectory: true },
    { path: 'textures/skin.png', cid: 'bafkreibbbb', size: 200, isDirectory: false }
  ],
  ...overrides
})

/** What an identity's quota is used by, counted from scratch (the definition heimdall_identity_usage's running totals keep). */
const RECOUNT = `select
  (select coalesce(sum(u.size), 0) from uploads u where u.identity_id = :owner)::bigint
    + (select coalesce(sum(p.size), 0) from pin_requests p where p.identity_id = :owner and p.status = 'pinned' and p.request_id is distinct from :leaving)::bigint as used_bytes,
  (select count(*) from uploads u where u.identity_id = :owner)
    + (select count(*) from pin_requests p where p.identity_id = :owner and p.status = 'pinned' and p.request_id is distinct from :leaving) as used_uploads`

for (const factory of databaseFactories()) {
  describe.skipIf(!factory.available)(`database on ${factory.name}`, () => {
    let db: Database
    let url: string
    let dispose: () => Promise<void>

    beforeEach(async () => {
      ({ db, url, dispose } = await factory.open())
    })
    afterEach(async () => { await dispose() })

    describe('migrations', () => {
      it('apply to an empty database, roll back completely and apply again', async () => {
        await db.migrate()
        const source = new DirectoryMigrationSource()
        const [, applied] = await db.knex.migrate.list({ migrationSource: source }) as [unknown[], unknown[]]
        expect(applied).toEqual([])
        for (const table of ['identities', 'uploads', 'upload_entries']) {
          expect(await db.knex.schema.hasTable(table)).toBe(true)
        }
        await db.knex.migrate.rollback({ migrationSource: source }, true)
        for (const table of ['identities', 'uploads', 'upload_entries']) {
          expect(await db.knex.schema.hasTable(table)).toBe(false)
        }
        await db.migrate()
        expect(await db.knex.schema.hasTable('uploads')).toBe(true)
      })

      it('apply over data written by the previous migration, and roll back one step keeping it', async () => {
        const source = new DirectoryMigrationSource()
        const [first] = await source.getMigrations()
        await db.knex.migrate.up({ migrationSource: source, name: source.getMigrationName(first ?? '') })
        const [identity] = await db.knex('identities').insert({ username: 'before', token_hash: 'c'.repeat(64) }).returning('id') as [{ id: number }]
        const [upload] = await db.knex('uploads').insert({ identity_id: identity.id, name: 'old', root_cid: 'bafyold', kind: 'model', size: 1, primary_path: 'old.glb' }).returning('id') as [{ id: number }]
        await db.knex('upload_entries').insert({ upload_id: upload.id, path: 'old.glb', cid: 'bafkold', size: 1 })

        await db.migrate()
        const migrated = await new UploadRepository(db.knex).findByOwnerAndRoot(identity.id, 'bafyold')
        expect(migrated).toMatchObject({ name: 'old', warnings: [], entries: [{ path: 'old.glb', cid: 'bafkold', size: 1, isDirectory: false }] })

        // Roll back one step at a time, every later migration's down included, to just after the first.
        for (let step = 0; step < 100 && await db.knex.schema.hasColumn('uploads', 'warnings'); step++) {
          await db.knex.migrate.down({ migrationSource: source })
        }
        expect(await db.knex.schema.hasColumn('uploads', 'warnings')).toBe(false)
        expect(await db.knex('uploads').where({ root_cid: 'bafyold' })).toHaveLength(1)
      })

      it('fill the running totals of quota usage from the rows there, and roll them back', async () => {
        await db.migrate()
        const [{ id: owner }] = await db.knex('identities').insert({ username: 'prolific', token_hash: 'd'.repeat(64) }).returning('id') as [{ id: number }]
        const usage = async (): Promise<unknown> => (await db.knex.raw<{ rows: unknown[] }>('select used_bytes::text, used_uploads::text from heimdall_identity_usage(?, null)', [owner])).rows[0]
        await db.knex('uploads').insert({ identity_id: owner, name: 'a', root_cid: 'bafya', kind: 'model', size: 5, primary_path: 'a.glb' })
        // Rolled back to summing, with rows written meanwhile; then forward again: the totals are filled from the rows.
        await db.knex.migrate.down({ migrationSource: new DirectoryMigrationSource() })
        expect(await db.knex.schema.hasTable('identity_usage')).toBe(false)
        await db.knex('uploads').insert({ identity_id: owner, name: 'b', root_cid: 'bafyb', kind: 'model', size: 7, primary_path: 'b.glb' })
        await db.knex('pin_requests').insert({ request_id: 'req-filled', identity_id: owner, cid: 'bafyc', root_cid: 'bafyc', status: 'pinned', size: 11, created: new Date() })
        expect(await usage()).toEqual({ used_bytes: '23', used_uploads: '3' })
        await db.migrate()
        expect(await db.knex('identity_usage').where({ identity_id: owner }).first('used_bytes', 'used_uploads')).toEqual({ used_bytes: '23', used_uploads: '3' })
        expect(await usage()).toEqual({ used_bytes: '23', used_uploads: '3' })
      })

      it('are idempotent', async () => {
        await db.migrate()
        await db.migrate()
        expect(await db.knex.schema.hasTable('identities')).toBe(true)
      })
    })

    describe('repositories', () => {
      let identities: IdentityRepository
      let uploads: UploadRepository

      beforeEach(async () => {
        await db.migrate()
        identities = new IdentityRepository(db.knex)
        uploads = new UploadRepository(db.knex)
      })

      it('creates identities and finds them case-insensitively', async () => {
        const created = await identities.create('Alice', 'a'.repeat(64))
        expect(created).toMatchObject({ username: 'alice', tokenHash: 'a'.repeat(64) })
        expect(created.createdAt).toBeInstanceOf(Date)
        expect((await identities.findByUsername('ALICE'))?.id).toBe(created.id)
        expect((await identities.findById(created.id))?.username).toBe('alice')
        expect(await identities.findByUsername('bob')).toBeUndefined()
      })

      it('refuses a username that differs only in case', async () => {
        await identities.create('alice', 'a'.repeat(64))
        await expect(identities.create('ALICE', 'b'.repeat(64))).rejects.toBeInstanceOf(ConflictError)
      })

      it('records an upload with its entries and lists it for its owner only', async () => {
        const alice = await identities.create('alice', 'a'.repeat(64))
        const bob = await identities.create('bob', 'b'.repeat(64))
        const { upload: stored, created } = await uploads.insert(upload(alice.id, 'bafyroot1'))
        expect(created).toBe(true)
        expect(stored).toMatchObject({ name: 'avatar', rootCid: 'bafyroot1', kind: 'avatar', size: 300, isAvatar: true, primaryPath: 'avatar.fst' })
        const listed = await uploads.listByOwner(alice.id)
        expect(listed).toHaveLength(1)
        expect(listed[0]?.entries.map((e) => e.path)).toEqual(['avatar.fst', 'textures', 'textures/skin.png'])
        expect(listed[0]?.entries[1]).toEqual({ path: 'textures', cid: 'bafybeitex', size: 250, isDirectory: true })
        expect(await uploads.listByOwner(bob.id)).toEqual([])
        expect(await uploads.countByOwner(alice.id)).toBe(1)
      })

      it('answers the same content under the same name by the same owner with the existing record', async () => {
        const alice = await identities.create('alice', 'a'.repeat(64))
        const first = await uploads.insert(upload(alice.id, 'bafyroot1'))
        const second = await uploads.insert(upload(alice.id, 'bafyroot1'))
        expect(second.created).toBe(false)
        expect(second.upload.id).toBe(first.upload.id)
        expect(second.upload.entries).toHaveLength(3)
        expect(await uploads.countByOwner(alice.id)).toBe(1)
      })

      it('keeps the same content under another name as a record of its own', async () => {
        const alice = await identities.create('alice', 'a'.repeat(64))
        const first = await uploads.insert(upload(alice.id, 'bafyroot1'))
        const second = await uploads.insert(upload(alice.id, 'bafyroot1', { name: 'renamed' }))
        expect(second.created).toBe(true)
        expect(second.upload.id).not.toBe(first.upload.id)
        expect(second.upload.name).toBe('renamed')
        expect((await uploads.listByOwner(alice.id)).map((u) => u.name)).toEqual(['renamed', 'avatar'])
        expect(await uploads.countByRootCid(['bafyroot1'])).toBe(2)
        expect((await uploads.findByOwnerAndRoot(alice.id, 'bafyroot1'))?.id).toBe(first.upload.id)
      })

      it('records under a quota: refuses what does not fit with nothing written, an own quota wins, a retry is answered', async () => {
        const alice = await identities.create('alice', 'a'.repeat(64))
        const refusals: unknown[] = []
        const quota = (bytes: number, uploads: number) => ({ bytes, uploads, refuse: (status: unknown) => { refusals.push(status); return new Error('over quota') } })
        const first = await uploads.insert(upload(alice.id, 'bafyq1'), { quota: quota(1000, 2) })
        expect(first.created).toBe(true)
        await expect(uploads.insert(upload(alice.id, 'bafyq2', { size: 701 }), { quota: quota(1000, 2) })).rejects.toThrow('over quota')
        expect(refusals).toEqual([{ usage: { bytes: 300, uploads: 1 }, quota: { bytes: 1000, uploads: 2 } }])
        expect(await uploads.countByOwner(alice.id)).toBe(1)
        expect(await db.knex('upload_entries').count<Array<{ n: string }>>({ n: '*' }).then(([r]) => Number(r?.n))).toBe(3)
        // The same upload again is answered with its record, though a new one of its size would not fit.
        const retry = await uploads.insert(upload(alice.id, 'bafyq1'), { quota: quota(300, 1) })
        expect(retry).toMatchObject({ created: false, upload: { id: first.upload.id } })
        expect(retry.upload.entries).toHaveLength(3)
        // An operator's quota for the identity wins over the defaults.
        await db.knex('identities').where({ id: alice.id }).update({ quota_uploads: 1 })
        await expect(uploads.insert(upload(alice.id, 'bafyq3', { size: 1 }), { quota: quota(1000, 5) })).rejects.toThrow('over quota')
        expect(refusals.at(-1)).toEqual({ usage: { bytes: 300, uploads: 1 }, quota: { bytes: 1000, uploads: 1 } })
        await db.knex('identities').where({ id: alice.id }).update({ quota_uploads: null, quota_bytes: 10_000 })
        expect((await uploads.insert(upload(alice.id, 'bafyq3', { size: 5000 }), { quota: quota(1000, 5) })).created).toBe(true)
      })

      it('settles the pin journal row and lifts a take-down in the transaction that records, and leaves both when it refuses', async () => {
        const bob = await identities.create('bob', 'b'.repeat(64))
        const journal = new PinIntentRepository(db.knex)
        const quota = { bytes: 1000, uploads: 5, refuse: () => new Error('over quota') }
        const state = async (root: string, intent: number, importPin?: number): Promise<{ blocked: boolean, journaled: boolean, importPinned?: boolean }> => ({
          blocked: (await db.knex('blocked_roots').where({ root_cid: root })).length > 0,
          journaled: (await db.knex('pin_intents').where({ id: intent })).length > 0,
          ...(importPin === undefined ? {} : { importPinned: (await db.knex('import_pin_intents').where({ id: importPin })).length > 0 })
        })
        await db.knex('blocked_roots').insert({ root_cid: 'bafyheavy', rule: '//x', list: 'list.deny' })
        const refused = await journal.add('bafyheavy', 'instance-a')
        const refusedImport = (await journal.addImportPin('instance-a')).id
        await expect(uploads.insert(upload(bob.id, 'bafyheavy', { size: 2000 }), { quota, settles: refused, alsoLifts: ['bafyheavy', 'Qmheavy'], closesImportPin: refusedImport })).rejects.toThrow('over quota')
        expect(await state('bafyheavy', refused, refusedImport)).toEqual({ blocked: true, journaled: true, importPinned: true })

        await db.knex('blocked_roots').insert({ root_cid: 'bafyback', rule: '//y', list: 'list.deny' })
        const intent = await journal.add('bafyback', 'instance-a')
        const importPin = (await journal.addImportPin('instance-a')).id
        const otherImport = (await journal.addImportPin('instance-a')).id
        expect((await uploads.insert(upload(bob.id, 'bafyback'), { quota, settles: intent, closesImportPin: importPin })).created).toBe(true)
        expect(await state('bafyback', intent, importPin)).toEqual({ blocked: false, journaled: false, importPinned: false })
        // A retry answered with the existing record settles its own rows too, and no other import's.
        const again = await journal.add('bafyback', 'instance-a')
        const againImport = (await journal.addImportPin('instance-a')).id
        expect((await uploads.insert(upload(bob.id, 'bafyback'), { settles: again, alsoLifts: ['bafyback', 'Qmback'], closesImportPin: againImport })).created).toBe(false)
        expect(await state('bafyback', again, againImport)).toEqual({ blocked: false, journaled: false, importPinned: false })
        expect(await state('bafyback', again, otherImport)).toMatchObject({ importPinned: true })

        // Its row settled by other work meanwhile (a record given up on by its client that ran on; settling or a
        // take-down released the pin): nothing is recorded, and the take-down stays.
        await db.knex('blocked_roots').insert({ root_cid: 'bafylate', rule: '//z', list: 'list.deny' })
        const settled = await journal.add('bafylate', 'instance-a')
        await journal.remove(settled)
        await expect(uploads.insert(upload(bob.id, 'bafylate'), { quota, settles: settled })).rejects.toMatchObject({ code: '55000' })
        expect(await db.knex('uploads').where({ root_cid: 'bafylate' })).toEqual([])
        expect(await state('bafylate', settled)).toEqual({ blocked: true, journaled: false })
      })

      it('records uploads of one identity one after the other: concurrent ones never overrun its quota', async () => {
        const alice = await identities.create('alice', 'a'.repeat(64))
        const quota = { bytes: 1_000_000, uploads: 3, refuse: () => new Error('over quota') }
        const outcomes = await Promise.allSettled(Array.from({ length: 8 }, async (_, i) => uploads.insert(upload(alice.id, `bafyc${i}`), { quota })))
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3)
        expect(outcomes.filter((o) => o.status === 'rejected').map((o) => String((o).reason))).toEqual(Array(5).fill('Error: over quota'))
        expect(await uploads.countByOwner(alice.id)).toBe(3)
      })

      it('holds the quota where the database defaults to repeatable read: its sessions run read committed', async () => {
        const name = (await db.knex.raw<{ rows: Array<{ name: string }> }>('select current_database() as name')).rows[0]?.name ?? ''
        await db.knex.raw(`alter database "${name}" set default_transaction_isolation = 'repeatable read'`)
        // Sessions opened from now on get the database's default; the pool's first ones predate it.
        const strict = openPostgres(url)
        try {
          expect((await strict.knex.raw<{ rows: Array<{ transaction_isolation: string }> }>('show transaction_isolation')).rows[0]?.transaction_isolation).toBe('read committed')
          const alice = await identities.create('alice', 'a'.repeat(64))
          const quota = { bytes: 1_000_000, uploads: 3, refuse: () => new Error('over quota') }
          const strictUploads = new UploadRepository(strict.knex)
          const outcomes = await Promise.allSettled(Array.from({ length: 8 }, async (_, i) => strictUploads.insert(upload(alice.id, `bafyrr${i}`), { quota })))
          expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3)
          expect(await uploads.countByOwner(alice.id)).toBe(3)
        } finally {
          await strict.close()
        }
      })

      it('streams the owner\'s uploads with their entries, in batches, in list order', async () => {
        const alice = await identities.create('alice', 'a'.repeat(64))
        for (let i = 0; i < 5; i++) await uploads.insert(upload(alice.id, `bafy${i}`, { name: `u${i}` }))
        const streamed = []
        for await (const u of uploads.streamByOwner(alice.id, { limit: 4, offset: 1 }, 2)) streamed.push(u)
        expect(streamed.map((u) => u.name)).toEqual(['u3', 'u2', 'u1', 'u0'])
        for (const u of streamed) expect(u.entries).toHaveLength(3)
      })

      it('counts references to a root across owners', async () => {
        const alice = await identities.create('alice', 'a'.repeat(64))
        const bob = await identities.create('bob', 'b'.repeat(64))
        await uploads.insert(upload(alice.id, 'bafyshared'))
        await uploads.insert(upload(bob.id, 'bafyshared'))
        await uploads.insert(upload(bob.id, 'bafyother'))
        expect(await uploads.countByRootCid(['bafyshared'])).toBe(2)
        expect(await uploads.countByRootCid(['bafyother'])).toBe(1)
        expect(await uploads.countByRootCid(['bafynone'])).toBe(0)
      })

      it('writes an upload and its entries atomically', async () => {
        const alice = await identities.create('alice', 'a'.repeat(64))
        const broken = upload(alice.id, 'bafybroken', {
          entries: [
            { path: 'same', cid: 'bafkreiaaaa', size: 1, isDirectory: false },
            { path: 'same', cid: 'bafkreibbbb', size: 1, isDirectory: false }
          ]
        })
        await expect(uploads.insert(broken)).rejects.toThrow()
        expect(await uploads.countByOwner(alice.id)).toBe(0)
        const [{ n }] = await db.knex('upload_entries').count<Array<{ n: string | number }>>({ n: '*' }) as [{ n: string | number }]
        expect(Number(n)).toBe(0)
      })

      it('keeps sizes above 4 GiB exact', async () => {
        const alice = await identities.create('alice', 'a'.repeat(64))
        await uploads.insert(upload(alice.id, 'bafybig', { size: 6 * 1024 ** 3 }))
        expect((await uploads.findByOwnerAndRoot(alice.id, 'bafybig'))?.size).toBe(6 * 1024 ** 3)
      })

      it('pages the owner\'s uploads newest first', async () => {
        const alice = await identities.create('alice', 'a'.repeat(64))
        for (let i = 0; i < 5; i++) await uploads.insert(upload(alice.id, `bafy${i}`, { name: `u${i}` }))
        const page = await uploads.listByOwner(alice.id, { limit: 2, offset: 1 })
        expect(page.map((u) => u.name)).toEqual(['u3', 'u2'])
      })

      it('what a disabled identity\'s upload shares with an enabled one\'s stays served: only the rest is suspended', async () => {
        const blocked = new BlockedContentRepository(db.knex)
        const bob = await identities.create('bob', 'b'.repeat(64))
        const alice = await identities.create('alice', 'c'.repeat(64))
        // Bob's bundle has a folder that is Alice's whole upload (its root), and a file of its own.
        const folder = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
        await uploads.insert(upload(bob.id, 'bafybeibobroot', { entries: [{ path: 'inner', cid: folder, size: 10, isDirectory: true }, { path: 'own.js', cid: 'bafkreibobown', size: 5, isDirectory: false }] }))
        // Alice recorded it under its CIDv0: the same content.
        await uploads.insert(upload(alice.id, 'QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR', { entries: [] }))
        await db.knex('identities').where({ id: bob.id }).update({ disabled_at: new Date() })
        expect((await blocked.heldOnlyByDisabled()).sort()).toEqual(['bafkreibobown', 'bafybeibobroot'])
      })

      it('held roots page through every source from its index, each root once: a short page only at the end, taken-down roots left out where they must be', async () => {
        const blocked = new BlockedContentRepository(db.knex)
        const alice = await identities.create('alice', 'a'.repeat(64))
        const bob = await identities.create('bob', 'b'.repeat(64))
        for (const root of ['bafyr1', 'bafyr2', 'bafyr3', 'bafyr5']) await uploads.insert(upload(alice.id, root))
        await uploads.insert(upload(bob.id, 'bafyr3'))
        let created = Date.now()
        const request = async (rootCid: string, status: string, replaces?: string): Promise<void> => {
          await db.knex('pin_requests').insert({ request_id: `req-${rootCid}-${status}`, identity_id: bob.id, cid: rootCid, root_cid: rootCid, status, created: new Date(created++), replaces_root_cid: replaces ?? null })
        }
        await request('bafyp1', 'pinned')
        await request('bafyq1', 'queued', 'bafyx1')
        await request('bafyf1', 'failed')
        await new OperatorPinRepository(db.knex).add('bafyo1', 'tester')
        await blocked.block('bafyr2', { rule: '//r2', list: 'test.deny' })
        await blocked.block('bafyr4', { rule: '//r4', list: 'test.deny' })

        // What must stay pinned, taken down or not (restorePins checks each again): pinned requests only, no failed one.
        const pages: string[][] = []
        const repo = new HeldRootRepository(db.knex)
        for (let after = '', page = await repo.page(after, 2); page.length > 0; after = page.at(-1) ?? '', page = await repo.page(after, 2)) pages.push(page)
        expect(pages.flat()).toEqual(['bafyo1', 'bafyp1', 'bafyr1', 'bafyr2', 'bafyr3', 'bafyr5', 'bafyx1'])
        expect(pages.slice(0, -1).every((page) => page.length === 2)).toBe(true)

        // What denylists are checked against: requests still queued count too, taken-down roots not at all, pages of 2.
        const held: string[] = []
        for await (const content of blocked.held(2)) held.push(content.rootCid)
        expect(held).toEqual(['bafyo1', 'bafyp1', 'bafyq1', 'bafyr1', 'bafyr3', 'bafyr5', 'bafyx1'])
      })

      it('keeps each identity\'s quota usage as running totals, equal to a recount through every kind of change', async () => {
        const alice = await identities.create('alice', 'a'.repeat(64))
        const bob = await identities.create('bob', 'b'.repeat(64))
        const check = async (): Promise<void> => {
          for (const owner of [alice.id, bob.id]) {
            for (const leaving of [null, 'req-2', 'req-3']) {
              const kept = (await db.knex.raw<{ rows: unknown[] }>('select used_bytes::text, used_uploads::text from heimdall_identity_usage(?, ?)', [owner, leaving])).rows[0]
              const recounted = (await db.knex.raw<{ rows: unknown[] }>(`select used_bytes::text, used_uploads::text from (${RECOUNT}) r`.replaceAll(':owner', '?::integer').replaceAll(':leaving', '?::text'), [owner, owner, leaving, owner, owner, leaving])).rows[0]
              expect({ owner, leaving, ...kept as object }).toEqual({ owner, leaving, ...recounted as object })
            }
          }
        }
        await check()
        const quota = { bytes: 10_000, uploads: 10, refuse: () => new Error('over quota') }
        const recorded = await uploads.insert(upload(alice.id, 'bafyone', { size: 100 }), { quota })
        await uploads.insert(upload(alice.id, 'bafytwo', { size: 250 }))
        await uploads.insert(upload(bob.id, 'bafyone', { size: 100 }))
        await uploads.insert(upload(alice.id, 'bafyone', { size: 100 }), { quota }) // the same again: one record
        await expect(uploads.insert(upload(alice.id, 'bafybig', { size: 20_000 }), { quota })).rejects.toThrow('over quota')
        await check()
        await db.knex('uploads').where({ id: recorded.upload.id }).update({ size: 120 })
        expect(await uploads.deleteOwned(alice.id, recorded.upload.id)).toBe(true)
        await check()
        let created = Date.parse('2026-11-28T00:00:00Z')
        const request = async (id: string, owner: number, status: string, size: number | null = null): Promise<void> => {
          await db.knex('pin_requests').insert({ request_id: id, identity_id: owner, cid: `bafy${id}`, root_cid: `bafy${id}`, status, size, created: new Date(created++) })
        }
        await request('req-1', alice.id, 'queued')
        await request('req-2', alice.id, 'pinned', 40)
        await request('req-3', alice.id, 'pinned') // pinned before sizes were recorded: its number counts
        await request('req-4', bob.id, 'pinning')
        await check()
        await db.knex('pin_requests').where({ request_id: 'req-1' }).update({ status: 'pinned', size: 60 })
        await db.knex('pin_requests').where({ request_id: 'req-4' }).update({ status: 'failed' })
        await db.knex('pin_requests').where({ request_id: 'req-2' }).update({ size: 45 })
        await check()
        await db.knex('pin_requests').where({ request_id: 'req-2' }).update({ identity_id: bob.id })
        await db.knex('pin_requests').where({ request_id: 'req-1' }).update({ status: 'failed' })
        await db.knex('pin_requests').where({ request_id: 'req-3' }).delete()
        await check()
        // An identity deleted with everything it holds: the cascade goes through, its totals with it.
        await db.knex('identities').where({ id: bob.id }).delete()
        expect(await db.knex('identity_usage').where({ identity_id: bob.id })).toEqual([])
        await check()
      })

      it('operator pins: counted under either spelling, listed with their entries among held roots, never suspended, ended by a take-down', async () => {
        // One DAG, recorded by an upload under its CIDv0 and by the operator under its CIDv1.
        const v0 = 'QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR'
        const v1 = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
        const blocked = new BlockedContentRepository(db.knex)
        const operatorPins = new OperatorPinRepository(db.knex)
        const owner = await identities.create('xuser', 'x'.repeat(64))
        await uploads.insert(upload(owner.id, v0))
        await operatorPins.add(v1, 'tester', [{ path: 'inner/a.txt', cid: 'bafkreiinner' }])
        expect(await operatorPins.countHolding([v1, v0])).toBe(1)
        const held = []
        for await (const content of blocked.held()) held.push(content)
        expect(held.find((h) => h.rootCid === v1)?.entries).toEqual([{ path: 'inner/a.txt', cid: 'bafkreiinner' }])
        // Its uploader disabled, the root stays served: the operator holds it too, under the other spelling.
        await db.knex('identities').where({ id: owner.id }).update({ disabled_at: new Date() })
        expect(await blocked.heldOnlyByDisabled()).toEqual([])
        await blocked.block(v0, { rule: `/ipfs/${v0}`, list: 'test.deny' })
        expect(await operatorPins.countHolding([v1, v0])).toBe(0)
        expect(await db.knex('operator_pin_entries').count({ n: '*' })).toEqual([{ n: expect.anything() }])
        expect(Number((await db.knex('operator_pin_entries').count({ n: '*' }))[0]?.n)).toBe(0)
      })
    })
  })
}
