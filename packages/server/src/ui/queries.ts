/**
 * Read-only SQL behind the dashboard's extra admin routes (api-extras.ts): the overview aggregates,
 * the vendor-id search and replay progress. Every query is bounded (a time window, a limit or an
 * index range); the indexes they rely on are named beside each and listed in docs/dashboard.md.
 */
import type { JsonValue } from '@switchyard/core';
import { sql } from 'kysely';
import { typeMatchesAny } from '../events/store.ts';
import type { Executor } from '../storage/db.ts';

/** Events stored per minute over the last `minutes` minutes (events_created_idx). Missing minutes are 0. */
export async function eventsPerMinute(
  db: Executor,
  minutes: number,
): Promise<{ minute: string; count: number }[]> {
  const r = await sql<{ minute: string; n: string }>`
    with m as (
      select generate_series(date_trunc('minute', now()) - make_interval(mins => ${minutes - 1}),
                             date_trunc('minute', now()), interval '1 minute') as minute
    ), c as (
      select date_trunc('minute', created_at) as minute, count(*) as n from switchyard.events
      where created_at >= date_trunc('minute', now()) - make_interval(mins => ${minutes - 1})
      group by 1
    )
    select to_char(m.minute at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:00"Z"') as minute, coalesce(c.n, 0) as n
    from m left join c using (minute) order by m.minute`.execute(db);
  return r.rows.map((row) => ({ minute: row.minute, count: Number(row.n) }));
}

/**
 * Open deliveries by status, and the dead letters still waiting: pending and in flight on
 * deliveries_due_seq_idx, held from deliveries_settled_idx alone, the dead letters from
 * deliveries_dead_idx alone (migration 49; before, every dead delivery's row was read to leave the
 * replayed ones out). A dead delivery that was replayed (`superseded_by` set) is no longer counted
 * as dead, its replay is counted by its own status. Finished ones are counted per hour by
 * {@link deliveriesCompletedSince}: counting every succeeded delivery ever is a full scan.
 */
export async function deliveriesByStatus(db: Executor): Promise<Record<string, number>> {
  const r = await sql<{ status: string; n: string }>`
    select status, count(*) as n from switchyard.deliveries where status in ('pending', 'in_flight') group by status
    union all
    select 'held', count(*) from switchyard.deliveries where status = 'held'
    union all
    select 'dead', count(*) from switchyard.deliveries where status = 'dead' and superseded_by is null`.execute(
    db,
  );
  const out: Record<string, number> = { pending: 0, in_flight: 0, held: 0, dead: 0 };
  for (const row of r.rows) out[row.status] = Number(row.n);
  return out;
}

/**
 * Deliveries finished since `since`, by final status (deliveries_completed_idx); the dead ones
 * replayed since are `replayed`, not `dead`.
 */
export async function deliveriesCompletedSince(db: Executor, since: Date): Promise<Record<string, number>> {
  const r = await sql<{ status: string; n: string }>`
    select case when status = 'dead' and superseded_by is not null then 'replayed' else status end as status,
           count(*) as n
    from switchyard.deliveries where completed_at >= ${since} group by 1`.execute(db);
  const out: Record<string, number> = { succeeded: 0, dead: 0, replayed: 0, skipped: 0 };
  for (const row of r.rows) out[row.status] = Number(row.n);
  return out;
}

export interface DeadDeliveryRow {
  id: string;
  subscriptionId: string;
  eventId: string;
  subject: string;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  completedAt: Date | null;
}

/**
 * The dead deliveries not yet replayed that died last: each subscription's newest from
 * deliveries_dead_idx (subscription, then when it died; migration 49), then the newest of those
 * (subscriptions are sized by configuration). By creation (`seq`) a delivery retried for a day and
 * a half was left off behind deliveries created since that died at once.
 */
export async function recentDead(db: Executor, limit: number): Promise<DeadDeliveryRow[]> {
  const r = await sql<DeadDeliveryRow>`
    select d.id, d.subscription_id as "subscriptionId", d.event_id as "eventId", d.subject, d.attempts,
           d.last_status_code as "lastStatusCode", d.last_error as "lastError", d.completed_at as "completedAt"
    from switchyard.subscriptions s
    cross join lateral (
      select * from switchyard.deliveries d
      where d.subscription_id = s.id and d.status = 'dead' and d.superseded_by is null
      order by d.completed_at desc, d.seq desc limit ${limit}) d
    order by d.completed_at desc, d.seq desc limit ${limit}`.execute(db);
  return r.rows;
}

/** Subscriptions that are switched off, with why. */
export async function disabledSubscriptions(
  db: Executor,
): Promise<{ id: string; url: string | null; disabledAt: Date; disabledReason: string | null }[]> {
  const r = await sql<{ id: string; url: string | null; disabledAt: Date; disabledReason: string | null }>`
    select id, url, disabled_at as "disabledAt", disabled_reason as "disabledReason"
    from switchyard.subscriptions where disabled_at is not null order by disabled_at desc`.execute(db);
  return r.rows;
}

export interface InstanceOverviewRow {
  id: string;
  connector: string;
  mode: string;
  lastMessageAt: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
  pullLagMs: number | null;
  pullConsecutiveFailures: number;
  pullLastSuccessAt: Date | null;
  failedInbound: number;
}

