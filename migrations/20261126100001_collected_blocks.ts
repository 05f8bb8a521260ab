import type { Knex } from 'knex'

/**
 * The blocks a collection removed from a shared block store, a row per sweep
 * batch (#14): every instance reads the rows it has not seen and drops those
 * blocks from its read cache and its gateway caches, so that what one
 * instance collected stops being served by all of them. Rows older than a
 * day are pruned; an instance that was away longer empties its cache.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('collected_blocks', (table) => {
    table.bigIncrements('id')
    table.timestamp('collected_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.specificType('keys', 'text[]').notNullable()
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('collected_blocks')
}
