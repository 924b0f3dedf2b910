/**
 * Every SQL statement of the pipeline, one named function each (the pg-boss style: the SQL is
 * reviewable in one place, and each statement's index is next to it in migrations.ts).
 * Functions take an {@link Executor} so callers decide the transaction.
 */
import type { EventEnvelope, JsonValue } from '@switchyard/core';
import { type RawBuilder, sql } from 'kysely';
import { FHIR_EVENT_TYPES } from '../fhir/map.ts';
import { hasFhirMeaning } from '../fhir/subscription.ts';
import { projectStoredEvents } from './current.ts';
import { type Executor, first, json, rows } from './db.ts';

// ---------------------------------------------------------------------------------------------
// rows
// ---------------------------------------------------------------------------------------------

export interface InstanceRow {
  id: string;
  connector: string;
  mode: 'push' | 'pull' | 'both';
  settings_sealed: string;
  pull_interval_ms: number | null;
  gate: JsonValue | null;
  managed_by: 'file' | 'api';
  created_at: Date;
  updated_at: Date;
  last_message_at: Date | null;
  last_error: string | null;
  last_error_at: Date | null;
  pull_cursor: string | null;
  pull_next_at: Date | null;
  pull_last_success_at: Date | null;
  pull_consecutive_failures: number;
  pull_lag_ms: string | null;
  reconcile_next_at: Date | null;
  reconcile_last_run_at: Date | null;
  reconcile_last_success_at: Date | null;
  reconcile_last_result: string | null;
  reconcile_last_error: string | null;
}

export interface InboundRow {
  seq: string;
  id: string;
  instance_id: string;
  route: string;
  dedupe_key: string;
  vendor_type: string;
  ordering_key: string | null;
  occurred_at: string | null;
  gate: boolean;
  payload: JsonValue;
  meta: JsonValue | null;
  /** The request body this message came in, in `inbound_bodies` (shared by a batch's messages); null for pulls. */
  body_id: string | null;
  headers: Record<string, string> | null;
  source_ip: string | null;
  origin: 'push' | 'pull';
  status: 'received' | 'normalized' | 'ignored' | 'failed';
  reason: string | null;
  error: JsonValue | null;
  attempts: number;
  next_attempt_at: Date;
  lock_token: string | null;
  event_count: number;
  received_at: Date;
  processed_at: Date | null;
  /** W3C traceparent of the request that stored it (migration 18); null when tracing was off. */
  traceparent: string | null;
}

export interface EventRow {
  sequence: string;
  id: string;
  type: string;
  source: string;
  subject: string;
  time: Date;
  envelope: Record<string, JsonValue>;
  inbound_message_id: string | null;
  /** The event has a FHIR meaning (null: stored before this was recorded). */
  fhir: boolean | null;
  created_at: Date;
  /** W3C traceparent of the span that stored it (migration 18), continued by its deliveries. */
  traceparent?: string | null;
}

/** A signing secret as stored: sealed by secret-box, never returned. */
export interface StoredSecret {
  sealed: string;
  hint: string;
  createdAt: string;
  expiresAt: string | null;
  /** Declared in the configuration file: the file replaces it at every start (absent: false). */
  fromFile?: boolean;
}

/** A `subscriptions` row (its SQL: subscriptions/store.ts; kept here because delivery rows join it). */
export interface SubscriptionRow {
  id: string;
  kind: 'webhook' | 'pull';
  url: string | null;
  event_types: string[];
  sources: string[] | null;
  secrets: StoredSecret[];
  content_type: 'application/cloudevents+json' | 'application/json';
  format: SubscriptionFormat;
  /** fhir-r4-notification: events numbered so far (the Backport's events-since-subscription-start). */
  notification_events: string;
  timeout_ms: number;
  retry_schedule_ms: number[] | null;
  rate_limit: JsonValue | null;
  ordering: 'hold' | 'release';
  approver: boolean;
  approver_filters: JsonValue | null;
  allow_private_addresses: boolean;
  disable_after_consecutive_dead: number | null;
  consecutive_dead: number;
  disabled_at: Date | null;
  disabled_reason: string | null;
  disabled_at_sequence: string | null;
  managed_by: 'file' | 'api';
  created_at: Date;
  updated_at: Date;
}

/** What a subscriber's bodies are (`subscriptions.format`, migration 17; subscriptions/schema.ts). */
export type SubscriptionFormat = 'cloudevents' | 'fhir-r4' | 'fhir-r4-notification';

export type DeliveryStatus = 'pending' | 'in_flight' | 'succeeded' | 'dead' | 'skipped' | 'held';

export interface DeliveryRow {
  seq: string;
  id: string;
  subscription_id: string;
  event_id: string;
  event_sequence: string;
  subject: string;
  reason: 'fanout' | 'replay';
  replay_of: string | null;
  superseded_by: string | null;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  locked_until: Date | null;
  lock_token: string | null;
  last_status_code: number | null;
  last_error: string | null;
  /** fhir-r4-notification: the event's number in its subscription (the Backport's event-number). */
  notification_number: string | null;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
}

export interface AttemptRow {
  id: string;
  delivery_id: string;
  attempt: number;
  started_at: Date;
  latency_ms: number | null;
  status_code: number | null;
  response_snippet: string | null;
  error: string | null;
  outcome: string;
}

// ---------------------------------------------------------------------------------------------
// notifications (wake-ups across processes)
// ---------------------------------------------------------------------------------------------

export const CHANNEL_NORMALIZE = 'switchyard_normalize';
export const CHANNEL_DELIVER = 'switchyard_deliver';
export const CHANNEL_PULL = 'switchyard_pull';

export async function notify(db: Executor, channel: string): Promise<void> {
  // NOTIFY inside a transaction is sent at commit, and identical payloads are folded into one.
  await sql`select pg_notify(${channel}, '')`.execute(db);
}

// ---------------------------------------------------------------------------------------------
// inbound messages (also the normalize queue)
// ---------------------------------------------------------------------------------------------

export interface NewInbound {
  id: string;
  instanceId: string;
  route: string;
  dedupeKey: string;
  vendorType: string;
  orderingKey: string | null;
  occurredAt: string | null;
  gate: boolean;
  payload: JsonValue;
  meta: JsonValue | null;
  /** The id of the request's body in {@link NewBody}; null for pulled notifications. */
  bodyId: string | null;
  headers: Record<string, string> | null;
  sourceIp: string | null;
  origin: 'push' | 'pull';
  receivedAt: Date;
  /** W3C traceparent to continue when the message is normalized (absent: tracing off). */
  traceparent?: string | null;
}

/** A push request's raw body, stored once however many notifications it carried. */
export interface NewBody {
  id: string;
  body: Buffer;
  receivedAt: Date;
}

/**
 * Stores notifications (a (instance, dedupe key) already stored is left alone), the requests' raw
 * bodies, the instances' `last_message_at` and the normalize wake-up in one statement: autocommit
 * for pushes, so the group commit of ingest costs one round trip per batch; inside a pull's
 * transaction, with its cursor. The NOTIFY (sent at commit, only when something new was stored)
 * cannot be separated from the rows.
 *
 * Each body travels once (`bodies`), however many of `items` reference it, and is stored only when
 * at least one of its messages is new: a vendor's retry of a whole request stores nothing.
 *
 * Only the instances in `touch` get `last_message_at` moved: every statement that updates an
 * instance row waits for the previous one's commit on that row lock, so the caller passes each
 * instance at most once a second (ingest statements went from 5.1 ms to 0.4 ms at 200 pushes/s).
 */
