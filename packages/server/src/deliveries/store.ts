/**
 * The SQL of the delivery side, one named function each (pg-boss's "plans" style): `deliveries`
 * (also the deliver queue: claim, lease, finish, hold, release, rate tokens of the subscription
 * row, the admin reads, replays, purge), `delivery_attempts`, and `feed_cursors` (a pull
 * subscription's acknowledged position). Deliveries are created by the fan-out of
 * events/store.ts. Functions take an {@link Executor} so callers decide the transaction.
 */
import { type RawBuilder, sql } from 'kysely';
import { type EventRow, eventJson, type LeasedDelivery, matches } from '../events/store.ts';
import { FHIR_EVENT_TYPES } from '../fhir/map.ts';
import { type Executor, first, NO_FLUSH_WAIT, PLAN_STABLE, rows, statement } from '../storage/db.ts';
import { CHANNEL_DELIVER, type HeldLease, inLockOrder, renewLeases } from '../storage/queues.ts';
import type { SubscriptionRow } from '../storage/subscription-row.ts';

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
  /** The W3C traceparent of the attempt's `switchyard.deliver` span; null when tracing was off. */
  traceparent: string | null;
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
  return rows<DeliveryRow>(sql`with ${claimDue(leaseMarginMs, limit)} select * from claimed`, db);
}

/**
 * The claim as CTEs (defines `claimed`, the claimed rows, and `advanced`, the notification
 * counters it moved), one definition for {@link claimDeliveries} and {@link claimDeliveryWork}.
 *
 * A `fhir-r4-notification` delivery gets its event number here, at its first claim, from its
 * subscription's counter (`notification_events`, the Backport's events-since-subscription-start),
 * which the claim advances by the number of deliveries it numbers, in event-sequence order; a
 * delivery keeps its number on every later attempt and replay. Numbering at the claim rather than
 * at the fan-out: the counter row is locked for one claim statement (a batch of deliveries), not
 * for the whole normalize commit of every batch of events (which serialised the commits fanning out
 * to one notification subscription), and the numbers follow the order deliveries are sent in. Still
 * gapless: a number is taken in the same statement that claims the delivery, so it commits or rolls
 * back with the claim, and a claimed delivery keeps its number until it is sent (after a crash, the
 * next claim of it sends it with the same number). A delivery never claimed (held and then skipped)
 * takes no number. The counters are locked in id order (two claims cannot deadlock on them), `for
 * no key update` like the update itself: a stronger `for update` would also wait for, and hold up,
 * every commit inserting a delivery of the subscription (its foreign key check takes `for key
 * share` on the subscription row).
 *
 * The counters are locked before any delivery (`counters_first`, waited for by the walk through its
 * limit argument): a subscription row first, then its deliveries, the order of a disable (its park)
 * and a delete (its cascade). Locked after the walk's delivery locks, as before, a claim holding a
 * delivery waited for the row of a subscription being disabled or deleted, which waited for that
 * delivery: Postgres aborted one of them after `deadlock_timeout` (40P01; a 500 to the operator, or
 * a claim lost). It locks the counter of every enabled notification subscription with an unnumbered
 * pending delivery, whether or not the walk reaches it: claims of one such subscription take turns, as
 * they did at its counter. A counter not locked first (its delivery came due after that) is taken
 * only if free (`skip locked`, never waited for while deliveries are held); its deliveries are not
 * claimed this time otherwise, and the next claim takes them.
 */
