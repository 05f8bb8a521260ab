import type { Knex } from 'knex'

/**
 * A picture of a model or avatar, rendered once in its creator's browser and
 * kept with the upload's record — never in its IPFS content, whose CID it
 * would change. Goes with its upload.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('upload_thumbnails', (table) => {
    table.integer('upload_id').primary().references('id').inTable('uploads').onDelete('CASCADE')
    table.string('media_type', 32).notNullable()
    table.binary('image').notNullable()
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('upload_thumbnails')
}
