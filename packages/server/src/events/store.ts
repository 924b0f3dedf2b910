/**
 * The SQL of the `events` table, one named function each (pg-boss's "plans" style): storing
 * (`commitNormalized`, the normalize commit, which writes the events and finishes their messages in
 * one statement), the fan-out that every statement storing events ends with (`fanOutStoredEvents`,
 * also used by emit.ts), reads and listing, the pull feed's page, the sequence, the purge,
 * and the SQL form of the subscription filter (`typeMatchesAny`, `matches`).
 *
 * Why the fan-out is here and not in deliveries/store.ts although it inserts deliveries: it is part
 * of storing an event (both statements that store events end with it), and the deliveries store
 * reads events (a claimed delivery comes with its event, a replay selects events): with the
 * fan-out there, `events` and `deliveries` would import each other.
 * Functions take an {@link Executor} so callers decide the transaction.
 */
import type { EventEnvelope, JsonValue } from '@switchyard/core';
import { type RawBuilder, sql } from 'kysely';
import { projectStoredEvents } from '../entities/current.ts';
import {
  type AliasRow,
  type NormalizedStateWrite,
  normalizedStateColumns,
  type ProposedAlias,
  proposedAliasColumns,
  storeNormalizedState,
  storeProposedAliases,
} from '../entities/store.ts';
import { hasFhirMeaning } from '../fhir/subscription.ts';
import {
  type Executor,
  first,
  jsonBatchOf,
  jsonBatchText,
  PLAN_STABLE,
  rows,
  statement,
} from '../storage/db.ts';
import { CHANNEL_DELIVER, CHANNEL_FEED, FEED_PAYLOAD_MAX, inLockOrder } from '../storage/queues.ts';
import { retryingSubscriptionGone } from '../storage/subscription-gone.ts';
import type { SubscriptionRow } from '../storage/subscription-row.ts';

/** Digits of the widest sequence (a Postgres bigint, at most 9223372036854775807). */
const SEQUENCE_DIGITS = 19;

/**
 * An event's CloudEvents `sequence` attribute: its feed position zero-padded to 19 digits. The
 * CloudEvents sequence extension (cloudevents/extensions/sequence.md) says a receiver orders events
 * by comparing `sequence` as strings, "which might need padding (leading zeros)": unpadded, "10"
 * came before "9". The digits still read as the same number (a cursor, BigInt, parseInt).
 *
 * @example
 * ```ts
 * sequenceAttribute('1042'); // '0000000000000001042'
 * ```
 */
export function sequenceAttribute(sequence: string): string {
  return sequence.padStart(SEQUENCE_DIGITS, '0');
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
  /** W3C tracestate of that trace (migration 48), resumed with the traceparent; null when none. */
  tracestate?: string | null;
}

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
  /** W3C tracestate resumed with it (absent: tracing off or none). */
  tracestate?: string | null;
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
export function matches(types: readonly string[] | null, sources: readonly string[] | null) {
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

/**
 * How far an event's `created_at` may trail the order of its sequence, as {@link listEvents}
 * assumes when it turns a time window into sequence bounds. Both are read as the row is inserted
 * (`created_at` is `clock_timestamp()` since migration 36; the normalize commit draws a batch's
 * sequences after taking its subjects' locks, a moment before inserting its rows, in the same
 * statement): they disagree by how long that statement takes between the two, milliseconds.
 *
 * The window's pages start this far from it: each bound is this much of the hub's events away
 * from the window, walked before the first of its events. It was an hour: a hub storing more than
 * 10,000 events an hour ({@link EVENT_LIST_SCAN}, three a second) answered a window's first pages
 * empty with a cursor, and a client walked them to the window (the dashboard's Older, once per
 * 10,000 events) and again past its start to learn that the list had ended
 * (events/busy-window.int.test.ts). Ten seconds is fewer than 10,000 events at the hub's measured
 * throughput (under 1,000 a second, docs/benchmarks.md), so the first page reaches the window.
 * What it does not cover: a statement stalled more than ten seconds between drawing a sequence and
 * writing its row, or the database's clock stepped back by more; an event of it within ten
 * seconds of a window's end may be left out of that window's list (it is in the next window's).
 * Only this list reads the bounds: the feed, retention and replays go by sequence.
 */
const EVENT_CLOCK_SLACK = "interval '10 seconds'";

/**
 * How many events one page of {@link listEvents} looks at, at most: the events its indexes select
 * (all of them, an instance's, a subject's, between the window's or the cursor's bounds), of which
 * the type and time filters keep the matching ones. A page that stops there says where
 * ({@link EventsPage.scannedTo}), and the next one goes on from it, as the pull feed's does.
 */
export const EVENT_LIST_SCAN = 10_000;

/** A page of {@link listEvents}. */
export interface EventsPage {
  /** The matching events, in the order asked. */
  rows: EventRow[];
  /**
   * The sequence of the last event looked at when the page stopped after {@link EVENT_LIST_SCAN}
   * events without filling up: the events up to it were all looked at, the next page starts after
   * it. Null when the page filled up or looked at every event there is.
   */
  scannedTo: string | null;
}

/**
 * The events matching every given filter, by sequence (newest first unless `ascending`), looking
 * at {@link EVENT_LIST_SCAN} events at most.
 *
 * A time window (`since`, `until`) is also turned into sequence bounds read from
 * `events_created_idx` ({@link EVENT_CLOCK_SLACK}): an event stored more than the slack after
 * `until` has a sequence above every event of the window, and one stored more than the slack
 * before `since` a sequence below them. Without the bounds a window far back walked `events_pkey`
 * from the newest event to the window (2.7 s at 900,000 events, two months back: a dashboard
 * audit); with them the walk starts at most ten seconds of events from the window
 * (events/list-cost.int.test.ts, events/busy-window.int.test.ts).
 *
 * With `source` (and no `subject`, whose own index is narrower), the sequences come first from
 * `events_source_idx` (source, sequence), in order, and each event is then read by its key: the
 * instance's events, newest first, however they are spread. Filtered in one statement, Postgres
 * took the instance's events as spread evenly over the table and walked `events_pkey` backward
 * from the newest event, throwing away every other instance's (1.05 to 1.3 s at 2 million events
 * for an instance with no or only old events). The sorted subquery and the `limit 1` keep the two
 * steps apart (neither is folded into the outer query).
 *
 * The type filter (patterns: an `OR` no index serves) and the time filter are applied to the
 * events so selected: a type with no events read every event of the table (0.95 to 1.56 s at 2
 * million) before answering nothing. The scan is bounded instead, its last event returned as a
 * sentinel (`n` = the bound) whether it matches or not, so one statement says where it stopped.
 * No index on the type: it would be written on every event stored (docs/api.md, "Events").
 *
 * @example
 * ```ts
 * await listEvents(db, { since: new Date('2026-10-01'), until: new Date('2026-10-02'), limit: 50, ascending: false });
 * ```
 */
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
): Promise<EventsPage> {
  const order = f.ascending ? sql`asc` : sql`desc`;
  const bounds = (e: string) => sql`
          (${f.afterSequence ?? null}::bigint is null or ${sql.ref(e)} > ${f.afterSequence ?? null}::bigint)
          and (${f.beforeSequence ?? null}::bigint is null or ${sql.ref(e)} < ${f.beforeSequence ?? null}::bigint)
          and ${sql.ref(e)} > coalesce((select x.sequence from switchyard.events x
            where x.created_at < ${f.since ?? null}::timestamptz - ${sql.raw(EVENT_CLOCK_SLACK)}
            order by x.created_at desc limit 1), 0)
          and ${sql.ref(e)} < coalesce((select x.sequence from switchyard.events x
            where x.created_at >= ${f.until ?? null}::timestamptz + ${sql.raw(EVENT_CLOCK_SLACK)}
            order by x.created_at limit 1), 9223372036854775807)`;
  const matched = sql`${matches(f.types ?? null, null)}
          and (${f.since ?? null}::timestamptz is null or e.created_at >= ${f.since ?? null})
          and (${f.until ?? null}::timestamptz is null or e.created_at < ${f.until ?? null})`;
  const found =
    f.source !== undefined && f.subject === undefined
      ? await rows<EventRow & { matched: boolean; n: string }>(
          sql`select e.*, s.n from (
                select s.sequence, row_number() over (order by s.sequence ${order}) as n from switchyard.events s
                where s.source = ${f.source} and ${bounds('s.sequence')}
                order by s.sequence ${order} limit ${EVENT_LIST_SCAN}) s
              cross join lateral (
                select e.*, ${matched} as matched from switchyard.events e where e.sequence = s.sequence limit 1) e
              where e.matched or s.n = ${EVENT_LIST_SCAN}
              order by s.sequence ${order} limit ${f.limit}`,
          db,
        )
      : await rows<EventRow & { matched: boolean; n: string }>(
          sql`select e.* from (
                select e.*, ${matched} as matched, row_number() over (order by e.sequence ${order}) as n
                from switchyard.events e
                where (${f.subject ?? null}::text is null or e.subject = ${f.subject ?? null})
                  and (${f.source ?? null}::text is null or e.source = ${f.source ?? null})
                  and ${bounds('e.sequence')}
                order by e.sequence ${order} limit ${EVENT_LIST_SCAN}) e
              where e.matched or e.n = ${EVENT_LIST_SCAN}
              order by e.sequence ${order} limit ${f.limit}`,
          db,
        );
  const page: EventsPage = { rows: [], scannedTo: null };
  for (const { matched: hit, n, ...row } of found) {
    if (Number(n) === EVENT_LIST_SCAN) page.scannedTo = row.sequence;
    if (hit) page.rows.push(row as EventRow);
  }
  return page;
}

