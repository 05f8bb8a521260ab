import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { rename } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import pg from 'pg'

/** The embedded server's database that holds Heimdall's tables. */
export const HEIMDALL_DATABASE = 'heimdall'
/** Where a PGlite import is built; renamed to `heimdall` only once verified. */
const IMPORT_DATABASE = 'heimdall_import'
const COPY_SCRIPT = fileURLToPath(new URL('./pglite-copy.ts', import.meta.url))

type Connection = { host: string, port: number, user: string, database: string }

export interface PgliteImportReport {
  migrations: number
  tables: Record<string, number>
}

/**
 * Copies the rows of a PGlite data folder (Heimdall's former embedded
 * database) into `database` on the embedded server. PGlite's heap (several
 * hundred MB) lives only in a one-off process for the copy: pglite-copy.ts.
 */
async function copyFromPglite (pgliteDataDir: string, connection: Connection): Promise<PgliteImportReport> {
  const { stdout } = await promisify(execFile)(process.execPath, [COPY_SCRIPT, pgliteDataDir, JSON.stringify(connection)], { maxBuffer: 16 * 1024 * 1024 })
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as PgliteImportReport
}

/**
 * Makes sure the database `heimdall` exists on the embedded server. On its
 * first creation, when `importFrom` (DATA_DIR/pglite) holds a PGlite data
 * folder, its rows are copied into a scratch database first, checked table
 * by table, and only then is the scratch database renamed `heimdall` (one
 * catalog update: a start killed half-way leaves only a scratch database,
 * dropped and copied again next time). The PGlite folder is then renamed
 * `pglite.imported`, kept for the operator to delete.
 */
export async function createHeimdallDatabase (server: Connection, importFrom: string | undefined): Promise<void> {
  const admin = new pg.Client(server)
  await admin.connect()
  try {
    const exists = async (name: string): Promise<boolean> => (await admin.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1
    const pgliteData = importFrom === undefined ? undefined : join(importFrom, 'data')
    const toImport = pgliteData !== undefined && existsSync(join(pgliteData, 'PG_VERSION')) ? { folder: importFrom ?? '', data: pgliteData } : undefined
    if (await exists(HEIMDALL_DATABASE)) {
      // Imported before; a kill between the database's rename and the folder's left the folder.
      if (toImport !== undefined) await rename(toImport.folder, `${toImport.folder}.imported`)
      return
    }
    if (toImport === undefined) {
      await admin.query(`create database ${HEIMDALL_DATABASE}`)
      return
    }
    await admin.query(`drop database if exists ${IMPORT_DATABASE} with (force)`)
    await admin.query(`create database ${IMPORT_DATABASE}`)
    const report = await copyFromPglite(toImport.data, { ...server, database: IMPORT_DATABASE })
    await admin.query(`alter database ${IMPORT_DATABASE} rename to ${HEIMDALL_DATABASE}`)
    await rename(toImport.folder, `${toImport.folder}.imported`)
    const rows = Object.entries(report.tables).map(([table, count]) => `${table} ${count}`).join(', ')
    console.error(`Heimdall: the embedded database moved from PGlite to PostgreSQL: ${report.migrations} migrations, rows copied and verified (${rows}); the old folder is kept as ${toImport.folder}.imported and may be deleted`)
  } finally {
    await admin.end()
  }
}
