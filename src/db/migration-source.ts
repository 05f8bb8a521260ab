import { readdir } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Knex } from 'knex'

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url))

type Migration = Knex.Migration

/**
 * Lists `migrations/*.ts` in name order (names start with a timestamp) and
 * imports each. Node 24 runs the TypeScript directly, so there is no build step
 * between a migration file and the database.
 */
export class DirectoryMigrationSource implements Knex.MigrationSource<string> {
  readonly #dir: string

  constructor (dir = MIGRATIONS_DIR) {
    this.#dir = dir
  }

  async getMigrations (): Promise<string[]> {
    const files = await readdir(this.#dir)
    return files.filter((file) => /^\d{14}_[a-z0-9_]+\.ts$/.test(file)).sort()
  }

  getMigrationName (migration: string): string {
    return migration.replace(/\.ts$/, '')
  }

  async getMigration (migration: string): Promise<Migration> {
    const module = await import(pathToFileURL(`${this.#dir}/${migration}`).href) as Migration
    return { up: module.up, down: module.down }
  }
}