function claimDue(leaseMarginMs: number, limit: number, skip: readonly string[] = []) {
  return sql`counters_first as (
      select s.id from switchyard.subscriptions s
      where s.format = 'fhir-r4-notification' and s.disabled_at is null and not (s.id = any(${skip as string[]}::text[]))
        -- Due or not (a never-attempted one put off behind its head): a probe of deliveries_sub_idx
        -- that meets the newest pending one first, unnumbered unless the subscription's only pending
        -- deliveries are retries (at most one a subject). In that index's order, so the plan cached
        -- at empty tables takes it, not the partial deliveries_due_seq_idx (every due delivery of
        -- every subscription); not "exists", which drops the order.
        and (select d.seq from switchyard.deliveries d where d.subscription_id = s.id and d.status = 'pending'
          and d.notification_number is null order by d.seq desc limit 1) is not null
      order by s.id for no key update of s),
    due as (${claimableDeliveries(sql`(select ${limit}::integer from (select count(*) from counters_first) f)`, skip)}),
    unnumbered as (
      select d.id, d.subscription_id,
        row_number() over (partition by d.subscription_id order by d.event_sequence, d.seq) as n
      from due join switchyard.deliveries d on d.id = due.id
      join switchyard.subscriptions s on s.id = d.subscription_id
      where s.format = 'fhir-r4-notification' and d.notification_number is null
        -- Evaluated once per statement (a one-time filter): without a notification subscription
        -- the claimed rows are not looked up again.
        and exists (select from switchyard.subscriptions n where n.format = 'fhir-r4-notification')),
    counted as (select u.subscription_id, count(*) as n from unnumbered u group by u.subscription_id),
    counters as (
      select s.id from switchyard.subscriptions s where s.id in (select subscription_id from counted)
      order by s.id for no key update skip locked),
    advanced as (
      update switchyard.subscriptions s set notification_events = s.notification_events + c.n
      from counted c join counters l on l.id = c.subscription_id
      where s.id = c.subscription_id
      returning s.id, s.notification_events as events, s.notification_events - c.n as base),
    claimed as (
      update switchyard.deliveries d set status = 'in_flight', lock_token = gen_random_uuid(), attempts = d.attempts + 1,
        locked_until = now() + make_interval(secs => (due.timeout_ms + ${leaseMarginMs}) / 1000.0), updated_at = now(),
        notification_number = coalesce(d.notification_number, a.base + u.n)
      from due left join unnumbered u on u.id = due.id left join advanced a on a.id = u.subscription_id
      where d.id = due.id and (u.id is null or a.id is not null) returning d.*)`;
}

/**
 * The deliveries a claim may take (head of line per subscription and subject), locked: the
 * `switchyard.claimable_deliveries` function (migrations 28 and 35) walks at most 256 due ones in
 * order, then the head of each line, and stops at the limit. A never-attempted delivery it meets
 * waiting behind a head scheduled for a retry is put off to that head's time, so claims stop reading
 * it while a subscriber is down ({@link releaseSubject} undoes that when the head is skipped). The
 * subscriptions in `skip` are passed over as a disabled one's are (their rows count in the walk's
 * 256, their lines cost one probe): those whose subscriber stopped answering the claiming process.
 * `limit` is an expression: {@link claimDue}'s makes the walk wait for the counters it locks first.
 */
function claimableDeliveries(limit: RawBuilder<unknown>, skip: readonly string[]) {
  return sql`select id, timeout_ms from switchyard.claimable_deliveries(${limit}, ${skip as string[]}::text[])`;
}

/** A claimed (or commit-leased) delivery with what attempting it needs: its subscription and its event (if still stored). */
export interface DeliveryWork {
  delivery: DeliveryRow;
  subscription: SubscriptionRow;
  event: EventRow | undefined;
}

/** A subscription row read back from `to_json(s.*)`: its dates and bigints as `SubscriptionRow` has them. */
function subscriptionOfJson(sub: SubscriptionRow): SubscriptionRow {
  return {
    ...sub,
    disabled_at: sub.disabled_at === null ? null : new Date(sub.disabled_at),
    created_at: new Date(sub.created_at),
    updated_at: new Date(sub.updated_at),
    disabled_at_sequence: sub.disabled_at_sequence === null ? null : String(sub.disabled_at_sequence),
    notification_events: String(sub.notification_events),
  };
}

/** A delivery row read back from `to_json(d.*)`: its dates and bigints as `DeliveryRow` has them. */
function deliveryOfJson(d: DeliveryRow): DeliveryRow {
  const date = (v: Date | null) => (v === null ? null : new Date(v));
  return {
    ...d,
    seq: String(d.seq),
    event_sequence: String(d.event_sequence),
    notification_number: d.notification_number === null ? null : String(d.notification_number),
    next_attempt_at: new Date(d.next_attempt_at),
    locked_until: date(d.locked_until),
    created_at: new Date(d.created_at),
    updated_at: new Date(d.updated_at),
    completed_at: date(d.completed_at),
  };
}

/**
 * Maps a leased row back: `sub` from `to_json(s.*)`, `ev` from {@link eventJson}, the delivery
 * either as columns or (`json`) from `to_json(d.*)`.
 */
export function deliveryWorkOf(
  delivery: DeliveryRow,
  sub: SubscriptionRow,
  ev: EventRow | null,
  json = false,
): DeliveryWork {
  return {
    delivery: json ? deliveryOfJson(delivery) : delivery,
    subscription: subscriptionOfJson(sub),
    event: ev === null ? undefined : ev,
  };
}

