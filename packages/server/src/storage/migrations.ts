import { setTimeout as sleep } from 'node:timers/promises';
import { SwitchyardError } from '@switchyard/core';
import { type Kysely, sql } from 'kysely';

/** The Postgres schema holding Switchyard's own tables (pg-boss lives in `switchyard_queue`). */
export const SCHEMA = 'switchyard';

/**
 * One forward-only schema change. Never edit a released migration: add a new one.
 *
 * A migration runs in three steps, in this order, before the next migration starts:
 *
 * 1. `indexes`: each built with `CREATE INDEX CONCURRENTLY`, outside any transaction, one after
 *    the other. Every index on a table an earlier migration created goes here, never in `sql`: a
 *    plain `CREATE INDEX` takes a `SHARE` lock that stops every write to the table until the index
 *    is built (minutes on a hub upgraded with its history), and the pipeline with it.
 * 2. `dropIndexes`: each dropped with `DROP INDEX CONCURRENTLY IF EXISTS`, after the builds (a
 *    replaced index serves queries until its successor exists; without the role's timeouts, as
 *    the builds: {@link withoutTimeouts}). Never `drop index` in `sql`: it
 *    takes an `ACCESS EXCLUSIVE` lock on the table, which waits for every transaction using it and
 *    stops everything queued behind it.
 * 3. `sql`: in one transaction with the record of the version, so it runs exactly once, under a
 *    short lock timeout and tried again while another session holds its tables ({@link
 *    applyTransaction}): DDL waiting for a lock stops every statement on the table. It runs
 *    after the indexes: an index on a column `sql` adds belongs to a later migration (or, for a
 *    table `sql` itself creates, in `sql`: the table is new, empty and nobody writes it yet).
 *
 * migrations.test.ts checks these rules for every migration from 32 on.
 *
 * @example
 * ```ts
 * const m: Migration = {
 *   version: 46,
 *   name: 'the commands list by connector reads an index',
 *   indexes: [{ name: 'commands_connector_idx', on: 'switchyard.commands (connector, seq desc)' }],
 *   sql: '',
 * };
 * ```
 */
export interface Migration {
  version: number;
  name: string;
  /** Built concurrently before `sql` (step 1 above). */
  indexes?: readonly ConcurrentIndex[];
  /** Index names (in the `switchyard` schema), dropped concurrently after the builds (step 2 above). */
  dropIndexes?: readonly string[];
  /** Run in one transaction with the version's record (step 3 above); may be empty. */
  sql: string;
}

/**
 * An index a migration builds with `CREATE INDEX CONCURRENTLY` ({@link Migration}): the table's
 * writes go on during the build (it takes a `SHARE UPDATE EXCLUSIVE` lock, which no insert, update
 * or delete waits for). A build that failed or was killed leaves the index behind INVALID
 * (`pg_index.indisvalid` false, unused by queries, still maintained by every write): the next run
 * drops it and builds it again. An index of that name that is valid is kept as it is, as
 * `if not exists` would: never reuse a name for another definition.
 *
 * @example
 * ```ts
 * const index: ConcurrentIndex = {
 *   name: 'commands_succeeded_idx', // created as switchyard.commands_succeeded_idx
 *   on: "switchyard.commands (completed_at) where status = 'succeeded'",
 * };
 * ```
 */
export interface ConcurrentIndex {
  /** The index's name, unqualified: Postgres puts an index in its table's schema. */
  name: string;
  /** What follows `on` in `CREATE INDEX`: the table, any `using`, the keys, any `where`. */
  on: string;
  /** A unique index (a build that finds duplicates fails, and the migration with it). */
  unique?: boolean;
}

// Lock id for migrations: any constant works as long as no other code uses it. "sy-migrate" as int.
// Taken as a session lock here, as a transaction lock by earlier versions of Switchyard: the same
// key, so the two exclude each other during a rolling upgrade.
const MIGRATION_LOCK = 0x53594d47;

/**
 * How often a process that finds the migration lock held tries again. It polls instead of waiting
 * in `pg_advisory_lock`: a session waiting in a statement holds a snapshot, and the holder's
 * `CREATE INDEX CONCURRENTLY` waits for every older snapshot to end, a deadlock that Postgres
 * breaks by cancelling one of the two (checked on Postgres 15). Between two tries the waiting
 * session is idle and holds none. The wait is as long as the holder's migrations.
 */
const MIGRATION_LOCK_RETRY_MS = 100;

/**
 * Migration 28's `claimable_deliveries`, kept as a constant because migration 35 redefines it with
 * one difference ({@link withClaimSkipList}); the text is migration 28's as released.
 */
const CLAIMABLE_DELIVERIES_28 = `
create or replace function switchyard.claimable_deliveries(p_limit integer)
returns table (id uuid, timeout_ms integer) language plpgsql volatile rows 4
set enable_seqscan = off set enable_bitmapscan = off set enable_sort = off set jit = off
set plan_cache_mode = auto as $fn$
declare
  r record;
  sub record;
  head record;
  n integer := 0;
  fetched integer := 0;
  after_at timestamptz := '-infinity';
  after_seq bigint := 0;
  skipped text[] := array(select s.id from switchyard.subscriptions s where s.disabled_at is not null or s.kind <> 'webhook');
begin
  -- 1. The due index in order, as in migration 9, for at most 256 rows.
  for r in
    select c.ctid, c.id, c.subscription_id, c.subject, c.event_sequence, c.seq, c.next_attempt_at, c.status, c.locked_until,
      c.attempts
    from switchyard.deliveries c
    where c.status in ('pending', 'in_flight')
    order by c.next_attempt_at, c.seq
    limit 256
  loop
    fetched := fetched + 1;
    after_at := r.next_attempt_at;
    after_seq := r.seq;
    -- In order of next_attempt_at: from here on nothing is due (a claimed delivery keeps the
    -- next_attempt_at it was claimed at, always in the past).
    if r.status = 'pending' and r.next_attempt_at > now() then
      return;
    end if;
    -- A disabled subscription's deliveries count in the walk's 256: filtered in the query, a
    -- backlog of them at the head of the due index was read whole by every claim.
    continue when r.subscription_id = any(skipped);
    continue when r.status = 'in_flight' and r.locked_until >= now();
    select s.timeout_ms, s.ordering into sub from switchyard.subscriptions s where s.id = r.subscription_id;
    continue when not found;
    -- The first delivery of the line that blocks this one, if any (its head).
    select p.status, p.next_attempt_at into head from switchyard.deliveries p
      where p.subscription_id = r.subscription_id and p.subject = r.subject
        and p.status in ('pending', 'in_flight', 'held', 'dead')
        and (p.event_sequence, p.seq) < (r.event_sequence, r.seq)
        and (p.status <> 'dead' or (p.superseded_by is null and sub.ordering = 'hold'))
      order by p.event_sequence, p.seq
      limit 1;
    if found then
      -- Blocked. Behind a head waiting for its retry, it cannot go before that retry: put off to
      -- the head's time, out of the due range every claim walks. Only a delivery never attempted
      -- (its own time is "now"; a retried one keeps its schedule); skip locked, as the claim.
      if r.status = 'pending' and r.attempts = 0 and head.status = 'pending' and head.next_attempt_at > now() then
        perform 1 from switchyard.deliveries d
          where d.ctid = r.ctid and d.status = 'pending' and d.attempts = 0 and d.next_attempt_at <= now()
          for update skip locked;
        if found then
          update switchyard.deliveries d set next_attempt_at = head.next_attempt_at, updated_at = now()
            where d.ctid = r.ctid;
        end if;
      end if;
      continue;
    end if;
    perform 1 from switchyard.deliveries d
      where d.ctid = r.ctid
        and ((d.status = 'pending' and d.next_attempt_at <= now()) or (d.status = 'in_flight' and d.locked_until < now()))
      for update skip locked;
    continue when not found;
    id := r.id;
    timeout_ms := sub.timeout_ms;
    return next;
    n := n + 1;
    if n >= p_limit then
      return;
    end if;
  end loop;
  if fetched < 256 then
    return; -- that was every due delivery
  end if;

  -- 2. Past the walk: the head of each line (its first delivery that can block), claimable if due
  -- or its lease ran out; a head at or before the walk's last row was judged by the walk.
  for r in
    with recursive lines as (
      (select d.subscription_id, d.subject, d.subscription_id = any(skipped) as skip
       from switchyard.deliveries d
       where d.status in ('pending', 'in_flight', 'held', 'dead')
       order by d.subscription_id, d.subject, d.event_sequence, d.seq
       limit 1)
      union all
      select nx.subscription_id, nx.subject, nx.subscription_id = any(skipped)
      from lines l cross join lateral (
        -- The next line; past a disabled subscription's first line, the next subscription's (one
        -- probe per disabled subscription, not one per line of its backlog). Only one branch
        -- runs: the other's condition on l is false before any row is read.
        (select d.subscription_id, d.subject
         from switchyard.deliveries d
         where not l.skip and d.status in ('pending', 'in_flight', 'held', 'dead')
           and (d.subscription_id, d.subject) > (l.subscription_id, l.subject)
         order by d.subscription_id, d.subject, d.event_sequence, d.seq
         limit 1)
        union all
        (select d.subscription_id, d.subject
         from switchyard.deliveries d
         where l.skip and d.status in ('pending', 'in_flight', 'held', 'dead')
           and d.subscription_id > l.subscription_id
         order by d.subscription_id, d.subject, d.event_sequence, d.seq
         limit 1)) nx
    ),
    heads as (
      select h.ctid, h.id, h.status, h.next_attempt_at, h.locked_until, h.seq, s.timeout_ms
      from lines l
      join switchyard.subscriptions s on s.id = l.subscription_id
      cross join lateral (
        select d.ctid, d.id, d.status, d.next_attempt_at, d.locked_until, d.seq
        from switchyard.deliveries d
        where d.subscription_id = l.subscription_id and d.subject = l.subject
          and d.status in ('pending', 'in_flight', 'held', 'dead')
          -- a dead delivery blocks only if unsuperseded under 'hold'
          and (d.status <> 'dead' or (d.superseded_by is null and s.ordering = 'hold'))
        order by d.event_sequence, d.seq
        limit 1) h
      where not l.skip
    )
    select * from heads h
    where ((h.status = 'pending' and h.next_attempt_at <= now()) or (h.status = 'in_flight' and h.locked_until < now()))
      and (h.next_attempt_at, h.seq) > (after_at, after_seq)
    order by h.next_attempt_at, h.seq
  loop
    perform 1 from switchyard.deliveries d
      where d.ctid = r.ctid
        and ((d.status = 'pending' and d.next_attempt_at <= now()) or (d.status = 'in_flight' and d.locked_until < now()))
      for update skip locked;
    continue when not found;
    id := r.id;
    timeout_ms := r.timeout_ms;
    return next;
    n := n + 1;
    if n >= p_limit then
      return;
    end if;
  end loop;
end
$fn$;
`;

/**
 * Migration 35's `claimable_deliveries(p_limit, p_skip)`: migration 28's, with the subscriptions
 * the claiming process names skipped as a disabled one's are. Each replacement must match once.
 */
function withClaimSkipList(fn: string): string {
  const edits: [string, string][] = [
    ['claimable_deliveries(p_limit integer)', 'claimable_deliveries(p_limit integer, p_skip text[])'],
    [
      "where s.disabled_at is not null or s.kind <> 'webhook');",
      "where s.disabled_at is not null or s.kind <> 'webhook') || p_skip;",
    ],
  ];
  let out = fn;
  for (const [from, to] of edits) {
    if (out.split(from).length !== 2)
      throw new Error(`migration 35: '${from}' is not in migration 28's function once`);
    out = out.replace(from, to);
  }
  return out;
}

/**
 * The schema, version by version. Tables double as queues (inbound_messages for normalization,
 * deliveries for webhook delivery, connector_instances for vendor pulling): see docs/pipeline.md.
 */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
