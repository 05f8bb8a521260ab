import type { Knex } from 'knex'

/**
 * A journal of pins being changed: written before an upload pins its root or
 * a delete may unpin one, removed once the upload's record (or its deletion)
 * is in. A process killed in between leaves the row, and the next start
 * settles it: the root stays pinned if an upload references it, else it is
 * unpinned. Without it a crash between "pin" and "record" left a pin that
 * nothing lists and garbage collection can never free.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('pin_intents', (table) => {
    table.increments('id')
    table.string('root_cid', 128).notNullable()
    // Which Heimdall instance wrote it (DATA_DIR/instance-id): at start an instance settles its own rows.
    table.string('instance', 64).notNullable()
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.index(['instance', 'created_at'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('pin_intents')
}
