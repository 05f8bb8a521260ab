import type { Knex } from 'knex'

/**
 * Packs of the S3 block store (#14): an import's blocks go to the bucket a
 * few MiB at a time, as one object per pack, and this index says where each
 * block is (its pack, offset and length). One PUT per pack instead of one per
 * block is what makes a bundle of thousands of small textures cheap to store
 * (requests are what object stores bill and limit). A block is indexed once:
 * a later copy of it in another pack is dead bytes there. A pack row is
 * written after its object, and goes with its last block row (the collector
 * deletes the object then); a pack object without a row is an import's that
 * never finished, collected once no lease holds it.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('block_packs', (table) => {
    table.text('name').primary()
    table.bigInteger('size').notNullable()
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
  })
  await knex.schema.createTable('packed_blocks', (table) => {
    table.text('block_key').primary()
    table.text('pack').notNullable().references('name').inTable('block_packs')
    table.bigInteger('offset').notNullable()
    table.integer('length').notNullable()
    table.index(['pack'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('packed_blocks')
  await knex.schema.dropTable('block_packs')
}