/** Every connector instance with its pull state and its count of failed inbound messages (inbound_settled_idx). */
export async function instancesOverview(db: Executor): Promise<InstanceOverviewRow[]> {
  const r = await sql<InstanceOverviewRow & { pullLagMs: string | null; failedInbound: string }>`
    select i.id, i.connector, i.mode, i.last_message_at as "lastMessageAt", i.last_error as "lastError",
           i.last_error_at as "lastErrorAt", i.pull_lag_ms as "pullLagMs",
           i.pull_consecutive_failures as "pullConsecutiveFailures", i.pull_last_success_at as "pullLastSuccessAt",
           coalesce(f.n, 0) as "failedInbound"
    from switchyard.connector_instances i
    left join (select instance_id, count(*) as n from switchyard.inbound_messages
               where status = 'failed' group by instance_id) f on f.instance_id = i.id
    order by i.id`.execute(db);
  return r.rows.map((row) => ({
    ...row,
    pullLagMs: row.pullLagMs === null ? null : Number(row.pullLagMs),
    failedInbound: Number(row.failedInbound),
  }));
}

export interface GateDecisionRow {
  id: string;
  instanceId: string;
  vendorType: string;
  status: string;
  decision: string | null;
  reason: string | null;
  decidedBy: string | null;
  receivedAt: Date;
  decisionMs: number | null;
}

/** The newest gate requests (gate_requests_received_idx); empty where the gate tables do not exist. */
export async function recentGateDecisions(db: Executor, limit: number): Promise<GateDecisionRow[]> {
  const exists = await sql<{
    t: string | null;
  }>`select to_regclass('switchyard.gate_requests')::text as t`.execute(db);
  if (!exists.rows[0]?.t) return [];
  const r = await sql<GateDecisionRow>`
    select id, instance_id as "instanceId", vendor_type as "vendorType", status, decision,
           decision_reason as reason, decided_by as "decidedBy", received_at as "receivedAt",
           decision_ms as "decisionMs"
    from switchyard.gate_requests order by received_at desc limit ${limit}`.execute(db);
  return r.rows;
}

/**
 * The subjects (`<entity>/<hub id>`) of every entity that has or had `vendorId` at a vendor,
 * optionally at one instance only (aliases_vendor_idx).
 */
export async function subjectsOfVendorId(
  db: Executor,
  vendorId: string,
  instanceId?: string,
): Promise<string[]> {
  const r = await sql<{ subject: string }>`
    select distinct entity || '/' || hub_id as subject from switchyard.aliases
    where vendor_id = ${vendorId} and (${instanceId ?? null}::text is null or instance_id = ${instanceId ?? null})
    order by 1 limit 100`.execute(db);
  return r.rows.map((row) => row.subject);
}

/** An event row as the search returns it: the envelope and its feed position. */
export interface SearchedEvent {
  sequence: string;
  envelope: Record<string, JsonValue>;
}

/**
 * Events about any of `subjects`, newest first, with the list filters of `GET /v1/events`
 * (events_subject_idx: one index range per subject, merged by sequence).
 */
export async function eventsOfSubjects(
  db: Executor,
  f: {
    subjects: readonly string[];
    type?: string;
    source?: string;
    since?: Date;
    until?: Date;
    beforeSequence?: string;
    limit: number;
  },
): Promise<SearchedEvent[]> {
  if (f.subjects.length === 0) return [];
  const type = f.type ?? null;
  const r = await sql<SearchedEvent>`
    select sequence::text as sequence, envelope from switchyard.events e
    where e.subject = any(${f.subjects as string[]}::text[])
      and (${type}::text is null or ${typeMatchesAny(sql.ref('e.type'), sql`array[${type}::text]`)})
      and (${f.source ?? null}::text is null or e.source = ${f.source ?? null})
      and (${f.since ?? null}::timestamptz is null or e.created_at >= ${f.since ?? null})
      and (${f.until ?? null}::timestamptz is null or e.created_at < ${f.until ?? null})
      and (${f.beforeSequence ?? null}::bigint is null or e.sequence < ${f.beforeSequence ?? null}::bigint)
    order by e.sequence desc limit ${f.limit}`.execute(db);
  return r.rows;
}

/** The inbound message an event was normalized from (undefined: no such event; null: none recorded). */
export async function inboundMessageOfEvent(
  db: Executor,
  eventId: string,
): Promise<string | null | undefined> {
  const r = await sql<{ inbound_message_id: string | null }>`
    select inbound_message_id from switchyard.events where id = ${eventId}::uuid`.execute(db);
  return r.rows.length === 0 ? undefined : r.rows[0]!.inbound_message_id;
}

/** The newest delivery position: replay progress counts the rows after it. */
export async function lastDeliverySeq(db: Executor): Promise<string> {
  const r = await sql<{ s: string | null }>`select max(seq)::text as s from switchyard.deliveries`.execute(
    db,
  );
  return r.rows[0]?.s ?? '0';
}

/** Replay deliveries of a subscription created after `afterSeq`, by status (the seq unique index). */
export async function replayProgress(
  db: Executor,
  subscriptionId: string,
  afterSeq: string,
): Promise<Record<string, number>> {
  const r = await sql<{ status: string; n: string }>`
    select status, count(*) as n from switchyard.deliveries
    where seq > ${afterSeq}::bigint and subscription_id = ${subscriptionId} and reason = 'replay'
    group by status`.execute(db);
  const out: Record<string, number> = {
    pending: 0,
    in_flight: 0,
    held: 0,
    succeeded: 0,
    dead: 0,
    skipped: 0,
  };
  for (const row of r.rows) out[row.status] = Number(row.n);
  return out;
}