export async function maxEventSequence(db: Executor): Promise<string> {
  const r = await first<{ s: string | null }>(
    sql`select max(sequence)::text as s from switchyard.events`,
    db,
  );
  return r?.s ?? '0';
}

/**
 * How long a transaction that drew an event's sequence may take to commit, seconds, as the pull
 * feed assumes. Sequences are drawn when events are inserted but become visible at commit, and
 * concurrent transactions commit in any order (only one subject's are ordered): a feed that served
 * sequence 8 while 7 was still uncommitted would move its reader's cursor past 7 for good. So an
 * event that follows a missing sequence is served once it is this old (its `created_at`, read as the
 * row is inserted, beside its sequence: migration 36); until then the missing one may still commit. A sequence rolled back (a refused chunk) is missing for good and delays the
 * event after it by this much, once. The hub's event-storing transactions are single statements or
 * short transactions (the normalize commit, a command's outcome, a gate's events): milliseconds.
 */
export const FEED_COMMIT_WINDOW_S = 3;

/**
 * How long, seconds, an event after a missing sequence is held while a writing transaction that
 * began before it was stored is still open ({@link pollFeed}). The commit window alone assumed
 * every such transaction commits within {@link FEED_COMMIT_WINDOW_S}: one that waited longer (for
 * a lock on a subscription row, pg-boss's job table, a stalled disk) lost its event to a reader
 * that moved on (fault-injection audit: 8 s on a row lock, the event never served). Bounded, so a
 * writer that never ends (an operator's session left open in the hub's database) delays the feed
 * by this much after a gap instead of stopping it.
 */
export const FEED_WRITER_HOLD_S = 300;

/** A page of a pull subscription's feed: its events, and how far the read looked. */
export interface FeedPage {
  /** The events the subscription is served, in sequence order. */
  rows: EventRow[];
  /**
   * The greatest sequence stored after the position and before the hold-back horizon, matching or
   * not (null: none): a page that is not full looked at every event up to it, so a reader may go
   * on from there. Read by the same statement as `rows`, so by the same snapshot.
   */
  through: string | null;
  /**
   * The read stopped after {@link EVENT_LIST_SCAN} events (`through` is the last it looked at)
   * without filling the page: more may follow, so a long-poll answers at once instead of waiting.
   */
  stopped: boolean;
}

/**
 * The events of a pull subscription after a position, in sequence order, up to the first event
 * that follows a missing sequence and is younger than {@link FEED_COMMIT_WINDOW_S}, or younger
 * than {@link FEED_WRITER_HOLD_S} while a transaction of this database that has written
 * (`pg_stat_activity.backend_xid`) and began before it was stored is still open: not served yet,
 * as the missing one may still commit, and serving past it would lose it to a reader that
 * acknowledges. (A transaction's id is assigned by its first write, the insert that draws the
 * sequence: the commit window covers the moment between.) With them, how far the read looked
 * ({@link FeedPage.through}): a reader filtered to a few types or sources moves on past the events
 * it is not served, where its position stayed behind them, held retention of every event after it
 * and aged `switchyard_feed_oldest_unread_age_seconds` while it had read everything it could.
 *
 * A read looks at {@link EVENT_LIST_SCAN} events at most, as the events list does: a subscription
 * filtered to types or sources that match none of millions of events looked through every one of
 * them in one statement (242–327 ms at 2 million events, first read from 0); it now stops there,
 * `through` the last event it looked at ({@link FeedPage.stopped}), and the next read goes on from it.
 *
 * @example
 * ```ts
 * const page = await pollFeed(db, subscription, '41', 100); // events 42.. that the subscription matches
 * ```
 */