/**
 * A delivery the normalize commit leased (`commitNormalized` in events/store.ts) as the deliver
 * worker takes it: what {@link claimDeliveryWork} returns for a claimed one.
 *
 * @example
 * ```ts
 * const { leased } = await commitNormalized(db, messages, events, states, { limit: 4, marginMs: 15_000 });
 * deliverer.attempt(leased.map(leasedDeliveryWork), 4);
 * ```
 */
export function leasedDeliveryWork(leased: LeasedDelivery): DeliveryWork {
  return deliveryWorkOf(leased.delivery as unknown as DeliveryRow, leased.sub, leased.ev, true);
}

/**
 * {@link claimDeliveries} that also returns each delivery's subscription and event, so an attempt
 * needs no further reads (one statement for a batch instead of three per delivery). None of the
 * subscriptions in `skip` (the deliver worker's `stalledSubscriptions()`) are claimed.
 *
 * @example
 * ```ts
 * const works = await claimDeliveryWork(db, 15_000, 64, ['crm-that-hangs']);
 * ```
 */
export async function claimDeliveryWork(
  db: Executor,
  leaseMarginMs: number,
  limit: number,
  skip: readonly string[] = [],
): Promise<DeliveryWork[]> {
  const r = await rows<
    DeliveryRow & { sub: SubscriptionRow; sub_notification_events: string | null; ev: EventRow | null }
  >(
    // The subscription as the statement's snapshot saw it, and apart the counter this claim moved
    // (json, not jsonb, cannot be merged in SQL: eventJson in events/store.ts says why json).
    sql`${PLAN_STABLE}with ${claimDue(leaseMarginMs, limit, skip)}
        select c.*, to_json(s.*) as sub, a.events as sub_notification_events, ${eventJson('e')} as ev
        from claimed c join switchyard.subscriptions s on s.id = c.subscription_id
        left join advanced a on a.id = c.subscription_id
        left join switchyard.events e on e.id = c.event_id`,
    db,
  );
  return r.map(({ sub, sub_notification_events: advanced, ev, ...delivery }) =>
    deliveryWorkOf(
      delivery as DeliveryRow,
      advanced === null ? sub : { ...sub, notification_events: advanced },
      ev,
    ),
  );
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
 * `webhook-id`), except for one given back `unsent` (cut short before its POST went out), whose
 * attempt its claim counted is taken back: counted, it read as an attempt with no record of it.
 * One given back with its `attempt` (sent, then not recorded) gets that attempt's row now, as its
 * caller wrote it (a retry, saying why), whether or not the lease is still its own: its claim
 * counted it and the subscriber may have had it, and without the row the next attempt read as the
 * second with only itself recorded (rate-limit.int under load: attempts 2, one row, numbered 2). No
 * row is added where that attempt's number is recorded already (its record committed before the
 * connection was lost, or this release ran before and its answer was lost). Rows are locked in
 * {@link inLockOrder}. Returns how many were given back.
 */
export async function releaseDeliveries(
  db: Executor,
  given: readonly (Pick<HeldLease, 'id' | 'lockToken' | 'unsent'> & { attempt?: AttemptRecord })[],
): Promise<number> {
  if (given.length === 0) return 0;
  const held = inLockOrder(given, (h) => h.id);
  const lost = held.flatMap((h) => (h.attempt ? [h.attempt] : []));
  const r = await first<{ n: string }>(
    sql`with released as (
          update switchyard.deliveries d set status = 'pending', locked_until = null, lock_token = null,
            next_attempt_at = now(), updated_at = now(),
            attempts = case when v.unsent then greatest(0, d.attempts - 1) else d.attempts end
          from unnest(${held.map((h) => h.id)}::uuid[], ${held.map((h) => h.lockToken)}::uuid[],
            ${held.map((h) => h.unsent === true)}::boolean[]) as v(id, lock_token, unsent)
          where d.id = v.id and d.lock_token = v.lock_token and d.status = 'in_flight'
          returning 1),
        recorded as (
          insert into switchyard.delivery_attempts (delivery_id, attempt, started_at, latency_ms, status_code,
            response_snippet, error, outcome, traceparent)
          select a.* from unnest(${lost.map((a) => a.deliveryId)}::uuid[], ${lost.map((a) => a.attempt)}::integer[],
            ${lost.map((a) => a.startedAt.toISOString())}::timestamptz[], ${lost.map((a) => a.latencyMs)}::integer[],
            ${lost.map((a) => a.statusCode)}::integer[], ${lost.map((a) => a.responseSnippet)}::text[],
            ${lost.map((a) => a.error)}::text[], ${lost.map((a) => a.outcome)}::text[],
            ${lost.map((a) => a.traceparent)}::text[])
            as a(delivery_id, attempt, started_at, latency_ms, status_code, response_snippet, error, outcome, traceparent)
          where not exists (select 1 from switchyard.delivery_attempts x
            where x.delivery_id = a.delivery_id and x.attempt = a.attempt)
          returning 1),
        woken as (select pg_notify(${CHANNEL_DELIVER}, '') from (select 1 from released limit 1) x)
        select (select count(*) from released) as n, (select count(*) from recorded) as recorded,
          (select count(*) from woken) as woken`,
    db,
  );
  return Number(r?.n ?? 0);
}