export async function storeInbound(
  db: Executor,
  items: readonly NewInbound[],
  bodies: readonly NewBody[],
  touch: readonly string[],
): Promise<{ id: string; instance_id: string; dedupe_key: string }[]> {
  if (items.length === 0) return [];
  // One statement for the whole batch: unnest() of parallel arrays keeps it a single round trip.
  // Returns the rows actually inserted, so the caller can tell new notifications from duplicates.
  return rows(
    sql`with ins as (
          insert into switchyard.inbound_messages (id, instance_id, route, dedupe_key, vendor_type, ordering_key,
            occurred_at, gate, payload, meta, body_id, headers, source_ip, origin, received_at, traceparent)
          select * from unnest(${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.instanceId)}::text[],
            ${items.map((i) => i.route)}::text[], ${items.map((i) => i.dedupeKey)}::text[],
            ${items.map((i) => i.vendorType)}::text[], ${items.map((i) => i.orderingKey)}::text[],
            ${items.map((i) => i.occurredAt)}::text[], ${items.map((i) => i.gate)}::boolean[],
            ${items.map((i) => JSON.stringify(i.payload))}::jsonb[], ${items.map((i) => (i.meta === null ? null : JSON.stringify(i.meta)))}::jsonb[],
            ${items.map((i) => i.bodyId)}::uuid[], ${items.map((i) => (i.headers === null ? null : JSON.stringify(i.headers)))}::jsonb[],
            ${items.map((i) => i.sourceIp)}::text[], ${items.map((i) => i.origin)}::text[],
            ${items.map((i) => i.receivedAt.toISOString())}::timestamptz[], ${items.map((i) => i.traceparent ?? null)}::text[])
          on conflict (instance_id, dedupe_key) do nothing
          returning id, instance_id, dedupe_key, body_id),
        stored_bodies as (
          insert into switchyard.inbound_bodies (id, body, received_at)
          select b.id, b.body, b.received_at
          from unnest(${bodies.map((b) => b.id)}::uuid[], ${bodies.map((b) => b.body)}::bytea[],
            ${bodies.map((b) => b.receivedAt.toISOString())}::timestamptz[]) as b(id, body, received_at)
          where b.id in (select body_id from ins)),
        touched as (
          update switchyard.connector_instances set last_message_at = now()
          where id = any(${touch as string[]}::text[]) and id in (select instance_id from ins)),
        woken as (select pg_notify(${CHANNEL_NORMALIZE}, '') as n from (select 1 from ins limit 1) x)
        select ins.id, ins.instance_id, ins.dedupe_key, (select count(*) from woken) as woken from ins`,
    db,
  );
}

/**
 * The depth of the two queues: inbound messages waiting for normalization, deliveries waiting to be
 * sent (due or retrying). The metrics (`switchyard_queue_depth`) and the dashboard's backlog read it.
 */
export async function queueDepths(db: Executor): Promise<{ normalize: number; deliver: number }> {
  const r = await sql<{ normalize: string; deliver: string }>`
    select
      (select count(*) from switchyard.inbound_messages where status = 'received') as normalize,
      (select count(*) from switchyard.deliveries where status in ('pending', 'in_flight')) as deliver`.execute(
    db,
  );
  return { normalize: Number(r.rows[0]?.normalize ?? 0), deliver: Number(r.rows[0]?.deliver ?? 0) };
}

/**
 * Claims due messages to normalize. A message whose ordering key has an earlier unfinished
 * message waits for it, so one entity's notifications are normalized in arrival order.
 *
 * Heads are found by `switchyard.claimable_inbound` (migration 14): a walk of at most 256 messages
 * in arrival order, then only the first message of each ordering key and the messages without one,
 * so a claim costs O(limit + 256 + keys waiting), however deep one key's backlog. A head that is
 * leased or not yet due blocks its whole key; messages without an ordering key are each their own
 * head.
 *
 * With `run` > 1, each head comes with up to `run - 1` of its key's next messages, consecutive in
 * arrival order and all due (`switchyard.claimable_inbound_runs`, migration 19), leased together
 * under the same claim: the caller must normalize them in `seq` order, one after another, and
 * give back the ones it did not reach ({@link unclaimInbound}). At most `limit` heads, so at most
 * `limit × run` rows; rows come in no particular order.
 *
 * @example
 * ```ts
 * const rows = await claimInbound(db, 30_000, 16, 32); // 16 keys, up to 32 messages each
 * ```
 */
export async function claimInbound(
  db: Executor,
  leaseMs: number,
  limit: number,
  run = 1,
): Promise<InboundRow[]> {
  return rows<InboundRow>(
    sql`update switchyard.inbound_messages m set locked_until = now() + make_interval(secs => ${leaseMs / 1000}),
          lock_token = gen_random_uuid(), attempts = m.attempts + 1
        from switchyard.claimable_inbound_runs(${limit}::integer, ${run}::integer) as due(id)
        where m.id = due.id returning m.*`,
    db,
  );
}

/**
 * Hands back claimed messages a run did not reach (an earlier message of the run waits for a
 * retry or crashed): lease cleared and the claim's attempt taken back, since they were never
 * tried. No NOTIFY: each waits behind the unfinished message that ended its run. Rows whose token
 * no longer matches are left alone.
 */
export async function unclaimInbound(
  db: Executor,
  held: readonly Pick<HeldLease, 'id' | 'lockToken'>[],
): Promise<void> {
  if (held.length === 0) return;
  await sql`update switchyard.inbound_messages m
      set locked_until = null, lock_token = null, attempts = greatest(m.attempts - 1, 0)
    from unnest(${held.map((h) => h.id)}::uuid[], ${held.map((h) => h.lockToken)}::uuid[]) as v(id, lock_token)
    where m.id = v.id and m.lock_token = v.lock_token and m.status = 'received'`.execute(db);
}

export async function nextInboundDue(db: Executor): Promise<Date | undefined> {
  const r = await first<{ at: Date | null }>(
    sql`select min(greatest(next_attempt_at, coalesce(locked_until, next_attempt_at))) as at
        from switchyard.inbound_messages
        where status = 'received' and greatest(next_attempt_at, coalesce(locked_until, next_attempt_at)) > now()`,
    db,
  );
  return r?.at ?? undefined;
}

/** Finishes a claimed message; false when the lease was lost (another worker took over). */
export async function finishInbound(
  db: Executor,
  id: string,
  lockToken: string,
  status: 'normalized' | 'ignored' | 'failed',
  reason: string | null,
  error: JsonValue | null,
  eventCount: number,
): Promise<boolean> {
  const r = await sql`update switchyard.inbound_messages set status = ${status}, reason = ${reason},
      error = ${json(error)}, event_count = ${eventCount}, processed_at = now(), locked_until = null, lock_token = null
    where id = ${id} and lock_token = ${lockToken} and status = 'received'`.execute(db);
  return Number(r.numAffectedRows ?? 0) === 1;
}

export async function retryInbound(
  db: Executor,
  id: string,
  lockToken: string,
  delayMs: number,
  error: JsonValue,
): Promise<void> {
  await sql`update switchyard.inbound_messages set next_attempt_at = now() + make_interval(secs => ${delayMs / 1000}),
      error = ${json(error)}, locked_until = null, lock_token = null
    where id = ${id} and lock_token = ${lockToken}`.execute(db);
}

/** A row this process holds a lease on: its id, the lease token of the claim, and the lease length. */
export interface HeldLease {
  id: string;
  lockToken: string;
  /** How far from now a renewal moves the lease's end (never earlier than it already is). */
  leaseMs: number;
}