create table switchyard.connector_instances (
  id text primary key,
  connector text not null,
  mode text not null check (mode in ('push', 'pull', 'both')),
  settings_sealed text not null,
  pull_interval_ms integer,
  gate jsonb,
  managed_by text not null default 'api' check (managed_by in ('file', 'api')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_message_at timestamptz,
  last_error text,
  last_error_at timestamptz,
  pull_cursor text,
  pull_next_at timestamptz,
  pull_locked_until timestamptz,
  pull_last_success_at timestamptz,
  pull_consecutive_failures integer not null default 0,
  pull_lag_ms bigint
);

create table switchyard.inbound_messages (
  seq bigserial not null unique,
  id uuid primary key,
  instance_id text not null,
  route text not null,
  dedupe_key text not null,
  vendor_type text not null,
  ordering_key text,
  occurred_at text,
  gate boolean not null default false,
  payload jsonb not null,
  meta jsonb,
  raw_body bytea,
  headers jsonb,
  source_ip text,
  origin text not null default 'push' check (origin in ('push', 'pull')),
  status text not null default 'received' check (status in ('received', 'normalized', 'ignored', 'failed')),
  reason text,
  error jsonb,
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  locked_until timestamptz,
  lock_token uuid,
  event_count integer not null default 0,
  received_at timestamptz not null default now(),
  processed_at timestamptz,
  unique (instance_id, dedupe_key)
);
-- the normalize queue: due, unfinished messages in arrival order
create index inbound_queue_idx on switchyard.inbound_messages (seq) where status = 'received';
create index inbound_ordering_idx on switchyard.inbound_messages (instance_id, ordering_key, seq) where status = 'received';
create index inbound_list_idx on switchyard.inbound_messages (received_at desc, seq desc);
create index inbound_status_idx on switchyard.inbound_messages (status, seq desc);

create table switchyard.events (
  sequence bigserial primary key,
  id uuid not null unique,
  type text not null,
  source text not null,
  subject text not null,
  time timestamptz not null,
  envelope jsonb not null,
  inbound_message_id uuid,
  created_at timestamptz not null default now()
);
create index events_created_idx on switchyard.events (created_at);
create index events_subject_idx on switchyard.events (subject, sequence);
create index events_type_idx on switchyard.events (type, sequence);
create index events_inbound_idx on switchyard.events (inbound_message_id);

create table switchyard.aliases (
  instance_id text not null,
  entity text not null,
  vendor_id text not null,
  hub_id text not null,
  created_at timestamptz not null default now(),
  primary key (instance_id, entity, vendor_id)
);
create index aliases_hub_idx on switchyard.aliases (instance_id, entity, hub_id, created_at);

create table switchyard.entity_state (
  instance_id text not null,
  key text not null,
  value jsonb not null,
  updated_at timestamptz not null default now(),
  primary key (instance_id, key)
);

create table switchyard.subscriptions (
  id text primary key,
  kind text not null check (kind in ('webhook', 'pull')),
  url text,
  event_types text[] not null default '{*}',
  sources text[],
  secrets jsonb not null default '[]',
  content_type text not null default 'application/cloudevents+json'
    check (content_type in ('application/cloudevents+json', 'application/json')),
  timeout_ms integer not null default 15000,
  retry_schedule_ms integer[],
  rate_limit jsonb,
  ordering text not null default 'hold' check (ordering in ('hold', 'release')),
  approver boolean not null default false,
  approver_filters jsonb,
  allow_private_addresses boolean not null default false,
  consecutive_dead integer not null default 0,
  disabled_at timestamptz,
  disabled_reason text,
  disabled_at_sequence bigint,
  managed_by text not null default 'api' check (managed_by in ('file', 'api')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table switchyard.deliveries (
  seq bigserial not null unique,
  id uuid primary key,
  subscription_id text not null references switchyard.subscriptions (id) on delete cascade,
  event_id uuid not null references switchyard.events (id) on delete cascade,
  event_sequence bigint not null,
  subject text not null,
  reason text not null default 'fanout' check (reason in ('fanout', 'replay')),
  replay_of uuid,
  superseded_by uuid,
  status text not null default 'pending'
    check (status in ('pending', 'in_flight', 'succeeded', 'dead', 'skipped', 'held')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  locked_until timestamptz,
  lock_token uuid,
  last_status_code integer,
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  completed_at timestamptz
);
-- fan-out is idempotent: one original delivery per (subscription, event); replays add rows
create unique index deliveries_fanout_uq on switchyard.deliveries (subscription_id, event_id) where reason = 'fanout';
create index deliveries_due_idx on switchyard.deliveries (next_attempt_at) where status in ('pending', 'in_flight');
-- head-of-line check per (subscription, subject)
create index deliveries_line_idx on switchyard.deliveries (subscription_id, subject, event_sequence, seq)
  where status in ('pending', 'in_flight', 'held', 'dead');
create index deliveries_sub_idx on switchyard.deliveries (subscription_id, status, seq desc);
create index deliveries_event_idx on switchyard.deliveries (event_id);
create index deliveries_completed_idx on switchyard.deliveries (completed_at) where completed_at is not null;

create table switchyard.delivery_attempts (
  id bigserial primary key,
  delivery_id uuid not null references switchyard.deliveries (id) on delete cascade,
  attempt integer not null,
  started_at timestamptz not null,
  latency_ms integer,
  status_code integer,
  response_snippet text,
  error text,
  outcome text not null
);
create index delivery_attempts_delivery_idx on switchyard.delivery_attempts (delivery_id, id);

create table switchyard.feed_cursors (
  subscription_id text primary key references switchyard.subscriptions (id) on delete cascade,
  cursor bigint not null,
  acked_at timestamptz not null default now()
);
`,
  },
  {
    // Approval gates (packages/server/src/gates, docs/gates.md); SQL in gates/store.ts.
    version: 2,
    name: 'gates',
    sql: `
create table switchyard.gate_requests (
  seq bigserial not null unique,
  id text primary key,
  instance_id text not null,
  connector text not null,
  inbound_message_id uuid,
  dedupe_key text not null,
  vendor_type text not null,
  type text,
  event_id uuid,
  envelope jsonb,
  match_key text,
  status text not null default 'pending' check (status in ('pending', 'deciding', 'decided')),
  deadline_ms integer not null,
  default_outcome text not null check (default_outcome in ('approve', 'refuse')),
  deadline_at timestamptz not null,
  received_at timestamptz not null default now(),
  claimed_by text,
  claimed_at timestamptz,
  approvers integer not null default 0,
  decision text check (decision in ('approve', 'refuse')),
  decision_reason text
    check (decision_reason in ('approved', 'refused', 'deadline', 'no_approvers', 'unavailable', 'error')),
  decided_by text,
  refusal_reason text,
  vendor_error_code integer,
  error text,
  response_status integer,
  decided_at timestamptz,
  decision_ms real,
  matched_at timestamptz,
  matched_inbound_id uuid,
  matched_vendor_type text,
  matched_event_id uuid,
  matched_subject text,
  unique (instance_id, dedupe_key)
);
-- the booking that follows a request is looked up by its match key among unmatched requests
create index gate_requests_match_idx on switchyard.gate_requests (instance_id, match_key, seq) where matched_at is null;
create index gate_requests_received_idx on switchyard.gate_requests (received_at);

create table switchyard.gate_answers (
  id bigserial primary key,
  gate_request_id text not null references switchyard.gate_requests (id) on delete cascade,
  subscription_id text not null,
  started_at timestamptz not null,
  latency_ms real,
  status_code integer,
  outcome text not null check (outcome in ('approve', 'refuse', 'unavailable')),
  reason text,
  vendor_error_code integer,
  response_snippet text,
  error text,
  after_decision boolean not null default false
);
create index gate_answers_request_idx on switchyard.gate_answers (gate_request_id, id);
`,
  },
  {
    version: 3,
    name: 'subscription rate limit',
    // A token bucket per subscription kept in its row, so the limit holds across hub processes.
    sql: `
alter table switchyard.subscriptions
  add column rate_tokens double precision,
  add column rate_refilled_at timestamptz;
`,
  },
  {
    version: 4,
    name: 'dashboard indexes',
    // The dashboard's searches (src/ui/queries.ts, docs/dashboard.md): events by vendor id (through
    // the alias table) and by source instance; deliveries by outcome across subscriptions.
    sql: `
create index if not exists aliases_vendor_idx on switchyard.aliases (vendor_id);
create index if not exists events_source_idx on switchyard.events (source, sequence);
create index if not exists deliveries_status_seq_idx on switchyard.deliveries (status, seq desc);
`,
  },
  {
    version: 5,
    name: 'gates sweep and approver notifications',
    // gates/queries.ts: `abandoned` closes requests whose deciding process died; the sweep finds
    // open requests by deadline; a change to an approver subscription NOTIFYs so every process
    // drops its cached approver list (only approver-relevant columns: the rate-limit bucket and
    // the dead counter change often and must not wake anyone).
    sql: `
alter table switchyard.gate_requests drop constraint if exists gate_requests_decision_reason_check;
alter table switchyard.gate_requests add constraint gate_requests_decision_reason_check
  check (decision_reason in ('approved', 'refused', 'deadline', 'no_approvers', 'unavailable', 'error', 'abandoned'));
create index if not exists gate_requests_open_idx on switchyard.gate_requests (deadline_at) where status <> 'decided';
create or replace function switchyard.gate_approvers_changed() returns trigger language plpgsql as $$
begin
  perform pg_notify('switchyard_gate_approvers', '');
  return null;
end $$;
create trigger subscriptions_gate_approvers_insert after insert on switchyard.subscriptions
  for each row when (new.approver) execute function switchyard.gate_approvers_changed();
create trigger subscriptions_gate_approvers_delete after delete on switchyard.subscriptions
  for each row when (old.approver) execute function switchyard.gate_approvers_changed();
create trigger subscriptions_gate_approvers_update after update on switchyard.subscriptions
  for each row when ((old.approver or new.approver) and
    (old.kind, old.url, old.secrets, old.content_type, old.timeout_ms, old.approver, old.approver_filters,
     old.allow_private_addresses, old.disabled_at)
    is distinct from
    (new.kind, new.url, new.secrets, new.content_type, new.timeout_ms, new.approver, new.approver_filters,
     new.allow_private_addresses, new.disabled_at))
  execute function switchyard.gate_approvers_changed();
`,
  },
  {
    version: 6,
    name: 'delivery claim by queue order',
    // claimDeliveries (deliveries/store.ts) calls this. A single SQL statement cannot say "walk the due
    // deliveries in order and stop after N heads": the planner sorts the whole backlog (or, before
    // the table has statistics, probes it quadratically). A plpgsql cursor loop is planned for a
    // fast start over deliveries_due_idx and stops at the limit, so a claim costs O(limit + rows
    // blocked ahead), not O(backlog). Head of line as before: no earlier unfinished delivery of
    // the same subscription and subject, nor (hold) an unsuperseded dead one.
    sql: `
create or replace function switchyard.claimable_deliveries(p_limit integer)
returns table (id uuid, timeout_ms integer) language plpgsql volatile as $fn$
declare
  r record;
  n integer := 0;
begin
  -- A cursor loop: planned for a fast start (walks deliveries_due_idx in order) and stops as soon
  -- as p_limit heads are locked, however long the queue behind them.
  for r in
    select c.id, c.subscription_id, c.subject, c.event_sequence, c.seq, s.timeout_ms, s.ordering
    from switchyard.deliveries c join switchyard.subscriptions s on s.id = c.subscription_id
    where c.status in ('pending', 'in_flight')
      and ((c.status = 'pending' and c.next_attempt_at <= now()) or (c.status = 'in_flight' and c.locked_until < now()))
      and s.disabled_at is null and s.kind = 'webhook'
    order by c.next_attempt_at
  loop
    continue when exists (
      select 1 from switchyard.deliveries p
      where p.subscription_id = r.subscription_id and p.subject = r.subject
        and p.status in ('pending', 'in_flight', 'held', 'dead')
        and (p.event_sequence, p.seq) < (r.event_sequence, r.seq)
        and (p.status <> 'dead' or (p.superseded_by is null and r.ordering = 'hold')));
    perform 1 from switchyard.deliveries d
      where d.id = r.id
        and ((d.status = 'pending' and d.next_attempt_at <= now()) or (d.status = 'in_flight' and d.locked_until < now()))
      for update skip locked;
    continue when not found;
    id := r.id;
    timeout_ms := r.timeout_ms;
    return next;
    n := n + 1;
    exit when n >= p_limit;
  end loop;
end
$fn$;
`,
  },
  {
    version: 7,
    name: 'per-subscription dead limit',
    // Consecutive dead deliveries that disable this subscription; null: the hub's default.
    sql: `alter table switchyard.subscriptions add column disable_after_consecutive_dead integer;`,
  },
  {
    version: 8,
    name: 'lz4 for stored payloads',
    // A Docplanner push row (payload, raw body, headers) and an event envelope pass the 2 kB TOAST
    // threshold, so Postgres compresses them on every insert; lz4 stores ~25% more rows per second
    // than the default pglz here (see docs/benchmarks.md). Builds without lz4 keep pglz.
    sql: `do $$
begin
  if exists (select 1 from pg_settings where name = 'default_toast_compression' and 'lz4' = any(enumvals)) then
    alter table switchyard.inbound_messages alter column payload set compression lz4,
      alter column raw_body set compression lz4, alter column headers set compression lz4,
      alter column meta set compression lz4;
    alter table switchyard.events alter column envelope set compression lz4;
  end if;
end
$$;`,
  },
  {
    version: 9,
    name: 'delivery claim walks the due index in chunks',
    // Migration 6 assumed its cursor loop was planned for a fast start; it is not (a FOR loop is
    // planned for its whole result, and the join to subscriptions made every estimate a guess):
    // each claim sorted all due deliveries (41 ms with 20,000 of them), and the claim's UPDATE ...
    // FROM joined the function's result (estimated at 1,000 rows) by a hash over every delivery
    // ever kept. Now the loop reads the due index alone, in chunks of 256 in (next_attempt_at, seq)
    // order (ties are common: a backlog queued at once shares one timestamp), resumes after the
    // last row seen, and stops at the first delivery not yet due; subscriptions are looked up per
    // row. A claim costs O(limit + rows passed over) whatever the backlog, and the function says it
    // returns a few rows.
    //
    // plpgsql caches its plans, and a queue table is planned while it is small (statistics lag
    // behind a burst): planned on an empty table, the lock of one row by id became a scan of a whole
    // partial index, and the walk a sequential scan and sort. So rows are locked by ctid (a TID
    // scan whatever the statistics; a row updated since the walk read it has moved and is skipped,
    // as a locked one is), and the function turns the other plan shapes off for its statements
    // (and JIT, which those cost penalties would otherwise trigger on every call). With the shapes
    // pinned, its statements may keep cached plans (the hub's sessions plan everything else afresh:
    // see storage/db.ts).
    sql: `
create index deliveries_due_seq_idx on switchyard.deliveries (next_attempt_at, seq) where status in ('pending', 'in_flight');
drop index switchyard.deliveries_due_idx;

create or replace function switchyard.claimable_deliveries(p_limit integer)
returns table (id uuid, timeout_ms integer) language plpgsql volatile rows 32
set enable_seqscan = off set enable_bitmapscan = off set enable_sort = off set jit = off
set plan_cache_mode = auto as $fn$
declare
  r record;
  sub record;
  n integer := 0;
  fetched integer;
  after_at timestamptz := '-infinity';
  after_seq bigint := 0;
  skipped text[] := array(select s.id from switchyard.subscriptions s where s.disabled_at is not null or s.kind <> 'webhook');
begin
  <<chunks>>
  loop
    fetched := 0;
    for r in
      select c.ctid, c.id, c.subscription_id, c.subject, c.event_sequence, c.seq, c.next_attempt_at, c.status, c.locked_until
      from switchyard.deliveries c
      where c.status in ('pending', 'in_flight') and (c.next_attempt_at, c.seq) > (after_at, after_seq)
        and c.subscription_id <> all(skipped)
      order by c.next_attempt_at, c.seq
      limit 256
    loop
      fetched := fetched + 1;
      after_at := r.next_attempt_at;
      after_seq := r.seq;
      -- In order of next_attempt_at: from here on nothing is due (a claimed delivery keeps the
      -- next_attempt_at it was claimed at, always in the past).
      exit chunks when r.status = 'pending' and r.next_attempt_at > now();
      continue when r.status = 'in_flight' and r.locked_until >= now();
      select s.timeout_ms, s.ordering into sub from switchyard.subscriptions s where s.id = r.subscription_id;
      continue when not found;
      continue when exists (
        select 1 from switchyard.deliveries p
        where p.subscription_id = r.subscription_id and p.subject = r.subject
          and p.status in ('pending', 'in_flight', 'held', 'dead')
          and (p.event_sequence, p.seq) < (r.event_sequence, r.seq)
          and (p.status <> 'dead' or (p.superseded_by is null and sub.ordering = 'hold')));
      perform 1 from switchyard.deliveries d
        where d.ctid = r.ctid
          and ((d.status = 'pending' and d.next_attempt_at <= now()) or (d.status = 'in_flight' and d.locked_until < now()))
        for update skip locked;
      continue when not found;
      id := r.id;
      timeout_ms := sub.timeout_ms;
      return next;
      n := n + 1;
      exit chunks when n >= p_limit;
    end loop;
    exit when fetched < 256;
  end loop;
end
$fn$;
`,
  },
  {
    version: 10,
    name: 'inbound claim walks the queue index in chunks',
    // claimInbound picked queue heads with DISTINCT ON over every received message with an ordering
    // key: O(waiting messages) per claim, which made normalization slow down as a burst of pushes
    // queued up (20,000 pushes in 17 s took 45 s more to normalize). Like the delivery claim
    // (migration 9): walk inbound_queue_idx in seq order in chunks of 256, skip messages leased or
    // not yet due, check "no earlier received message of my ordering key" with one probe of
    // inbound_ordering_idx, stop at the limit. A head that is leased or not yet due still blocks its
    // key: it stays 'received' with a smaller seq.
    // Rows are locked by ctid and plan shapes pinned, as in migration 9.
    sql: `
create or replace function switchyard.claimable_inbound(p_limit integer)
returns setof uuid language plpgsql volatile rows 32
set enable_seqscan = off set enable_bitmapscan = off set enable_sort = off set jit = off
set plan_cache_mode = auto as $fn$
declare
  r record;
  n integer := 0;
  fetched integer;
  after_seq bigint := 0;
begin
  <<chunks>>
  loop
    fetched := 0;
    for r in
      select c.ctid, c.id, c.seq, c.instance_id, c.ordering_key, c.next_attempt_at, c.locked_until
      from switchyard.inbound_messages c
      where c.status = 'received' and c.seq > after_seq
      order by c.seq
      limit 256
    loop
      fetched := fetched + 1;
      after_seq := r.seq;
      continue when r.next_attempt_at > now() or r.locked_until >= now();
      continue when r.ordering_key is not null and exists (
        select 1 from switchyard.inbound_messages h
        where h.status = 'received' and h.instance_id = r.instance_id and h.ordering_key = r.ordering_key
          and h.seq < r.seq);
      perform 1 from switchyard.inbound_messages m
        where m.ctid = r.ctid and m.status = 'received' and m.next_attempt_at <= now()
          and (m.locked_until is null or m.locked_until < now())
        for update skip locked;
      continue when not found;
      return next r.id;
      n := n + 1;
      exit chunks when n >= p_limit;
    end loop;
    exit when fetched < 256;
  end loop;
end
$fn$;
`,
  },
  {
    version: 11,
    name: 'raw request bodies stored once',
    // A push carrying N notifications stored its whole body in each of the N rows: a 1 MB batch of
    // 200 Docplanner envelopes became 205 MB, and 300 of them overflowed the client's statement
    // text. The body now has its own row, referenced by every message of the request; retention
    // deletes a body once no message references it (inbound_body_idx keeps that check cheap).
    // Existing rows keep their body under their own id.
    sql: `
create table switchyard.inbound_bodies (
  id uuid primary key,
  body bytea not null,
  received_at timestamptz not null default now()
);
alter table switchyard.inbound_messages add column body_id uuid;
insert into switchyard.inbound_bodies (id, body, received_at)
  select id, raw_body, received_at from switchyard.inbound_messages where raw_body is not null;
update switchyard.inbound_messages set body_id = id where raw_body is not null;
alter table switchyard.inbound_messages drop column raw_body;
create index inbound_body_idx on switchyard.inbound_messages (body_id) where body_id is not null;
create index inbound_bodies_received_idx on switchyard.inbound_bodies (received_at);
do $$
begin
  if exists (select 1 from pg_settings where name = 'default_toast_compression' and 'lz4' = any(enumvals)) then
    alter table switchyard.inbound_bodies alter column body set compression lz4;
  end if;
end
$$;
`,
  },
  {
    version: 12,
    name: 'push reconciliation schedule',
    // A connector's reconcile call (Docplanner POST /notifications/release) per push instance, on
    // the same table-as-schedule as vendor pulls: a due time, a lease so one process runs it, and
    // what the last run did (shown by the instance health API and the dashboard).
    sql: `
alter table switchyard.connector_instances
  add column reconcile_next_at timestamptz,
  add column reconcile_locked_until timestamptz,
  add column reconcile_last_run_at timestamptz,
  add column reconcile_last_success_at timestamptz,
  add column reconcile_last_result text,
  add column reconcile_last_error text;
`,
  },
  {
    // Commands (packages/server/src/commands, docs/commands.md); SQL in commands/store.ts.
    //
    // - `commands`: one row per accepted command. The row is the truth; a pg-boss job only says "look
    //   at command X now". `ordering_key` (the subject) orders commands of one entity: a command waits
    //   while an earlier one with the same key is `pending` or `running`.
    // - `command_calls`: every vendor call a handler made, per attempt (method, URL without query,
    //   status, latency, a snippet of the answer).
    // - `command_credentials`: per-subscription credentials for `POST /v1/commands` (SHA-256 of the
    //   token only; the token is shown once).
    version: 13,
    name: 'commands',
    sql: `
create table switchyard.commands (
  seq bigserial not null unique,
  id uuid primary key,
  type text not null,
  instance_id text not null,
  connector text not null,
  subject text,
  ordering_key text,
  data jsonb not null,
  sent_by text not null,
  idempotency_key text,
  request_hash text not null,
  status text not null default 'pending' check (status in ('pending', 'running', 'succeeded', 'failed')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  locked_until timestamptz,
  vendor_ids text[] not null default '{}',
  result jsonb,
  error jsonb,
  outcomes integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  completed_at timestamptz,
  unique (sent_by, idempotency_key)
);
-- the head-of-line check per entity, and the sweep of due or abandoned commands
create index commands_line_idx on switchyard.commands (ordering_key, seq) where status in ('pending', 'running');
create index commands_due_idx on switchyard.commands (next_attempt_at) where status in ('pending', 'running');
create index commands_list_idx on switchyard.commands (seq desc);
create index commands_subject_idx on switchyard.commands (subject, seq desc);
-- echo matching: recent successes per instance and entity
create index commands_echo_idx on switchyard.commands (instance_id, subject, completed_at) where status = 'succeeded';

create table switchyard.command_calls (
  id bigserial primary key,
  command_id uuid not null references switchyard.commands (id) on delete cascade,
  attempt integer not null,
  started_at timestamptz not null,
  method text not null,
  url text not null,
  status_code integer,
  latency_ms real,
  error text,
  response_snippet text
);
create index command_calls_command_idx on switchyard.command_calls (command_id, id);

create table switchyard.command_credentials (
  id text primary key,
  subscription_id text not null references switchyard.subscriptions (id) on delete cascade,
  token_hash text not null unique,
  hint text not null,
  created_at timestamptz not null default now()
);
`,
  },
  {
    version: 14,
    name: 'inbound claim reads the head of each ordering key',
    // Migration 10's walk passes over every waiting message of a key whose head is leased: with one
    // busy key (a Docplanner facility catching up) each claim read the whole backlog behind the head,
    // O(waiting messages) per message (72 messages/s with 1,000 queued, ~30/s with 4,000). Now the
    // walk in seq order stops after 256 rows (enough for a claim when the queue holds many keys,
    // the case migration 10 was for); if it has not found p_limit heads by then, the rest of the
    // queue is read by what can be a head: the first received message of each ordering key (a skip
    // scan of inbound_ordering_idx, one probe per key) and the messages without a key
    // (inbound_unkeyed_idx). A claim costs O(limit + 256 + keys waiting), whatever one key's
    // backlog. Semantics as in migration 10: a key's head is its received message with the smallest
    // seq, and a head that is leased or not yet due blocks its key.
    sql: `
create index inbound_unkeyed_idx on switchyard.inbound_messages (seq) where status = 'received' and ordering_key is null;

create or replace function switchyard.claimable_inbound(p_limit integer)
returns setof uuid language plpgsql volatile rows 32
set enable_seqscan = off set enable_bitmapscan = off set enable_sort = off set jit = off
set plan_cache_mode = auto as $fn$
declare
  r record;
  n integer := 0;
  fetched integer := 0;
  after_seq bigint := 0;
  blocked_instance text;
  blocked_key text;
begin
  -- 1. The queue in arrival order, as in migration 10, for at most 256 rows. A message of the key
  -- found blocked just before is blocked too (its head is earlier still): no probe for it.
  for r in
    select c.ctid, c.id, c.seq, c.instance_id, c.ordering_key, c.next_attempt_at, c.locked_until
    from switchyard.inbound_messages c
    where c.status = 'received'
    order by c.seq
    limit 256
  loop
    fetched := fetched + 1;
    after_seq := r.seq;
    continue when r.ordering_key is not null and r.ordering_key = blocked_key and r.instance_id = blocked_instance;
    if r.ordering_key is not null then
      -- Whatever happens to this message, the rest of its key waits behind it.
      blocked_instance := r.instance_id;
      blocked_key := r.ordering_key;
    end if;
    continue when r.next_attempt_at > now() or r.locked_until >= now();
    continue when r.ordering_key is not null and exists (
      select 1 from switchyard.inbound_messages h
      where h.status = 'received' and h.instance_id = r.instance_id and h.ordering_key = r.ordering_key
        and h.seq < r.seq);
    perform 1 from switchyard.inbound_messages m
      where m.ctid = r.ctid and m.status = 'received' and m.next_attempt_at <= now()
        and (m.locked_until is null or m.locked_until < now())
      for update skip locked;
    continue when not found;
    return next r.id;
    n := n + 1;
    if n >= p_limit then
      return;
    end if;
  end loop;
  if fetched < 256 then
    return; -- that was the whole queue
  end if;

  -- 2. Past the walk: the head of each ordering key (its first received message; a head at or
  -- before after_seq was judged by the walk), oldest first.
  for r in
    with recursive heads as (
      (select c.instance_id, c.ordering_key, c.seq, c.ctid, c.id, c.next_attempt_at, c.locked_until
       from switchyard.inbound_messages c
       where c.status = 'received' and c.ordering_key is not null
       order by c.instance_id, c.ordering_key, c.seq
       limit 1)
      union all
      select nx.instance_id, nx.ordering_key, nx.seq, nx.ctid, nx.id, nx.next_attempt_at, nx.locked_until
      from heads h cross join lateral (
        select c.instance_id, c.ordering_key, c.seq, c.ctid, c.id, c.next_attempt_at, c.locked_until
        from switchyard.inbound_messages c
        where c.status = 'received' and c.ordering_key is not null
          and (c.instance_id, c.ordering_key) > (h.instance_id, h.ordering_key)
        order by c.instance_id, c.ordering_key, c.seq
        limit 1) nx
    )
    select h.ctid, h.id, h.next_attempt_at, h.locked_until
    from heads h
    where h.seq > after_seq
    order by h.seq
  loop
    continue when r.next_attempt_at > now() or r.locked_until >= now();
    perform 1 from switchyard.inbound_messages m
      where m.ctid = r.ctid and m.status = 'received' and m.next_attempt_at <= now()
        and (m.locked_until is null or m.locked_until < now())
      for update skip locked;
    continue when not found;
    return next r.id;
    n := n + 1;
    if n >= p_limit then
      return;
    end if;
  end loop;

  -- 3. Past the walk: messages without an ordering key (each its own head), in arrival order.
  loop
    fetched := 0;
    for r in
      select c.ctid, c.id, c.seq, c.next_attempt_at, c.locked_until
      from switchyard.inbound_messages c
      where c.status = 'received' and c.ordering_key is null and c.seq > after_seq
      order by c.seq
      limit 256
    loop
      fetched := fetched + 1;
      after_seq := r.seq;
      continue when r.next_attempt_at > now() or r.locked_until >= now();
      perform 1 from switchyard.inbound_messages m
        where m.ctid = r.ctid and m.status = 'received' and m.next_attempt_at <= now()
          and (m.locked_until is null or m.locked_until < now())
        for update skip locked;
      continue when not found;
      return next r.id;
      n := n + 1;
      if n >= p_limit then
        return;
      end if;
    end loop;
    exit when fetched < 256;
  end loop;
end
$fn$;
`,
  },
  {
    version: 15,
    name: 'next normalize due time by index',
    // nextInboundDue (inbound/store.ts) runs whenever a normalize pass claims nothing: with one busy key
    // that is after every message (its head is leased), and its min() read every received message
    // (O(waiting messages): ~2 ms with 10,000 queued). Indexed on the same expression, it reads the
    // first entry after now().
    sql: `
create index inbound_due_idx on switchyard.inbound_messages
  ((greatest(next_attempt_at, coalesce(locked_until, next_attempt_at)))) where status = 'received';
`,
  },
  {
    version: 16,
    name: 'current entities projection and FHIR read tokens',
    // current_entities: the latest known state of each entity, upserted in the statement that stores
    // its events (entities/current.ts). Looked up by subject (the primary key), searched by kind with
    // the patient's ids (GIN over data.patient), the start and the last event time. Filled from the
    // events still kept, so an existing hub starts with what it knows.
    // fhir_read_tokens: one read token per subscription for /fhir/r4 (SHA-256 only; docs/fhir.md).
    sql: `
create table switchyard.current_entities (
  subject text primary key,
  kind text not null,
  hub_id text not null,
  instance_id text not null,
  event_id uuid not null,
  event_type text not null,
  event_time timestamptz not null,
  event_sequence bigint not null,
  starts_at timestamptz,
  envelope jsonb not null,
  updated_at timestamptz not null default now()
);
create index current_entities_start_idx on switchyard.current_entities (kind, starts_at);
create index current_entities_time_idx on switchyard.current_entities (kind, event_time);
create index current_entities_patient_idx on switchyard.current_entities
  using gin ((envelope -> 'data' -> 'patient') jsonb_path_ops);

insert into switchyard.current_entities (subject, kind, hub_id, instance_id, event_id, event_type,
  event_time, event_sequence, starts_at, envelope)
select distinct on (subject) subject, split_part(subject, '/', 1), substr(subject, strpos(subject, '/') + 1),
  source, id, type, time, sequence, (envelope -> 'data' ->> 'start')::timestamptz, envelope
from switchyard.events
where split_part(subject, '/', 1) in ('appointment', 'slot', 'schedule', 'document', 'asset', 'process')
order by subject, time desc, sequence desc;

create table switchyard.fhir_read_tokens (
  subscription_id text primary key references switchyard.subscriptions (id) on delete cascade,
  token_hash text not null unique,
  hint text not null,
  created_at timestamptz not null default now()
);
`,
  },
  {
    version: 17,
    name: 'subscription format',
    // The body format of a subscription's deliveries (subscriptions/schema.ts, docs/delivery.md):
    // CloudEvents, or FHIR R4 (the resource, or a Subscriptions Backport notification Bundle).
    sql: `
alter table switchyard.subscriptions add column format text not null default 'cloudevents'
  check (format in ('cloudevents', 'fhir-r4', 'fhir-r4-notification'));
-- fhir-r4-notification: the subscription's own event counter (the Backport IG's
-- events-since-subscription-start), advanced by the fan-out in its statement, and each delivery's
-- event-number from it (kept by a replay of that delivery). Gapless: numbers are drawn only for
-- deliveries the same statement inserts.
alter table switchyard.subscriptions add column notification_events bigint not null default 0;
alter table switchyard.deliveries add column notification_number bigint;
-- Whether the event has a FHIR meaning (fhir/subscription.ts hasFhirMeaning), computed when it is
-- stored: the fan-out and "replay since" send FHIR subscriptions only such events. Null for events
-- stored before (replays then go by type).
alter table switchyard.events add column fhir boolean;
`,
  },
  {
    version: 18,
    name: 'trace context stored with the queued rows',
    // The W3C traceparent of the span that wrote the row, so the process that picks the row up
    // continues the same trace (docs/observability.md). Null when tracing was off. Nullable columns
    // without a default: adding them rewrites nothing.
    sql: `
alter table switchyard.inbound_messages add column traceparent text;
alter table switchyard.events add column traceparent text;
`,
  },
  {
    version: 19,
    name: 'inbound claim takes a run of each key; delivery claim reads the head of each line',
    // One busy key (a Docplanner facility catching up) was a chain of round trips per message:
    // claim the head, normalize it, commit, wake, claim the next (~118 messages/s whatever the
    // queue's depth). Now a claim takes, behind each head claimable_inbound found, up to p_run - 1
    // of the key's next messages, consecutive in seq order (inbound_ordering_idx, p_run rows per
    // key), stopping at the first one that is not due, is leased or is locked: one worker
    // normalizes the run in order and commits it together (pipeline/normalize.ts). The followers
    // are leased with the head, so no other claim can take them out of order; a message without an
    // ordering key is a run of one. Row locking by ctid and pinned plan shapes as in migration 9.
    //
    // The delivery claim had the same shape for one subject with a deep queue: migration 9's walk
    // of the due index passed over every pending delivery of a (subscription, subject) whose head
    // was in flight, with a head-of-line probe each (~20,000 rows and ~175 ms per claim with
    // 10,000 queued). Now the walk stops after 256 rows, as migration 14's does; if it has not
    // filled the limit by then, the rest is read by line: the first delivery of each
    // (subscription, subject) in deliveries_line_idx that can block (a skip scan, one probe per
    // line), claimable if it is pending and due or in flight with its lease run out. A claim costs
    // O(limit + 256 + lines waiting), however deep one line. Semantics as before: a delivery waits
    // while an earlier one of its line is pending, in flight, held, or dead and unsuperseded under
    // 'hold'.
    sql: `
create or replace function switchyard.claimable_inbound_runs(p_limit integer, p_run integer)
returns setof uuid language plpgsql volatile rows 64
set enable_seqscan = off set enable_bitmapscan = off set enable_sort = off set jit = off
set plan_cache_mode = auto as $fn$
declare
  h record;
  r record;
begin
  for h in
    select m.id, m.instance_id, m.ordering_key, m.seq
    from switchyard.claimable_inbound(p_limit) as due(id)
    join switchyard.inbound_messages m on m.id = due.id
  loop
    return next h.id;
    continue when h.ordering_key is null or p_run <= 1;
    for r in
      select c.ctid, c.id, c.next_attempt_at, c.locked_until
      from switchyard.inbound_messages c
      where c.status = 'received' and c.instance_id = h.instance_id and c.ordering_key = h.ordering_key
        and c.seq > h.seq
      order by c.seq
      limit p_run - 1
    loop
      -- Consecutive only: a message the run cannot take ends it (the rest waits behind it).
      exit when r.next_attempt_at > now() or r.locked_until >= now();
      perform 1 from switchyard.inbound_messages m
        where m.ctid = r.ctid and m.status = 'received' and m.next_attempt_at <= now()
          and (m.locked_until is null or m.locked_until < now())
        for update skip locked;
      exit when not found;
      return next r.id;
    end loop;
  end loop;
end
$fn$;

create or replace function switchyard.claimable_deliveries(p_limit integer)
returns table (id uuid, timeout_ms integer) language plpgsql volatile rows 32
set enable_seqscan = off set enable_bitmapscan = off set enable_sort = off set jit = off
set plan_cache_mode = auto as $fn$
declare
  r record;
  sub record;
  n integer := 0;
  fetched integer := 0;
  after_at timestamptz := '-infinity';
  after_seq bigint := 0;
  skipped text[] := array(select s.id from switchyard.subscriptions s where s.disabled_at is not null or s.kind <> 'webhook');
begin
  -- 1. The due index in order, as in migration 9, for at most 256 rows.
  for r in
    select c.ctid, c.id, c.subscription_id, c.subject, c.event_sequence, c.seq, c.next_attempt_at, c.status, c.locked_until
    from switchyard.deliveries c
    where c.status in ('pending', 'in_flight') and c.subscription_id <> all(skipped)
    order by c.next_attempt_at, c.seq
    limit 256
  loop
    fetched := fetched + 1;
    after_at := r.next_attempt_at;
    after_seq := r.seq;
    -- In order of next_attempt_at: from here on nothing is due (a claimed delivery keeps the
    -- next_attempt_at it was claimed at, always in the past).
    if r.status = 'pending' and r.next_attempt_at > now() then
      return;
    end if;
    continue when r.status = 'in_flight' and r.locked_until >= now();
    select s.timeout_ms, s.ordering into sub from switchyard.subscriptions s where s.id = r.subscription_id;
    continue when not found;
    continue when exists (
      select 1 from switchyard.deliveries p
      where p.subscription_id = r.subscription_id and p.subject = r.subject
        and p.status in ('pending', 'in_flight', 'held', 'dead')
        and (p.event_sequence, p.seq) < (r.event_sequence, r.seq)
        and (p.status <> 'dead' or (p.superseded_by is null and sub.ordering = 'hold')));
    perform 1 from switchyard.deliveries d
      where d.ctid = r.ctid
        and ((d.status = 'pending' and d.next_attempt_at <= now()) or (d.status = 'in_flight' and d.locked_until < now()))
      for update skip locked;
    continue when not found;
    id := r.id;
    timeout_ms := sub.timeout_ms;
    return next;
    n := n + 1;
    if n >= p_limit then
      return;
    end if;
  end loop;
  if fetched < 256 then
    return; -- that was every due delivery
  end if;

  -- 2. Past the walk: the head of each line (its first delivery that can block), claimable if due
  -- or its lease ran out; a head at or before the walk's last row was judged by the walk.
  for r in
    with recursive lines as (
      (select d.subscription_id, d.subject
       from switchyard.deliveries d
       where d.status in ('pending', 'in_flight', 'held', 'dead')
       order by d.subscription_id, d.subject, d.event_sequence, d.seq
       limit 1)
      union all
      select nx.subscription_id, nx.subject
      from lines l cross join lateral (
        select d.subscription_id, d.subject
        from switchyard.deliveries d
        where d.status in ('pending', 'in_flight', 'held', 'dead')
          and (d.subscription_id, d.subject) > (l.subscription_id, l.subject)
        order by d.subscription_id, d.subject, d.event_sequence, d.seq
        limit 1) nx
    ),
    heads as (
      select h.ctid, h.id, h.status, h.next_attempt_at, h.locked_until, h.seq, s.timeout_ms
      from lines l
      join switchyard.subscriptions s on s.id = l.subscription_id
      cross join lateral (
        select d.ctid, d.id, d.status, d.next_attempt_at, d.locked_until, d.seq
        from switchyard.deliveries d
        where d.subscription_id = l.subscription_id and d.subject = l.subject
          and d.status in ('pending', 'in_flight', 'held', 'dead')
          -- a dead delivery blocks only if unsuperseded under 'hold'
          and (d.status <> 'dead' or (d.superseded_by is null and s.ordering = 'hold'))
        order by d.event_sequence, d.seq
        limit 1) h
      where s.id <> all(skipped)
    )
    select * from heads h
    where ((h.status = 'pending' and h.next_attempt_at <= now()) or (h.status = 'in_flight' and h.locked_until < now()))
      and (h.next_attempt_at, h.seq) > (after_at, after_seq)
    order by h.next_attempt_at, h.seq
  loop
    perform 1 from switchyard.deliveries d
      where d.ctid = r.ctid
        and ((d.status = 'pending' and d.next_attempt_at <= now()) or (d.status = 'in_flight' and d.locked_until < now()))
      for update skip locked;
    continue when not found;
    id := r.id;
    timeout_ms := r.timeout_ms;
    return next;
    n := n + 1;
    if n >= p_limit then
      return;
    end if;
  end loop;
end
$fn$;
`,
  },
  {
    version: 20,
    name: 'delivery claim estimated at a few rows',
    // claimDeliveries (deliveries/store.ts) updates the rows claimable_deliveries returns, joined by
    // id (and reads their events). Estimated at 32 rows (its ROWS), the joins were planned as hashes
    // of sequential scans of deliveries and events while those tables were a few thousand rows:
    // every claim read both whole tables (in `pnpm bench latency`'s run, 0.5 sequential scans of
    // deliveries per event; 3,000 rows read per claim of one delivery in claim.int.test.ts). A claim
    // returns a handful of rows, usually one or two; estimated at 4, each is looked up by key.
    sql: `
alter function switchyard.claimable_deliveries(integer) rows 4;
`,
  },
  {
    version: 21,
    name: 'fewer index entries per event',
    // Every insert, and every update that is not HOT (the claims and finishes change a column in an
    // index predicate, so none is), adds an entry to each index whose predicate the new row version
    // matches: ~24 per inbound message and ~23 per delivery (bench/lib/pg-write-cost.ts counts the
    // WAL). Indexes no statement can use, or that list the few rows the admin API filters for, go or
    // are narrowed to the rows they serve (docs/pipeline.md, "Write cost per event"):
    // - inbound_status_idx (status, seq desc): listInbound by status, the dashboard's failed
    //   messages per instance. 'received' is inbound_queue_idx; 'normalized', the bulk, is the seq
    //   key read backward; only 'failed' and 'ignored' need an index of their own.
    // - inbound_list_idx (received_at desc, seq desc): only the retention purge reads received_at,
    //   and it takes finished messages only.
    // - events_type_idx: every type filter is the OR of typeMatchesAny, which no index serves
    //   (docs/dashboard.md, "Known limit").
    // - deliveries_status_seq_idx (status, seq desc): pending and in-flight deliveries are in
    //   deliveries_due_seq_idx, succeeded ones are the bulk (the seq key backward); held, dead and
    //   skipped ones keep an index.
    //
    // Two foreign keys become statement-level cascades: deliveries → events and delivery_attempts
    // → deliveries. A foreign key checks every inserted row (a trigger call, an index probe and a
    // key-share lock on the referenced row, itself a WAL record): one per delivery fanned out and
    // one per attempt recorded, for rows the same statement or transaction just wrote or leased.
    // What they guarded: a delivery's event and an attempt's delivery are deleted only by
    // retention (and the cascade of a subscription's deletion), which the triggers still follow.
    // What is given up: a replay inserted while retention deletes its event can keep a delivery
    // whose event is gone, which the deliver worker already ends ('the event no longer exists').
    // deliveries → subscriptions keeps its foreign key: a subscription can be deleted at any
    // moment, and its check is what stops a fan-out racing the deletion from leaving orphans.
    sql: `
drop index switchyard.inbound_status_idx;
create index inbound_settled_idx on switchyard.inbound_messages (status, seq desc) where status in ('failed', 'ignored');
drop index switchyard.inbound_list_idx;
create index inbound_finished_idx on switchyard.inbound_messages (received_at) where status <> 'received';
drop index switchyard.events_type_idx;
drop index switchyard.deliveries_status_seq_idx;
create index deliveries_settled_idx on switchyard.deliveries (status, seq desc) where status in ('held', 'dead', 'skipped');

-- Cascades once per statement instead of a foreign key's check per inserted row (see below).
create function switchyard.events_deleted() returns trigger language plpgsql as $fn$
begin
  delete from switchyard.deliveries d using gone g where d.event_id = g.id;
  return null;
end
$fn$;
create trigger events_delete_deliveries after delete on switchyard.events
  referencing old table as gone for each statement execute function switchyard.events_deleted();
alter table switchyard.deliveries drop constraint deliveries_event_id_fkey;

create function switchyard.deliveries_deleted() returns trigger language plpgsql as $fn$
begin
  delete from switchyard.delivery_attempts a using gone g where a.delivery_id = g.id;
  return null;
end
$fn$;
create trigger deliveries_delete_attempts after delete on switchyard.deliveries
  referencing old table as gone for each statement execute function switchyard.deliveries_deleted();
alter table switchyard.delivery_attempts drop constraint delivery_attempts_delivery_id_fkey;
`,
  },
  {
    version: 22,
    name: 'HOT inbound claim; the claim returns the next due time',
    // The inbound claim sets locked_until, lock_token and attempts; locked_until was in
    // inbound_due_idx's expression (migration 15), so no claim was a HOT update: each wrote a new
    // row version with an entry in every index whose predicate it matched (7) and moved the row to
    // another page (bench/lib/pg-write-cost.ts). The index served nextInboundDue (inbound/store.ts, now gone),
    // the wake-up time of a pass that claims nothing. That time is now found by the claim itself:
    // it already looks at every message that could be claimed (each key's head and the messages
    // without a key, migration 14), and when it claims nothing it returns the earliest time one of
    // those becomes claimable (a retry falling due, a lease running out). So no index reads
    // locked_until, lock_token or attempts, and the claim's update can be HOT where the page has
    // room: the fillfactor leaves 20 % of each new page free (a ~1.7 kB Docplanner row: three rows
    // a page instead of four, the fourth's room kept for a claimed version; the page is pruned
    // when it runs short, so the room comes back once a row's earlier versions are dead).
    //
    // The new claim functions take the lease as a third argument (a head found locked by another
    // claim is due about one lease later) and return (id, wake_at). The two-argument versions stay
    // for processes of the previous release during a rolling restart (docs/operations.md,
    // "Upgrades"), to be dropped by a later migration; without inbound_due_idx their
    // nextInboundDue still works, reading the received messages.
    // Row locking by ctid and pinned plan shapes as in migration 9.
    sql: `
drop index switchyard.inbound_due_idx;
alter table switchyard.inbound_messages set (fillfactor = 80);

create function switchyard.claimable_inbound(p_limit integer, p_lease interval)
returns table (id uuid, wake_at timestamptz) language plpgsql volatile rows 32
set enable_seqscan = off set enable_bitmapscan = off set enable_sort = off set jit = off
set plan_cache_mode = auto as $fn$
declare
  r record;
  n integer := 0;
  fetched integer := 0;
  after_seq bigint := 0;
  blocked_instance text;
  blocked_key text;
  -- The earliest time a head seen here becomes claimable (least() ignores the null start).
  wake timestamptz;
begin
  <<search>>
  begin
    -- 1. The queue in arrival order for at most 256 rows, as in migration 14.
    for r in
      select c.ctid, c.id, c.seq, c.instance_id, c.ordering_key, c.next_attempt_at, c.locked_until
      from switchyard.inbound_messages c
      where c.status = 'received'
      order by c.seq
      limit 256
    loop
      fetched := fetched + 1;
      after_seq := r.seq;
      continue when r.ordering_key is not null and r.ordering_key = blocked_key and r.instance_id = blocked_instance;
      if r.ordering_key is not null then
        blocked_instance := r.instance_id;
        blocked_key := r.ordering_key;
      end if;
      if r.next_attempt_at > now() or r.locked_until >= now() then
        wake := least(wake, greatest(r.next_attempt_at, r.locked_until));
        continue;
      end if;
      continue when r.ordering_key is not null and exists (
        select 1 from switchyard.inbound_messages h
        where h.status = 'received' and h.instance_id = r.instance_id and h.ordering_key = r.ordering_key
          and h.seq < r.seq);
      perform 1 from switchyard.inbound_messages m
        where m.ctid = r.ctid and m.status = 'received' and m.next_attempt_at <= now()
          and (m.locked_until is null or m.locked_until < now())
        for update skip locked;
      if not found then
        -- Another claim is taking it (or it just changed): due again after that claim's lease.
        wake := least(wake, now() + p_lease);
        continue;
      end if;
      id := r.id;
      return next;
      n := n + 1;
      exit search when n >= p_limit;
    end loop;
    exit search when fetched < 256; -- that was the whole queue

    -- 2. Past the walk: the head of each ordering key, oldest first, as in migration 14.
    for r in
      with recursive heads as (
        (select c.instance_id, c.ordering_key, c.seq, c.ctid, c.id, c.next_attempt_at, c.locked_until
         from switchyard.inbound_messages c
         where c.status = 'received' and c.ordering_key is not null
         order by c.instance_id, c.ordering_key, c.seq
         limit 1)
        union all
        select nx.instance_id, nx.ordering_key, nx.seq, nx.ctid, nx.id, nx.next_attempt_at, nx.locked_until
        from heads h cross join lateral (
          select c.instance_id, c.ordering_key, c.seq, c.ctid, c.id, c.next_attempt_at, c.locked_until
          from switchyard.inbound_messages c
          where c.status = 'received' and c.ordering_key is not null
            and (c.instance_id, c.ordering_key) > (h.instance_id, h.ordering_key)
          order by c.instance_id, c.ordering_key, c.seq
          limit 1) nx
      )
      select h.ctid, h.id, h.next_attempt_at, h.locked_until
      from heads h
      where h.seq > after_seq
      order by h.seq
    loop
      if r.next_attempt_at > now() or r.locked_until >= now() then
        wake := least(wake, greatest(r.next_attempt_at, r.locked_until));
        continue;
      end if;
      perform 1 from switchyard.inbound_messages m
        where m.ctid = r.ctid and m.status = 'received' and m.next_attempt_at <= now()
          and (m.locked_until is null or m.locked_until < now())
        for update skip locked;
      if not found then
        wake := least(wake, now() + p_lease);
        continue;
      end if;
      id := r.id;
      return next;
      n := n + 1;
      exit search when n >= p_limit;
    end loop;

    -- 3. Past the walk: messages without an ordering key, in arrival order, as in migration 14.
    loop
      fetched := 0;
      for r in
        select c.ctid, c.id, c.seq, c.next_attempt_at, c.locked_until
        from switchyard.inbound_messages c
        where c.status = 'received' and c.ordering_key is null and c.seq > after_seq
        order by c.seq
        limit 256
      loop
        fetched := fetched + 1;
        after_seq := r.seq;
        if r.next_attempt_at > now() or r.locked_until >= now() then
          wake := least(wake, greatest(r.next_attempt_at, r.locked_until));
          continue;
        end if;
        perform 1 from switchyard.inbound_messages m
          where m.ctid = r.ctid and m.status = 'received' and m.next_attempt_at <= now()
            and (m.locked_until is null or m.locked_until < now())
          for update skip locked;
        if not found then
          wake := least(wake, now() + p_lease);
          continue;
        end if;
        id := r.id;
        return next;
        n := n + 1;
        exit search when n >= p_limit;
      end loop;
      exit when fetched < 256;
    end loop;
  end;
  -- Claimed nothing: one row without an id, when the next head falls due (none if no head waits
  -- for a time: a key blocked behind a head being normalized is woken by that head's finish).
  if n = 0 and wake is not null then
    id := null;
    wake_at := wake;
    return next;
  end if;
end
$fn$;

create function switchyard.claimable_inbound_runs(p_limit integer, p_run integer, p_lease interval)
returns table (id uuid, wake_at timestamptz) language plpgsql volatile rows 64
set enable_seqscan = off set enable_bitmapscan = off set enable_sort = off set jit = off
set plan_cache_mode = auto as $fn$
declare
  h record;
  r record;
begin
  for h in
    select due.id, due.wake_at, m.instance_id, m.ordering_key, m.seq
    from switchyard.claimable_inbound(p_limit, p_lease) as due
    left join switchyard.inbound_messages m on m.id = due.id
  loop
    id := h.id;
    wake_at := h.wake_at;
    return next;
    continue when h.id is null or h.ordering_key is null or p_run <= 1;
    -- The run behind the head, as in migration 19.
    for r in
      select c.ctid, c.id, c.next_attempt_at, c.locked_until
      from switchyard.inbound_messages c
      where c.status = 'received' and c.instance_id = h.instance_id and c.ordering_key = h.ordering_key
        and c.seq > h.seq
      order by c.seq
      limit p_run - 1
    loop
      exit when r.next_attempt_at > now() or r.locked_until >= now();
      perform 1 from switchyard.inbound_messages m
        where m.ctid = r.ctid and m.status = 'received' and m.next_attempt_at <= now()
          and (m.locked_until is null or m.locked_until < now())
        for update skip locked;
      exit when not found;
      id := r.id;
      return next;
    end loop;
  end loop;
end
$fn$;
`,
  },
  {
    version: 23,
    name: 'the fan-out lease reads the line after the subject lock',
    // A normalize commit (and a hub-made event, events/emit.ts) takes a transaction-scoped advisory
    // lock per subject of its events before it draws their sequence numbers (`lockSubjects` in
    // events/store.ts), so commits of one subject run one after the other and its sequence numbers
    // commit in order. A commit that waited for the lock still reads with the snapshot its statement
    // began with, which cannot see the commit it waited for; the fan-out lease asks whether a line is
    // free through this function instead: a volatile function's queries take a fresh snapshot, so
    // it sees every delivery committed before the lock was granted. The test is
    // claimable_deliveries' (migration 16), for any sequence: after the lock nothing of the line
    // can commit later with an earlier one. No SET clauses: it runs in the caller's plan-stable
    // session (storage/db.ts), whose settings its cached plan is made under.
    sql: `
create function switchyard.delivery_line_free(p_subscription text, p_subject text, p_hold boolean)
returns boolean language plpgsql volatile as $fn$
begin
  -- A statement through SPI (not a simple expression, which plpgsql may evaluate without one):
  -- it takes the fresh snapshot.
  perform 1 from switchyard.deliveries p
    where p.subscription_id = p_subscription and p.subject = p_subject
      and p.status in ('pending', 'in_flight', 'held', 'dead')
      and (p.status <> 'dead' or (p.superseded_by is null and p_hold))
    limit 1;
  return not found;
end
$fn$;
`,
  },
  {
    version: 24,
    name: 'the ingest statement leases a message after its key lock',
    // The ingest statement may store a message already leased for its own process's normalize
    // worker (lease at store: no NOTIFY, no claim) when nothing of its ordering key is waiting.
    // It asks after the key's advisory lock (`lockOrderingKeys` in inbound/store.ts), through this
    // function: a statement that waited for the lock still reads with the snapshot it began with,
    // which cannot see the message the statement it waited for stored; a volatile function's query
    // takes a fresh snapshot. Rows the calling statement inserted before the call are visible to
    // it too: the caller leases only the first message of a key in a statement. Over
    // inbound_ordering_idx; no SET clauses (it runs in the caller's plan-stable session).
    sql: `
create function switchyard.inbound_key_waiting(p_instance text, p_key text)
returns boolean language plpgsql volatile as $fn$
begin
  perform 1 from switchyard.inbound_messages m
    where m.instance_id = p_instance and m.ordering_key = p_key and m.status = 'received'
    limit 1;
  return found;
end
$fn$;
`,
  },
  {
    version: 25,
    name: 'the traffic-sized tables are analyzed from a sample of 3,000 rows',
    // ANALYZE reads 300 rows per unit of the largest statistics target among a table's columns:
    // 30,000 rows at the default of 100. Of wide rows (an inbound message is ~1.7 kB) that is
    // most of a table of that size, and the statistics keeper (pipeline/statistics.ts) and
    // autovacuum analyze these tables again and again while they grow: an ANALYZE of
    // inbound_messages took 520 ms at 40,000 rows, 90 ms with every column at 10; in a full
    // `pnpm bench e2e` the keeper's ANALYZEs were 4.1 s of its 59 s of statement time. The planner
    // needs little of them: status fractions, row counts, a key's rough frequency; the statements
    // that must not depend on them are plan-stable. A column added later must be set too:
    // storage/statistics.int.test.ts checks every column of SAMPLED_TABLES.
    sql: `
do $do$
declare c record;
begin
  for c in select a.attrelid::regclass as rel, a.attname from pg_attribute a
      where a.attrelid = any (array['switchyard.inbound_messages', 'switchyard.inbound_bodies',
        'switchyard.events', 'switchyard.current_entities', 'switchyard.deliveries',
        'switchyard.delivery_attempts', 'switchyard.aliases', 'switchyard.entity_state']::regclass[])
        and a.attnum > 0 and not a.attisdropped
  loop
    execute format('alter table %s alter column %I set statistics 10', c.rel, c.attname);
  end loop;
end
$do$;
`,
  },
  {
    version: 26,
    name: 'a delivery attempt keeps the traceparent of its span',
    // The attempt-latency histogram is filled from the attempt log when Prometheus scrapes
    // (http/metrics-registry.ts), in whichever process answers the scrape; to name the trace of an
    // attempt beside its bucket (an exemplar) the log keeps the W3C traceparent of the attempt's
    // `switchyard.deliver` span. Null while tracing is off (a null costs a bit in the row header).
    // Sampled like the table's other columns (migration 25).
    sql: `
alter table switchyard.delivery_attempts add column traceparent text;
alter table switchyard.delivery_attempts alter column traceparent set statistics 10;
`,
  },
  {
    version: 27,
    name: "a disabled subscription's backlog is parked out of the delivery claim's way",
    // A disabled subscription's waiting deliveries were due, at the head of the due index, and
    // claimable_deliveries (migration 19) filtered them out of its walk: the walk stops after 256
    // rows that pass the filter, so it read every one of them on every claim of every process,
    // 10,004 rows with 10,000 waiting (deliveries/claim.int.test.ts). Operators disable a
    // subscription whose endpoint is gone, the hub disables one after consecutive deaths: such a
    // backlog waits for days. Disabling now parks them at the end of the index
    // (deliveries/store.ts PARKED_UNTIL), past every due row, where the walk stops; this parks the
    // backlogs of subscriptions already disabled. The walk counts the rows it skips for a disabled
    // subscription (a delivery in flight at the disabling and retried since) in its 256 rather
    // than reading past them, and the walk by line goes from a disabled subscription's first line
    // to the next subscription in one probe. ROWS 4 as migration 20 set.
    sql: `
update switchyard.deliveries d set next_attempt_at = '9999-12-31T00:00:00.000Z', updated_at = now()
from switchyard.subscriptions s
where s.id = d.subscription_id and s.disabled_at is not null and d.status = 'pending';

create or replace function switchyard.claimable_deliveries(p_limit integer)
returns table (id uuid, timeout_ms integer) language plpgsql volatile rows 4
set enable_seqscan = off set enable_bitmapscan = off set enable_sort = off set jit = off
set plan_cache_mode = auto as $fn$
declare
  r record;
  sub record;
  n integer := 0;
  fetched integer := 0;
  after_at timestamptz := '-infinity';
  after_seq bigint := 0;
  skipped text[] := array(select s.id from switchyard.subscriptions s where s.disabled_at is not null or s.kind <> 'webhook');
begin
  -- 1. The due index in order, as in migration 9, for at most 256 rows.
  for r in
    select c.ctid, c.id, c.subscription_id, c.subject, c.event_sequence, c.seq, c.next_attempt_at, c.status, c.locked_until
    from switchyard.deliveries c
    where c.status in ('pending', 'in_flight')
    order by c.next_attempt_at, c.seq
    limit 256
  loop
    fetched := fetched + 1;
    after_at := r.next_attempt_at;
    after_seq := r.seq;
    -- In order of next_attempt_at: from here on nothing is due (a claimed delivery keeps the
    -- next_attempt_at it was claimed at, always in the past).
    if r.status = 'pending' and r.next_attempt_at > now() then
      return;
    end if;
    -- A disabled subscription's deliveries count in the walk's 256: filtered in the query, a
    -- backlog of them at the head of the due index was read whole by every claim.
    continue when r.subscription_id = any(skipped);
    continue when r.status = 'in_flight' and r.locked_until >= now();
    select s.timeout_ms, s.ordering into sub from switchyard.subscriptions s where s.id = r.subscription_id;
    continue when not found;
    continue when exists (
      select 1 from switchyard.deliveries p
      where p.subscription_id = r.subscription_id and p.subject = r.subject
        and p.status in ('pending', 'in_flight', 'held', 'dead')
        and (p.event_sequence, p.seq) < (r.event_sequence, r.seq)
        and (p.status <> 'dead' or (p.superseded_by is null and sub.ordering = 'hold')));
    perform 1 from switchyard.deliveries d
      where d.ctid = r.ctid
        and ((d.status = 'pending' and d.next_attempt_at <= now()) or (d.status = 'in_flight' and d.locked_until < now()))
      for update skip locked;
    continue when not found;
    id := r.id;
    timeout_ms := sub.timeout_ms;
    return next;
    n := n + 1;
    if n >= p_limit then
      return;
    end if;
  end loop;
  if fetched < 256 then
    return; -- that was every due delivery
  end if;

  -- 2. Past the walk: the head of each line (its first delivery that can block), claimable if due
  -- or its lease ran out; a head at or before the walk's last row was judged by the walk.
  for r in
    with recursive lines as (
      (select d.subscription_id, d.subject, d.subscription_id = any(skipped) as skip
       from switchyard.deliveries d
       where d.status in ('pending', 'in_flight', 'held', 'dead')
       order by d.subscription_id, d.subject, d.event_sequence, d.seq
       limit 1)
      union all
      select nx.subscription_id, nx.subject, nx.subscription_id = any(skipped)
      from lines l cross join lateral (
        -- The next line; past a disabled subscription's first line, the next subscription's (one
        -- probe per disabled subscription, not one per line of its backlog). Only one branch
        -- runs: the other's condition on l is false before any row is read.
        (select d.subscription_id, d.subject
         from switchyard.deliveries d
         where not l.skip and d.status in ('pending', 'in_flight', 'held', 'dead')
           and (d.subscription_id, d.subject) > (l.subscription_id, l.subject)
         order by d.subscription_id, d.subject, d.event_sequence, d.seq
         limit 1)
        union all
        (select d.subscription_id, d.subject
         from switchyard.deliveries d
         where l.skip and d.status in ('pending', 'in_flight', 'held', 'dead')
           and d.subscription_id > l.subscription_id
         order by d.subscription_id, d.subject, d.event_sequence, d.seq
         limit 1)) nx
    ),
    heads as (
      select h.ctid, h.id, h.status, h.next_attempt_at, h.locked_until, h.seq, s.timeout_ms
      from lines l
      join switchyard.subscriptions s on s.id = l.subscription_id
      cross join lateral (
        select d.ctid, d.id, d.status, d.next_attempt_at, d.locked_until, d.seq
        from switchyard.deliveries d
        where d.subscription_id = l.subscription_id and d.subject = l.subject
          and d.status in ('pending', 'in_flight', 'held', 'dead')
          -- a dead delivery blocks only if unsuperseded under 'hold'
          and (d.status <> 'dead' or (d.superseded_by is null and s.ordering = 'hold'))
        order by d.event_sequence, d.seq
        limit 1) h
      where not l.skip
    )
    select * from heads h
    where ((h.status = 'pending' and h.next_attempt_at <= now()) or (h.status = 'in_flight' and h.locked_until < now()))
      and (h.next_attempt_at, h.seq) > (after_at, after_seq)
    order by h.next_attempt_at, h.seq
  loop
    perform 1 from switchyard.deliveries d
      where d.ctid = r.ctid
        and ((d.status = 'pending' and d.next_attempt_at <= now()) or (d.status = 'in_flight' and d.locked_until < now()))
      for update skip locked;
    continue when not found;
    id := r.id;
    timeout_ms := r.timeout_ms;
    return next;
    n := n + 1;
    if n >= p_limit then
      return;
    end if;
  end loop;
end
$fn$;
`,
  },
  {
    version: 28,
    name: 'a delivery due behind a head waiting for its retry is put off until that retry',
    // With a subscriber down, the later events of a subject whose head waits for its retry (an
    // appointment booked, then moved, during the outage) are due since their fan-out: the oldest
    // due rows, in front of every healthy subscription's. The walk's 256 rows were all blocked
    // ones, and every claim, for every subscription, went on through the walk by line: 2,518
    // rows and 42 ms per claim with 1,000 such subjects, 10,518 rows and 85 ms with 5,000
    // (deliveries/claim.int.test.ts). The walk now puts such a delivery off to its head's
    // next_attempt_at when it meets it (never before: the line goes in order, so it cannot go
    // earlier), once per retry of the head; at that time the head is claimed first and the
    // delivery goes after it, as before. Lazily in the claim rather than at the fan-out and the attempt record: one place,
    // whatever path made the delivery due behind a waiting head, and nothing added to the
    // normalize commit. A delivery already attempted keeps its own schedule. A head skipped before
    // its retry lets what waits behind it go at once (releaseSubject, deliveries/store.ts).
    // ROWS 4 as migration 20 set.
    sql: CLAIMABLE_DELIVERIES_28,
  },
  {
    version: 29,
    name: 'the normalize claim walks the queue in due order; a message due behind a head waiting for its retry is put off until it',
    // The normalize claim's walk (migration 22) went through the queue in arrival order, retrying
    // messages included, for 256 rows, then read the head of every ordering key. With a vendor's
    // API down (a connector's enrichment failing for every appointment), thousands of keys each
    // have a head waiting for its retry, and often a later message due behind it: the oldest rows
    // of the queue, none claimable. Every claim read all of them: 3,259 rows and ~10 ms per claim
    // with 1,000 such keys, 15,260 rows and ~40 ms with 5,000 (inbound/claim.int.test.ts), while
    // the other vendors' messages waited behind them. As the delivery claim does (migrations 9,
    // 28), the walk now reads the queue in order of next_attempt_at (a new message's is its
    // arrival), so it stops at the first message not yet due and a retry costs nothing until it
    // is due; a message never tried, due behind a head whose retry is later, is put off to that
    // head's time the first time the walk meets it (it cannot go earlier; at that time the head is
    // claimed first, its run taking the rest). The walks read two new indexes, the queue and the
    // messages without a key, each ordered by (next_attempt_at, seq); neither holds a column the
    // claim sets, so the claim stays a HOT update. inbound_unkeyed_idx (seq) served only the walk;
    // inbound_queue_idx (seq) stays for the admin list of received messages, newest first: without
    // it that list read every message finished since the oldest one waiting (35 ms over 200,000
    // rows with a backlog stuck behind them; a retention's worth is millions). A message just found blocked lets the
    // walk pass over the next ones of its key without a probe only when they come after it in
    // arrival order: in due order a later message can come first. Row locking by ctid and pinned
    // plan shapes as in migration 9.
    //
    // claimInbound (inbound/store.ts) updates the rows claimable_inbound_runs returns, joined by id.
    // Estimated at 64 rows (its ROWS), the join was planned as a hash of a sequential scan of
    // inbound_messages while the table was a few thousand rows (a clinic's week of traffic, kept
    // until retention): every claim read the whole table, 3,004 rows to claim one message
    // (inbound/claim.int.test.ts). Estimated at 4, as migration 20 did for the delivery claim, each
    // is looked up by key; a claim of many runs is still a loop of key lookups.
    sql: `
alter function switchyard.claimable_inbound_runs(integer, integer, interval) rows 4;
create index inbound_due_seq_idx on switchyard.inbound_messages (next_attempt_at, seq) where status = 'received';
create index inbound_unkeyed_due_idx on switchyard.inbound_messages (next_attempt_at, seq)
  where status = 'received' and ordering_key is null;
drop index switchyard.inbound_unkeyed_idx;

create or replace function switchyard.claimable_inbound(p_limit integer, p_lease interval)
returns table (id uuid, wake_at timestamptz) language plpgsql volatile rows 32
set enable_seqscan = off set enable_bitmapscan = off set enable_sort = off set jit = off
set plan_cache_mode = auto as $fn$
declare
  r record;
  head record;
  n integer := 0;
  fetched integer := 0;
  after_at timestamptz := '-infinity';
  after_seq bigint := 0;
  blocked_instance text;
  blocked_key text;
  blocked_seq bigint;
  -- The earliest time a message seen here becomes claimable (least() ignores the null start).
  wake timestamptz;
begin
  <<search>>
  begin
    -- 1. The queue in due order for at most 256 rows.
    for r in
      select c.ctid, c.id, c.seq, c.instance_id, c.ordering_key, c.next_attempt_at, c.locked_until, c.attempts
      from switchyard.inbound_messages c
      where c.status = 'received'
      order by c.next_attempt_at, c.seq
      limit 256
    loop
      fetched := fetched + 1;
      after_at := r.next_attempt_at;
      after_seq := r.seq;
      -- From here on nothing is due (a claimed message keeps the next_attempt_at it was claimed
      -- at, always in the past): this is the earliest retry.
      if r.next_attempt_at > now() then
        wake := least(wake, r.next_attempt_at);
        exit search;
      end if;
      continue when r.ordering_key is not null and r.ordering_key = blocked_key and r.instance_id = blocked_instance
        and r.seq > blocked_seq;
      if r.ordering_key is not null then
        blocked_instance := r.instance_id;
        blocked_key := r.ordering_key;
        blocked_seq := r.seq;
      end if;
      if r.locked_until >= now() then
        wake := least(wake, r.locked_until);
        continue;
      end if;
      if r.ordering_key is not null then
        -- The key's first message, if it comes before this one: its head, which blocks it.
        select h.next_attempt_at into head from switchyard.inbound_messages h
          where h.status = 'received' and h.instance_id = r.instance_id and h.ordering_key = r.ordering_key
            and h.seq < r.seq
          order by h.seq
          limit 1;
        if found then
          -- Behind a head waiting for its retry, a message never tried cannot go before it: put
          -- off to the head's time, out of the due range every claim walks. Skip locked, as below.
          if r.attempts = 0 and head.next_attempt_at > now() then
            perform 1 from switchyard.inbound_messages m
              where m.ctid = r.ctid and m.status = 'received' and m.attempts = 0 and m.next_attempt_at <= now()
                and (m.locked_until is null or m.locked_until < now())
              for update skip locked;
            if found then
              update switchyard.inbound_messages m set next_attempt_at = head.next_attempt_at where m.ctid = r.ctid;
            end if;
          end if;
          continue;
        end if;
      end if;
      perform 1 from switchyard.inbound_messages m
        where m.ctid = r.ctid and m.status = 'received' and m.next_attempt_at <= now()
          and (m.locked_until is null or m.locked_until < now())
        for update skip locked;
      if not found then
        -- Another claim is taking it (or it just changed): due again after that claim's lease.
        wake := least(wake, now() + p_lease);
        continue;
      end if;
      id := r.id;
      return next;
      n := n + 1;
      exit search when n >= p_limit;
    end loop;
    exit search when fetched < 256; -- that was every due message

    -- 2. Past the walk: the head of each ordering key, in due order; a head at or before the
    -- walk's last row was judged by the walk.
    for r in
      with recursive heads as (
        (select c.instance_id, c.ordering_key, c.seq, c.ctid, c.id, c.next_attempt_at, c.locked_until
         from switchyard.inbound_messages c
         where c.status = 'received' and c.ordering_key is not null
         order by c.instance_id, c.ordering_key, c.seq
         limit 1)
        union all
        select nx.instance_id, nx.ordering_key, nx.seq, nx.ctid, nx.id, nx.next_attempt_at, nx.locked_until
        from heads h cross join lateral (
          select c.instance_id, c.ordering_key, c.seq, c.ctid, c.id, c.next_attempt_at, c.locked_until
          from switchyard.inbound_messages c
          where c.status = 'received' and c.ordering_key is not null
            and (c.instance_id, c.ordering_key) > (h.instance_id, h.ordering_key)
          order by c.instance_id, c.ordering_key, c.seq
          limit 1) nx
      )
      select h.ctid, h.id, h.next_attempt_at, h.locked_until
      from heads h
      where (h.next_attempt_at, h.seq) > (after_at, after_seq)
      order by h.next_attempt_at, h.seq
    loop
      if r.next_attempt_at > now() or r.locked_until >= now() then
        wake := least(wake, greatest(r.next_attempt_at, r.locked_until));
        continue;
      end if;
      perform 1 from switchyard.inbound_messages m
        where m.ctid = r.ctid and m.status = 'received' and m.next_attempt_at <= now()
          and (m.locked_until is null or m.locked_until < now())
        for update skip locked;
      if not found then
        wake := least(wake, now() + p_lease);
        continue;
      end if;
      id := r.id;
      return next;
      n := n + 1;
      exit search when n >= p_limit;
    end loop;

    -- 3. Past the walk: messages without an ordering key, in due order, up to the first not due.
    loop
      fetched := 0;
      for r in
        select c.ctid, c.id, c.seq, c.next_attempt_at, c.locked_until
        from switchyard.inbound_messages c
        where c.status = 'received' and c.ordering_key is null and (c.next_attempt_at, c.seq) > (after_at, after_seq)
        order by c.next_attempt_at, c.seq
        limit 256
      loop
        fetched := fetched + 1;
        after_at := r.next_attempt_at;
        after_seq := r.seq;
        if r.next_attempt_at > now() then
          wake := least(wake, r.next_attempt_at);
          exit search;
        end if;
        if r.locked_until >= now() then
          wake := least(wake, r.locked_until);
          continue;
        end if;
        perform 1 from switchyard.inbound_messages m
          where m.ctid = r.ctid and m.status = 'received' and m.next_attempt_at <= now()
            and (m.locked_until is null or m.locked_until < now())
          for update skip locked;
        if not found then
          wake := least(wake, now() + p_lease);
          continue;
        end if;
        id := r.id;
        return next;
        n := n + 1;
        exit search when n >= p_limit;
      end loop;
      exit when fetched < 256;
    end loop;
  end;
  -- Claimed nothing: one row without an id, when the next message falls due (none if nothing
  -- waits for a time: a key blocked behind a head being normalized is woken by that head's finish).
  if n = 0 and wake is not null then
    id := null;
    wake_at := wake;
    return next;
  end if;
end
$fn$;
`,
  },
  {
    version: 30,
    name: 'lz4 for the current entities and gate requests envelopes',
    // Migration 8 gave lz4 to every stored document then (payloads, raw bodies, headers, event
    // envelopes); the tables added since kept Postgres's default, pglz. An appointment's envelope
    // (~2.2 kB of JSON) passes the 2 kB TOAST threshold, so each current-entity upsert (one per
    // event, in the normalize commit) compressed it with pglz: 2 % of the Postgres backends' CPU at
    // 200 events/s under perf (bench/analysis.md, session 30). 20,000 inserts of a Docplanner
    // envelope: pglz 25.5 µs a row, lz4 14 µs (1,499 against 1,709 bytes stored). Only new values
    // are written with lz4; builds without lz4 keep pglz.
    sql: `do $$
begin
  if exists (select 1 from pg_settings where name = 'default_toast_compression' and 'lz4' = any(enumvals)) then
    alter table switchyard.current_entities alter column envelope set compression lz4;
    alter table switchyard.gate_requests alter column envelope set compression lz4;
  end if;
end
$$;`,
  },
  {
    version: 31,
    name: 'a connector instance can be disabled',
    // An instance the config file stops declaring is disabled, no longer deleted (runtime/apply.ts):
    // deleting it failed the messages it had acknowledged and not yet normalized, and a process
    // restarted with an older file (a rolling deploy) deleted what the newer file had added. A
    // disabled instance takes no pushes and is not pulled; its row, settings, pull position and
    // queued messages stay. Processes of the previous version ignore the columns, but their pooled
    // connections' prepared `select *` of the table fail once it has them ("cached plan must not
    // change result type": every push answered 500 until they restart; docs/operations.md, "From a
    // release at schema 30 or before").
    sql: `
alter table switchyard.connector_instances
  add column disabled_at timestamptz,
  add column disabled_reason text;
`,
  },
  {
    version: 32,
    name: "the FHIR view's _lastUpdated reads when the hub changed the entity",
    // `_lastUpdated` searched the latest event's vendor time, so a client polling
    // `_lastUpdated=gt<last read>` never saw an entity whose notification arrived late (a pull
    // catch-up after an outage carries hours-old times). It now searches updated_at, the hub's
    // clock (entities/current.ts); the event-time index had no other reader.
    indexes: [{ name: 'current_entities_updated_idx', on: 'switchyard.current_entities (kind, updated_at)' }],
    dropIndexes: ['current_entities_time_idx'],
    sql: '',
  },
  {
    version: 33,
    name: "a command's handler state lives and is purged with the command",
    // Docplanner's book and move and Clockwise.MD's create recorded each command's attempt in the
    // instance state (`<connector>:command:<command id>`), which nothing deleted: one row per
    // command, for good. Handlers now keep it in CommandContext.commandState, this column, which the
    // retention purge deletes with the command. The records of commands still kept move here under
    // the same key (those two connectors' key pattern, named here once); those of purged commands go.
    sql: `
alter table switchyard.commands add column handler_state jsonb not null default '{}'::jsonb;
update switchyard.commands c set handler_state = h.state
from (
  select c2.id, jsonb_object_agg(s.key, s.value) as state
  from switchyard.commands c2
  join switchyard.entity_state s on s.instance_id = c2.instance_id
    and s.key in ('docplanner:command:' || c2.id, 'clockwisemd:command:' || c2.id)
  group by c2.id
) h
where c.id = h.id;
delete from switchyard.entity_state
where key ~ '^(docplanner|clockwisemd):command:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
`,
  },
  {
    version: 34,
    name: "a command's runs are numbered, and each vendor call names its run",
    // A manual retry gives a failed command a fresh set of tries, its attempts counting from 1
    // again: its calls then read "attempt 1" twice, and which belonged to which run could not be
    // told. The command counts its runs (1, then one more per retry) and each call records its run.
    sql: `
alter table switchyard.commands add column run integer not null default 1;
alter table switchyard.command_calls add column run integer not null default 1;
`,
  },
  {
    version: 35,
    name: 'the delivery claim skips the subscriptions whose subscriber stopped answering the claiming process',
    // A subscriber that never answers held every deliver slot of a process (32 requests on its
    // connections, 32 waiting for one), and every other subscriber, on any host, waited for those
    // requests' timeouts (a fault-injection audit, session 40). The deliver worker now gives up
    // the slot of an attempt unanswered for a while (pipeline/deliver.ts, STALLED_ATTEMPT_MS) and
    // names that subscriber's subscriptions to its claims, which skip them as they skip a disabled
    // subscription's: counted in the walk's 256, one probe past their lines. An empty list (every
    // claim while subscribers answer) changes nothing. ROWS 4 as migration 20 set. The one-argument
    // function stays: processes of the previous version call it during a rolling upgrade (dropping
    // it stopped every old process's deliveries, an operator audit); a later release drops it.
    sql: withClaimSkipList(CLAIMABLE_DELIVERIES_28),
  },
  {
    version: 36,
    name: "an event's created_at is when it was inserted, not when its transaction began",
    // The pull feed serves an event that follows a missing sequence once the event is older than
    // its commit window (FEED_COMMIT_WINDOW_S, events/store.ts), counting from created_at. That
    // was now(): the start of the transaction, before the normalize commit waited for its
    // subjects' locks and drew its sequences. A commit that waited past the window stored events
    // already "old", and the feed served them past a sequence another transaction still held: its
    // reader's cursor moved past that event for good (a downstream audit, session 40;
    // pipeline/feed-horizon.int.test.ts). clock_timestamp() is read as each row is inserted, beside
    // its sequence. Filters, retention and the dashboard read created_at as "when stored", which it
    // still is, to the microsecond.
    sql: `alter table switchyard.events alter column created_at set default clock_timestamp();`,
  },
  {
    version: 37,
    name: 'no vendor access token and no subscriber password is kept in a stored row',
    // Docplanner's OAuth access token and BookingBug's admin Auth-Token were kept in the instance
    // state, in plain text (a commands audit); the connectors now keep them in process memory only
    // and fetch their own after a start. A subscriber URL with user:password@ was accepted, kept and
    // shown though every attempt refused it (an operator audit; the schema refuses it now): the
    // password is taken out of the URL.
    sql: `
delete from switchyard.entity_state where key in ('docplanner:oauth-token', 'bookingbug:admin-auth-token');
update switchyard.subscriptions set url = regexp_replace(url, '^(https?://)[^/?#@]*@', '\\1'), updated_at = now()
where url ~ '^https?://[^/?#@]*@';
`,
  },
  {
    version: 38,
    name: "the commands list's filters and the echo check read an index",
    // The commands list (API and dashboard) filters by status, instance and type, newest first;
    // only the subject (and the sender, by its idempotency key's index) had an index. With 100,000
    // commands, the dashboard's "failed" view read the whole table (a sequential scan, 25-290 ms)
    // and so did a rare instance's or type's list; the echo check every worker makes every 2 s while commands are in use
    // (the latest success) scanned every row too (87 ms). Each now reads its few rows (an audit of
    // commands under load; commands/list-cost.int.test.ts).
    indexes: [
      { name: 'commands_status_idx', on: 'switchyard.commands (status, seq desc)' },
      { name: 'commands_instance_idx', on: 'switchyard.commands (instance_id, seq desc)' },
      { name: 'commands_type_idx', on: 'switchyard.commands (type, seq desc)' },
      { name: 'commands_succeeded_idx', on: "switchyard.commands (completed_at) where status = 'succeeded'" },
    ],
    sql: '',
  },
  {
    version: 39,
    name: "an entity's current state is its last event stored, not its latest dated",
    // The projection kept the event with the latest time, but one entity's events come dated by
    // different clocks (a BookingBug legacy change by the hub's receipt, the JRNI no-show after it
    // by its 2017 triggerTime: the appointment read as booked); it now follows the sequence
    // (entities/current.ts, docs/fhir.md). A row the old rule left behind an entity's later event
    // moves to the last event still kept, as if that had been stored now (updated_at, so a
    // _lastUpdated poll sees the change). One index probe per row (events_subject_idx); a row whose
    // events were purged stays.
    sql: `
update switchyard.current_entities c set instance_id = e.source, event_id = e.id, event_type = e.type,
  event_time = e.time, event_sequence = e.sequence,
  starts_at = (e.envelope -> 'data' ->> 'start')::timestamptz, envelope = e.envelope,
  updated_at = date_trunc('milliseconds', now())
from switchyard.events e
where e.subject = c.subject
  and e.sequence = (select max(x.sequence) from switchyard.events x where x.subject = c.subject)
  and e.sequence > c.event_sequence;
`,
  },
  {
    version: 40,
    name: "the gates list's decision and reason filters read an index",
    // The gates list (API and dashboard) filters by decision and reason, newest first; neither had
    // an index. With 100,000 requests (90 days of a busy instance: gates are kept as long as
    // events), the refusals read the whole table (a sequential scan, 310 ms) and one instance's
    // refusals every request of that instance (335 ms); 3 ms now (an audit of a hub after months
    // in production; gates/list-cost.int.test.ts). A request is written a few times in its life,
    // so two more entries per version cost little.
    indexes: [
      { name: 'gate_requests_decision_idx', on: 'switchyard.gate_requests (decision, seq desc)' },
      { name: 'gate_requests_reason_idx', on: 'switchyard.gate_requests (decision_reason, seq desc)' },
    ],
    sql: '',
  },
  {
    version: 41,
    name: 'pull feed gaps',
    // What retention removed of a pull subscription's events before it acknowledged them
    // (purgeEvents notes it, the feed answers it, an ack past it clears it; events/store.ts).
    sql: `
create table if not exists switchyard.feed_gaps (
  subscription_id text primary key references switchyard.subscriptions (id) on delete cascade,
  through bigint not null,
  events bigint not null,
  noted_at timestamptz not null default now()
);
`,
  },
  {
    version: 43,
    name: "the FHIR search's status, _id and _sort read an index",
    // The FHIR search (fhir/search.ts, entities/current.ts) gained status, _id and _sort (date,
    // _lastUpdated, _id; ascending and descending), paged by a keyset of (sort key, subject) so that
    // rows sharing a sort value are neither skipped nor repeated. Each sort reads its index in order
    // and stops at the page: the start and last-change indexes end in the subject (the keyset's
    // tie-break), and the start's key is coalesce(starts_at, 'infinity') so an appointment without a
    // start has a place in the order (last ascending, first descending) a row comparison can reach.
    // The date filter reads the same key. status=booked reads its rows in subject order from the
    // status index. The id order of one kind reads (kind, subject): the primary key holds every
    // kind, so a descending page of appointments (or any page of documents) first read past every
    // row of the kinds sorting after (or before) it. The two replaced indexes are dropped: the
    // projection's upsert, on every event, maintains two indexes more than before, not four. (42 is
    // left to another change.)
    indexes: [
      {
        name: 'current_entities_start_key_idx',
        on: "switchyard.current_entities (kind, coalesce(starts_at, 'infinity'::timestamptz), subject)",
      },
      {
        name: 'current_entities_updated_key_idx',
        on: 'switchyard.current_entities (kind, updated_at, subject)',
      },
      {
        name: 'current_entities_status_idx',
        on: "switchyard.current_entities (kind, (envelope -> 'data' ->> 'status'), subject)",
      },
      { name: 'current_entities_kind_subject_idx', on: 'switchyard.current_entities (kind, subject)' },
    ],
    dropIndexes: ['current_entities_start_idx', 'current_entities_updated_idx'],
    sql: '',
  },
  {
    version: 44,
    name: 'statistics of the clinical-notes filter; DocumentReference status reads an index',
    // Every DocumentReference search keeps the clinical notes of the documents (a catalogue record
    // is a document too). Written as a jsonb containment, `data @> {"domain": "clinical"}`, Postgres
    // had no statistics for it and guessed 1% of the documents: a page by id after a cursor with a
    // _lastUpdated filter read 6,525 notes by the last-change index and sorted them, and with fewer
    // than a hundred times the page of notes every order read all of them and sorted
    // (entities/search-cost.int.test.ts). The filter is now an equality on `data ->> 'domain'`
    // (entities/current.ts), and these statistics hold how often each (kind, domain) pair occurs,
    // so the planner knows four in five documents are notes (or one in a thousand, on a catalogue
    // hub) and walks an order's index when that stops early. Statistics cost nothing on a write
    // (the projection's upsert on every event maintains no index more), only a little more work
    // when the table is analyzed, which is done here once when it holds rows.
    // DocumentReference's status filter: a document's status as the resource has it (entered-in-error
    // once deleted, which only the event type says; current when data has none; entities/current.ts
    // DOCUMENT_STATUS), in an index of documents only: a document's event writes one entry more,
    // any other kind's only checks the predicate. The statistics hold it too, so a common status
    // among clinical notes is known to be common. The index is built first (Migration), so the
    // analyze below also gathers the statistics of its expression.
    indexes: [
      {
        name: 'current_entities_document_status_idx',
        on: `switchyard.current_entities
  ((case when event_type = 'document.deleted' then 'entered-in-error'
    else coalesce(envelope -> 'data' ->> 'status', 'current') end), subject)
  where kind = 'document'`,
      },
    ],
    sql: `
create statistics if not exists switchyard.current_entities_domain_stats (mcv)
  on kind, ((envelope -> 'data') ->> 'domain'),
    (case when event_type = 'document.deleted' then 'entered-in-error'
      else coalesce(envelope -> 'data' ->> 'status', 'current') end)
  from switchyard.current_entities;
do $$ begin
  -- Analyzed here only when it has rows (a hub upgraded with its history): a new database's empty
  -- tables stay unanalyzed until autovacuum sees them filled, as storage/db.int.test.ts expects of
  -- every table (plans cached at empty tables must still look rows up by key).
  if exists (select 1 from switchyard.current_entities) then analyze switchyard.current_entities; end if;
end $$;
`,
  },
  {
    version: 45,
    name: 'pull and reconcile leases name their holder',
    // A turn's lease names the hub holding it (its session tag, the `switchyard <tag>` of its
    // sessions' application_name), so that another process takes the lease over as soon as no
    // session of the holder is connected (the holder was killed) instead of waiting the lease out
    // (instances/store.ts, `leaseFree`). Null: no holder named (an earlier version's lease, or none).
    sql: `
alter table switchyard.connector_instances
  add column if not exists pull_locked_by text,
  add column if not exists reconcile_locked_by text;
`,
  },
  {
    version: 46,
    name: 'dashboard sign-in sessions',
    // The dashboard's sessions (http/plugins/session.ts, storage/ui-sessions.ts) were kept in the
    // memory of the process that opened them: behind a load balancer every other request went to a
    // process that did not know the cookie, and a restart signed everyone out. Stored here, every
    // process of the hub admits them and a restart keeps them. Neither the session id nor the admin
    // token is stored: the key is the SHA-256 of the id (a stolen row is no cookie), and token_mac
    // is HMAC-SHA256 keyed by the admin token over the id (binds the session to the token without
    // a value a leaked row lets anyone test token guesses against offline). No index beyond the key:
    // the table holds at most CONFIG_DEFAULTS.dashboard.sessions rows, so the trim on sign-in and
    // the retention purge read it whole.
    sql: `
create table if not exists switchyard.ui_sessions (
  id_digest bytea primary key,
  token_mac bytea not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
`,
  },
  {
    version: 47,
    name: 'vendor calls of a given-back command try are marked',
    // A try the hub's own database failed is given back (commands/store.ts, `giveBackCommand`): its
    // attempt number is taken back, and the next try reuses it, so a command's calls listed two
    // tries under one attempt, and a given-back try's unanswered call read as in flight beside the
    // new try's. The give-back marks its try's calls. A constant default: no table rewrite.
    sql: `
alter table switchyard.command_calls add column if not exists given_back boolean not null default false;
`,
  },
  {
    version: 48,
    name: 'trace state stored beside the traceparent of the queued rows',
    // W3C Trace Context (§3.3) has a caller's `tracestate` travel with its `traceparent`: the
    // process that picks the row up resumes both, so its outbound calls (deliveries, approver and
    // vendor calls) send the caller's vendor entries on (issue #17). Null when tracing was off or
    // the trace had none. Nullable columns without a default: adding them rewrites nothing.
    // Sampled like the tables' other columns (migration 25).
    sql: `
alter table switchyard.inbound_messages add column if not exists tracestate text;
alter table switchyard.inbound_messages alter column tracestate set statistics 10;
alter table switchyard.events add column if not exists tracestate text;
alter table switchyard.events alter column tracestate set statistics 10;
`,
  },
  {
    version: 49,
    name: 'dead letters and replayed deliveries read their own indexes',
    // The dead letters still waiting (dead, not replayed) were counted by reading every dead
    // delivery, replayed or not, and its row: per subscription for `switchyard_deliveries_dead`, and
    // for the overview and `switchyard_deliveries` (94 ms warm, 360 ms cold at 32,000 dead among 4
    // million deliveries, and growing with every dead letter kept). `deliveries_dead_idx` holds
    // them alone, by subscription: counted from the index. `deliveries_replayed_idx` holds the
    // deliveries replayed (`GET /v1/deliveries?replayed=true`, newest first, read every delivery:
    // 0.4 to 0.6 s), with their status (the replayed dead letters, counted from the index). A
    // delivery enters the first when it dies and the second when it is replayed: nothing more is
    // written for the deliveries that succeed (http/hub-stats.ts, ui/queries.ts,
    // http/dead-letters-cost.int.test.ts). The first is also by when each died: the overview's
    // newest dead letters, a subscription's at a time (ui/queries.ts recentDead). One index, not
    // two: a second one of the same rows by `completed_at` alone was what a normalize commit's hold
    // check, planned at empty tables, chose, walking every dead letter (storage/db.int.test.ts).
    indexes: [
      {
        name: 'deliveries_dead_idx',
        on: "switchyard.deliveries (subscription_id, completed_at desc, seq desc) where status = 'dead' and superseded_by is null",
      },
      {
        name: 'deliveries_replayed_idx',
        on: 'switchyard.deliveries (seq desc) include (status) where superseded_by is not null',
      },
    ],
    sql: '',
  },
  {
    version: 50,
    name: "the gates list's decision and reason filters of one instance read an index",
    // `GET /v1/gates?instanceId=…&decision=refuse` (and `&reason=…`, as the dashboard sends them)
    // of an instance that never refuses read every refusal of the others through
    // gate_requests_decision_idx (or _reason_idx), each thrown away for its instance: 58–112 ms at
    // 200,000 requests; nothing indexed the instance with them (gates/list-cost.int.test.ts). Only
    // decided requests: the filters name a decision or reason, and an undecided request (its
    // insert) enters neither. Its decision's update already writes new entries (it changes
    // indexed columns), so each decided version of a request costs two index entries more.
    indexes: [
      {
        name: 'gate_requests_instance_decision_idx',
        on: 'switchyard.gate_requests (instance_id, decision, seq desc) where decision is not null',
      },
      {
        name: 'gate_requests_instance_reason_idx',
        on: 'switchyard.gate_requests (instance_id, decision_reason, seq desc) where decision_reason is not null',
      },
    ],
    sql: `
create statistics if not exists switchyard.gate_requests_instance_decision_stats (mcv)
  on instance_id, decision, decision_reason from switchyard.gate_requests;
`,
  },
  {
    version: 51,
    name: "one instance's gates list reads an index",
    // `GET /v1/gates?instanceId=…` (no decision or reason: the dashboard's gates page of an
    // instance) had no index by instance and seq: migration 50's hold decided requests only, and
    // the list shows the pending ones too. Postgres walked the seq key backward from the newest
    // request, throwing away every newer request of the other instances (33,000 read for an
    // instance whose requests are older than the others'), or read all of the instance's requests
    // through (instance_id, dedupe_key) and sorted them (gates/list-cost.int.test.ts). A request's
    // instance and seq never change: its decision's update writes one more entry (it changes
    // other indexed columns already), its insert one.
    indexes: [{ name: 'gate_requests_instance_idx', on: 'switchyard.gate_requests (instance_id, seq desc)' }],
    sql: '',
  },
];

/**
 * The migrations of this version that the database has not applied, by version (all of them on a
 * database without the `switchyard` schema). Reads only.
 *
 * @example
 * ```ts
 * const missing = await pendingMigrations(db); // [31] when the database is one migration behind
 * ```
 */
export async function pendingMigrations(db: Kysely<unknown>): Promise<number[]> {
  const table = await sql<{
    t: string | null;
  }>`select to_regclass('switchyard.migrations')::text as t`.execute(db);
  const have = table.rows[0]?.t ? await appliedVersions(db) : new Set<number>();
  return migrations.filter((m) => !have.has(m.version)).map((m) => m.version);
}

/**
 * Versions the database records as applied that this version of the code does not know: a newer
 * Switchyard migrated it (a rolling upgrade in progress, or a rollback). Reads only.
 *
 * @example
 * ```ts
 * const newer = await unknownMigrations(db); // [37] when the database is one migration ahead
 * ```
 */
export async function unknownMigrations(db: Kysely<unknown>): Promise<number[]> {
  const known = new Set(migrations.map((m) => m.version));
  return [...(await appliedVersions(db))].filter((v) => !known.has(v)).sort((a, b) => a - b);
}

/** The versions `switchyard.migrations` records as applied. */
async function appliedVersions(db: Kysely<unknown>): Promise<Set<number>> {
  const done = await sql<{ version: number }>`select version from switchyard.migrations`.execute(db);
  return new Set(done.rows.map((r) => r.version));
}

/**
 * Brings the `switchyard` schema up to date. Idempotent; every applied version is recorded in
 * `switchyard.migrations`. Each migration is applied in the steps {@link Migration} describes: its
 * indexes built concurrently, then its transaction (its `sql` and its record), so a migration's
 * version is recorded only once its indexes are built and valid, and the next one starts after it.
 * A run that fails leaves the migrations before the failing one applied; the next run goes on from
 * there (an index it left INVALID is dropped and built again).
 *
 * Safe when several processes start at once: the whole run holds a session-level advisory lock on
 * one connection of `db` (a transaction-scoped one would end with the first transaction), so the
 * others wait, polling ({@link MIGRATION_LOCK_RETRY_MS}), then find nothing to do. A previous
 * version's process instead waits for the lock inside a statement, which holds a snapshot the
 * run's concurrent build waits for: when Postgres cancels the build as that deadlock, the run lets
 * the waiter through (it releases the lock, takes it again, and goes on from the versions then
 * recorded), as {@link buildIndex} describes.
 *
 * A migration's transaction waits for its table locks at most {@link MIGRATION_LOCK_WAIT}`.lockTimeoutMs`
 * at a time, and is tried again until {@link MIGRATION_LOCK_WAIT}`.totalMs`, as {@link
 * applyTransaction} describes; past that the run fails (`SY_STORAGE_MIGRATION_BLOCKED`) naming the
 * sessions that held the lock.
 *
 * @example
 * ```ts
 * const applied = await migrate(db, { logger }); // [1, 2, …] on a fresh database, [] afterwards
 * ```
 */
export async function migrate(db: Kysely<unknown>, options: MigrateOptions = {}): Promise<number[]> {
  return db.connection().execute(async (session) => {
    const applied: number[] = [];
    for (;;) {
      await takeMigrationLock(session);
      try {
        if (await applyPending(session, applied, options)) return applied;
      } finally {
        // A session that lost its connection lost its lock with it: nothing to release then, and the
        // error that ended the run is the one to report.
        await sql`select pg_advisory_unlock(${MIGRATION_LOCK})`.execute(session).catch(() => {});
      }
    }
  });
}

/**
 * Applies the migrations not yet recorded, under the migration lock `session` holds, adding each
 * version to `applied`. False when it stopped to let a waiter for the lock through ({@link
 * buildIndex}): the caller releases the lock, takes it again and calls it again, which reads the
 * recorded versions afresh (the waiter, a previous version, may have applied some it knows).
 */
async function applyPending(
  session: Kysely<unknown>,
  applied: number[],
  options: MigrateOptions,
): Promise<boolean> {
  await sql`create schema if not exists switchyard`.execute(session);
  await sql`create table if not exists switchyard.migrations (
    version integer primary key, name text not null, applied_at timestamptz not null default now())`.execute(
    session,
  );
  const have = await appliedVersions(session);
  for (const m of migrations) {
    if (have.has(m.version)) continue;
    for (const index of m.indexes ?? []) if (!(await buildIndex(session, index))) return false;
    for (const name of m.dropIndexes ?? [])
      await withoutTimeouts(session, () =>
        sql.raw(`drop index concurrently if exists ${SCHEMA}.${name}`).execute(session),
      );
    await applyTransaction(session, m, options);
    applied.push(m.version);
  }
  return true;
}

/** What {@link migrate} is given beside the database. */
export interface MigrateOptions {
  /** Told of each try of a migration that waited too long for a lock ({@link applyTransaction}). */
  logger?: { warn(obj: object, msg: string): void };
  /** {@link MIGRATION_LOCK_WAIT} unless given (tests of the bounds). */
  lockWait?: LockWait;
}

/** How a migration's transaction waits for its locks ({@link applyTransaction}). */
export interface LockWait {
  /** The transaction's `lock_timeout`: the longest any statement on its tables queues behind it. */
  lockTimeoutMs: number;
  /** The pause after the first try that timed out; each next pause is twice the last. */
  firstPauseMs: number;
  /** The longest pause between two tries. */
  maxPauseMs: number;
  /** From the first try: no try starts after this, and the run fails. */
  totalMs: number;
}

/**
 * The bounds of a migration's waits for its table locks ({@link applyTransaction}). The lock timeout
 * is what a statement of a running process on the table may wait behind the migration's DDL, once
 * per try; the pauses leave the table free between tries; the total is about how long a start
 * waits for a `pg_dump` or a long report to end before it fails (a supervisor then starts it again).
 */
export const MIGRATION_LOCK_WAIT: LockWait = {
  lockTimeoutMs: 2_000,
  firstPauseMs: 1_000,
  maxPauseMs: 30_000,
  totalMs: 5 * 60_000,
};

/**
 * Runs a migration's `sql` and records its version in one transaction, under a `lock_timeout`.
 * DDL on an existing table (`ALTER TABLE`, a constraint, a trigger) asks for an `ACCESS EXCLUSIVE`
 * lock, which waits for every transaction using the table (a `pg_dump`, a long report, a previous
 * version's statement); and Postgres queues every later request on the table behind that waiting
 * one, so without a bound the running processes (of the previous version during a rolling upgrade)
 * stopped reading and writing the table for as long as the holder ran. With the lock timeout, a try
 * that waits longer is rolled back (55P03), which lets the queued statements through, and is tried
 * again after a pause (growing: {@link MIGRATION_LOCK_WAIT}), each retry logged with the sessions
 * that held a lock on the tables; once the total is spent the run fails, naming them. The pause is
 * idle and holds no lock but the (advisory) migration lock.
 */
async function applyTransaction(
  session: Kysely<unknown>,
  m: Migration,
  options: MigrateOptions,
): Promise<void> {
  const wait = options.lockWait ?? MIGRATION_LOCK_WAIT;
  const started = Date.now();
  let pauseMs = wait.firstPauseMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await session.transaction().execute(async (trx) => {
        // Local: ends with the transaction, and overrides one set on the role or the database. No
        // statement timeout: one shorter than the lock timeout cancelled the lock wait as 57014,
        // failing the start instead of trying again, and one of seconds would cancel a data
        // migration on a large table at every start (the builds have none either).
        await sql`select set_config('lock_timeout', ${`${wait.lockTimeoutMs}ms`}, true),
          set_config('statement_timeout', '0', true)`.execute(trx);
        if (m.sql.trim() !== '') await sql.raw(m.sql).execute(trx);
        await sql`insert into switchyard.migrations (version, name) values (${m.version}, ${m.name})`.execute(
          trx,
        );
      });
      return;
    } catch (error) {
      if ((error as { code?: unknown }).code !== '55P03') throw error;
      const blockers = await lockHolders(session, m.sql, wait.lockTimeoutMs);
      const named = blockers.length > 0 ? blockers.map(describeHolder).join('; ') : 'no session now';
      const what = `migration ${m.version} (${m.name}) waited ${wait.lockTimeoutMs} ms for a table lock (try ${attempt})`;
      if (Date.now() + pauseMs - started > wait.totalMs)
        throw new SwitchyardError(
          'SY_STORAGE_MIGRATION_BLOCKED',
          `${what} and gave up after ${Math.round((Date.now() - started) / 1000)} s; sessions holding locks on its tables: ${named}. End them or wait for them to end (a pg_dump, a long report), then start again (docs/operations.md, "Upgrades")`,
          { details: { version: m.version, attempts: attempt, blockers }, cause: error },
        );
      options.logger?.warn(
        { migration: m.version, attempt, retryInMs: pauseMs, blockers },
        `${what}; it was rolled back so that statements queued behind it run, and is tried again in ${pauseMs} ms; sessions holding locks on its tables: ${named}`,
      );
      await sleep(pauseMs);
      pauseMs = Math.min(pauseMs * 2, wait.maxPauseMs);
    }
  }
}

/** A session holding a lock a migration waited for ({@link lockHolders}); never its statement. */
export interface LockHolder {
  pid: number;
  applicationName: string;
  state: string | null;
  /** When its transaction started (ISO 8601). */
  since: string | null;
  /** The start of its statement (ISO 8601). */
  queryStart: string | null;
  /**
   * The migration's tables it holds a lock on. Not its statement's text: another session's SQL
   * (an analyst's psql) may carry a literal secret, and logs never show secrets.
   */
  tables: string[];
}

/**
 * The sessions that held a lock on the tables a timed-out try waited for. Once the try is cancelled
 * it waits no more, so `pg_blocking_pids` has nothing to say: these are the other sessions whose
 * transaction began at least the lock timeout ago (a lock held through the whole wait) and that hold
 * a lock on a `switchyard` relation the migration's SQL names (on any of the schema's relations
 * when it names none, as a `DO` block built from strings might).
 */
async function lockHolders(
  session: Kysely<unknown>,
  text: string,
  lockTimeoutMs: number,
): Promise<LockHolder[]> {
  const names = [
    ...new Set(
      [...text.matchAll(/\bswitchyard\.("?)([a-z_][a-z0-9_$]*)\1/gi)].map((x) => x[2]!.toLowerCase()),
    ),
  ];
  const r = await sql<{
    pid: number;
    application_name: string;
    state: string | null;
    since: Date | null;
    query_start: Date | null;
    tables: string[];
  }>`
    select a.pid, a.application_name, a.state, a.xact_start as since, a.query_start,
      array_agg(distinct c.relname::text order by c.relname::text) as tables
    from pg_stat_activity a
      join pg_locks l on l.pid = a.pid and l.granted
      join pg_class c on c.oid = l.relation
      join pg_namespace n on n.oid = c.relnamespace
    where a.pid <> pg_backend_pid()
      and a.xact_start <= now() - make_interval(secs => ${lockTimeoutMs / 1000})
      and n.nspname = ${SCHEMA} and c.relkind in ('r', 'p')
      and (cardinality(${names}::text[]) = 0 or c.relname = any(${names}::text[]))
    group by a.pid, a.application_name, a.state, a.xact_start, a.query_start
    order by a.xact_start, a.pid`.execute(session);
  return r.rows.map((row) => ({
    pid: row.pid,
    applicationName: row.application_name,
    state: row.state,
    since: row.since?.toISOString() ?? null,
    queryStart: row.query_start?.toISOString() ?? null,
    tables: row.tables,
  }));
}

/** One holder as a log line or an error names it. */
function describeHolder(h: LockHolder): string {
  return `pid ${h.pid} (application_name "${h.applicationName}", ${h.state ?? 'state unknown'}, transaction since ${h.since}, statement since ${h.queryStart}, holding ${h.tables.map((t) => `${SCHEMA}.${t}`).join(', ')})`;
}

/** Takes the session-level migration lock on `session`, trying again until it is free. */
async function takeMigrationLock(session: Kysely<unknown>): Promise<void> {
  for (;;) {
    const got = await sql<{
      locked: boolean;
    }>`select pg_try_advisory_lock(${MIGRATION_LOCK}) as locked`.execute(session);
    if (got.rows[0]?.locked) return;
    await sleep(MIGRATION_LOCK_RETRY_MS);
  }
}

/**
 * How many times a build cancelled as a deadlock is tried. A build waits, after its scan, for every
 * transaction whose snapshot is older than its own; a session meanwhile queued for a lock the
 * build holds (an operator's `ANALYZE` of the table, or a previous version's statistics keeper,
 * which queued its ANALYZE where this one's skips a locked table) holds such a snapshot, and
 * Postgres cancels one of the two, most often the build (checked on Postgres 15). Tried again, the
 * other has finished. A previous version's process waiting for the migration lock is the other
 * case: it waits for this run to end, so it is let through instead ({@link buildIndex}).
 */
const INDEX_BUILD_ATTEMPTS = 3;

/**
 * Builds one {@link ConcurrentIndex}: nothing if a valid index of its name exists (a run that
 * built it and failed later), and an INVALID one, left by a build that failed or was killed, is
 * dropped first (`if not exists` would keep it forever: never used, yet maintained by every write).
 * The build has no statement timeout: one set on the role or the database would otherwise cancel
 * it on a large table at every start, each time leaving an INVALID index to drop and build again.
 * Nor a lock timeout: after its scan the build waits for every transaction older than its snapshot
 * (a `pg_dump`, a long report), and one set on the role or the database cancelled it there, the
 * scan's work thrown away and the process failing to start ("canceling statement due to lock
 * timeout") as long as such a transaction ran.
 *
 * A build cancelled as a deadlock is tried again ({@link INDEX_BUILD_ATTEMPTS}), unless a session
 * waits for the migration lock: a previous version starting during a rolling upgrade, whose
 * `pg_advisory_xact_lock` waits inside a transaction, holding the snapshot the build waited for.
 * Built again under the lock, the index would wait for it again, until the attempts ran out and
 * this process failed to start; so the index left INVALID is dropped (a previous version that knows
 * the migration would keep it under `if not exists`) and false tells the run to release the lock:
 * the waiter takes it, finds nothing it knows to apply, or applies what it knows, and lets it go.
 *
 * @example
 * ```ts
 * if (!(await buildIndex(session, index))) return false; // let the waiter through, then go on
 * ```
 */
async function buildIndex(session: Kysely<unknown>, index: ConcurrentIndex): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await withoutTimeouts(session, async () => {
        if (await dropInvalidIndex(session, index.name)) return true;
        await sql
          .raw(`create ${index.unique ? 'unique ' : ''}index concurrently ${index.name} on ${index.on}`)
          .execute(session);
        return true;
      });
    } catch (error) {
      if ((error as { code?: unknown }).code !== '40P01') throw error;
      if (await migrationLockWaitedFor(session)) {
        await withoutTimeouts(session, () => dropInvalidIndex(session, index.name));
        return false;
      }
      if (attempt >= INDEX_BUILD_ATTEMPTS) throw error;
    }
  }
}

/**
 * Runs `work` (concurrent index builds and drops) on `session` without the `statement_timeout` and
 * `lock_timeout` the role or the database may set, then puts the session's own back. A concurrent
 * build or drop waits, in lock waits, for every transaction using the table (a drop) or older than
 * its snapshot (a build): a `lock_timeout`, there to keep DDL from queueing other statements behind
 * it, cancelled it while a `pg_dump` or a report ran, and the start failed, though no insert, update
 * or read ever waits behind a concurrent build or drop (their lock is `SHARE UPDATE EXCLUSIVE`).
 */
async function withoutTimeouts<T>(session: Kysely<unknown>, work: () => Promise<T>): Promise<T> {
  await sql`set statement_timeout = 0`.execute(session);
  await sql`set lock_timeout = 0`.execute(session);
  try {
    return await work();
  } finally {
    await sql`reset statement_timeout`.execute(session).catch(() => {});
    await sql`reset lock_timeout`.execute(session).catch(() => {});
  }
}

/**
 * Drops the index `name` (in the `switchyard` schema) if it is INVALID, concurrently. True when a
 * valid index of that name exists (left as it is), false when there is none (now).
 */
async function dropInvalidIndex(session: Kysely<unknown>, name: string): Promise<boolean> {
  const found = await sql<{ valid: boolean }>`
    select i.indisvalid as valid from pg_index i
      join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${SCHEMA} and c.relname = ${name}`.execute(session);
  const valid = found.rows[0]?.valid;
  if (valid === false) await sql.raw(`drop index concurrently ${SCHEMA}.${name}`).execute(session);
  return valid === true;
}

/**
 * Whether a session of this database waits for the migration lock in a statement (a previous
 * version's `pg_advisory_xact_lock`; this version's processes poll and never wait in one). An
 * advisory lock on a bigint key shows in `pg_locks` as classid (high half), objid (low half) and
 * objsubid 1.
 */
async function migrationLockWaitedFor(session: Kysely<unknown>): Promise<boolean> {
  const r = await sql<{ waited: boolean }>`
    select exists (select from pg_locks l join pg_database d on d.oid = l.database
      where l.locktype = 'advisory' and not l.granted and d.datname = current_database()
        and l.classid = 0 and l.objid::text::bigint = ${MIGRATION_LOCK} and l.objsubid = 1) as waited`.execute(
    session,
  );
  return r.rows[0]?.waited === true;
}