export async function pollFeed(
  db: Executor,
  sub: SubscriptionRow,
  afterSequence: string,
  limit: number,
): Promise<FeedPage> {
  // One statement: the rows and `through` read by one snapshot, so no event committing between two
  // reads is passed over. `left join lateral` keeps the one row of `through` when nothing matches.
  const found = await rows<EventRow & { feed_through: string | null; feed_stopped: boolean }>(
    sql`with writers as (
          -- The oldest open transaction of this database that has written, this session's aside
          -- (its sessions are the hub's role's, whose rows pg_stat_activity shows in full).
          select least(min(xact_start), now()) as since from pg_stat_activity
          where datname = current_database() and backend_xid is not null and pid <> pg_backend_pid()),
        horizon as (
          select coalesce(min(y.sequence), 9223372036854775807) as s from switchyard.events y, writers w
          where y.created_at > least(now() - make_interval(secs => ${FEED_COMMIT_WINDOW_S}),
                                     greatest(w.since, now() - make_interval(secs => ${FEED_WRITER_HOLD_S})))
            and y.sequence - 1 > ${afterSequence}::bigint
            and not exists (select 1 from switchyard.events p where p.sequence = y.sequence - 1)),
        -- The EVENT_LIST_SCAN-th event after the position (null: fewer are stored before the
        -- horizon): the read looks no further.
        bound as materialized (
          select (select x.sequence from switchyard.events x
                  where x.sequence > ${afterSequence}::bigint and x.sequence < h.s
                  order by x.sequence offset ${EVENT_LIST_SCAN - 1} limit 1) as s, h.s as horizon
          from horizon h),
        scanned as materialized (
          select coalesce(b.s, (select max(x.sequence) from switchyard.events x
                                where x.sequence > ${afterSequence}::bigint and x.sequence < b.horizon))::text
                   as feed_through,
                 b.s is not null as feed_stopped
          from bound b)
        select e.*, t.feed_through, t.feed_stopped from scanned t
        left join lateral (
          select e.* from switchyard.events e
          where e.sequence > ${afterSequence}::bigint
            and e.sequence <= t.feed_through::bigint
            and ${matches(sub.event_types, sub.sources)}
          order by e.sequence limit ${limit}) e on true
        order by e.sequence`,
    db,
  );
  const through = found[0]?.feed_through ?? null;
  const stopped = found[0]?.feed_stopped === true;
  const events: EventRow[] = [];
  for (const { feed_through: _, feed_stopped: __, ...row } of found)
    if (row.id !== null) events.push(row as EventRow);
  return { rows: events, through, stopped };
}

/**
 * Whether an event the subscription would be served is stored after `afterSequence`, the feed's
 * hold-back horizon aside: after an empty {@link pollFeed} page, true means such an event is held
 * back (it follows a missing sequence), and becomes servable without any NOTIFY saying so (the
 * missing one rolled back, or its writer ended): a long-poll looks again on a timer instead of
 * waiting for a wake-up (subscriptions/feed.ts).
 *
 * @example
 * ```ts
 * if ((await pollFeed(db, sub, after, 100)).length === 0 && (await feedHasEventsAfter(db, sub, after))) retrySoon();
 * ```
 */
export async function feedHasEventsAfter(
  db: Executor,
  sub: SubscriptionRow,
  afterSequence: string,
): Promise<boolean> {
  const r = await first<{ held: boolean }>(
    sql`select exists (select 1 from switchyard.events e
          where e.sequence > ${afterSequence}::bigint and ${matches(sub.event_types, sub.sources)}) as held`,
    db,
  );
  return r?.held === true;
}

/**
 * The greatest sequence ever drawn for an event ('0' before the first): no feed position a poll gave
 * is beyond it. Read from the sequence, not `max(sequence)` of the rows: retention may have removed
 * every event, and a reader's cursor from before stays good.
 */
export async function newestSequence(db: Executor): Promise<string> {
  const r = await sql<{ s: string | null }>`
    select pg_sequence_last_value('switchyard.events_sequence_seq'::regclass)::text as s`.execute(db);
  return r.rows[0]?.s ?? '0';
}

/**
 * Deletes up to `batch` events stored before `olderThan`, oldest first (their deliveries and
 * attempts go with them, by the trigger of migration 21). An event stays, whatever its age, while a
 * delivery still owes it (pending, in flight, held) or a dead delivery not yet replayed refers to it:
 * deleting that event deleted the dead delivery with it, and one that held its subject's line
 * (`ordering: hold`, kept by `purgeDeliveries` for its replay or skip) left the deliveries behind it
 * held for good, with nothing left to replay or skip.
 *
 * An enabled pull subscription's unread events are its undelivered deliveries: an event numbered
 * after the lowest acknowledged position of the enabled pull subscriptions (0 for one that never
 * acknowledged) stays while it is younger than `unreadBefore` (`retention.unreadEvents`, the cap
 * that keeps a reader gone for good from holding the table for ever). One position bounds the
 * whole table, not a match per event and subscription: the kept events are the newest, so a batch
 * still walks only the events it deletes (the events it keeps come after them in `created_at`
 * order); the price is that events the slowest reader would not be served stay too.
 *
 * Events removed after a pull subscription's position that it would have been served (stored
 * since it was created: a disabled subscription, or past the cap) are noted in `feed_gaps` (the
 * highest such number and how many), in the same statement: the feed answers the gap to its
 * reader ({@link feedGap}) instead of skipping it silently. A pull subscription deleted while the
 * statement runs costs a retry of it (`retryingSubscriptionGone`).
 *
 * @example
 * ```ts
 * const day = 86_400_000;
 * await purgeEvents(db, new Date(Date.now() - 90 * day), 1000, new Date(Date.now() - 180 * day)); // 1000 while a backlog lasts
 * ```
 */
