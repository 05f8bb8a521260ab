import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import knex from 'knex'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import pg from 'pg'
import { openDatabase, openEmbedded, openPostgres } from '../../src/db/database.ts'
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.ts'
import { IdentityRepository } from '../../src/db/identity-repository.ts'
import { DirectoryMigrationSource } from '../../src/db/migration-source.ts'
import { UploadRepository } from '../../src/db/upload-repository.ts'

const DATABASE_TS = new URL('../../src/db/database.ts', import.meta.url).pathname
const EMBEDDED_POSTGRES_TS = new URL('../../src/db/embedded-postgres.ts', import.meta.url).pathname

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

  it('refuses a second process its data folder while one runs it, leaving the running server alone (it stopped it before)', async () => {
    const dir = join(work, 'postgres')
    const db = await openEmbedded(dir)
    try {
      const script = `
        import { openEmbedded } from ${JSON.stringify(DATABASE_TS)}
        try { await openEmbedded(${JSON.stringify(dir)}); console.log('opened') } catch (err) { console.log(err.name + ': ' + err.message) }
      `
      const output = await new Promise<string>((resolve) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
        let text = ''
        child.stdout.on('data', (chunk: Buffer) => { text += chunk.toString() })
        child.once('exit', () => { resolve(text) })
      })
      expect(output).toMatch(new RegExp(`^DatabaseInUseError: the embedded PostgreSQL in ${dir} is in use by process ${process.pid} `))
      await db.ping()
      expect(await db.knex.raw('select 1 as one').then((r: { rows: unknown[] }) => r.rows)).toEqual([{ one: 1 }])
    } finally {
      await db.close()
    }
    // Released on close: the next start takes it.
    await (await openEmbedded(dir)).close()
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

/** The cluster's system identifier: initdb draws a new one; a copy of a template keeps the template's. */
async function systemIdentifier (server: EmbeddedPostgres): Promise<string> {
  const client = new pg.Client(server.connection)
  await client.connect()
  try {
    return (await client.query<{ id: string }>('select system_identifier::text as id from pg_control_system()')).rows[0]?.id ?? ''
  } finally {
    await client.end()
  }
}

/** Every folder and file under `dir`, relative. */
async function entries (dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String)
}

/** The one template in `templates`: its folder, its cluster and its manifest. */
async function theTemplate (templates: string): Promise<{ dir: string, cluster: string, manifest: { files: Record<string, number> } }> {
  const names = (await readdir(templates)).filter((name) => !name.startsWith('.'))
  expect(names).toHaveLength(1)
  const dir = join(templates, names[0] ?? '')
  return { dir, cluster: join(dir, 'cluster'), manifest: JSON.parse(await readFile(join(dir, 'template.json'), 'utf8')) as { files: Record<string, number> } }
}

