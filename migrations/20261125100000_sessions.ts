import type { Knex } from 'knex'

/**
 * Browser sessions, so that signing out ends one for good and all of an
 * identity's can be revoked. The cookie carries a random id; only its sha256
 * is stored, so a copy of this table signs nobody in.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('sessions', (table) => {
    table.string('id_hash', 64).primary()
    table.integer('identity_id').notNullable().references('id').inTable('identities').onDelete('CASCADE')
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.timestamp('expires_at', { useTz: true }).notNullable()
    // Revoking all of an identity's sessions, and purging the expired ones.
    table.index(['identity_id'])
    table.index(['expires_at'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('sessions')
}