/** The arguments of {@link FINISH_DELIVERIES}: the attempts as parallel columns. */
interface FinishDeliveriesArgs {
  ids: string[];
  lockTokens: string[];
  statuses: string[];
  /** Seconds until the next attempt. */
  delays: number[];
  attempts: number[];
  startedAt: string[];
  latencies: (number | null)[];
  statusCodes: (number | null)[];
  snippets: (string | null)[];
  errors: (string | null)[];
  outcomes: string[];
  traceparents: (string | null)[];
}

/** The attempt record's statement, built once (`statement` in storage/db.ts); {@link finishDeliveries} says what it does. */
const FINISH_DELIVERIES = statement<FinishDeliveriesArgs>(
  ($) =>
    sql`${PLAN_STABLE}with v as (
          -- Committed without waiting for its WAL flush: finishDeliveries says why that is safe.
          select t.* from ${NO_FLUSH_WAIT}, unnest(${$.ids}::uuid[], ${$.lockTokens}::uuid[], ${$.statuses}::text[], ${$.delays}::float8[],
            ${$.attempts}::integer[], ${$.startedAt}::timestamptz[], ${$.latencies}::integer[], ${$.statusCodes}::integer[],
            ${$.snippets}::text[], ${$.errors}::text[], ${$.outcomes}::text[], ${$.traceparents}::text[])
            as t(id, lock_token, status, delay_s, attempt, started_at, latency_ms, status_code, snippet, error, outcome,
              traceparent)),
        att as (
          insert into switchyard.delivery_attempts (delivery_id, attempt, started_at, latency_ms, status_code, response_snippet, error, outcome, traceparent)
          select id, attempt, started_at, latency_ms, status_code, snippet, error, outcome, traceparent from v),
        moved as (
          update switchyard.deliveries d set status = v.status,
            next_attempt_at = now() + make_interval(secs => v.delay_s),
            last_status_code = v.status_code, last_error = v.error, locked_until = null, lock_token = null,
            updated_at = now(), completed_at = case when v.status = 'succeeded' then now() else null end
          -- "is not distinct from", not "=": no index can serve it, so the rows are found by id
          -- (PLAN_STABLE in storage/db.ts; "=" let the generic plan walk the in-flight deliveries).
          from v where d.id = v.id and d.lock_token = v.lock_token and d.status is not distinct from 'in_flight'
          returning d.id, d.subscription_id, d.subject, d.event_sequence, d.seq)
        select m.id, exists (
          select 1 from switchyard.deliveries p where p.subscription_id = m.subscription_id and p.subject = m.subject
            and p.status = 'pending' and (p.event_sequence, p.seq) > (m.event_sequence, m.seq)) as successor
        from moved m`,
);

