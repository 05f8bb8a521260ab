import type { Knex } from 'knex'

/**
 * What an identity's quota is used by, kept as running totals instead of
 * summed on every check. heimdall_identity_usage summed all of an identity's
 * uploads and pinned pin requests, and every upload asks it twice (before the
 * file is read, and in its record): 1.4 ms per call for an identity with a
 * few uploads, 9.7 ms with 20,000, 72 ms with 100,000 (measured on the
 * embedded PostgreSQL), so each upload of a prolific creator cost more than
 * the one before.
 *
 * `identity_usage` holds one row per identity that ever used any: the bytes
 * and the number of its uploads and of its pinned pin requests. Triggers on
 * `uploads` and `pin_requests` keep it, in the transaction of every change,
 * whatever code makes it (instances of the previous version too, during an
 * upgrade). A table of its own rather than columns of `identities`, whose
 * row the record locks first: a delete's trigger waits on the usage row only,
 * never on a lock a record holds. A decrement only updates (during an
 * identity's deletion its usage row may be gone already, and inserting one
 * would break the cascade). Filled here from what the tables hold, writes to
 * them held off meanwhile. heimdall_identity_usage keeps its signature and
 * its answers: the totals, less the pinned request `leaving_out`.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.raw('lock table uploads, pin_requests in share row exclusive mode')
  await knex.raw(`create table identity_usage (
    identity_id integer primary key references identities (id) on delete cascade,
    used_bytes bigint not null default 0,
    used_uploads bigint not null default 0
  )`)
  await knex.raw(`insert into identity_usage (identity_id, used_bytes, used_uploads)
    select identity_id, sum(bytes)::bigint, sum(n)::bigint from (
      select identity_id, coalesce(sum(size), 0) as bytes, count(*) as n from uploads group by identity_id
      union all
      select identity_id, coalesce(sum(size), 0), count(*) from pin_requests where status = 'pinned' group by identity_id
    ) used group by identity_id`)
  await knex.raw(`create function heimdall_count_upload () returns trigger language plpgsql as $$
    begin
      if tg_op in ('DELETE', 'UPDATE') then
        update identity_usage u set used_bytes = u.used_bytes - old.size, used_uploads = u.used_uploads - 1 where u.identity_id = old.identity_id;
      end if;
      if tg_op in ('INSERT', 'UPDATE') then
        insert into identity_usage as u (identity_id, used_bytes, used_uploads) values (new.identity_id, new.size, 1)
          on conflict (identity_id) do update set used_bytes = u.used_bytes + excluded.used_bytes, used_uploads = u.used_uploads + 1;
      end if;
      return null;
    end
    $$`)
  await knex.raw('create trigger uploads_count_in_usage after insert or delete or update of identity_id, size on uploads for each row execute function heimdall_count_upload()')
  // A pin request counts while pinned, its size once known (requests pinned before sizes were recorded count 0 bytes).
  await knex.raw(`create function heimdall_count_pin_request () returns trigger language plpgsql as $$
    begin
      if tg_op in ('DELETE', 'UPDATE') and old.status = 'pinned' then
        update identity_usage u set used_bytes = u.used_bytes - coalesce(old.size, 0), used_uploads = u.used_uploads - 1 where u.identity_id = old.identity_id;
      end if;
      if tg_op in ('INSERT', 'UPDATE') and new.status = 'pinned' then
        insert into identity_usage as u (identity_id, used_bytes, used_uploads) values (new.identity_id, coalesce(new.size, 0), 1)
          on conflict (identity_id) do update set used_bytes = u.used_bytes + excluded.used_bytes, used_uploads = u.used_uploads + 1;
      end if;
      return null;
    end
    $$`)
  await knex.raw('create trigger pin_requests_count_in_usage after insert or delete or update of identity_id, status, size on pin_requests for each row execute function heimdall_count_pin_request()')
  await knex.raw(`create or replace function heimdall_identity_usage (owner integer, leaving_out text)
    returns table (used_bytes bigint, used_uploads bigint)
    language sql stable as $$
      select coalesce(u.used_bytes, 0) - coalesce(left_out.bytes, 0), coalesce(u.used_uploads, 0) - coalesce(left_out.n, 0)
      from (select 1) one
      left join identity_usage u on u.identity_id = owner
      left join lateral (
        select coalesce(sum(p.size), 0)::bigint as bytes, count(*) as n from pin_requests p
        where p.identity_id = owner and p.status = 'pinned' and p.request_id = leaving_out
      ) left_out on true
    $$`)
}

export async function down (knex: Knex): Promise<void> {
  await knex.raw(`create or replace function heimdall_identity_usage (owner integer, leaving_out text)
    returns table (used_bytes bigint, used_uploads bigint)
    language sql stable as $$
      select
        (select coalesce(sum(u.size), 0) from uploads u where u.identity_id = owner)::bigint
          + (select coalesce(sum(p.size), 0) from pin_requests p where p.identity_id = owner and p.status = 'pinned' and p.request_id is distinct from leaving_out)::bigint,
        (select count(*) from uploads u where u.identity_id = owner)
          + (select count(*) from pin_requests p where p.identity_id = owner and p.status = 'pinned' and p.request_id is distinct from leaving_out)
    $$`)
  await knex.raw('drop trigger pin_requests_count_in_usage on pin_requests')
  await knex.raw('drop function heimdall_count_pin_request ()')
  await knex.raw('drop trigger uploads_count_in_usage on uploads')
  await knex.raw('drop function heimdall_count_upload ()')
  await knex.raw('drop table identity_usage')
}
