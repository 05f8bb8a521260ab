import type { Knex } from 'knex'

/** What the asset checks warned about, kept with the upload so the list can show it. */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.alterTable('uploads', (table) => {
    table.jsonb('warnings').notNullable().defaultTo('[]')
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.alterTable('uploads', (table) => {
    table.dropColumn('warnings')
  })
}
