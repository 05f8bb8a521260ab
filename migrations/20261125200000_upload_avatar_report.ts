import type { Knex } from 'knex'

/** The avatar report (skeleton, height, textures, blendshapes) found at upload, kept with the record; null for non-avatars. */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.alterTable('uploads', (table) => {
    table.jsonb('avatar_report').nullable()
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.alterTable('uploads', (table) => {
    table.dropColumn('avatar_report')
  })
}