/**
 * Extends the leases of messages this process is still normalizing. Only rows whose token still
 * matches (and still `received`) are touched; returns their ids, so a lease taken over by another
 * process is noticed.
 */
export async function renewInboundLeases(db: Executor, held: readonly HeldLease[]): Promise<Set<string>> {
  return renewLeases(db, 'inbound_messages', 'received', held);
}

/** The one lease renewal of both queues: `table`'s rows in `status` whose token still matches. */
async function renewLeases(
  db: Executor,
  table: 'inbound_messages' | 'deliveries',
  status: 'received' | 'in_flight',
  held: readonly HeldLease[],
): Promise<Set<string>> {
  if (held.length === 0) return new Set();
  const r = await rows<{ id: string }>(
    sql`update ${sql.table(`switchyard.${table}`)} q
          set locked_until = greatest(q.locked_until, now() + make_interval(secs => v.secs))
        from unnest(${held.map((h) => h.id)}::uuid[], ${held.map((h) => h.lockToken)}::uuid[],
          ${held.map((h) => h.leaseMs / 1000)}::float8[]) as v(id, lock_token, secs)
        where q.id = v.id and q.lock_token = v.lock_token and q.status = ${status}
        returning q.id`,
    db,
  );
  return new Set(r.map((x) => x.id));
}

/**
 * Gives leased messages back to the queue at once (their normalization was cut short by a database
 * outage, nothing of it stored), where their token still matches, and wakes the normalize workers.
 * The claim's attempt stays counted, as after a crash. Returns how many were given back.
 */
export async function releaseInbound(
  db: Executor,
  held: readonly Pick<HeldLease, 'id' | 'lockToken'>[],
): Promise<number> {
  if (held.length === 0) return 0;
  const r = await first<{ n: string }>(
    sql`with released as (
          update switchyard.inbound_messages m set locked_until = null, lock_token = null, next_attempt_at = now()
          from unnest(${held.map((h) => h.id)}::uuid[], ${held.map((h) => h.lockToken)}::uuid[]) as v(id, lock_token)
          where m.id = v.id and m.lock_token = v.lock_token and m.status = 'received'
          returning 1),
        woken as (select pg_notify(${CHANNEL_NORMALIZE}, '') from (select 1 from released limit 1) x)
        select (select count(*) from released) as n, (select count(*) from woken) as woken`,
    db,
  );
  return Number(r?.n ?? 0);
}

/** Puts a failed (or ignored) message back in the normalize queue with a fresh attempt count. */
export async function requeueInbound(db: Executor, id: string): Promise<InboundRow | undefined> {
  return first<InboundRow>(
    sql`update switchyard.inbound_messages set status = 'received', attempts = 0, next_attempt_at = now(),
          locked_until = null, lock_token = null, reason = null, processed_at = null
        where id = ${id} and status in ('failed', 'ignored') returning *`,
    db,
  );
}

export async function countInbound(
  db: Executor,
  instanceId: string,
): Promise<{ received: number; failed: number; lastDay: { received: number; failed: number } }> {
  const r = await first<{ received: number; failed: number; day_received: number; day_failed: number }>(
    sql`select count(*) filter (where status = 'received')::int as received,
               count(*) filter (where status = 'failed')::int as failed,
               count(*) filter (where received_at >= now() - interval '24 hours')::int as day_received,
               count(*) filter (where received_at >= now() - interval '24 hours' and status = 'failed')::int as day_failed
        from switchyard.inbound_messages where instance_id = ${instanceId}`,
    db,
  );
  return {
    received: r?.received ?? 0,
    failed: r?.failed ?? 0,
    lastDay: { received: r?.day_received ?? 0, failed: r?.day_failed ?? 0 },
  };
}

export async function getInbound(db: Executor, id: string): Promise<InboundRow | undefined> {
  return first<InboundRow>(sql`select * from switchyard.inbound_messages where id = ${id}`, db);
}

/** The raw body of a push request (shared by every message it carried). */
export async function getInboundBody(db: Executor, bodyId: string): Promise<Buffer | undefined> {
  const r = await first<{ body: Buffer }>(
    sql`select body from switchyard.inbound_bodies where id = ${bodyId}`,
    db,
  );
  return r?.body;
}

export async function listInbound(
  db: Executor,
  f: { status?: string; instanceId?: string; beforeSeq?: string; limit: number },
): Promise<InboundRow[]> {
  return rows<InboundRow>(
    sql`select * from switchyard.inbound_messages
        where (${f.status ?? null}::text is null or status = ${f.status ?? null})
          and (${f.instanceId ?? null}::text is null or instance_id = ${f.instanceId ?? null})
          and (${f.beforeSeq ?? null}::bigint is null or seq < ${f.beforeSeq ?? null}::bigint)
        order by seq desc limit ${f.limit}`,
    db,
  );
}

// ---------------------------------------------------------------------------------------------
// aliases and entity state (the normalize context's stores)
// ---------------------------------------------------------------------------------------------

export async function findAlias(
  db: Executor,
  instanceId: string,
  entity: string,
  vendorId: string,
): Promise<string | undefined> {
  const r = await first<{ hub_id: string }>(
    sql`select hub_id from switchyard.aliases where instance_id = ${instanceId} and entity = ${entity} and vendor_id = ${vendorId}`,
    db,
  );
  return r?.hub_id;
}

/** Creates the alias unless it exists; returns the hub id that won (also under a race). */
export async function ensureAlias(
  db: Executor,
  instanceId: string,
  entity: string,
  vendorId: string,
  hubId: string,
): Promise<string> {
  return hubIdAlias(db, instanceId, entity, vendorId, hubId);
}

/**
 * The hub id of a vendor id, created with `newHubId` on first sight: one round trip. The insert's
 * RETURNING answers when the row is new, the select when it already existed. Under a race with
 * another transaction inserting the same alias, neither may see a row (the select reads the snapshot
 * from before the other commit): then a fresh read finds the winner.
 */
export async function hubIdAlias(
  db: Executor,
  instanceId: string,
  entity: string,
  vendorId: string,
  newHubId: string,
): Promise<string> {
  const r = await first<{ hub_id: string }>(
    sql`with ins as (
          insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id)
          values (${instanceId}, ${entity}, ${vendorId}, ${newHubId}) on conflict do nothing returning hub_id)
        select hub_id from ins
        union all
        select hub_id from switchyard.aliases where instance_id = ${instanceId} and entity = ${entity} and vendor_id = ${vendorId}
        limit 1`,
    db,
  );
  return r?.hub_id ?? (await findAlias(db, instanceId, entity, vendorId))!;
}

/** One alias key: the connector instance, entity kind and vendor id. */
export interface AliasKey {
  instanceId: string;
  entity: string;
  vendorId: string;
}

/** An alias row as the batched lookups return it. */
export interface AliasRow {
  instance_id: string;
  entity: string;
  vendor_id: string;
  hub_id: string;
}

const aliasKeyArrays = (keys: readonly AliasKey[]) => [
  keys.map((k) => k.instanceId),
  keys.map((k) => k.entity),
  keys.map((k) => k.vendorId),
];

/**
 * {@link findAlias} for many keys in one round trip (the alias store batches concurrent lookups of
 * all normalize workers): the rows that exist, in no particular order.
 */
