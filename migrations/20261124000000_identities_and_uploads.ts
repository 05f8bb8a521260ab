import type { Knex } from 'knex'

export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('identities', (table) => {
    table.increments('id')
    // Stored lower-case: usernames are case-insensitive and unique.
    table.string('username', 32).notNullable().unique()
    // sha256 of the token, hex. The token itself is never stored. Unique so a
    // bare `Authorization: Bearer` token finds its identity.
    table.string('token_hash', 64).notNullable().unique()
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
  })

  await knex.schema.createTable('uploads', (table) => {
    table.increments('id')
    table.integer('identity_id').notNullable().references('id').inTable('identities').onDelete('CASCADE')
    table.string('name', 255).notNullable()
    table.string('root_cid', 128).notNullable()
    table.string('kind', 16).notNullable()
    table.bigInteger('size').notNullable()
    table.boolean('is_avatar').notNullable().defaultTo(false)
    table.text('primary_path')
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    // The same content uploaded twice by one person is one record.
    table.unique(['identity_id', 'root_cid'])
    // Deciding whether a root may be unpinned asks who else references it.
    table.index(['root_cid'])
  })

  await knex.schema.createTable('upload_entries', (table) => {
    table.increments('id')
    table.integer('upload_id').notNullable().references('id').inTable('uploads').onDelete('CASCADE')
    table.text('path').notNullable()
    table.string('cid', 128).notNullable()
    table.bigInteger('size').notNullable()
    table.boolean('is_directory').notNullable().defaultTo(false)
    table.unique(['upload_id', 'path'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('upload_entries')
  await knex.schema.dropTable('uploads')
  await knex.schema.dropTable('identities')
}