export async function purgeEvents(
  db: Executor,
  olderThan: Date,
  batch: number,
  unreadBefore: Date = new Date(0),
): Promise<number> {
  // Oldest first from events_created_idx, each event's deliveries probed by deliveries_event_idx:
  // the "offset 0" fence keeps the not-exists a probe per event (Postgres does not turn a subquery
  // with an offset into a join). Left to the planner, at 1.2 million events and 2.4 million
  // deliveries a batch read every pending, held and dead delivery (a materialized scan, 0.65 s of
  // the batch's 0.9 s; a subscriber down for a day makes that set a day's traffic), or merged over
  // events_id_key, reading events in uuid order, most of them younger than the cutoff (1.7 s).
  // With the probe: 0.15 s for the batch's selection. The batch's numbers are handed to the
  // delete as an array (`= any(array(…))`), each row found by the primary key: inside the CTE, an
  // `in (…)` was planned as a hash join over a sequential scan of every event. The readers (pull subscriptions, a handful)
  // are read once per statement; the gap note joins only the batch's deleted rows to them.
  // Run again when a pull subscription it notes a gap for is deleted meanwhile: the refusal of its
  // feed_gaps row failed the retention run, every later table of it left for the next run.
  const r = await retryingSubscriptionGone(db, () =>
    first<{ n: number }>(
      sql`with readers as materialized (
          select s.id, s.event_types, s.sources, s.created_at, s.disabled_at is null as enabled,
                 coalesce(c.cursor, 0) as cursor
          from switchyard.subscriptions s left join switchyard.feed_cursors c on c.subscription_id = s.id
          where s.kind = 'pull'),
        floor as (select coalesce(min(cursor), 9223372036854775807) as s from readers where enabled),
        gone as (
          delete from switchyard.events where sequence = any(array(
            select e.sequence from switchyard.events e where e.created_at < ${olderThan}
              and (e.created_at < ${unreadBefore} or e.sequence <= (select s from floor))
              and not exists (select 1 from switchyard.deliveries d where d.event_id = e.id
                              and (d.status in ('pending', 'in_flight', 'held')
                                   or (d.status = 'dead' and d.superseded_by is null))
                              offset 0)
            order by e.created_at
            limit ${batch}))
          returning sequence, type, source, created_at),
        lost as (
          select r.id, max(g.sequence) as through, count(*) as n
          from readers r join gone g on g.sequence > r.cursor and g.created_at >= r.created_at
            and ${typeMatchesAny(sql.ref('g.type'), sql.ref('r.event_types'))}
            and (r.sources is null or g.source = any(r.sources))
          group by r.id),
        noted as (
          insert into switchyard.feed_gaps (subscription_id, through, events)
          select id, through, n from lost
          on conflict (subscription_id) do update
            set through = greatest(switchyard.feed_gaps.through, excluded.through),
                events = switchyard.feed_gaps.events + excluded.events, noted_at = now()
          returning 1)
        select (select count(*) from gone)::int as n, (select count(*) from noted) as noted`,
      db,
    ),
  );
  return r?.n ?? 0;
}

/**
 * What the lowest acknowledged position of the enabled pull subscriptions keeps from a purge
 * ({@link purgeEvents}): the subscriptions at that position (several when tied), the position, and
 * how many events older than `olderThan` (and younger than `unreadBefore`) are kept only for them
 * (no delivery still owes them).
 */
export interface HeldByReaders {
  subscriptions: string[];
  position: string;
  events: number;
}

/**
 * The events a purge left only because an enabled pull subscription has not acknowledged them
 * ({@link HeldByReaders}), or undefined when none are. Asked once per purge run, after its
 * batches: it counts the held events (the old events left after the purge, by events_created_idx
 * between `unreadBefore` and `olderThan`, each one's deliveries probed by index as the purge does),
 * so its cost grows with what the readers hold, not with the table.
 *
 * @example
 * ```ts
 * const day = 86_400_000;
 * await eventsHeldForReaders(db, new Date(Date.now() - 90 * day), new Date(Date.now() - 180 * day));
 * // { subscriptions: ['erp'], position: '0', events: 41250 }
 * ```
 */
export async function eventsHeldForReaders(
  db: Executor,
  olderThan: Date,
  unreadBefore: Date,
): Promise<HeldByReaders | undefined> {
  const r = await first<{ subscriptions: string[] | null; position: string | null; events: number }>(
    sql`with readers as materialized (
          select s.id, coalesce(c.cursor, 0) as cursor
          from switchyard.subscriptions s left join switchyard.feed_cursors c on c.subscription_id = s.id
          where s.kind = 'pull' and s.disabled_at is null),
        floor as (select min(cursor) as s from readers)
        select (select array_agg(id order by id) from readers where cursor = (select s from floor)) as subscriptions,
               (select s from floor)::text as position,
               (select count(*) from switchyard.events e
                where e.created_at < ${olderThan} and e.created_at >= ${unreadBefore}
                  and e.sequence > (select s from floor)
                  and not exists (select 1 from switchyard.deliveries d where d.event_id = e.id
                                  and (d.status in ('pending', 'in_flight', 'held')
                                       or (d.status = 'dead' and d.superseded_by is null))
                                  offset 0))::int as events`,
    db,
  );
  if (!r?.subscriptions || r.position === null || r.events === 0) return undefined;
  return { subscriptions: r.subscriptions, position: r.position, events: r.events };
}

/**
 * What retention removed of a pull subscription's events before it acknowledged them: the highest
 * such event number (`through`), how many (`events`), and when the last purge noted it. Cleared
 * when the subscription acknowledges a position at or past `through` ({@link clearFeedGap}).
 */
export interface FeedGap {
  subscription: string;
  through: string;
  events: number;
  notedAt: Date;
}

/**
 * The subscription's unacknowledged gap ({@link FeedGap}), or undefined when retention removed
 * nothing it had not read.
 *
 * @example
 * ```ts
 * const gap = await feedGap(db, 'erp'); // { subscription: 'erp', through: '1200', events: 35, notedAt }
 * ```
 */
export async function feedGap(db: Executor, subscriptionId: string): Promise<FeedGap | undefined> {
  return (await feedGaps(db, subscriptionId))[0];
}

/**
 * Every unacknowledged gap (one row per pull subscription that lost events; a handful), or the
 * one of `subscriptionId`; `since`: only those a purge noted from then on (the purge's log line).
 *
 * Only a gap past the subscription's acknowledged position: a purge whose statement read the
 * position before an ack committed, and committed after the ack cleared its gaps
 * ({@link clearFeedGap}), notes events the reader has acknowledged; the next ack removes the row,
 * and until then it is not a gap.
 */