export async function findAliases(db: Executor, keys: readonly AliasKey[]): Promise<AliasRow[]> {
  const [instances, entities, vendorIds] = aliasKeyArrays(keys);
  return rows<AliasRow>(
    sql`select a.instance_id, a.entity, a.vendor_id, a.hub_id
        from unnest(${instances}::text[], ${entities}::text[], ${vendorIds}::text[]) as k(instance_id, entity, vendor_id)
        join switchyard.aliases a using (instance_id, entity, vendor_id)`,
    db,
  );
}

/**
 * {@link hubIdAlias} for many distinct keys in one statement: inserts the missing aliases with
 * their proposed hub ids and returns the row of every key, new or existing. A key another
 * transaction inserted meanwhile may be missing from the answer (snapshot): read it again with
 * {@link findAliases}.
 */
export async function hubIdAliases(
  db: Executor,
  keys: readonly (AliasKey & { newHubId: string })[],
): Promise<AliasRow[]> {
  const [instances, entities, vendorIds] = aliasKeyArrays(keys);
  return rows<AliasRow>(
    sql`with k as (
          select * from unnest(${instances}::text[], ${entities}::text[], ${vendorIds}::text[], ${keys.map((k) => k.newHubId)}::text[])
            with ordinality as k(instance_id, entity, vendor_id, hub_id, n)),
        ins as (
          insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id)
          select instance_id, entity, vendor_id, hub_id from k order by n
          on conflict do nothing
          returning instance_id, entity, vendor_id, hub_id)
        select instance_id, entity, vendor_id, hub_id from ins
        union all
        select a.instance_id, a.entity, a.vendor_id, a.hub_id
        from k join switchyard.aliases a using (instance_id, entity, vendor_id)`,
    db,
  );
}

/**
 * {@link listVendorIds} for many hub ids in one round trip, each hub id's vendor ids in the same
 * order (`created_at`, `vendor_id`).
 */
export async function listVendorIdsMany(
  db: Executor,
  keys: readonly { instanceId: string; entity: string; hubId: string }[],
): Promise<AliasRow[]> {
  return rows<AliasRow>(
    sql`select a.instance_id, a.entity, a.vendor_id, a.hub_id
        from (select distinct * from unnest(${keys.map((k) => k.instanceId)}::text[], ${keys.map((k) => k.entity)}::text[], ${keys.map((k) => k.hubId)}::text[])
              as k(instance_id, entity, hub_id)) k
        join switchyard.aliases a using (instance_id, entity, hub_id)
        order by a.instance_id, a.entity, a.hub_id, a.created_at, a.vendor_id`,
    db,
  );
}

export async function listVendorIds(
  db: Executor,
  instanceId: string,
  entity: string,
  hubId: string,
): Promise<string[]> {
  const r = await rows<{ vendor_id: string }>(
    sql`select vendor_id from switchyard.aliases where instance_id = ${instanceId} and entity = ${entity} and hub_id = ${hubId}
        order by created_at, vendor_id`,
    db,
  );
  return r.map((x) => x.vendor_id);
}

export async function getState(
  db: Executor,
  instanceId: string,
  key: string,
): Promise<JsonValue | undefined> {
  const r = await first<{ value: JsonValue }>(
    sql`select value from switchyard.entity_state where instance_id = ${instanceId} and key = ${key}`,
    db,
  );
  return r?.value;
}

export async function setState(
  db: Executor,
  instanceId: string,
  key: string,
  value: JsonValue,
): Promise<void> {
  await sql`insert into switchyard.entity_state (instance_id, key, value) values (${instanceId}, ${key}, ${json(value)})
      on conflict (instance_id, key) do update set value = excluded.value, updated_at = now()`.execute(db);
}

export async function deleteState(db: Executor, instanceId: string, key: string): Promise<void> {
  await sql`delete from switchyard.entity_state where instance_id = ${instanceId} and key = ${key}`.execute(
    db,
  );
}

// ---------------------------------------------------------------------------------------------
// events
// ---------------------------------------------------------------------------------------------

export interface NewEvent {
  id: string;
  type: string;
  source: string;
  subject: string;
  time: string;
  envelope: Record<string, JsonValue>;
  inboundMessageId: string | null;
  /** W3C traceparent its deliveries continue (absent: tracing off). */
  traceparent?: string | null;
}

export async function getEvent(db: Executor, id: string): Promise<EventRow | undefined> {
  return first<EventRow>(sql`select * from switchyard.events where id = ${id}`, db);
}

export async function listEventsOfInbound(db: Executor, inboundId: string): Promise<EventRow[]> {
  return rows<EventRow>(
    sql`select * from switchyard.events where inbound_message_id = ${inboundId} order by sequence`,
    db,
  );
}

/** SQL for "this event's type/source passes these filters" (patterns: exact, `entity.*`, `*`). */
function matches(types: readonly string[] | null, sources: readonly string[] | null) {
  const patterns = sql`${types as string[] | null}::text[]`;
  return sql`(${patterns} is null or ${typeMatchesAny(sql.ref('e.type'), patterns)})
    and (${sources as string[] | null}::text[] is null or e.source = any(${sources as string[] | null}::text[]))`;
}

/**
 * SQL: true when the event type `type` matches one of the subscription patterns `patterns` (a
 * `text[]`): the exact type, `entity.*`, or `*`. The one SQL form of the rule `typeMatches`
 * (subscriptions/type-patterns.ts) applies in memory; every query that filters events by type patterns uses it.
 *
 * @example
 * ```ts
 * sql`select 1 from switchyard.events e join switchyard.subscriptions s
 *     on ${typeMatchesAny(sql.ref('e.type'), sql.ref('s.event_types'))}`;
 * ```
 */
export function typeMatchesAny(
  type: RawBuilder<unknown>,
  patterns: RawBuilder<unknown>,
): RawBuilder<unknown> {
  return sql`('*' = any(${patterns}) or ${type} = any(${patterns})
      or split_part(${type}, '.', 1) || '.*' = any(${patterns}))`;
}

export async function listEvents(
  db: Executor,
  f: {
    types?: string[];
    source?: string;
    subject?: string;
    since?: Date;
    until?: Date;
    afterSequence?: string;
    beforeSequence?: string;
    limit: number;
    ascending: boolean;
  },
): Promise<EventRow[]> {
  const order = f.ascending ? sql`asc` : sql`desc`;
  return rows<EventRow>(
    sql`select * from switchyard.events e
        where ${matches(f.types ?? null, f.source ? [f.source] : null)}
          and (${f.subject ?? null}::text is null or e.subject = ${f.subject ?? null})
          and (${f.since ?? null}::timestamptz is null or e.created_at >= ${f.since ?? null})
          and (${f.until ?? null}::timestamptz is null or e.created_at < ${f.until ?? null})
          and (${f.afterSequence ?? null}::bigint is null or e.sequence > ${f.afterSequence ?? null}::bigint)
          and (${f.beforeSequence ?? null}::bigint is null or e.sequence < ${f.beforeSequence ?? null}::bigint)
        order by e.sequence ${order} limit ${f.limit}`,
    db,
  );
}

export async function maxEventSequence(db: Executor): Promise<string> {
  const r = await first<{ s: string | null }>(
    sql`select max(sequence)::text as s from switchyard.events`,
    db,
  );
  return r?.s ?? '0';
}

// ---------------------------------------------------------------------------------------------
// deliveries (also the deliver queue)
// ---------------------------------------------------------------------------------------------

/** How one claimed inbound message ends, as stored by {@link commitNormalized}. */
export interface NormalizedMessage {
  id: string;
  lockToken: string;
  status: 'normalized' | 'ignored';
  reason: string | null;
  eventCount: number;
}

