import type { Knex } from 'knex'

/**
 * A replacement pin request (POST /psa/pins/<requestid>) whose content is not
 * here yet keeps the root it replaced pinned until it settles: the spec's
 * replace exists so that blocks both pins share are not collected in between.
 * `replaces_root_cid` names that root while the request is queued or pinning;
 * it is cleared once the old root has been released.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.alterTable('pin_requests', (table) => {
    table.string('replaces_root_cid', 128)
    table.index(['replaces_root_cid'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.alterTable('pin_requests', (table) => {
    table.dropIndex(['replaces_root_cid'])
    table.dropColumn('replaces_root_cid')
  })
}
