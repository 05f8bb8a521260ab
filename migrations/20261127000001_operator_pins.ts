import type { Knex } from 'knex'

/**
 * Roots an operator imported without an owner (`npm run import-car` without
 * `--owner`): they hold their content as an upload does, so that deleting
 * someone's upload of the same DAG does not unpin it, and take-downs see it.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('operator_pins', (table) => {
    table.text('root_cid').primary()
    table.text('actor').notNullable()
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
  })
  // Its files and folders, as upload_entries are an upload's: what a denylist rule naming one of them is checked against.
  await knex.schema.createTable('operator_pin_entries', (table) => {
    table.text('root_cid').notNullable().references('root_cid').inTable('operator_pins').onDelete('CASCADE')
    table.text('path').notNullable()
    table.text('cid').notNullable()
    table.primary(['root_cid', 'path'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('operator_pin_entries')
  await knex.schema.dropTable('operator_pins')
}
