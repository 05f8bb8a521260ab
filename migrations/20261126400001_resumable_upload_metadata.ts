import type { Knex } from 'knex'

/** A tus upload's Upload-Metadata as its client sent it: tus wants HEAD to answer it unchanged. */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.alterTable('resumable_uploads', (table) => {
    table.text('upload_metadata')
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.alterTable('resumable_uploads', (table) => {
    table.dropColumn('upload_metadata')
  })
}
