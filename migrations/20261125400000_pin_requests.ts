import type { Knex } from 'knex'

/**
 * Pin requests of the Pinning Service API (/psa): each its own record, owned
 * by the identity that made it. `created` is unique per owner (a millisecond
 * later than the owner's newest when two would collide) because clients page
 * with `before=<created of the oldest seen>`: two requests sharing a
 * timestamp would be skipped or listed twice.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('pin_requests', (table) => {
    table.increments('id')
    table.string('request_id', 64).notNullable().unique()
    table.integer('identity_id').notNullable().references('id').inTable('identities').onDelete('CASCADE')
    // As the client sent it (answered back in `pin.cid`), and normalized (what pins, uploads and the journal compare).
    table.string('cid', 256).notNullable()
    table.string('root_cid', 128).notNullable()
    table.string('name', 255)
    table.jsonb('origins').notNullable().defaultTo('[]')
    table.jsonb('meta').notNullable().defaultTo('{}')
    table.string('status', 16).notNullable()
    table.text('status_details')
    table.timestamp('created', { useTz: true, precision: 3 }).notNullable()
    table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.unique(['identity_id', 'created'])
    // "Is this root still referenced?" and the resumption of pending work at start.
    table.index(['root_cid'])
    table.index(['status'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('pin_requests')
}
