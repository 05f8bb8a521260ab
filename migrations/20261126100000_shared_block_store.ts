import type { Knex } from 'knex'

/**
 * What instances sharing one block store must agree on (#14).
 *
 * `ipfs_pins`: the pinned roots, one row each (the root as a base32 CIDv1),
 * instead of a record in each instance's datastore. `seq` grows with every
 * pin added, so a collector that noted the highest one before marking can
 * ask which pins came in while it marked.
 *
 * `block_leases` and `block_lease_keys`: an instance writing blocks that no
 * pin reaches yet (an upload in progress) holds a lease naming them, renewed
 * by its heartbeat; the collector sweeps no block a live lease names, and a
 * lease whose instance died stops counting once its heartbeat is old.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('ipfs_pins', (table) => {
    table.text('cid').primary()
    table.specificType('seq', 'bigint generated always as identity').notNullable().unique()
    table.timestamp('pinned_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
  })
  await knex.schema.createTable('block_leases', (table) => {
    table.bigIncrements('id')
    table.text('instance').notNullable()
    table.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.timestamp('heartbeat_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.index(['instance'])
  })
  await knex.schema.createTable('block_lease_keys', (table) => {
    table.bigInteger('lease_id').notNullable().references('id').inTable('block_leases').onDelete('CASCADE')
    table.text('block_key').notNullable()
    table.primary(['lease_id', 'block_key'])
    table.index(['block_key'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('block_lease_keys')
  await knex.schema.dropTable('block_leases')
  await knex.schema.dropTable('ipfs_pins')
}
