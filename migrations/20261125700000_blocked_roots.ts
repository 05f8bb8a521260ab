import type { Knex } from 'knex'

/**
 * Content an operator's denylist took down: the root is unpinned and counts
 * as referenced by nothing, so no restart and no settling of the pin journal
 * pins it again, while the uploads and pin requests that name it stay listed
 * (as blocked) for their owners. A new upload of the same root, once no rule
 * matches it any more, removes the row.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('blocked_roots', (table) => {
    table.string('root_cid', 128).primary()
    // The deciding rule as written, and the list it is in: for the operator, never shown to uploaders.
    table.text('rule').notNullable()
    table.string('list', 255).notNullable()
    table.timestamp('blocked_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('blocked_roots')
}