/**
 * Records the attempts of many deliveries and moves each on (retry or success) in one statement.
 * Returns, per delivery moved (lease still held), whether a later delivery of its subject waits:
 * only then do other processes need a wake-up; in no particular order (its rows are locked in
 * {@link inLockOrder}, as the lease renewal locks them).
 *
 * Its transaction commits without waiting for its WAL flush ({@link NO_FLUSH_WAIT}); the WAL
 * writer flushes it within a few hundred ms, and any commit that waits for its own flush first.
 * What that can cost is a Postgres crash in between: the record is lost, the delivery is still
 * `in_flight` under the lease it was attempted with, and once the lease runs out it is sent again
 * with the same `webhook-id`, as after a hub crash between the POST and its record (at least once,
 * docs/delivery.md). It cannot reorder a subject: its next delivery is only ever sent after a
 * delivery claim or a fan-out lease that saw this record, and those commits wait for their flush,
 * which writes out the WAL before them, this record's commit included. The records were a quarter
 * of the active backends in an end-to-end drain, most of it waiting for flushes while their slots
 * stayed taken: `pnpm bench e2e`'s hub, 7 alternated pairs, median 916 → 962 events/s
 * (bench/analysis.md, session 35). Run it as a statement of its own (autocommit): inside a caller's
 * transaction the setting would hold for the whole of that transaction.
 *
 * @example
 * ```ts
 * const moved = await finishDeliveries(db, [{ deliveryId, lockToken, status: 'succeeded', nextAttemptInMs: 0,
 *   attempt: 1, startedAt, latencyMs: 12, statusCode: 200, responseSnippet: null, error: null, outcome: 'succeeded',
 *   traceparent: null }]);
 * if (moved[0]?.successor) notify(CHANNEL_DELIVER);
 * ```
 */
export async function finishDeliveries(
  db: Executor,
  given: readonly (AttemptRecord & {
    lockToken: string;
    status: 'pending' | 'succeeded';
    nextAttemptInMs: number;
  })[],
): Promise<{ id: string; successor: boolean }[]> {
  if (given.length === 0) return [];
  const items = inLockOrder(given, (i) => i.deliveryId);
  return rows<{ id: string; successor: boolean }>(
    FINISH_DELIVERIES.with({
      ids: items.map((i) => i.deliveryId),
      lockTokens: items.map((i) => i.lockToken),
      statuses: items.map((i) => i.status),
      delays: items.map((i) => i.nextAttemptInMs / 1000),
      attempts: items.map((i) => i.attempt),
      startedAt: items.map((i) => i.startedAt.toISOString()),
      latencies: items.map((i) => i.latencyMs),
      statusCodes: items.map((i) => i.statusCode),
      snippets: items.map((i) => i.responseSnippet),
      errors: items.map((i) => i.error),
      outcomes: items.map((i) => i.outcome),
      traceparents: items.map((i) => i.traceparent),
    }),
    db,
  );
}

/**
 * Takes one token from a subscription's rate-limit bucket (refilled at `perSecond`, holding at most
 * one second's worth, at least one). Returns 0 when granted, else the ms until a token is there.
 * The bucket lives in the subscription row, so every hub process shares it. Its row is locked `for
 * no key update`, like the update itself, as the notification counters are (`claimDue`): `for
 * update` made every normalize commit fanning out to the subscription wait for it (the foreign
 * key check's `for key share`), its events' sequences drawn and uncommitted meanwhile.
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
          from switchyard.subscriptions where id = ${subscriptionId} for no key update)
        update switchyard.subscriptions s
          set rate_tokens = case when cur.t >= 1 then cur.t - 1 else cur.t end, rate_refilled_at = clock_timestamp()
        from cur where s.id = cur.id
        returning cur.t >= 1 as granted, cur.t as tokens`,
    db,
  );
  if (!r || r.granted) return 0;
  return Math.max(1, Math.ceil(((1 - r.tokens) / perSecond) * 1000));
}

/** One attempt of a delivery as recorded (a `delivery_attempts` row, before its id). */
export interface AttemptRecord {
  deliveryId: string;
  /** Its number: the delivery's `attempts` as its claim counted it. */
  attempt: number;
  startedAt: Date;
  latencyMs: number | null;
  statusCode: number | null;
  responseSnippet: string | null;
  error: string | null;
  outcome: string;
  traceparent: string | null;
}

