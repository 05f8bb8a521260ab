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
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('operator_pins')
}
