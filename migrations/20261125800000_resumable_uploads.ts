import type { Knex } from 'knex'

/**
 * Uploads sent with the tus resumable upload protocol (POST /upload/resumable).
 * While bytes arrive, a row says whose upload it is, its file name, its
 * declared length and the offset durably written (fsynced) so far; the bytes
 * themselves are a file under DATA_DIR/resumable on the instance named by
 * `instance_id`. Once the last byte is in, the file is imported like a plain
 * upload and the row keeps the answer (`result_status`, `result`) until it
 * expires, so that a client whose final PATCH was cut off can GET it.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('resumable_uploads', (table) => {
    table.string('id', 64).primary()
    table.integer('identity_id').notNullable().references('id').inTable('identities').onDelete('CASCADE')
    table.string('file_name', 255).notNullable()
    table.bigInteger('upload_length').notNullable()
    table.bigInteger('upload_offset').notNullable().defaultTo(0)
    table.string('instance_id', 128).notNullable()
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now())
    table.timestamp('expires_at', { useTz: true }).notNullable()
    // Set once the file was imported (or refused): the answer of the final PATCH, again for GET.
    table.timestamp('completed_at', { useTz: true })
    table.integer('result_status')
    table.jsonb('result')
    // A recorded upload deleted later takes its answer with it.
    table.integer('upload_id').references('id').inTable('uploads').onDelete('CASCADE')
    table.index(['expires_at'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('resumable_uploads')
}
