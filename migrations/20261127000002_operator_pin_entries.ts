import type { Knex } from 'knex'

/**
 * The files and folders of an operator's pin, as upload_entries are an
 * upload's: what a denylist rule naming one of them is checked against.
 * Pins recorded before this have none (their rules by root still apply).
 */
export async function up (knex: Knex): Promise<void> {
  // Development databases of a few commits made it inside 20261127000001.
  if (await knex.schema.hasTable('operator_pin_entries')) return
  await knex.schema.createTable('operator_pin_entries', (table) => {
    table.text('root_cid').notNullable().references('root_cid').inTable('operator_pins').onDelete('CASCADE')
    table.text('path').notNullable()
    table.text('cid').notNullable()
    table.primary(['root_cid', 'path'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('operator_pin_entries')
}