/**
 * Stores the results of normalized messages in one statement (one round trip, no BEGIN/COMMIT):
 * finishes each message whose lease token still matches, stores the events of those messages
 * only, fans them out to every active webhook subscription whose filters match, and wakes the
 * deliver workers when a delivery was created.
 *
 * - Events keep the order of `events` (arrival order of their messages): sequence numbers are
 *   drawn first, sorted, and handed out by position, since a multi-row insert does not promise
 *   which row draws which value. An event id already stored (a re-run) is skipped.
 * - Each entity's current state (storage/current.ts) moves to its latest event, in the same statement.
 * - Fan-out is idempotent per (subscription, event); a delivery landing behind a dead,
 *   unsuperseded one of a `hold` subscription is created `held`.
 * - A subscription matches when one of its type patterns matches as `typeMatches` in
 *   subscriptions/type-patterns.ts does (exact type, `entity.*`, `*`) and the source is listed (or it lists none).; a
 *   FHIR subscription matches only events with a FHIR meaning ({@link fanOutStoredEvents}).
 *
 * Returns the ids of the messages finished (a lost lease leaves a message out) and how many
 * deliveries were created.
 */
export async function commitNormalized(
  db: Executor,
  messages: readonly NormalizedMessage[],
  events: readonly NewEvent[],
): Promise<{ finished: Set<string>; fanned: number }> {
  if (messages.length === 0) return { finished: new Set(), fanned: 0 };
  const r = await first<{ finished: string[] | null; fanned: string }>(
    sql`with done as (
          update switchyard.inbound_messages m set status = v.status, reason = v.reason, error = null,
            event_count = v.event_count, processed_at = now(), locked_until = null, lock_token = null
          from unnest(${messages.map((m) => m.id)}::uuid[], ${messages.map((m) => m.lockToken)}::uuid[],
            ${messages.map((m) => m.status)}::text[], ${messages.map((m) => m.reason)}::text[],
            ${messages.map((m) => m.eventCount)}::integer[]) as v(id, lock_token, status, reason, event_count)
          where m.id = v.id and m.lock_token = v.lock_token and m.status = 'received'
          returning m.id),
        input as (
          select * from unnest(${events.map((e) => e.id)}::uuid[], ${events.map((e) => e.type)}::text[],
            ${events.map((e) => e.source)}::text[], ${events.map((e) => e.subject)}::text[],
            ${events.map((e) => e.time)}::timestamptz[], ${events.map((e) => JSON.stringify(e.envelope))}::jsonb[],
            ${events.map((e) => e.inboundMessageId)}::uuid[], ${events.map((e) => e.traceparent ?? null)}::text[],
            ${events.map((e) => hasFhirMeaning(e.envelope as unknown as EventEnvelope))}::boolean[])
            with ordinality as t(id, type, source, subject, time, envelope, inbound_message_id, traceparent, fhir, ord)),
        fresh as (
          select i.*, row_number() over (order by i.ord) as rn from input i
          where i.inbound_message_id in (select id from done)
            and not exists (select 1 from switchyard.events x where x.id = i.id)),
        drawn as (select nextval(pg_get_serial_sequence('switchyard.events', 'sequence')) as sequence from fresh),
        numbered as (select sequence, row_number() over (order by sequence) as rn from drawn),
        stored as (
          insert into switchyard.events (sequence, id, type, source, subject, time, envelope, inbound_message_id, traceparent, fhir)
          select n.sequence, f.id, f.type, f.source, f.subject, f.time, f.envelope, f.inbound_message_id, f.traceparent, f.fhir
          from fresh f join numbered n on n.rn = f.rn
          order by n.sequence
          on conflict (id) do nothing
          returning id, type, source, subject, sequence, time, envelope, fhir),
        ${projectStoredEvents()},
        ${fanOutStoredEvents()}
        select (select array_agg(id) from done) as finished, (select count(*) from fanned) as fanned,
          (select count(*) from woken) as woken`,
    db,
  );
  return { finished: new Set(r?.finished ?? []), fanned: Number(r?.fanned ?? 0) };
}

/**
 * Claims due deliveries. A delivery waits while an earlier delivery (by event sequence) of the
 * same subscription and subject is unfinished, or dead under the `hold` policy: that is the
 * per-subject ordering. A lease (`locked_until`) longer than the request timeout lets another
 * process take over after a crash without ever running two attempts at once.
 */
export async function claimDeliveries(
  db: Executor,
  leaseMarginMs: number,
  limit: number,
): Promise<DeliveryRow[]> {
  return rows<DeliveryRow>(
    sql`update switchyard.deliveries d set status = 'in_flight', lock_token = gen_random_uuid(), attempts = d.attempts + 1,
          locked_until = now() + make_interval(secs => (due.timeout_ms + ${leaseMarginMs}) / 1000.0), updated_at = now()
        from (${claimableDeliveries(limit)}) due
        where d.id = due.id returning d.*`,
    db,
  );
}

/**
 * The deliveries a claim may take (head of line per subscription and subject), locked: the
 * `switchyard.claimable_deliveries` function of migration 6 walks the due ones in order and stops
 * at the limit.
 */
function claimableDeliveries(limit: number) {
  return sql`select id, timeout_ms from switchyard.claimable_deliveries(${limit}::integer)`;
}

/** A claimed delivery with what attempting it needs: its subscription and its event (if still stored). */
export interface DeliveryWork {
  delivery: DeliveryRow;
  subscription: SubscriptionRow;
  event: EventRow | undefined;
}

/**
 * {@link claimDeliveries} that also returns each delivery's subscription and event, so an attempt
 * needs no further reads (one statement for a batch instead of three per delivery).
 */
export async function claimDeliveryWork(
  db: Executor,
  leaseMarginMs: number,
  limit: number,
): Promise<DeliveryWork[]> {
  const r = await rows<DeliveryRow & { sub: SubscriptionRow; ev: EventRow | null }>(
    sql`with claimed as (
          update switchyard.deliveries d set status = 'in_flight', lock_token = gen_random_uuid(), attempts = d.attempts + 1,
            locked_until = now() + make_interval(secs => (due.timeout_ms + ${leaseMarginMs}) / 1000.0), updated_at = now()
          from (${claimableDeliveries(limit)}) due
          where d.id = due.id returning d.*)
        select c.*, to_jsonb(s.*) as sub,
          case when e.id is null then null
               else jsonb_build_object('sequence', e.sequence::text, 'id', e.id, 'type', e.type, 'source', e.source,
                      'subject', e.subject, 'envelope', e.envelope, 'inbound_message_id', e.inbound_message_id,
                      'traceparent', e.traceparent, 'fhir', e.fhir) end as ev
        from claimed c join switchyard.subscriptions s on s.id = c.subscription_id
        left join switchyard.events e on e.id = c.event_id`,
    db,
  );
  return r.map(({ sub, ev, ...delivery }) => ({
    delivery: delivery as DeliveryRow,
    subscription: {
      ...sub,
      disabled_at: sub.disabled_at === null ? null : new Date(sub.disabled_at),
      created_at: new Date(sub.created_at),
      updated_at: new Date(sub.updated_at),
      disabled_at_sequence: sub.disabled_at_sequence === null ? null : String(sub.disabled_at_sequence),
      notification_events: String(sub.notification_events),
    },
    event: ev === null ? undefined : (ev as EventRow),
  }));
}

/**
 * Extends the leases of deliveries this process is still attempting (or recording), like
 * {@link renewInboundLeases}: only `in_flight` rows whose token matches; returns their ids.
 */
export async function renewDeliveryLeases(db: Executor, held: readonly HeldLease[]): Promise<Set<string>> {
  return renewLeases(db, 'deliveries', 'in_flight', held);
}