export async function feedGaps(db: Executor, subscriptionId?: string, since?: Date): Promise<FeedGap[]> {
  const r = await rows<{ subscription_id: string; through: string; events: string; noted_at: Date }>(
    sql`select subscription_id, through::text as through, events::text as events, noted_at
        from switchyard.feed_gaps g
        where (${subscriptionId ?? null}::text is null or subscription_id = ${subscriptionId ?? null})
          and through > coalesce((select c.cursor from switchyard.feed_cursors c
                                  where c.subscription_id = g.subscription_id), 0)
          and (${since ?? null}::timestamptz is null or noted_at >= ${since ?? null})
        order by subscription_id`,
    db,
  );
  return r.map((g) => ({
    subscription: g.subscription_id,
    through: g.through,
    events: Number(g.events),
    notedAt: g.noted_at,
  }));
}

/** Forgets the subscription's gap once its acknowledged position is at or past it (the reader has moved on). */
export async function clearFeedGap(db: Executor, subscriptionId: string, cursor: string): Promise<void> {
  await sql`delete from switchyard.feed_gaps
    where subscription_id = ${subscriptionId} and through <= ${cursor}::bigint`.execute(db);
}

/** How one claimed inbound message ends, as stored by {@link commitNormalized}. */
export interface NormalizedMessage {
  id: string;
  lockToken: string;
  status: 'normalized' | 'ignored';
  reason: string | null;
  eventCount: number;
  /**
   * The chunk of the commit it belongs to (its run's messages in this commit), the number its
   * proposed aliases carry: a chunk with a refused alias finishes none of its messages. Default 0.
   */
  chunk?: number;
}

/** The arguments of {@link COMMIT_NORMALIZED}: the events, messages, aliases and state writes as parallel columns. */
interface CommitNormalizedArgs {
  eventIds: string[];
  types: string[];
  sources: string[];
  subjects: string[];
  times: string[];
  /** `jsonBatchText` of the envelopes. */
  envelopes: string;
  inboundIds: (string | null)[];
  traceparents: (string | null)[];
  tracestates: (string | null)[];
  fhir: boolean[];
  messageIds: string[];
  lockTokens: string[];
  statuses: string[];
  reasons: (string | null)[];
  eventCounts: number[];
  chunks: number[];
  aliasChunks: number[];
  aliasInstanceIds: string[];
  aliasEntities: string[];
  aliasVendorIds: string[];
  aliasHubIds: string[];
  aliasUnless: (string | null)[];
  stateMessageIds: string[];
  stateInstanceIds: string[];
  stateKeys: string[];
  /** `jsonBatchText` of the state values. */
  stateValues: string;
  leaseLimit: number;
  leaseMarginMs: number;
  leaseSkip: string[];
}

/** The normalize commit's statement, built once (`statement` in storage/db.ts); {@link commitNormalized} says what it does. */
const COMMIT_NORMALIZED = statement<CommitNormalizedArgs>(
  ($) =>
    sql`${PLAN_STABLE}with input as (
          select * from unnest(${$.eventIds}::uuid[], ${$.types}::text[],
            ${$.sources}::text[], ${$.subjects}::text[],
            ${$.times}::timestamptz[], ${jsonBatchOf($.envelopes)},
            ${$.inboundIds}::uuid[], ${$.traceparents}::text[], ${$.tracestates}::text[],
            ${$.fhir}::boolean[])
            with ordinality as t(id, type, source, subject, time, envelope, inbound_message_id, traceparent, tracestate,
              fhir, ord)),
        -- Before any row is locked (every write below waits for done): locks in one order.
        ${lockSubjects()},
        ${storeProposedAliases({
          chunks: $.aliasChunks,
          instanceIds: $.aliasInstanceIds,
          entities: $.aliasEntities,
          vendorIds: $.aliasVendorIds,
          hubIds: $.aliasHubIds,
          unless: $.aliasUnless,
        })},
        done as (
          update switchyard.inbound_messages m set status = v.status, reason = v.reason, error = null,
            event_count = v.event_count, processed_at = now(), locked_until = null, lock_token = null
          from unnest(${$.messageIds}::uuid[], ${$.lockTokens}::uuid[], ${$.statuses}::text[], ${$.reasons}::text[],
            ${$.eventCounts}::integer[], ${$.chunks}::integer[])
            as v(id, lock_token, status, reason, event_count, chunk)
          -- "is not distinct from", not "=": no index can serve it, so the rows are found by id
          -- (PLAN_STABLE in storage/db.ts; "=" let the generic plan walk a whole queue index).
          where m.id = v.id and m.lock_token = v.lock_token and m.status is not distinct from 'received'
            and (select n from subjects_locked) is not null and v.chunk not in (select chunk from alias_refused)
          returning m.id),
        -- The finished messages as the keys of one jsonb object, made once (an InitPlan wherever it is
        -- read): the plan-stable session has no hash join, so "in (select id from done)" joined every
        -- row of a CTE to every row of another, O(n²) in the batch (a commit of 255 events spent 15 ms
        -- on each such join); a key lookup in the object is a binary search.
        done_keys as (select coalesce(jsonb_object_agg(id::text, true), '{}') as k from done),
        ${storeNormalizedState({
          inboundMessageIds: $.stateMessageIds,
          instanceIds: $.stateInstanceIds,
          keys: $.stateKeys,
          values: $.stateValues,
        })},
        fresh as (
          select i.*, row_number() over (order by i.ord) as rn from input i
          where (select n from subjects_locked) is not null and (select k from done_keys) ? i.inbound_message_id::text
            and not exists (select 1 from switchyard.events x where x.id = i.id)),
        -- The fresh events' sequence numbers, drawn first and sorted: a multi-row insert does not
        -- promise which row draws which value, so the nth number goes to the nth event by position
        -- (the sequence named as the column's default names it: resolved when the statement is
        -- planned, where pg_get_serial_sequence looked it up in the catalog at every commit).
        numbered as (select array_agg(s order by s) as a from (
          select nextval('switchyard.events_sequence_seq'::regclass) as s from fresh) d),
        stored as (
          insert into switchyard.events (sequence, id, type, source, subject, time, envelope, inbound_message_id, traceparent,
            tracestate, fhir)
          select (select a from numbered)[f.rn], f.id, f.type, f.source, f.subject, f.time, f.envelope,
            f.inbound_message_id, f.traceparent, f.tracestate, f.fhir
          from fresh f
          order by f.rn
          on conflict (id) do nothing
          returning id, type, source, subject, sequence, time, envelope, fhir, inbound_message_id, traceparent, tracestate),
        ${projectStoredEvents()},
        ${fanOutStoredEvents({ limit: $.leaseLimit, marginMs: $.leaseMarginMs, skip: $.leaseSkip })}
        select (select array_agg(id) from done) as finished, (select count(*) from fanned) as fanned,
          (select ids from pulled) as pulled,
          (select array_agg(chunk) from alias_refused) as refused,
          (select json_agg(json_build_object('instance_id', instance_id, 'entity', entity, 'vendor_id', vendor_id,
                                             'hub_id', known))
           from alias_seen where known is not null) as known,
          -- What claimDeliveryWork returns for a claimed delivery: the row, its subscription as this
          -- statement saw it, its event as stored.
          -- json, not jsonb: eventJson says why.
          (select json_agg(json_build_object('delivery', to_json(d.*), 'sub', to_json(s.*), 'ev', ${eventJson('e')})
                           order by d.seq)
           from fanned d join switchyard.subscriptions s on s.id = d.subscription_id join stored e on e.id = d.event_id
           where d.status = 'in_flight') as leased`,
);

