import type { Knex } from 'knex'

/**
 * Files and folders looked up by CID: what a disabled identity's upload
 * shares with others' stays served (heldOnlyByDisabled), asked on every
 * refresh of the gateway's suspended set.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.alterTable('upload_entries', (table) => { table.index(['cid'], 'upload_entries_cid_index') })
  await knex.schema.alterTable('operator_pin_entries', (table) => { table.index(['cid'], 'operator_pin_entries_cid_index') })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.alterTable('operator_pin_entries', (table) => { table.dropIndex(['cid'], 'operator_pin_entries_cid_index') })
  await knex.schema.alterTable('upload_entries', (table) => { table.dropIndex(['cid'], 'upload_entries_cid_index') })
}