/**
 * Puts leased deliveries back to `pending`, due now (their outcome could not be recorded because
 * the database was unavailable), where their token still matches, and wakes the deliver workers.
 * The attempt stays counted (its POST may have reached the subscriber: the retry carries the same
 * `webhook-id`). Returns how many were given back.
 */
export async function releaseDeliveries(
  db: Executor,
  held: readonly Pick<HeldLease, 'id' | 'lockToken'>[],
): Promise<number> {
  if (held.length === 0) return 0;
  const r = await first<{ n: string }>(
    sql`with released as (
          update switchyard.deliveries d set status = 'pending', locked_until = null, lock_token = null,
            next_attempt_at = now(), updated_at = now()
          from unnest(${held.map((h) => h.id)}::uuid[], ${held.map((h) => h.lockToken)}::uuid[]) as v(id, lock_token)
          where d.id = v.id and d.lock_token = v.lock_token and d.status = 'in_flight'
          returning 1),
        woken as (select pg_notify(${CHANNEL_DELIVER}, '') from (select 1 from released limit 1) x)
        select (select count(*) from released) as n, (select count(*) from woken) as woken`,
    db,
  );
  return Number(r?.n ?? 0);
}

/**
 * Records the attempts of many deliveries and moves each on (retry or success) in one statement.
 * Returns, per delivery moved (lease still held), whether a later delivery of its subject waits:
 * only then do other processes need a wake-up.
 */
export async function finishDeliveries(
  db: Executor,
  items: readonly {
    deliveryId: string;
    lockToken: string;
    status: 'pending' | 'succeeded';
    nextAttemptInMs: number;
    attempt: number;
    startedAt: Date;
    latencyMs: number | null;
    statusCode: number | null;
    responseSnippet: string | null;
    error: string | null;
    outcome: string;
  }[],
): Promise<{ id: string; successor: boolean }[]> {
  if (items.length === 0) return [];
  return rows<{ id: string; successor: boolean }>(
    sql`with v as (
          select * from unnest(${items.map((i) => i.deliveryId)}::uuid[], ${items.map((i) => i.lockToken)}::uuid[],
            ${items.map((i) => i.status)}::text[], ${items.map((i) => i.nextAttemptInMs / 1000)}::float8[],
            ${items.map((i) => i.attempt)}::integer[], ${items.map((i) => i.startedAt.toISOString())}::timestamptz[],
            ${items.map((i) => i.latencyMs)}::integer[], ${items.map((i) => i.statusCode)}::integer[],
            ${items.map((i) => i.responseSnippet)}::text[], ${items.map((i) => i.error)}::text[],
            ${items.map((i) => i.outcome)}::text[])
            as t(id, lock_token, status, delay_s, attempt, started_at, latency_ms, status_code, snippet, error, outcome)),
        att as (
          insert into switchyard.delivery_attempts (delivery_id, attempt, started_at, latency_ms, status_code, response_snippet, error, outcome)
          select id, attempt, started_at, latency_ms, status_code, snippet, error, outcome from v),
        moved as (
          update switchyard.deliveries d set status = v.status,
            next_attempt_at = now() + make_interval(secs => v.delay_s),
            last_status_code = v.status_code, last_error = v.error, locked_until = null, lock_token = null,
            updated_at = now(), completed_at = case when v.status = 'succeeded' then now() else null end
          from v where d.id = v.id and d.lock_token = v.lock_token and d.status = 'in_flight'
          returning d.id, d.subscription_id, d.subject, d.event_sequence, d.seq)
        select m.id, exists (
          select 1 from switchyard.deliveries p where p.subscription_id = m.subscription_id and p.subject = m.subject
            and p.status = 'pending' and (p.event_sequence, p.seq) > (m.event_sequence, m.seq)) as successor
        from moved m`,
    db,
  );
}

/**
 * Takes one token from a subscription's rate-limit bucket (refilled at `perSecond`, holding at most
 * one second's worth, at least one). Returns 0 when granted, else the ms until a token is there.
 * The bucket lives in the subscription row, so every hub process shares it.
 */
export async function takeRateToken(
  db: Executor,
  subscriptionId: string,
  perSecond: number,
): Promise<number> {
  const r = await first<{ granted: boolean; tokens: number }>(
    sql`with cur as (
          select id, least(greatest(1, ${perSecond}::float8),
            coalesce(rate_tokens, greatest(1, ${perSecond}::float8))
            + greatest(0, extract(epoch from clock_timestamp() - coalesce(rate_refilled_at, clock_timestamp())))
              * ${perSecond}::float8) as t
          from switchyard.subscriptions where id = ${subscriptionId} for update)
        update switchyard.subscriptions s
          set rate_tokens = case when cur.t >= 1 then cur.t - 1 else cur.t end, rate_refilled_at = clock_timestamp()
        from cur where s.id = cur.id
        returning cur.t >= 1 as granted, cur.t as tokens`,
    db,
  );
  if (!r || r.granted) return 0;
  return Math.max(1, Math.ceil(((1 - r.tokens) / perSecond) * 1000));
}

export async function nextDeliveryDue(db: Executor): Promise<Date | undefined> {
  const r = await first<{ at: Date | null }>(
    // Only future times: a due delivery that was not claimable waits behind its subject's head, and
    // the head finishing wakes the loop; counting it here would spin the loop.
    sql`select min(case when status = 'pending' then next_attempt_at else locked_until end) as at
        from switchyard.deliveries
        where (status = 'pending' and next_attempt_at > now()) or (status = 'in_flight' and locked_until > now())`,
    db,
  );
  return r?.at ?? undefined;
}

export async function insertAttempt(
  db: Executor,
  a: {
    deliveryId: string;
    attempt: number;
    startedAt: Date;
    latencyMs: number | null;
    statusCode: number | null;
    responseSnippet: string | null;
    error: string | null;
    outcome: string;
  },
): Promise<void> {
  await sql`insert into switchyard.delivery_attempts (delivery_id, attempt, started_at, latency_ms, status_code, response_snippet, error, outcome)
      values (${a.deliveryId}, ${a.attempt}, ${a.startedAt}, ${a.latencyMs}, ${a.statusCode}, ${a.responseSnippet}, ${a.error}, ${a.outcome})`.execute(
    db,
  );
}

/** Moves a claimed delivery on; false when the lease was lost. */
export async function finishDelivery(
  db: Executor,
  id: string,
  lockToken: string,
  v: {
    status: DeliveryStatus;
    nextAttemptInMs?: number;
    statusCode: number | null;
    error: string | null;
    attempts?: number;
  },
): Promise<boolean> {
  const terminal = v.status === 'succeeded' || v.status === 'dead' || v.status === 'skipped';
  const r = await sql`update switchyard.deliveries set status = ${v.status},
      next_attempt_at = now() + make_interval(secs => ${(v.nextAttemptInMs ?? 0) / 1000}),
      attempts = coalesce(${v.attempts ?? null}::integer, attempts),
      last_status_code = ${v.statusCode}, last_error = ${v.error}, locked_until = null, lock_token = null,
      updated_at = now(), completed_at = case when ${terminal} then now() else null end
    where id = ${id} and lock_token = ${lockToken} and status = 'in_flight'`.execute(db);
  return Number(r.numAffectedRows ?? 0) === 1;
}

