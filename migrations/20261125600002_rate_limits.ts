import type { Knex } from 'knex'

/**
 * Rate limits kept in the database, so every Heimdall sharing it counts the
 * same requests. One row per (kind, key), e.g. ('upload', identity id) or
 * ('auth-address', client address). Times are milliseconds since the epoch.
 *
 * - A bucket (GCRA): `until` is its theoretical arrival time; a request is
 *   allowed while `until` is not too far ahead of now.
 * - Failed authentications: `count` failures in a row, `until` the end of
 *   the back-off they earned.
 * `touched` is the last change: rows quiet for long enough are purged.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('rate_limits', (table) => {
    table.string('kind', 16).notNullable()
    table.string('key', 128).notNullable()
    table.integer('count').notNullable().defaultTo(0)
    table.bigInteger('until').notNullable()
    table.bigInteger('touched').notNullable()
    table.primary(['kind', 'key'])
    table.index(['touched'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('rate_limits')
}