export async function insertAttempt(db: Executor, a: AttemptRecord): Promise<void> {
  await sql`insert into switchyard.delivery_attempts (delivery_id, attempt, started_at, latency_ms, status_code, response_snippet, error, outcome, traceparent)
      values (${a.deliveryId}, ${a.attempt}, ${a.startedAt}, ${a.latencyMs}, ${a.statusCode}, ${a.responseSnippet}, ${a.error}, ${a.outcome}, ${a.traceparent})`.execute(
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

/**
 * What a deliver pass that claimed nothing does, in one statement: marks due pending deliveries
 * that wait behind a dead one (`hold`) as `held`, covering the race where a fan-out and the death
 * of its predecessor commit at the same time (each missing the other), and returns when the next
 * known delivery falls due (a retry, or a lease running out), for the loop to sleep until then.
 *
 * Its cost does not grow with a backlog. The pass runs whenever the claim finds nothing, which is
 * exactly when deliveries wait that cannot go: a subscription disabled, a subscriber down with its
 * retries scheduled, one subject's deep queue behind its head. So the candidates are found from
 * the dead heads (few: `deliveries_settled_idx`, bounded by what retention keeps) and their lines,
 * not from every due pending row, and each due time is the first entry of an index (the pending
 * ones in `deliveries_due_seq_idx`, the leases per subscription in `deliveries_sub_idx`), not a
 * scan of every row waiting. With 100,000 deliveries waiting it took 180 ms (due, not claimable)
 * or 27 ms (retries scheduled) when it read them all; ~1 ms now (bench/analysis.md, session 24;
 * `deliveries/claim.int.test.ts` holds the bound).
 *
 * @example
 * ```ts
 * const nextDueAt = await settleIdleDeliveries(db); // undefined: nothing scheduled
 * ```
 */
export async function settleIdleDeliveries(db: Executor): Promise<Date | undefined> {
  const r = await first<{ at: Date | null; released: string }>(
    // The fences (a materialized CTE, a lateral subquery with "offset 0", the ids as an array) keep
    // this join order whatever the statistics say: from the dead heads to their lines, then each
    // candidate by its key. Left to the planner before an ANALYZE (a table that filled since), it
    // drove from the pending rows and probed a line per row: 6.5 s with one subject 10,000 deep.
    sql`with behind_dead as materialized (
          select d.id, p.id as head from switchyard.deliveries p
          join switchyard.subscriptions s on s.id = p.subscription_id and s.ordering = 'hold'
          cross join lateral (
            select d.id from switchyard.deliveries d
            where d.subscription_id = p.subscription_id and d.subject = p.subject
              and (d.event_sequence, d.seq) > (p.event_sequence, p.seq) and d.status = 'pending' and d.next_attempt_at <= now()
            offset 0) d
          where p.status = 'dead' and p.superseded_by is null),
        heads_locked as (
          -- The dead rows the check below share-locks, locked first in the one order of dead rows,
          -- (event_sequence, seq), a replay-all's (listDeadUnsuperseded): left to the check, they were
          -- locked in the order of the held candidates, and a replay-all holding one and waiting for
          -- another this held, while this waited for the first, deadlocked
          -- (deliveries/dead-lock-order.int.test.ts). The check's own lock then finds its row taken.
          select p.id from switchyard.deliveries p
          where p.id = any(array(select head from behind_dead)) and p.status = 'dead' and p.superseded_by is null
          order by p.event_sequence, p.seq
          for share),
        held as (
          -- behind_dead took only 'hold' subscriptions' lines (the same snapshot): no join here.
          update switchyard.deliveries d set status = 'held', updated_at = now()
          where d.id = any(array(select id from behind_dead)) and d.status = 'pending' and d.next_attempt_at <= now()
            -- Before any row: the dead rows in their order ("heads_locked").
            and (select count(*) from heads_locked) >= 0
            and exists (
              select 1 from switchyard.deliveries p where p.subscription_id = d.subscription_id and p.subject = d.subject
                and p.status = 'dead' and p.superseded_by is null and (p.event_sequence, p.seq) < (d.event_sequence, d.seq)
              -- A replay of that dead one in progress (it locks the row, sets superseded_by and lets
              -- the held ones go) is waited for and the row read again (behind_dead read the
              -- statement's snapshot, without locks): unlocked, this held what the replay let go.
              for share of p)
          returning 1),
        released as (
          -- Held rows of a subscription switched from 'hold' to 'release' (the API, or the config
          -- file at a start): under 'release' nothing holds them, and only a replay or skip of the
          -- dead row released them before. Few: deliveries_settled_idx has the held rows.
          update switchyard.deliveries d set status = 'pending', updated_at = now()
          from switchyard.subscriptions s
          where d.status = 'held' and s.id = d.subscription_id and s.ordering = 'release'
          returning 1)
        -- Only future times: a due delivery that was not claimable waits behind its subject's head,
        -- and the head finishing wakes the loop; counting it here would spin the loop. The update's
        -- rows were due, not among these times, so the snapshot from before it answers the same.
        select least(
            (select min(next_attempt_at) from switchyard.deliveries where status = 'pending' and next_attempt_at > now()),
            (select min(f.at) from switchyard.subscriptions s cross join lateral (
              select min(d.locked_until) as at from switchyard.deliveries d
              where d.subscription_id = s.id and d.status = 'in_flight' and d.locked_until > now()) f)) as at,
          (select count(*) from held) as held, (select count(*) from released) as released`,
    db,
  );
  // Released rows are due now: the loop claims them at once rather than at its backstop.
  if (r && Number(r.released) > 0) return new Date();
  return r?.at ?? undefined;
}

/**
 * The `next_attempt_at` of a disabled subscription's waiting deliveries ({@link parkDeliveries}):
 * the last day a timestamp of the API can show. Parked there, they sit at the end of
 * `deliveries_due_seq_idx`, past everything due, where the delivery claim's walk never reaches
 * them. Left due, they were at its head, and a walk that filters them out read every one of them
 * on every claim of every process (`claimable_deliveries`, migration 19): 10,000 rows per claim
 * with 10,000 parked. A disabled subscription's backlog waits for days (an operator disabled an
 * endpoint that is gone; the hub disables one after consecutive deaths).
 */
export const PARKED_UNTIL = '9999-12-31T00:00:00.000Z';

/**
 * Parks the pending deliveries of a subscription being disabled: due at {@link PARKED_UNTIL}.
 * `disableSubscription` (subscriptions/store.ts) runs it in the transaction that disables the
 * subscription. A delivery in flight meanwhile keeps the time its outcome gives it (the claim
 * skips it while the subscription is disabled).
 *
 * @example
 * ```ts
 * await parkDeliveries(trx, subscriptionId); // in the disabling transaction
 * ```
 */
export async function parkDeliveries(db: Executor, subscriptionId: string): Promise<void> {
  await sql`update switchyard.deliveries set next_attempt_at = ${PARKED_UNTIL}::timestamptz, updated_at = now()
      where subscription_id = ${subscriptionId} and status = 'pending'`.execute(db);
}

/**
 * Makes a re-enabled subscription's parked deliveries due now ({@link parkDeliveries});
 * `enableSubscription` runs it in the transaction that enables it. Their retry times were given up when they were parked: the
 * subscription is back, so each goes at once, in its line's order.
 */
export async function unparkDeliveries(db: Executor, subscriptionId: string): Promise<void> {
  await sql`update switchyard.deliveries set next_attempt_at = now(), updated_at = now()
      where subscription_id = ${subscriptionId} and status = 'pending'
        and next_attempt_at >= ${PARKED_UNTIL}::timestamptz`.execute(db);
}

/**
 * When a delivery made now (a replay, a line let go) is due: now, or {@link PARKED_UNTIL} while its
 * subscription is disabled, as {@link parkDeliveries} would have parked it. Due now, an operator's
 * replay of a disabled subscription (every event since a time, say) sat at the head of the claim's
 * walk until the subscription was enabled, read by every claim, and its `nextAttemptAt` said it
 * was being sent.
 */
function dueNowUnlessParked(subscriptionId: string) {
  return sql`coalesce((select case when s.disabled_at is not null then ${PARKED_UNTIL}::timestamptz end
      from switchyard.subscriptions s where s.id = ${subscriptionId}), now())`;
}

/**
 * Lets a subject's line go again after its head was replayed or skipped: the deliveries held
 * behind a dead head, and those the delivery claim put off to a waiting head's retry time (never
 * attempted, due later but not parked; `claimable_deliveries`, migration 28), are due now. Without
 * the second, skipping a head whose retry is hours away left the rest of its line waiting for
 * that retry.
 *
 * @example
 * ```ts
 * const row = await skipDelivery(trx, id);
 * if (row) await releaseSubject(trx, row.subscription_id, row.subject);
 * ```
 */
export async function releaseSubject(db: Executor, subscriptionId: string, subject: string): Promise<void> {
  await sql`update switchyard.deliveries set status = 'pending', next_attempt_at = ${dueNowUnlessParked(subscriptionId)},
        updated_at = now()
      where subscription_id = ${subscriptionId} and subject = ${subject}
        and (status = 'held' or (status = 'pending' and attempts = 0 and next_attempt_at > now()
          and next_attempt_at < ${PARKED_UNTIL}::timestamptz))`.execute(db);
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
 * then sees the first one's `superseded_by`). Its subscription's row first (`for key share`, as the
 * replay's foreign key check would), so a delete of the subscription waits for the replay, or the
 * replay for the delete (then no row): locked in the other order, the delete's cascade waited for
 * the delivery's lock and the replay's insert for the delete, and Postgres aborted one of them
 * after a second (40P01 deadlock: a 500 to the replay or to `DELETE /v1/subscriptions/{id}`).
 */
export async function lockDelivery(db: Executor, id: string): Promise<DeliveryRow | undefined> {
  return first<DeliveryRow>(
    sql`select * from switchyard.deliveries
        where id = ${id} and exists (${subscriptionKeyShared(sql`(select subscription_id from switchyard.deliveries where id = ${id})`)})
        for update`,
    db,
  );
}

/**
 * The subquery that locks a subscription's row `for key share` (what a foreign key check of a row
 * referencing it takes) before a statement locks its deliveries ({@link lockDelivery}).
 */
function subscriptionKeyShared(subscriptionId: RawBuilder<unknown> | string) {
  return sql`select 1 from switchyard.subscriptions s where s.id = ${subscriptionId} for key share`;
}

/**
 * A new delivery of the same event (same event id, so the subscriber can deduplicate). The
 * delivery replayed points at it (`superseded_by`): that is what makes it "replayed" rather than a
 * dead letter still waiting.
 */
export async function insertReplay(db: Executor, newId: string, of: DeliveryRow): Promise<DeliveryRow> {
  const row = await first<DeliveryRow>(
    sql`insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, reason, replay_of,
          notification_number, next_attempt_at)
        values (${newId}, ${of.subscription_id}, ${of.event_id}, ${of.event_sequence}::bigint, ${of.subject}, 'replay', ${of.id},
          ${of.notification_number}::bigint, ${dueNowUnlessParked(of.subscription_id)})
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
 * replays them): a replay of one of them at the same moment waits, then finds it replayed. The
 * subscription's row is locked first, as {@link lockDelivery} does (a delete of it deadlocked
 * with the replays).
 */
export async function listDeadUnsuperseded(db: Executor, subscriptionId: string): Promise<DeliveryRow[]> {
  return rows<DeliveryRow>(
    sql`select * from switchyard.deliveries where subscription_id = ${subscriptionId} and status = 'dead'
          and superseded_by is null and exists (${subscriptionKeyShared(subscriptionId)})
        order by event_sequence, seq for update`,
    db,
  );
}

/**
 * Replays every event matching the subscription since a time (or after a sequence) as new
 * deliveries. A FHIR subscription gets only events with a FHIR meaning (`events.fhir`; an event
 * stored before that column existed goes by its type, and is skipped at delivery if it turns out to
 * be a catalog document). A `fhir-r4-notification` replay keeps the event number of the
 * event's original delivery; an event the subscription never had (or whose delivery was never
 * claimed) is numbered when the replay is claimed ({@link claimDeliveries}).
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
           where ${numbered} and d.subscription_id = ${sub.id} and d.event_id = e.id and d.reason = 'fanout') as known
        from switchyard.events e
        where ${matches(sub.event_types, sub.sources)}
          and (${sub.format} = 'cloudevents'
            or coalesce(e.fhir, e.type = any(${[...FHIR_EVENT_TYPES]}::text[])))
          and (${f.since ?? null}::timestamptz is null or e.created_at >= ${f.since ?? null})
          and (${f.afterSequence ?? null}::bigint is null or e.sequence > ${f.afterSequence ?? null}::bigint))
      insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, reason, notification_number,
        next_attempt_at)
      select gen_random_uuid(), ${sub.id}, c.id, c.sequence, c.subject, 'replay', c.known, ${dueNowUnlessParked(sub.id)}
      from candidates c
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

export async function purgeDeliveries(db: Executor, olderThan: Date, batch: number): Promise<number> {
  // A dead delivery that still holds its subject's line (held rows behind it, `ordering: hold`)
  // stays whatever its age: only its replay or skip releases them, and purged it left them held,
  // and every later delivery of the subject waiting behind them, for good.
  const r = await sql`delete from switchyard.deliveries where id in (
      select d.id from switchyard.deliveries d where d.completed_at < ${olderThan}
        and d.status in ('succeeded', 'skipped', 'dead')
        and not (d.status = 'dead' and d.superseded_by is null and exists (
          select 1 from switchyard.deliveries h where h.subscription_id = d.subscription_id
            and h.subject = d.subject and h.status = 'held'))
      limit ${batch})`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}
