/**
 * One-off: copies Heimdall's former embedded database (a PGlite data folder)
 * into an empty database on a PostgreSQL server, then checks the copy. Run
 * by pglite-import.ts, in a process of its own because PGlite's WASM heap is
 * hundreds of MB; prints a JSON report as its last line.
 *
 *   node src/db/pglite-copy.ts <pglite data dir> '<pg connection JSON>'
 *
 * The target gets exactly the migrations the source had (knex, from
 * migrations/), then every table's rows, converted by PostgreSQL itself
 * (row_to_json on one side, json_populate_recordset on the other), then the
 * sequences' positions. Verified per table: row count and an md5 over the
 * rows' JSON, both sides in UTC.
 */
import { PGlite } from '@electric-sql/pglite'
import knex from 'knex'
import { DirectoryMigrationSource } from './migration-source.ts'

const BATCH = 2000
const [pgliteDir, connectionArg] = process.argv.slice(2)
if (pgliteDir === undefined || connectionArg === undefined) throw new Error('usage: pglite-copy.ts <pglite data dir> <connection JSON>')

const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`
const KNEX_TABLES = ['knex_migrations', 'knex_migrations_lock']

const source = await PGlite.create(pgliteDir)
const target = knex({ client: 'pg', connection: JSON.parse(connectionArg) as object, pool: { min: 1, max: 1 } })
try {
  await source.exec("set timezone = 'UTC'")
  const applied = (await source.query<{ name: string }>('select name from knex_migrations order by id')).rows.map((r) => r.name)
  const migrationSource = new DirectoryMigrationSource()
  const known = new Set((await migrationSource.getMigrations()).map((file) => migrationSource.getMigrationName(file)))
  const unknown = applied.filter((name) => !known.has(name))
  if (unknown.length > 0) throw new Error(`the PGlite database has migrations this Heimdall does not know: ${unknown.join(', ')}`)
  for (const name of applied) await target.migrate.up({ migrationSource, name })

  const tables = (await source.query<{ name: string }>(
    "select table_name as name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name"
  )).rows.map((r) => r.name).filter((name) => !KNEX_TABLES.includes(name))
  const report: Record<string, number> = {}
  await target.transaction(async (trx) => {
    await trx.raw("set local timezone = 'UTC'")
    // Rows arrive table by table, not in foreign-key order: constraints' triggers wait.
    await trx.raw('set local session_replication_role = replica')
    for (const table of tables) {
      await source.exec(`begin; declare rows no scroll cursor for select row_to_json(t)::text as row from ${quote(table)} t`)
      let count = 0
      for (;;) {
        const batch = (await source.query<{ row: string }>(`fetch ${BATCH} from rows`)).rows
        if (batch.length === 0) break
        await trx.raw(`insert into ${quote(table)} overriding system value select * from json_populate_recordset(null::${quote(table)}, ?::json)`, [`[${batch.map((r) => r.row).join(',')}]`])
        count += batch.length
      }
      await source.exec('close rows; commit')
      report[table] = count
    }
    const sequences = (await source.query<{ schema: string, name: string }>(
      "select sequence_schema as schema, sequence_name as name from information_schema.sequences where sequence_schema = 'public'"
    )).rows
    for (const { name } of sequences) {
      const [state] = (await source.query<{ last_value: string, is_called: boolean }>(`select last_value, is_called from ${quote(name)}`)).rows
      if (state !== undefined) await trx.raw('select setval(?::regclass, ?, ?)', [quote(name), state.last_value, state.is_called])
    }
  })

  // The check: what PostgreSQL now holds is what PGlite held, row for row.
  await target.raw("set timezone = 'UTC'")
  const digest = (table: string): string => `select count(*)::int as count, coalesce(md5(string_agg(r, E'\\n' order by r)), '') as md5 from (select row_to_json(t)::text as r from ${quote(table)} t) rows`
  for (const table of tables) {
    const [before] = (await source.query<{ count: number, md5: string }>(digest(table))).rows
    const after = (await target.raw<{ rows: Array<{ count: number, md5: string }> }>(digest(table))).rows[0]
    if (before === undefined || after === undefined || before.count !== after.count || before.md5 !== after.md5) {
      throw new Error(`the copy of table ${table} differs: PGlite ${before?.count ?? '?'} rows (${before?.md5 ?? '?'}), PostgreSQL ${after?.count ?? '?'} rows (${after?.md5 ?? '?'})`)
    }
  }
  console.log(JSON.stringify({ migrations: applied.length, tables: report }))
} finally {
  await target.destroy()
  await source.close()
}
