import type { Knex } from 'knex'

/**
 * Recording an upload in one round trip (#13). The transaction it replaces
 * took eight (BEGIN, the retry's lookup, the owner's row lock, the usage,
 * the quota, the upload, its entries, COMMIT), and held the owner's row
 * lock across six of them: with many uploads in flight each of those waited
 * its turn on the web process's event loop. Here the lock is held only for
 * the few statements PostgreSQL runs itself.
 *
 * With `default_quota_bytes` null there is no quota: no lock, nothing
 * measured. Otherwise the owner's row is locked first (FOR NO KEY UPDATE:
 * uploads of one identity wait for each other, inserts elsewhere that only
 * reference the identity do not), so that uploads of one identity are
 * recorded one after the other (across instances too), and
 * every query after it sees what committed before the lock was granted (a
 * VOLATILE function takes a fresh snapshot for each query it runs, at READ
 * COMMITTED: every Heimdall session runs at that level, see database.ts;
 * under REPEATABLE READ the snapshot would predate the wait). A retry
 * of an upload recorded already is answered with its record whatever the
 * quota would say of a new one.
 *
 * Returns one row: `outcome` is 'created' (with the new row's id and time),
 * 'existing' (the id of the record there was), or 'over_quota' (nothing
 * written; the usage and the quota that refused it, for the message).
 */
export async function up (knex: Knex): Promise<void> {
  await knex.raw(`create function heimdall_record_upload (
      owner integer, upload_name text, root text, upload_kind text, upload_size bigint, avatar boolean,
      primary_file text, upload_warnings jsonb, report jsonb, entries jsonb,
      default_quota_bytes bigint, default_quota_uploads integer)
    returns table (outcome text, id integer, created_at timestamptz, used_bytes bigint, used_uploads bigint, quota_bytes bigint, quota_uploads bigint)
    language plpgsql volatile as $$
    declare
      own_bytes bigint;
      own_uploads integer;
      recorded integer;
      recorded_at timestamptz;
      usage_bytes bigint;
      usage_count bigint;
    begin
      if default_quota_bytes is not null then
        select i.quota_bytes, i.quota_uploads into own_bytes, own_uploads from identities i where i.id = owner for no key update;
        select u.id into recorded from uploads u where u.identity_id = owner and u.root_cid = root and u.name = upload_name;
        if recorded is not null then
          return query select 'existing'::text, recorded, null::timestamptz, null::bigint, null::bigint, null::bigint, null::bigint;
          return;
        end if;
        select coalesce(sum(u.size), 0), count(*) into usage_bytes, usage_count from uploads u where u.identity_id = owner;
        own_bytes := coalesce(own_bytes, default_quota_bytes);
        own_uploads := coalesce(own_uploads, default_quota_uploads);
        if usage_count + 1 > own_uploads or usage_bytes + upload_size > own_bytes then
          return query select 'over_quota'::text, null::integer, null::timestamptz, usage_bytes, usage_count, own_bytes, own_uploads::bigint;
          return;
        end if;
      end if;
      insert into uploads as u (identity_id, name, root_cid, kind, size, is_avatar, primary_path, warnings, avatar_report)
        values (owner, upload_name, root, upload_kind, upload_size, avatar, primary_file, upload_warnings, report)
        on conflict (identity_id, root_cid, name) do nothing
        returning u.id, u.created_at into recorded, recorded_at;
      if recorded is null then
        select u.id into recorded from uploads u where u.identity_id = owner and u.root_cid = root and u.name = upload_name;
        return query select 'existing'::text, recorded, null::timestamptz, null::bigint, null::bigint, null::bigint, null::bigint;
        return;
      end if;
      insert into upload_entries (upload_id, path, cid, size, is_directory)
        select recorded, e.path, e.cid, e.size, e.is_directory
        from jsonb_to_recordset(entries) as e (path text, cid text, size bigint, is_directory boolean);
      return query select 'created'::text, recorded, recorded_at, null::bigint, null::bigint, null::bigint, null::bigint;
    end
    $$`)
}

export async function down (knex: Knex): Promise<void> {
  await knex.raw('drop function heimdall_record_upload (integer, text, text, text, bigint, boolean, text, jsonb, jsonb, jsonb, bigint, integer)')
}