/**
 * Stores the results of normalized messages in one statement (one round trip, no BEGIN/COMMIT):
 * finishes each message whose lease token still matches, applies the connector state changes of
 * those messages only (`states`, {@link storeNormalizedState}), stores their events only, fans them out to every active webhook subscription whose filters match, and wakes the
 * deliver workers when a delivery was created.
 *
 * - Events keep the order of `events` (arrival order of their messages): sequence numbers are
 *   drawn first, sorted, and handed out by position, since a multi-row insert does not promise
 *   which row draws which value. An event id already stored (a re-run) is skipped.
 * - Each entity's current state (entities/current.ts) moves to its latest event, in the same statement.
 * - Fan-out is idempotent per (subscription, event); a delivery landing behind a dead,
 *   unsuperseded one of a `hold` subscription is created `held`.
 * - A subscription matches when one of its type patterns matches as `typeMatches` in
 *   subscriptions/type-patterns.ts does (exact type, `entity.*`, `*`) and the source is listed (or it lists none).; a
 *   FHIR subscription matches only events with a FHIR meaning ({@link fanOutStoredEvents}).
 *
 * - `aliases`: the hub ids the messages' normalizations made up for vendor ids they had not seen
 *   ({@link storeProposedAliases}), stored first; a chunk with a refused one finishes none of its
 *   messages and is in `refused`, for its messages to be normalized again. `known` holds the hub
 *   ids the statement's snapshot had for the proposals' keys (refused or not).
 * - With `lease`, up to `lease.limit` of the deliveries it creates that the delivery claim would
 *   take at once are created leased, for the caller to attempt ({@link fanOutStoredEvents} says which):
 *   at 200 events/s each event is its own batch, and claiming its delivery in a statement of its
 *   own cost about a fifth of the Postgres time per event. Without it (or with limit 0) every
 *   delivery is created `pending` for the delivery claim.
 * - The messages are finished in ascending id order, whatever the order of `messages`: the order
 *   the lease renewal locks them in (`inLockOrder` in storage/queues.ts; in another, the two
 *   deadlocked).
 *
 * Returns the ids of the messages finished (a lost lease leaves a message out), how many
 * deliveries were created, the pull subscriptions to wake (`pulled`: the caller NOTIFYs
 * `CHANNEL_FEED` with it after the commit), and those created leased, as JSON (`leasedDeliveryWork` in
 * deliveries/store.ts makes them what `claimDeliveryWork` returns for claimed ones).
 *
 * @example
 * ```ts
 * const { finished, leased } = await commitNormalized(db, messages, events, [], { limit: 8, marginMs: 15_000 });
 * deliverer.attempt(leased.map(leasedDeliveryWork), slots); // already in_flight, attempts = 1
 * ```
 */
export async function commitNormalized(
  db: Executor,
  messages: readonly NormalizedMessage[],
  events: readonly NewEvent[],
  states: readonly NormalizedStateWrite[] = [],
  lease?: FanOutLease,
  aliases: readonly ProposedAlias[] = [],
): Promise<NormalizeCommit> {
  if (messages.length === 0)
    return { finished: new Set(), fanned: 0, leased: [], refused: new Set(), known: [], pulled: null };
  const a = proposedAliasColumns(aliases);
  const st = normalizedStateColumns(states);
  // The messages are finished (locked) in the order the lease renewal locks them.
  const finishing = inLockOrder(messages, (x) => x.id);
  const r = await first<{
    finished: string[] | null;
    fanned: string;
    pulled: string | null;
    leased: LeasedDelivery[] | null;
    refused: number[] | null;
    known: AliasRow[] | null;
  }>(
    COMMIT_NORMALIZED.with({
      eventIds: events.map((e) => e.id),
      types: events.map((e) => e.type),
      sources: events.map((e) => e.source),
      subjects: events.map((e) => e.subject),
      times: events.map((e) => e.time),
      envelopes: jsonBatchText(events.map((e) => JSON.stringify(e.envelope))),
      inboundIds: events.map((e) => e.inboundMessageId),
      traceparents: events.map((e) => e.traceparent ?? null),
      tracestates: events.map((e) => e.tracestate ?? null),
      fhir: events.map((e) => hasFhirMeaning(e.envelope as unknown as EventEnvelope)),
      messageIds: finishing.map((x) => x.id),
      lockTokens: finishing.map((x) => x.lockToken),
      statuses: finishing.map((x) => x.status),
      reasons: finishing.map((x) => x.reason),
      eventCounts: finishing.map((x) => x.eventCount),
      chunks: finishing.map((x) => x.chunk ?? 0),
      aliasChunks: a.chunks,
      aliasInstanceIds: a.instanceIds,
      aliasEntities: a.entities,
      aliasVendorIds: a.vendorIds,
      aliasHubIds: a.hubIds,
      aliasUnless: a.unless,
      stateMessageIds: st.inboundMessageIds,
      stateInstanceIds: st.instanceIds,
      stateKeys: st.keys,
      stateValues: st.values,
      leaseLimit: lease?.limit ?? 0,
      leaseMarginMs: lease?.marginMs ?? 0,
      leaseSkip: [...(lease?.skip ?? [])],
    }),
    db,
  );
  return {
    finished: new Set(r?.finished ?? []),
    fanned: Number(r?.fanned ?? 0),
    leased: r?.leased ?? [],
    refused: new Set(r?.refused ?? []),
    known: r?.known ?? [],
    pulled: r?.pulled ?? null,
  };
}