/** Marks later waiting deliveries of a subject `held` behind a dead one (visibility for `hold`). */
export async function holdSubject(
  db: Executor,
  subscriptionId: string,
  subject: string,
  afterSequence: string,
): Promise<void> {
  await sql`update switchyard.deliveries set status = 'held', updated_at = now()
      where subscription_id = ${subscriptionId} and subject = ${subject} and status = 'pending'
        and event_sequence >= ${afterSequence}::bigint`.execute(db);
}

/** New deliveries that land behind a dead one of a `hold` subscription show as `held` at once. */
export async function holdBehindDead(db: Executor, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`update switchyard.deliveries d set status = 'held'
      from switchyard.subscriptions s
      where d.id = any(${ids as string[]}::uuid[]) and d.status = 'pending' and s.id = d.subscription_id
        and s.ordering = 'hold' and exists (
          select 1 from switchyard.deliveries p where p.subscription_id = d.subscription_id and p.subject = d.subject
            and p.status = 'dead' and p.superseded_by is null and p.event_sequence < d.event_sequence)`.execute(
    db,
  );
}

/**
 * Marks due pending deliveries that wait behind a dead one (`hold`) as `held`. Covers the race
 * where a fan-out and the death of its predecessor commit at the same time (each missing the other).
 */
export async function holdBlocked(db: Executor): Promise<void> {
  await sql`update switchyard.deliveries d set status = 'held', updated_at = now()
      from switchyard.subscriptions s
      where d.status = 'pending' and d.next_attempt_at <= now() and s.id = d.subscription_id and s.ordering = 'hold'
        and exists (
          select 1 from switchyard.deliveries p where p.subscription_id = d.subscription_id and p.subject = d.subject
            and p.status = 'dead' and p.superseded_by is null and p.event_sequence < d.event_sequence)`.execute(
    db,
  );
}

/** Lets held deliveries of a subject go again (after the dead one was replayed or skipped). */
export async function releaseSubject(db: Executor, subscriptionId: string, subject: string): Promise<void> {
  await sql`update switchyard.deliveries set status = 'pending', next_attempt_at = now(), updated_at = now()
      where subscription_id = ${subscriptionId} and subject = ${subject} and status = 'held'`.execute(db);
}

export async function getDelivery(db: Executor, id: string): Promise<DeliveryRow | undefined> {
  return first<DeliveryRow>(sql`select * from switchyard.deliveries where id = ${id}`, db);
}

export async function listDeliveries(
  db: Executor,
  f: {
    subscriptionId?: string;
    eventId?: string;
    status?: string;
    replayed?: boolean;
    beforeSeq?: string;
    limit: number;
  },
): Promise<DeliveryRow[]> {
  return rows<DeliveryRow>(
    sql`select * from switchyard.deliveries
        where (${f.subscriptionId ?? null}::text is null or subscription_id = ${f.subscriptionId ?? null})
          and (${f.eventId ?? null}::uuid is null or event_id = ${f.eventId ?? null}::uuid)
          and (${f.status ?? null}::text is null or status = ${f.status ?? null})
          and (${f.replayed ?? null}::boolean is null or (superseded_by is not null) = ${f.replayed ?? null}::boolean)
          and (${f.beforeSeq ?? null}::bigint is null or seq < ${f.beforeSeq ?? null}::bigint)
        order by seq desc limit ${f.limit}`,
    db,
  );
}

export async function listAttempts(db: Executor, deliveryIds: readonly string[]): Promise<AttemptRow[]> {
  if (deliveryIds.length === 0) return [];
  return rows<AttemptRow>(
    sql`select * from switchyard.delivery_attempts where delivery_id = any(${deliveryIds as string[]}::uuid[]) order by id`,
    db,
  );
}

/**
 * Locks a delivery for a replay decision (two replays of one delivery at once: the second waits,
 * then sees the first one's `superseded_by`).
 */
export async function lockDelivery(db: Executor, id: string): Promise<DeliveryRow | undefined> {
  return first<DeliveryRow>(sql`select * from switchyard.deliveries where id = ${id} for update`, db);
}

/**
 * A new delivery of the same event (same event id, so the subscriber can deduplicate). The
 * delivery replayed points at it (`superseded_by`): that is what makes it "replayed" rather than a
 * dead letter still waiting.
 */
export async function insertReplay(db: Executor, newId: string, of: DeliveryRow): Promise<DeliveryRow> {
  const row = await first<DeliveryRow>(
    sql`insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, reason, replay_of,
          notification_number)
        values (${newId}, ${of.subscription_id}, ${of.event_id}, ${of.event_sequence}::bigint, ${of.subject}, 'replay', ${of.id},
          ${of.notification_number}::bigint)
        returning *`,
    db,
  );
  await sql`update switchyard.deliveries set superseded_by = ${newId}, updated_at = now() where id = ${of.id}`.execute(
    db,
  );
  return row!;
}

/**
 * The dead deliveries of a subscription not replayed yet, locked (call inside the transaction that
 * replays them): a replay of one of them at the same moment waits, then finds it replayed.
 */
export async function listDeadUnsuperseded(db: Executor, subscriptionId: string): Promise<DeliveryRow[]> {
  return rows<DeliveryRow>(
    sql`select * from switchyard.deliveries where subscription_id = ${subscriptionId} and status = 'dead'
          and superseded_by is null order by event_sequence, seq for update`,
    db,
  );
}

/**
 * Replays every event matching the subscription since a time (or after a sequence) as new
 * deliveries. A FHIR subscription gets only events with a FHIR meaning (`events.fhir`; an event
 * stored before that column existed goes by its type, and is skipped at delivery if it turns out to
 * be a catalog document). A `fhir-r4-notification` replay keeps the event number of the
 * event's original delivery; an event the subscription never had draws a new one from its counter.
 */
export async function insertReplaysSince(
  db: Executor,
  sub: SubscriptionRow,
  f: { since?: Date; afterSequence?: string },
): Promise<number> {
  const numbered = sub.format === 'fhir-r4-notification';
  const r = await sql`with candidates as (
        select e.id, e.sequence, e.subject,
          (select d.notification_number from switchyard.deliveries d
           where d.subscription_id = ${sub.id} and d.event_id = e.id and d.reason = 'fanout') as known
        from switchyard.events e
        where ${matches(sub.event_types, sub.sources)}
          and (${sub.format} = 'cloudevents'
            or coalesce(e.fhir, e.type = any(${[...FHIR_EVENT_TYPES]}::text[])))
          and (${f.since ?? null}::timestamptz is null or e.created_at >= ${f.since ?? null})
          and (${f.afterSequence ?? null}::bigint is null or e.sequence > ${f.afterSequence ?? null}::bigint)),
      fresh as (
        select c.id, row_number() over (order by c.sequence) as n from candidates c
        where ${numbered} and c.known is null),
      base as (
        update switchyard.subscriptions set notification_events = notification_events + (select count(*) from fresh)
        where id = ${sub.id} and ${numbered}
        returning notification_events - (select count(*) from fresh) as base)
      insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, reason, notification_number)
      select gen_random_uuid(), ${sub.id}, c.id, c.sequence, c.subject, 'replay',
        case when ${numbered} then coalesce(c.known, (select base from base) + x.n) end
      from candidates c left join fresh x on x.id = c.id
      order by c.sequence`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}

export async function skipDelivery(db: Executor, id: string): Promise<DeliveryRow | undefined> {
  return first<DeliveryRow>(
    sql`update switchyard.deliveries set status = 'skipped', updated_at = now(), completed_at = now(),
          locked_until = null, lock_token = null
        where id = ${id} and status in ('pending', 'held', 'dead') returning *`,
    db,
  );
}

