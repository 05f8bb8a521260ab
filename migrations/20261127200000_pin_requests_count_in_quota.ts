import type { Knex } from 'knex'

/**
 * Pin requests count in their owner's quota, as uploads do: a request that
 * pinned content (held here, or fetched from the network) took none, so an
 * identity refused an upload for its quota could still pin content without
 * end (found by review). `size` is the DAG's bytes, recorded when the
 * request is pinned; requests pinned before this have none and count 0
 * bytes (their number counts). heimdall_pin_within_quota marks a request
 * pinned only if its size fits beside the owner's uploads and other pinned
 * requests, the owner's row locked as heimdall_record_upload locks it, and
 * that function now counts pinned requests too (otherwise as
 * 20261127100000_record_upload_needs_its_journal_row; the same signature).
 * A replacement (POST /psa/pins/<requestid>) is checked without the request
 * it replaces, still pinned until the replacement is made
 * (`replaces_request_id`): counted, it failed a replace that fit, and the
 * old request went all the same (found by review). What counts is said once,
 * heimdall_identity_usage, which the two functions and the Account page's
 * figures (QuotaRepository) all read.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.schema.alterTable('pin_requests', (table) => {
    table.bigInteger('size')
    table.string('replaces_request_id', 64)
  })
  await knex.raw(`create index pin_requests_pinned_owner_index on pin_requests (identity_id) where status = 'pinned'`)
  // What an identity's quota is used by: its uploads, and its pinned pin requests (but `leaving_out`, one a replacement replaces).
  await knex.raw(`create function heimdall_identity_usage (owner integer, leaving_out text)
    returns table (used_bytes bigint, used_uploads bigint)
    language sql stable as $$
      select
        (select coalesce(sum(u.size), 0) from uploads u where u.identity_id = owner)::bigint
          + (select coalesce(sum(p.size), 0) from pin_requests p where p.identity_id = owner and p.status = 'pinned' and p.request_id is distinct from leaving_out)::bigint,
        (select count(*) from uploads u where u.identity_id = owner)
          + (select count(*) from pin_requests p where p.identity_id = owner and p.status = 'pinned' and p.request_id is distinct from leaving_out)
    $$`)
  await knex.raw(`create or replace function heimdall_record_upload (
      owner integer, upload_name text, root text, upload_kind text, upload_size bigint, avatar boolean,
      primary_file text, upload_warnings jsonb, report jsonb, entries jsonb,
      default_quota_bytes bigint, default_quota_uploads integer, settled_intent integer)
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
        if recorded is null then
          -- Its uploads, and its pinned pin requests as uploads of their DAGs.
          select usage.used_bytes, usage.used_uploads into usage_bytes, usage_count from heimdall_identity_usage(owner, null) usage;
          own_bytes := coalesce(own_bytes, default_quota_bytes);
          own_uploads := coalesce(own_uploads, default_quota_uploads);
          if usage_count + 1 > own_uploads or usage_bytes + upload_size > own_bytes then
            return query select 'over_quota'::text, null::integer, null::timestamptz, usage_bytes, usage_count, own_bytes, own_uploads::bigint;
            return;
          end if;
        end if;
      end if;
      if recorded is null then
        insert into uploads as u (identity_id, name, root_cid, kind, size, is_avatar, primary_path, warnings, avatar_report)
          values (owner, upload_name, root, upload_kind, upload_size, avatar, primary_file, upload_warnings, report)
          on conflict (identity_id, root_cid, name) do nothing
          returning u.id, u.created_at into recorded, recorded_at;
        if recorded is not null then
          insert into upload_entries (upload_id, path, cid, size, is_directory)
            select recorded, e.path, e.cid, e.size, e.is_directory
            from jsonb_to_recordset(entries) as e (path text, cid text, size bigint, is_directory boolean);
        else
          select u.id into recorded from uploads u where u.identity_id = owner and u.root_cid = root and u.name = upload_name;
        end if;
      end if;
      -- Only for a record there is (a concurrent delete can leave none to answer with: the caller then fails).
      if recorded is not null then
        -- Its journal row settled by other work meanwhile (the record given up on by its client, the pin then
        -- released by settling or a take-down): recording now would leave an upload without its pin.
        if settled_intent is not null then
          delete from pin_intents p where p.id = settled_intent;
          if not found then
            raise exception 'the pin journal row % of this upload was settled without it', settled_intent using errcode = '55000';
          end if;
        end if;
        delete from blocked_roots b where b.root_cid = root;
      end if;
      if recorded_at is not null then
        return query select 'created'::text, recorded, recorded_at, null::bigint, null::bigint, null::bigint, null::bigint;
      else
        return query select 'existing'::text, recorded, null::timestamptz, null::bigint, null::bigint, null::bigint, null::bigint;
      end if;
    end
    $$`)
  // What a pending request's owner has used (uploads, and pinned requests but the one it replaces) and may use.
  await knex.raw(`create function heimdall_pin_quota_usage (request text, default_quota_bytes bigint, default_quota_uploads integer)
    returns table (owner integer, used_bytes bigint, used_uploads bigint, quota_bytes bigint, quota_uploads bigint)
    language sql stable as $$
      select r.identity_id, usage.used_bytes, usage.used_uploads,
        coalesce(i.quota_bytes, default_quota_bytes),
        coalesce(i.quota_uploads, default_quota_uploads)::bigint
      from pin_requests r join identities i on i.id = r.identity_id, heimdall_identity_usage(r.identity_id, r.replaces_request_id) usage
      where r.request_id = request and r.status in ('queued', 'pinning')
    $$`)
  await knex.raw(`create function heimdall_pin_within_quota (
      request text, pin_size bigint, details text, default_quota_bytes bigint, default_quota_uploads integer)
    returns table (outcome text, used_bytes bigint, used_uploads bigint, quota_bytes bigint, quota_uploads bigint)
    language plpgsql volatile as $$
    declare
      owner integer;
      usage record;
    begin
      select r.identity_id into owner from pin_requests r where r.request_id = request and r.status in ('queued', 'pinning');
      if owner is null then
        return query select 'gone'::text, null::bigint, null::bigint, null::bigint, null::bigint;
        return;
      end if;
      perform 1 from identities i where i.id = owner for no key update;
      -- After the lock: what other requests and uploads of the owner recorded meanwhile is counted.
      select * into usage from heimdall_pin_quota_usage(request, default_quota_bytes, default_quota_uploads);
      if not found then
        return query select 'gone'::text, null::bigint, null::bigint, null::bigint, null::bigint;
        return;
      end if;
      if usage.used_uploads + 1 > usage.quota_uploads or usage.used_bytes + pin_size > usage.quota_bytes then
        return query select 'over_quota'::text, usage.used_bytes, usage.used_uploads, usage.quota_bytes, usage.quota_uploads;
        return;
      end if;
      update pin_requests r set status = 'pinned', size = pin_size, status_details = details, updated_at = now()
        where r.request_id = request and r.status in ('queued', 'pinning');
      if not found then
        return query select 'gone'::text, null::bigint, null::bigint, null::bigint, null::bigint;
        return;
      end if;
      return query select 'pinned'::text, null::bigint, null::bigint, null::bigint, null::bigint;
    end
    $$`)
}

export async function down (knex: Knex): Promise<void> {
  await knex.raw('drop function heimdall_pin_within_quota (text, bigint, text, bigint, integer)')
  await knex.raw('drop function heimdall_pin_quota_usage (text, bigint, integer)')
  await knex.raw('drop function heimdall_identity_usage (integer, text)')
  await knex.raw(`create or replace function heimdall_record_upload (
      owner integer, upload_name text, root text, upload_kind text, upload_size bigint, avatar boolean,
      primary_file text, upload_warnings jsonb, report jsonb, entries jsonb,
      default_quota_bytes bigint, default_quota_uploads integer, settled_intent integer)
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
        if recorded is null then
          select coalesce(sum(u.size), 0), count(*) into usage_bytes, usage_count from uploads u where u.identity_id = owner;
          own_bytes := coalesce(own_bytes, default_quota_bytes);
          own_uploads := coalesce(own_uploads, default_quota_uploads);
          if usage_count + 1 > own_uploads or usage_bytes + upload_size > own_bytes then
            return query select 'over_quota'::text, null::integer, null::timestamptz, usage_bytes, usage_count, own_bytes, own_uploads::bigint;
            return;
          end if;
        end if;
      end if;
      if recorded is null then
        insert into uploads as u (identity_id, name, root_cid, kind, size, is_avatar, primary_path, warnings, avatar_report)
          values (owner, upload_name, root, upload_kind, upload_size, avatar, primary_file, upload_warnings, report)
          on conflict (identity_id, root_cid, name) do nothing
          returning u.id, u.created_at into recorded, recorded_at;
        if recorded is not null then
          insert into upload_entries (upload_id, path, cid, size, is_directory)
            select recorded, e.path, e.cid, e.size, e.is_directory
            from jsonb_to_recordset(entries) as e (path text, cid text, size bigint, is_directory boolean);
        else
          select u.id into recorded from uploads u where u.identity_id = owner and u.root_cid = root and u.name = upload_name;
        end if;
      end if;
      -- Only for a record there is (a concurrent delete can leave none to answer with: the caller then fails).
      if recorded is not null then
        -- Its journal row settled by other work meanwhile (the record given up on by its client, the pin then
        -- released by settling or a take-down): recording now would leave an upload without its pin.
        if settled_intent is not null then
          delete from pin_intents p where p.id = settled_intent;
          if not found then
            raise exception 'the pin journal row % of this upload was settled without it', settled_intent using errcode = '55000';
          end if;
        end if;
        delete from blocked_roots b where b.root_cid = root;
      end if;
      if recorded_at is not null then
        return query select 'created'::text, recorded, recorded_at, null::bigint, null::bigint, null::bigint, null::bigint;
      else
        return query select 'existing'::text, recorded, null::timestamptz, null::bigint, null::bigint, null::bigint, null::bigint;
      end if;
    end
    $$`)
  await knex.raw('drop index pin_requests_pinned_owner_index')
  await knex.schema.alterTable('pin_requests', (table) => {
    table.dropColumn('replaces_request_id')
    table.dropColumn('size')
  })
}