/** What {@link commitNormalized} did. */
export interface NormalizeCommit {
  /** The messages finished (a lost lease or a refused chunk leaves a message out). */
  finished: Set<string>;
  /** Deliveries created. */
  fanned: number;
  /** Those created leased, for the caller to attempt. */
  leased: LeasedDelivery[];
  /** The chunks with a refused alias proposal: none of their messages was finished. */
  refused: Set<number>;
  /** The aliases the statement's snapshot held for the proposals' keys. */
  known: AliasRow[];
  /**
   * The `CHANNEL_FEED` payload for what was stored: the pull subscriptions it would be served to
   * ({@link fanOutStoredEvents}, `pulled`); null when none, and then nothing is to be sent.
   */
  pulled: string | null;
}

/**
 * A delivery the normalize commit created leased ({@link commitNormalized}), as the statement
 * returns it: the row as `to_json` gives it (dates and bigints as JSON), its subscription the same
 * way, its event as {@link eventJson}. `leasedDeliveryWork` (deliveries/store.ts) makes it a
 * `DeliveryWork` (this folder cannot import the deliveries' row types).
 */
export interface LeasedDelivery {
  delivery: Record<string, unknown>;
  sub: SubscriptionRow;
  ev: EventRow;
}

/**
 * SQL: the event of the row aliased `alias` as `json` (null when the left join found none), the
 * fields the deliver worker reads; one definition for the delivery claim (`claimDeliveryWork` in
 * deliveries/store.ts) and the normalize commit's leased deliveries. `alias` is a constant of the
 * calling statement.
 *
 * `json`, not `jsonb`: the statement only hands the object to the driver, which parses either
 * the same way. `jsonb_build_object` rebuilds a jsonb argument (the envelope) token by token, and
 * `jsonb_agg` does it again; `json_build_object` writes the envelope's text once. For one leased
 * delivery with a Docplanner envelope, 0.21 against 0.09 ms a statement (bench/analysis.md,
 * session 34). The envelope's keys come out in jsonb's stored order either way, so the body a
 * subscriber receives is the same.
 *
 * @example
 * ```ts
 * sql`select ${eventJson('e')} as ev from switchyard.events e`;
 * ```
 */
export function eventJson(alias: string): RawBuilder<unknown> {
  const e = sql.raw(alias);
  return sql`case when ${e}.id is null then null
    else json_build_object('sequence', ${e}.sequence::text, 'id', ${e}.id, 'type', ${e}.type, 'source', ${e}.source,
      'subject', ${e}.subject, 'envelope', ${e}.envelope, 'inbound_message_id', ${e}.inbound_message_id,
      'traceparent', ${e}.traceparent, 'tracestate', ${e}.tracestate, 'fhir', ${e}.fhir) end`;
}

/** The first key of the subject locks (`pg_advisory_xact_lock(int, int)`): "SYSB". */
const SUBJECT_LOCK = 0x53595342;

/**
 * A CTE `subjects_locked` (one row, `n`) that takes a transaction-scoped advisory lock on each
 * distinct subject of the `input` CTE, in the order of the lock keys (so two commits sharing
 * subjects cannot deadlock on them), waiting for any other transaction holding one. The
 * statements that store events reference it before drawing sequence numbers, so the events of one
 * subject commit in the order of their numbers and a commit never reads a subject while another
 * one's events of it are uncommitted: the delivery claim's line test ("no earlier delivery
 * waiting") and the fan-out lease (`switchyard.delivery_line_free`, migration 23) rely on both.
 * Commits of different ordering keys rarely share a subject (BookingBug keys a purchase's
 * cancellation by the purchase and a booking's change by the booking), so the wait is rare. The
 * normalize commit's first write (finishing its messages, which every later write waits for)
 * references it too, so no row lock is taken before the subject locks: two commits cannot hold a
 * row the other needs while waiting for a subject (test in events/fanout-lease.int.test.ts).
 *
 * @example
 * ```ts
 * sql`with input as (select ... as subject ...), ${lockSubjects()},
 *     stored as (insert into switchyard.events ... select ... from input
 *                where (select n from subjects_locked) is not null ...)`;
 * ```
 */
export function lockSubjects(): RawBuilder<unknown> {
  // The keys sorted in a subquery the aggregate reads in order (a DISTINCT subquery is not
  // flattened); a hash collision only makes two subjects share a lock.
  return sql`subjects_locked as (
      select count(pg_advisory_xact_lock(${SUBJECT_LOCK}::integer, k.key)) as n
      from (select distinct hashtext(i.subject) as key from input i order by 1) k)`;
}

/**
 * What the normalize commit may lease of what it fans out, for this process's deliver worker
 * ({@link commitNormalized}): at most `limit` deliveries, leased for the subscription's timeout
 * plus `marginMs`, as the delivery claim leases them.
 */
export interface FanOutLease {
  limit: number;
  marginMs: number;
  /**
   * Subscriptions none of whose deliveries may be leased: those whose subscriber stopped answering
   * this process (the deliver worker's `stalledSubscriptions()`); they wait for a claim.
   */
  skip?: readonly string[];
}

/**
 * The fan-out of freshly stored events, as CTEs to follow a `stored` CTE that returns
 * `(id, type, source, subject, sequence, fhir)` (`events.fhir`: the event has a FHIR meaning,
 * `hasFhirMeaning` of fhir/subscription.ts, computed when it is stored): one delivery per matching webhook subscription (`held`
 * behind a dead, unreplayed delivery of the same subject when the subscription holds). Defines
 * `fanned` (the rows inserted); one definition for the normalize commit and for hub-made events
 * (emit.ts). Without `lease` (hub-made events, in the caller's transaction) it also defines `woken`,
 * one NOTIFY to the deliver workers at that transaction's commit when anything was fanned; the
 * normalize commit (autocommit, with `lease`) sends none: its caller wakes the deliver workers after
 * the commit when something was created pending (host/notifier.ts says why).
 *
 * It also defines `pulled` (one row, `ids`): the pull subscriptions the stored events would be served
 * to (type patterns and sources, as {@link pollFeed} filters), comma-separated, '' when the list
 * would pass `FEED_PAYLOAD_MAX`, null when none: the payload of `CHANNEL_FEED`, which wakes the
 * feed's long-polls. Without `lease` it defines `feed_woken` too, that NOTIFY at the caller's commit;
 * with it the caller sends it after the commit. A deployment without pull subscriptions sends
 * nothing more (the join reads the few rows of `subscriptions`). The statement must reference
 * `pulled` (and `feed_woken`): a CTE nothing reads is not run.
 *
 * - A FHIR subscription (`format` other than `cloudevents`) matches only events with a FHIR meaning.
 * - A `fhir-r4-notification` delivery is numbered when it is first claimed, not here
 *   (`claimDeliveries` in deliveries/store.ts says why): the fan-out locks no subscription row.
 * - With `lease` (the normalize commit), up to `lease.limit` deliveries that the delivery claim
 *   would take at once are inserted already leased (`in_flight`, a lock token, attempt 1, its lease
 *   running out as the claim's would) instead of `pending`, and no NOTIFY is sent for them: the
 *   statement's caller attempts them. Those are the deliveries due now (all are) whose line is
 *   free: no delivery of the same subscription and subject pending, in flight, held, or dead and
 *   unsuperseded under `hold` (the test of `switchyard.claimable_deliveries`, migration 16), read
 *   by `switchyard.delivery_line_free` (migration 23) past the statement's snapshot, after the
 *   subject lock ({@link lockSubjects}) that the statement defining `stored` takes; the
 *   first of its line in the statement (the rows this statement inserts are not visible to its
 *   own reads), of a subscription whose format takes no number at the claim (not
 *   `fhir-r4-notification`) and that has no rate limit (its token is taken by the attempt, which
 *   gives the delivery back uncounted when refused: not worth a leased row).
 *   `lease.limit` is a parameter of the statement: its cached plan does not change with it.
 *
 * @example
 * ```ts
 * sql`with stored as (insert ... returning id, type, source, subject, sequence, fhir), ${fanOutStoredEvents()}
 *     select (select count(*) from fanned) as fanned`;
 * ```
 */
