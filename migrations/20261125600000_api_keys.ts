import type { Knex } from 'knex'

/**
 * Named API keys: each identity may hand a script or a service a key of its
 * own, limited to some scopes and optionally expiring, and revoke it without
 * touching the token. A key is `hk_<public id>_<secret>`: the public id finds
 * the row, the secret is compared (constant time) with its stored sha256.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('api_keys', (table) => {
    table.increments('id')
    table.integer('identity_id').notNullable().references('id').inTable('identities').onDelete('CASCADE')
    table.string('public_id', 32).notNullable().unique()
    table.string('secret_hash', 64).notNullable()
    table.string('name', 64).notNullable()
    // Comma-separated, from upload, list, pin, delete.
    table.string('scopes', 64).notNullable()
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.timestamp('expires_at', { useTz: true })
    table.timestamp('last_used_at', { useTz: true })
    table.unique(['identity_id', 'name'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('api_keys')
}
