import type { Knex } from 'knex'

/**
 * An operator may give one identity another quota than the configured
 * default (QUOTA_BYTES, QUOTA_UPLOADS); NULL means the default.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.alterTable('identities', (table) => {
    table.bigInteger('quota_bytes')
    table.integer('quota_uploads')
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.alterTable('identities', (table) => {
    table.dropColumn('quota_bytes')
    table.dropColumn('quota_uploads')
  })
}
