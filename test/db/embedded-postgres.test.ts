import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import knex from 'knex'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase, openEmbedded } from '../../src/db/database.ts'
import { IdentityRepository } from '../../src/db/identity-repository.ts'
import { DirectoryMigrationSource } from '../../src/db/migration-source.ts'
import { UploadRepository } from '../../src/db/upload-repository.ts'

const DATABASE_TS = new URL('../../src/db/database.ts', import.meta.url).pathname

/** Running: not gone, and not a zombie (exited, waiting for whoever adopted it to reap it). */
function alive (pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return false
  }
}

async function until (condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return true
}

describe('the embedded PostgreSQL', () => {
  let work: string
  beforeEach(async () => { work = await mkdtemp(join(tmpdir(), 'heimdall-embedded-')) })
  afterEach(async () => { await rm(work, { recursive: true, force: true }) })

  it('listens on a 0700 socket in its data folder only, crash-safe, and never as root', async () => {
    const dir = join(work, 'postgres')
    const db = await openEmbedded(dir)
    try {
      const settings = Object.fromEntries((await db.knex.raw<{ rows: Array<{ name: string, setting: string }> }>(
        "select name, setting from pg_settings where name in ('listen_addresses', 'fsync', 'synchronous_commit', 'full_page_writes', 'unix_socket_permissions')"
      )).rows.map((r) => [r.name, r.setting]))
      expect(settings).toEqual({ listen_addresses: '', fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', unix_socket_permissions: '0700' })
      expect((await stat(join(dir, 'data', '.s.PGSQL.5432'))).mode & 0o777).toBe(0o700)
      expect((await stat(dir)).mode & 0o777).toBe(0o700)
      const pid = Number((await readFile(join(dir, 'data', 'postmaster.pid'), 'utf8')).split('\n')[0])
      expect((await stat(`/proc/${pid}`)).uid).not.toBe(0)
      if (process.getuid?.() === 0) expect((await stat(dir)).uid).not.toBe(0)
    } finally {
      await db.close()
    }
    expect(existsSync(join(dir, 'data', 'postmaster.pid'))).toBe(false)
  }, 120_000)

  it('exits by itself when the process that started it is killed with SIGKILL, and starts again with every committed row', async () => {
    const dir = join(work, 'postgres')
    // The service, reduced to what matters: open, commit a row, wait to be killed.
    const script = `
      import { openEmbedded } from ${JSON.stringify(DATABASE_TS)}
      const db = await openEmbedded(${JSON.stringify(dir)})
      await db.knex.raw('create table acknowledged (id int primary key)')
      await db.knex('acknowledged').insert({ id: 42 })
      console.log('committed')
      setInterval(() => {}, 1000)
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => { if (chunk.toString().includes('committed')) resolve() })
      child.once('exit', (code) => { reject(new Error(`the child exited with ${code ?? 'a signal'}`)) })
    })
    const postmaster = Number((await readFile(join(dir, 'data', 'postmaster.pid'), 'utf8')).split('\n')[0])
    expect(alive(postmaster)).toBe(true)
    child.kill('SIGKILL')
    expect(await until(() => !alive(postmaster), 15_000)).toBe(true)

    const db = await openEmbedded(dir)
    try {
      expect(await db.knex('acknowledged').select('id')).toEqual([{ id: 42 }])
    } finally {
      await db.close()
    }
  }, 120_000)

  it('starts over a postmaster.pid whose pid now belongs to another process', async () => {
    const dir = join(work, 'postgres')
    await (await openEmbedded(dir)).close()
    // As after a reboot or a container restart: the pid in the file is alive, but it is not PostgreSQL.
    await writeFile(join(dir, 'data', 'postmaster.pid'), `${process.pid}\n${join(dir, 'data')}\n0\n5432\n\n\n\n`)
    const db = await openEmbedded(dir)
    try {
      await db.ping()
    } finally {
      await db.close()
    }
  }, 120_000)

  it('takes over a data folder of the former embedded engine (PGlite): every row, the sequences, then the newer migrations', async () => {
    const dataDir = join(work, 'data')
    const pgliteDir = join(dataDir, 'pglite')
    await mkdir(join(pgliteDir, 'data'), { recursive: true })
    // What the former code did: PGlite in DATA_DIR/pglite/data, served on a socket, knex over pg.
    const pglite = await PGlite.create(join(pgliteDir, 'data'))
    const socketDir = join(work, 'old-socket')
    await mkdir(socketDir)
    const server = new PGLiteSocketServer({ db: pglite, path: join(socketDir, '.s.PGSQL.5432') })
    await server.start()
    const old = knex({ client: 'pg', connection: { host: socketDir, port: 5432, user: 'postgres', database: 'postgres' }, pool: { min: 0, max: 1 } })
    const source = new DirectoryMigrationSource()
    const names = (await source.getMigrations()).map((file) => source.getMigrationName(file))
    // An older Heimdall: all but the newest migration applied.
    for (const name of names.slice(0, -1)) await old.migrate.up({ migrationSource: source, name })
    const [alice] = await old('identities').insert({ username: 'alice', token_hash: 'a'.repeat(64) }).returning('id') as [{ id: number }]
    await old('identities').insert({ username: 'bob', token_hash: 'b'.repeat(64) })
    const [upload] = await old('uploads').insert({ identity_id: alice.id, name: 'avatar', root_cid: 'bafyroot', kind: 'avatar', size: 300, primary_path: 'avatar.fst', warnings: JSON.stringify([{ code: 'w', message: 'ünïcode ✓' }]) }).returning('id') as [{ id: number }]
    await old('upload_entries').insert([
      { upload_id: upload.id, path: 'avatar.fst', cid: 'bafkfst', size: 100 },
      { upload_id: upload.id, path: 'textures/skin.png', cid: 'bafkpng', size: 200 }
    ])
    await old.destroy()
    await server.stop()
    await pglite.close()

    const db = await openDatabase({ databaseUrl: undefined, dataDir })
    try {
      await db.migrate()
      const [, pending] = await db.knex.migrate.list({ migrationSource: source }) as [unknown[], unknown[]]
      expect(pending).toEqual([])
      const identities = new IdentityRepository(db.knex)
      expect((await identities.findByUsername('alice'))?.id).toBe(alice.id)
      expect(await identities.findByUsername('bob')).toBeDefined()
      // The sequences moved too: a new identity does not collide with a copied one.
      expect((await identities.create('carol', 'c'.repeat(64))).id).toBeGreaterThan(alice.id + 1)
      const uploads = new UploadRepository(db.knex)
      const [copied] = await uploads.listByOwner(alice.id)
      expect(copied?.rootCid).toBe('bafyroot')
      expect(copied?.warnings).toEqual([{ code: 'w', message: 'ünïcode ✓' }])
      expect((await db.knex('upload_entries').where({ upload_id: upload.id }).orderBy('path')).map((e: { path: string }) => e.path)).toEqual(['avatar.fst', 'textures/skin.png'])
    } finally {
      await db.close()
    }
    // Kept, renamed, for the operator to delete; the next start does not copy again.
    expect(existsSync(pgliteDir)).toBe(false)
    expect(existsSync(join(dataDir, 'pglite.imported', 'data', 'PG_VERSION'))).toBe(true)
    const again = await openDatabase({ databaseUrl: undefined, dataDir })
    try {
      expect(await again.knex('identities').count({ n: '*' })).toEqual([{ n: '3' }])
    } finally {
      await again.close()
    }
  }, 300_000)
})