describe('the embedded PostgreSQL\'s template cluster', () => {
  let work: string
  let templates: string
  const servers: EmbeddedPostgres[] = []
  const start = async (name: string, options: Parameters<typeof startEmbeddedPostgres>[1] = { templates }): Promise<EmbeddedPostgres> => {
    const server = await startEmbeddedPostgres(join(work, name, 'postgres'), options)
    servers.push(server)
    return server
  }
  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'heimdall-template-'))
    templates = join(work, 'templates')
  })
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.stop()
    await rm(work, { recursive: true, force: true })
  })

  it('is made once, then copied into each empty data folder instead of running initdb; the copy migrates, answers and is owned as initdb\'s output would be', async () => {
    const first = await start('first')
    expect(first.cluster).toBe('template')
    const template = await theTemplate(templates)
    // No secret in it: trust on the 0700 socket is the only rule, and the template belongs to this user alone.
    expect(await readFile(join(template.cluster, 'pg_hba.conf'), 'utf8')).toMatch(/^local all all trust$/m)
    expect((await stat(template.dir)).uid).toBe(process.getuid?.())
    expect((await stat(template.cluster)).mode & 0o077).toBe(0)

    const second = await start('second')
    expect(second.cluster).toBe('template')
    // Timing-free evidence that no initdb ran: both clusters carry the template's system identifier, which initdb draws afresh.
    const copied = await systemIdentifier(second)
    expect(copied).toBe(await systemIdentifier(first))
    const made = await start('made-by-initdb', { templates: null })
    expect(made.cluster).toBe('initdb')
    expect(await systemIdentifier(made)).not.toBe(copied)

    const dataDir = join(work, 'second', 'postgres', 'data')
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700)
    expect(existsSync(`${dataDir}.init`)).toBe(false)
    // Every file belongs to the user the server runs as (as root: not root), as initdb's own output would.
    const pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0])
    const serverUid = (await stat(`/proc/${pid}`)).uid
    for (const entry of await entries(dataDir)) expect((await stat(join(dataDir, entry))).uid, entry).toBe(serverUid)

    const db = openPostgres(`postgres://postgres@${encodeURIComponent(second.connection.host)}/postgres`)
    try {
      await db.migrate()
      const identities = new IdentityRepository(db.knex)
      await identities.create('alice', 'a'.repeat(64))
      expect((await identities.findByUsername('alice'))?.username).toBe('alice')
    } finally {
      await db.close()
    }
    // The template itself is untouched by the clusters made from it.
    expect(await theTemplate(templates)).toEqual(template)
  }, 120_000)

  it('is never used when it was made for other binaries or settings, killed while being made, or damaged since', async () => {
    const original = await systemIdentifier(await start('original'))
    const { dir } = await theTemplate(templates)

    // Made for another PostgreSQL: its key differs, so it is replaced by a new one; other templates are removed.
    const manifest = JSON.parse(await readFile(join(dir, 'template.json'), 'utf8')) as { key: { postgres: string } }
    await writeFile(join(dir, 'template.json'), JSON.stringify({ ...manifest, key: { ...manifest.key, postgres: '17.0.0' } }))
    await mkdir(join(templates, '17.0.0-0123456789abcdef', 'cluster'), { recursive: true })
    const stale = await start('stale')
    expect(stale.cluster).toBe('template')
    const renewed = await systemIdentifier(stale)
    expect(renewed).not.toBe(original)
    expect((await readdir(templates)).filter((name) => !name.startsWith('.'))).toEqual([dir.slice(templates.length + 1)])

    // Killed while being made: the side folder is never taken for a template; a new one is made.
    await rename(dir, join(templates, '.partial-killed'))
    const afterKill = await start('after-kill')
    expect(afterKill.cluster).toBe('template')
    expect(await systemIdentifier(afterKill)).not.toBe(renewed)
    await rm(join(templates, '.partial-killed'), { recursive: true })

    // Damaged since: a file shorter than its manifest says, or gone. That start runs initdb and drops the template.
    const current = await theTemplate(templates)
    await truncate(join(current.cluster, 'global', 'pg_control'), 100)
    const truncated = await start('truncated')
    expect(truncated.cluster).toBe('initdb')
    expect(existsSync(current.dir)).toBe(false)
    const remade = await start('remade')
    expect(remade.cluster).toBe('template')
    const again = await theTemplate(templates)
    const file = Object.keys(again.manifest.files).find((path) => path.startsWith('base/'))
    await rm(join(again.cluster, file ?? ''))
    const missing = await start('missing')
    expect(missing.cluster).toBe('initdb')
    expect(existsSync(again.dir)).toBe(false)
    for (const server of [truncated, missing]) expect(await systemIdentifier(server)).not.toBe(await systemIdentifier(remade))
  }, 180_000)

  it('copies (or runs initdb) while the event loop is held, as main.ts\'s import of Heimdall holds it', async () => {
    await (await start('made-first')).stop()
    const held = (name: string, options: Parameters<typeof startEmbeddedPostgres>[1]): Promise<EmbeddedPostgres> => {
      const starting = startEmbeddedPostgres(join(work, name, 'postgres'), options).then((server) => { servers.push(server); return server })
      // No event-loop turn until the cluster's first file is there: only a process started before this returned can write it.
      const sleeper = new Int32Array(new SharedArrayBuffer(4))
      const deadline = Date.now() + 30_000
      while (!existsSync(join(work, name, 'postgres', 'data.init', 'PG_VERSION')) && Date.now() < deadline) Atomics.wait(sleeper, 0, 0, 20)
      expect(existsSync(join(work, name, 'postgres', 'data.init', 'PG_VERSION')), name).toBe(true)
      return starting
    }
    expect((await held('copied', { templates })).cluster).toBe('template')
    expect((await held('initdb', { templates: null })).cluster).toBe('initdb')
  }, 120_000)

  it('where the template folder cannot be made, initdb runs in the data folder as before, with one debug line', async () => {
    // A file where the folder would be: what a read-only install is to root, whom permissions do not stop.
    await writeFile(templates, 'not a folder')
    const lines: string[] = []
    const server = await start('no-template', { templates, debug: (line) => { lines.push(line) } })
    expect(server.cluster).toBe('initdb')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/no template cluster/)
  }, 120_000)

  it('a cluster copied from the template exits with the process that started it (SIGKILL) and starts again with every committed row', async () => {
    const dir = join(work, 'killed', 'postgres')
    const script = `
      import pg from 'pg'
      import { startEmbeddedPostgres } from ${JSON.stringify(EMBEDDED_POSTGRES_TS)}
      const server = await startEmbeddedPostgres(${JSON.stringify(dir)}, { templates: ${JSON.stringify(templates)} })
      const client = new pg.Client(server.connection)
      await client.connect()
      await client.query('create table acknowledged (id int primary key)')
      await client.query('insert into acknowledged values (42)')
      console.log('committed from ' + server.cluster)
      setInterval(() => {}, 1000)
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    const said = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => { if (chunk.toString().includes('committed')) resolve(chunk.toString()) })
      child.once('exit', (code) => { reject(new Error(`the child exited with ${code ?? 'a signal'}`)) })
    })
    expect(said).toContain('committed from template')
    const postmaster = Number((await readFile(join(dir, 'data', 'postmaster.pid'), 'utf8')).split('\n')[0])
    child.kill('SIGKILL')
    expect(await until(() => !alive(postmaster), 15_000)).toBe(true)

    const server = await startEmbeddedPostgres(dir, { templates })
    servers.push(server)
    expect(server.cluster).toBe('existing')
    const client = new pg.Client(server.connection)
    await client.connect()
    try {
      expect((await client.query('select id from acknowledged')).rows).toEqual([{ id: 42 }])
    } finally {
      await client.end()
    }
  }, 120_000)
})
