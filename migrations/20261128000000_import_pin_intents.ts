import type { Knex } from 'knex'

/**
 * The pin journal's rows for pins an import makes before its root is known:
 * over Kubo an upload is pinned by its own `add` (`pin=true`, `--pin-name`),
 * as `ipfs add` does, rather than by a `pin/add` afterwards that walks the
 * whole DAG again. The row is written before the add, under the name the pin
 * will carry, and removed once the upload is recorded or its pin released.
 * A process killed in between leaves the row, and settling it finds the pin
 * by its name: kept if an upload references the root, else unpinned.
 * A table apart from pin_intents, whose rows always name a root: instances of
 * the previous version, sharing the database during an upgrade, never read
 * these.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('import_pin_intents', (table) => {
    table.increments('id')
    // The name of the pin the import makes (Kubo's pin names are at most 255 bytes).
    table.string('pin_name', 64).notNullable().unique()
    // Which Heimdall instance wrote it (DATA_DIR/instance-id), as in pin_intents.
    table.string('instance', 64).notNullable()
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.index(['instance', 'created_at'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('import_pin_intents')
}