// ---------------------------------------------------------------------------------------------
// pull feed
// ---------------------------------------------------------------------------------------------

export async function pollFeed(
  db: Executor,
  sub: SubscriptionRow,
  afterSequence: string,
  limit: number,
): Promise<EventRow[]> {
  return rows<EventRow>(
    sql`select * from switchyard.events e where e.sequence > ${afterSequence}::bigint and ${matches(sub.event_types, sub.sources)}
        order by e.sequence limit ${limit}`,
    db,
  );
}

export async function getFeedCursor(db: Executor, subscriptionId: string): Promise<string | undefined> {
  const r = await first<{ cursor: string }>(
    sql`select cursor from switchyard.feed_cursors where subscription_id = ${subscriptionId}`,
    db,
  );
  return r?.cursor;
}

export async function setFeedCursor(db: Executor, subscriptionId: string, cursor: string): Promise<void> {
  // Never moves back: an old, delayed ack must not re-deliver what a newer ack covered.
  await sql`insert into switchyard.feed_cursors (subscription_id, cursor) values (${subscriptionId}, ${cursor}::bigint)
      on conflict (subscription_id) do update set cursor = greatest(switchyard.feed_cursors.cursor, excluded.cursor),
        acked_at = now()`.execute(db);
}

// ---------------------------------------------------------------------------------------------
// retention
// ---------------------------------------------------------------------------------------------

export async function purgeDeliveries(db: Executor, olderThan: Date, batch: number): Promise<number> {
  const r = await sql`delete from switchyard.deliveries where id in (
      select id from switchyard.deliveries where completed_at < ${olderThan}
        and status in ('succeeded', 'skipped', 'dead') limit ${batch})`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}

export async function purgeEvents(db: Executor, olderThan: Date, batch: number): Promise<number> {
  // An event still owed to a subscriber stays, whatever its age.
  const r = await sql`delete from switchyard.events where sequence in (
      select e.sequence from switchyard.events e where e.created_at < ${olderThan}
        and not exists (select 1 from switchyard.deliveries d where d.event_id = e.id
                        and d.status in ('pending', 'in_flight', 'held'))
      limit ${batch})`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}

export async function purgeInbound(db: Executor, olderThan: Date, batch: number): Promise<number> {
  const r = await sql`delete from switchyard.inbound_messages where id in (
      select id from switchyard.inbound_messages where received_at < ${olderThan} and status <> 'received' limit ${batch})`.execute(
    db,
  );
  return Number(r.numAffectedRows ?? 0);
}

/**
 * Deletes raw bodies that no inbound message references any more (their messages were purged).
 * Only bodies older than `olderThan`: a body and its messages are inserted by one statement, but
 * the age bound keeps the purge off the rows being written right now.
 */
export async function purgeInboundBodies(db: Executor, olderThan: Date, batch: number): Promise<number> {
  const r = await sql`delete from switchyard.inbound_bodies where id in (
      select b.id from switchyard.inbound_bodies b where b.received_at < ${olderThan}
        and not exists (select 1 from switchyard.inbound_messages m where m.body_id = b.id)
      limit ${batch})`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}

// ---------------------------------------------------------------------------------------------
// planner statistics
// ---------------------------------------------------------------------------------------------

/** The hub's tables whose size swings with traffic, so whose statistics go stale fastest. */
export const BUSY_TABLES = [
  'inbound_messages',
  'events',
  'deliveries',
  'delivery_attempts',
  'aliases',
  'entity_state',
] as const;
export type BusyTable = (typeof BUSY_TABLES)[number];

/**
 * The busy tables changed by at least a fifth (and 500 rows) since their last ANALYZE. Autovacuum
 * gets there too, but only after its one-minute nap and a tenth of the table; a burst into fresh
 * tables is planned on the statistics of the empty ones until then.
 */
export async function tablesNeedingAnalyze(db: Executor): Promise<BusyTable[]> {
  const r = await rows<{ relname: BusyTable }>(
    sql`select relname from pg_stat_user_tables
        where schemaname = 'switchyard' and relname = any(${[...BUSY_TABLES]}::text[])
          and n_mod_since_analyze >= greatest(500, 0.2 * n_live_tup)`,
    db,
  );
  return r.map((x) => x.relname);
}

export async function analyzeTable(db: Executor, table: BusyTable): Promise<void> {
  if (!BUSY_TABLES.includes(table)) throw new Error(`not a busy table: ${table}`);
  await sql`analyze ${sql.table(`switchyard.${table}`)}`.execute(db);
}

/**
 * The fan-out of freshly stored events, as CTEs to follow a `stored` CTE that returns
 * `(id, type, source, subject, sequence, fhir)` (`events.fhir`: the event has a FHIR meaning,
 * `hasFhirMeaning` of fhir/subscription.ts, computed when it is stored): one delivery per matching webhook subscription (`held`
 * behind a dead, unreplayed delivery of the same subject when the subscription holds), then one
 * NOTIFY to the deliver workers when anything was fanned. Defines `fanned` and `woken`; one
 * definition for the normalize commit and for hub-made events (pipeline/emit.ts).
 *
 * - A FHIR subscription (`format` other than `cloudevents`) matches only events with a FHIR meaning.
 * - A `fhir-r4-notification` subscription's deliveries are numbered from its own counter
 *   (`notification_events`), advanced here by the number of its deliveries, so the numbers have no
 *   gaps and commit or roll back with the deliveries. The counters are locked in id order (two
 *   commits fanning out to the same subscriptions cannot deadlock); commits to one such
 *   subscription queue on its row.
 *
 * @example
 * ```ts
 * sql`with stored as (insert ... returning id, type, source, subject, sequence, fhir), ${fanOutStoredEvents()}
 *     select (select count(*) from fanned) as fanned`;
 * ```
 */
export function fanOutStoredEvents(): RawBuilder<unknown> {
  return sql`matched as (
      select s.id as subscription_id, s.ordering, s.format, e.id as event_id, e.sequence, e.subject,
        row_number() over (partition by s.id order by e.sequence) as n
      from stored e join switchyard.subscriptions s
        on s.kind = 'webhook' and s.disabled_at is null
        and ${typeMatchesAny(sql.ref('e.type'), sql.ref('s.event_types'))}
        and (s.sources is null or e.source = any(s.sources))
        and (s.format = 'cloudevents' or e.fhir)),
    counted as (
      select m.subscription_id, count(*) as n from matched m
      where m.format = 'fhir-r4-notification' group by m.subscription_id),
    counters as (
      select s.id from switchyard.subscriptions s where s.id in (select subscription_id from counted)
      order by s.id for update),
    notification_base as (
      update switchyard.subscriptions s set notification_events = s.notification_events + c.n
      from counted c join counters l on l.id = c.subscription_id
      where s.id = c.subscription_id
      returning s.id, s.notification_events - c.n as base),
    fanned as (
      insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status, notification_number)
      select gen_random_uuid(), m.subscription_id, m.event_id, m.sequence, m.subject,
        case when m.ordering = 'hold' and exists (
          select 1 from switchyard.deliveries p where p.subscription_id = m.subscription_id and p.subject = m.subject
            and p.status = 'dead' and p.superseded_by is null and p.event_sequence < m.sequence)
        then 'held' else 'pending' end,
        x.base + m.n
      from matched m left join notification_base x on x.id = m.subscription_id
      order by m.sequence
      on conflict (subscription_id, event_id) where reason = 'fanout' do nothing
      returning 1),
    woken as (select pg_notify(${CHANNEL_DELIVER}, '') from (select 1 from fanned limit 1) x)`;
}
