import type { Knex } from 'knex'

/**
 * Each upload is its own record, with its own name and date, even when its
 * content is the same as another upload's: uploading `a.zip` and then the
 * same bundle as `b.zip` lists both. Only the same content under the same
 * name is one record (a retry, answered with the first).
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.alterTable('uploads', (table) => {
    table.dropUnique(['identity_id', 'root_cid'])
    table.unique(['identity_id', 'root_cid', 'name'])
    // The list pages are "this owner's uploads, newest first".
    table.index(['identity_id', 'created_at'])
  })
}

/** Back to one record per owner and content: the later records of the same content are dropped. */
export async function down (knex: Knex): Promise<void> {
  await knex('uploads')
    .whereExists(function () {
      void this.select(knex.raw('1')).from('uploads as earlier')
        .whereRaw('earlier.identity_id = uploads.identity_id and earlier.root_cid = uploads.root_cid and earlier.id < uploads.id')
    })
    .delete()
  await knex.schema.alterTable('uploads', (table) => {
    table.dropIndex(['identity_id', 'created_at'])
    table.dropUnique(['identity_id', 'root_cid', 'name'])
    table.unique(['identity_id', 'root_cid'])
  })
}
