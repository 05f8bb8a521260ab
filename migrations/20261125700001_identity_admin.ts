import type { Knex } from 'knex'

/**
 * What an operator does to identities, and the record of it: a disabled
 * identity cannot sign in or use its keys, and content only it holds is not
 * served (answered 410) until it is enabled again; nothing is deleted.
 * Every operator command (npm run admin) is written to admin_actions with
 * who ran it and when.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.alterTable('identities', (table) => {
    table.timestamp('disabled_at', { useTz: true })
  })
  await knex.schema.createTable('admin_actions', (table) => {
    table.increments('id')
    // The operating-system user who ran the command (SUDO_USER when run with sudo).
    table.string('actor', 255).notNullable()
    table.string('action', 64).notNullable()
    table.string('subject', 512)
    table.jsonb('details').notNullable().defaultTo('{}')
    table.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.index(['at'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('admin_actions')
  await knex.schema.alterTable('identities', (table) => {
    table.dropColumn('disabled_at')
  })
}