export function fanOutStoredEvents(lease?: FanOutLease): RawBuilder<unknown> {
  // Without a lease nothing is probed: hub-made events (emit.ts) fan out as pending.
  const free = lease
    ? sql`${lease.limit}::integer > 0 and s.format <> 'fhir-r4-notification'
        and s.id <> all(${(lease.skip ?? []) as string[]}::text[])
        -- No rate limit (an API-made subscription without one stores a JSON null).
        and (s.rate_limit is null or jsonb_typeof(s.rate_limit) <> 'object')
        and row_number() over (partition by s.id, e.subject order by e.sequence) = 1
        -- Past the statement's snapshot: the subject lock may have waited for a commit it cannot see.
        and switchyard.delivery_line_free(s.id, e.subject, s.ordering = 'hold')`
    : sql`false`;
  return sql`matched as (
      select s.id as subscription_id, s.ordering, s.timeout_ms, e.id as event_id, e.sequence, e.subject, ${free} as free
      from stored e join switchyard.subscriptions s
        on s.kind = 'webhook' and s.disabled_at is null
        and ${typeMatchesAny(sql.ref('e.type'), sql.ref('s.event_types'))}
        and (s.sources is null or e.source = any(s.sources))
        and (s.format = 'cloudevents' or e.fhir)),
    taken as (
      select m.subscription_id, m.event_id from matched m where m.free
      order by m.sequence, m.subscription_id limit ${lease?.limit ?? 0}),
    dead_locked as (
      -- The dead, unreplayed deliveries that hold the lines of the matched 'hold' subscriptions'
      -- subjects, locked (for share) in the one order of dead rows, (event_sequence, seq): a
      -- replay-all's (listDeadUnsuperseded, deliveries/store.ts). A replay or skip of one in
      -- progress is waited for and the row read again (as it is after the lock). Locked
      -- by the check below, row by row, they were locked in the order of this statement's events,
      -- and a replay-all holding one of them and waiting for another this held, while this waited
      -- for the first, deadlocked (deliveries/dead-lock-order.int.test.ts). One probe per (hold
      -- subscription, subject), none without a hold subscription matched: on the normalize
      -- commit's cached plan it walks the subscription's entries of deliveries_dead_idx (the dead
      -- letters retention keeps), while deliveries_line_idx would walk a busy subject's backlog.
      -- The rows found by id alone (with the dead letters' conditions here, the cached plan walked
      -- deliveries_dead_idx a second time): the check below reads their status as locked.
      select p.id, p.subscription_id, p.subject, p.event_sequence, p.status, p.superseded_by
      from switchyard.deliveries p
      where p.id = any(array(
          select h.id from (select distinct m.subscription_id, m.subject from matched m where m.ordering = 'hold') l
          cross join lateral (
            select d.id from switchyard.deliveries d
            where d.subscription_id = l.subscription_id and d.subject = l.subject
              and d.status = 'dead' and d.superseded_by is null
            offset 0) h))
      order by p.event_sequence, p.seq
      for share),
    fanned as (
      insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status,
        attempts, lock_token, locked_until)
      select gen_random_uuid(), m.subscription_id, m.event_id, m.sequence, m.subject,
        case when t.event_id is not null then 'in_flight'
        when m.ordering = 'hold' and exists (
          -- The dead rows as locked and read again by dead_locked: a replay that committed after
          -- this statement's snapshot (its release of the subject's held rows could not see this
          -- one) left the new delivery held behind a dead row already replayed, for good. Few rows
          -- (the dead heads of this statement's subjects), read from memory.
          select 1 from dead_locked p where p.subscription_id = m.subscription_id and p.subject = m.subject
            and p.status = 'dead' and p.superseded_by is null and p.event_sequence < m.sequence)
        then 'held' else 'pending' end,
        case when t.event_id is not null then 1 else 0 end,
        case when t.event_id is not null then gen_random_uuid() end,
        case when t.event_id is not null
          then now() + make_interval(secs => (m.timeout_ms + ${lease?.marginMs ?? 0}) / 1000.0) end
      from matched m left join taken t on t.subscription_id = m.subscription_id and t.event_id = m.event_id
      order by m.sequence
      on conflict (subscription_id, event_id) where reason = 'fanout' do nothing
      returning *),
    pulled as (
      select case when count(*) = 0 then null
        when sum(length(p.id) + 1) <= ${FEED_PAYLOAD_MAX} then string_agg(p.id, ',' order by p.id)
        else '' end as ids
      from (select distinct s.id from stored e join switchyard.subscriptions s
              on s.kind = 'pull' and ${typeMatchesAny(sql.ref('e.type'), sql.ref('s.event_types'))}
              and (s.sources is null or e.source = any(s.sources))) p)${
                lease
                  ? sql``
                  : sql`,
    woken as (
      select pg_notify(${CHANNEL_DELIVER}, '') from (select 1 from fanned where status <> 'in_flight' limit 1) x),
    feed_woken as (select pg_notify(${CHANNEL_FEED}, ids) from pulled where ids is not null)`
              }`;
}
