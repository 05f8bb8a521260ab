import type { Knex } from 'knex'

/**
 * Registering an import's keys and learning which of them are packed
 * already, in one round trip (#14). The two must be separate queries: a
 * query's snapshot is taken when it starts, before it waits for the sweep
 * lock, and would still show a row a sweep it waited for has deleted. A
 * VOLATILE function takes a fresh snapshot for each query it runs, so the
 * lookup after the insert sees everything committed before the lock was
 * granted.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.raw(`create function heimdall_register_lease_keys (lock_a integer, lock_b integer, lease bigint, keys text[])
    returns setof text language plpgsql volatile as $$
    begin
      perform pg_advisory_xact_lock_shared(lock_a, lock_b);
      insert into block_lease_keys (lease_id, block_key) select lease, k from unnest(keys) as k on conflict do nothing;
      return query select b.block_key from packed_blocks b where b.block_key = any(keys);
    end
    $$`)
}

export async function down (knex: Knex): Promise<void> {
  await knex.raw('drop function heimdall_register_lease_keys (integer, integer, bigint, text[])')
}
