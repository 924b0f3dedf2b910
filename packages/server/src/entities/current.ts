/**
 * The current-state projection: one row per entity (appointment, slot, schedule, document, asset,
 * process) with the snapshot of its latest event, kept in the same statement that stores the events
 * (`commitNormalized` in events/store.ts, `storeHubEvents` in events/emit.ts). Events already carry the
 * entity's known state (docs/events.md#what-data-carries), so the row is the latest `data` as is.
 * Readers: the FHIR read endpoint; commands and the dashboard may use the same functions
 * (docs/fhir.md#the-current-state-projection).
 */
import type { JsonObject } from '@switchyard/core';
import { type RawBuilder, sql } from 'kysely';
import type { Executor } from '../storage/db.ts';

/** The entities whose events carry a state snapshot worth keeping (not approval requests, commands, hub tests). */
export const PROJECTED_ENTITIES: readonly string[] = Object.freeze([
  'appointment',
  'slot',
  'schedule',
  'document',
  'asset',
  'process',
]);

/** One entity's current known state. */
export interface CurrentEntity {
  /** `<kind>/<hub id>`, the events' `subject`. */
  subject: string;
  kind: string;
  hubId: string;
  /** The connector instance of the latest event. */
  instanceId: string;
  eventId: string;
  eventType: string;
  /**
   * The latest event's time (RFC 3339 as the event carries it, the vendor's offset kept): the
   * vendor's clock, or the hub's receipt for a vendor that does not date its change; not what
   * "latest" is decided by (that is the sequence).
   */
  eventTime: string;
  /** The latest event's feed sequence (digits): the highest of the entity's events. */
  eventSequence: string;
  /** The entity snapshot (`data` of the latest event; stored once, inside `envelope`). */
  data: JsonObject;
  /** The latest event as stored, so readers can render it like a delivery. */
  envelope: JsonObject;
  /**
   * When the hub last changed this row (stored a later event of the entity), as an ISO instant in
   * UTC: the hub's clock, not the vendor's, so a late notification with an old event time still
   * reads as a recent change (FHIR's `meta.lastUpdated`).
   */
  updatedAt: string;
}

interface CurrentRow {
  subject: string;
  kind: string;
  hub_id: string;
  instance_id: string;
  event_id: string;
  event_type: string;
  event_sequence: string;
  envelope: JsonObject;
  updated_at: Date;
}

function fromRow(r: CurrentRow): CurrentEntity {
  return {
    subject: r.subject,
    kind: r.kind,
    hubId: r.hub_id,
    instanceId: r.instance_id,
    eventId: r.event_id,
    eventType: r.event_type,
    eventTime: String(r.envelope.time),
    eventSequence: String(r.event_sequence),
    data: r.envelope.data as JsonObject,
    envelope: r.envelope,
    updatedAt: r.updated_at.toISOString(),
  };
}

/**
 * The projection of freshly stored events, as a CTE to follow a `stored` CTE that returns
 * `(id, type, source, subject, sequence, time, envelope)`: one upsert per entity (the last of the
 * batch when one statement stores several events of an entity). The latest event is the one with
 * the highest sequence, the hub's own order of the subject, never the event time: the events of a
 * subject take their sequence in the order they commit (`lockSubjects`) and a connector normalizes
 * an entity's notifications one after another, so the last one stored carries everything the
 * connector knew (docs/events.md, "What data carries") and is the one a subscriber receives last.
 * Event times come from different clocks: a BookingBug legacy purchase has no change time and is
 * dated when the hub received it (2026), a JRNI webhook about the same booking by its `triggerTime`
 * (2017), and the no-show that followed a legacy change lost to it here (docs/fhir.md, "The
 * current-state projection"). A vendor notification older than what was applied is the connector's
 * to refuse, by its own clock, before it makes an event (JRNI `triggerTime`, Docplanner
 * `created_at`, Cliniko `updated_at`, an Instinctive Notes version); one it applies on purpose (a
 * Docplanner presence mark after a later payment change) is news, and wins here too. The `where` is
 * a safeguard only: the subject locks already give a later commit the higher sequence. `updated_at` is the
 * hub's clock in milliseconds, the precision a FHIR instant and a JavaScript Date carry, so a reader
 * asking for changes after the latest `meta.lastUpdated` it read does not get that row again.
 * Defines `projected`.
 *
 * @example
 * ```ts
 * sql`with stored as (insert ... returning id, type, source, subject, sequence, time, envelope),
 *     ${projectStoredEvents()}, ${fanOutStoredEvents()} select 1`;
 * ```
 */
export function projectStoredEvents(): RawBuilder<unknown> {
  return sql`projected as (
      insert into switchyard.current_entities as c (subject, kind, hub_id, instance_id, event_id,
        event_type, event_time, event_sequence, starts_at, envelope, updated_at)
      select distinct on (e.subject) e.subject, split_part(e.subject, '/', 1),
        substr(e.subject, strpos(e.subject, '/') + 1), e.source, e.id, e.type, e.time, e.sequence,
        (e.envelope -> 'data' ->> 'start')::timestamptz, e.envelope, date_trunc('milliseconds', now())
      from stored e
      where split_part(e.subject, '/', 1) = any(${PROJECTED_ENTITIES as string[]}::text[])
      order by e.subject, e.sequence desc
      on conflict (subject) do update set instance_id = excluded.instance_id,
        event_id = excluded.event_id, event_type = excluded.event_type, event_time = excluded.event_time,
        event_sequence = excluded.event_sequence, starts_at = excluded.starts_at,
        envelope = excluded.envelope, updated_at = excluded.updated_at
      where excluded.event_sequence > c.event_sequence
      returning 1)`;
}

/**
 * The current state of one entity by its subject (`appointment/<hub id>`), or undefined.
 *
 * @example
 * ```ts
 * const appointment = await getCurrentEntity(db, 'appointment/6f1c2a8e-…');
 * appointment?.data.status; // 'cancelled'
 * ```
 */
export async function getCurrentEntity(db: Executor, subject: string): Promise<CurrentEntity | undefined> {
  const r = await sql<CurrentRow>`
    select subject, kind, hub_id, instance_id, event_id, event_type, event_sequence, envelope, updated_at
    from switchyard.current_entities where subject = ${subject}`.execute(db);
  return r.rows[0] ? fromRow(r.rows[0]) : undefined;
}

/** A bound on a time: `op` compares the entity's time with `at` (RFC 3339). */
export interface TimeBound {
  op: 'lt' | 'le' | 'gt' | 'ge';
  at: string;
}

/** The orders {@link searchCurrentEntities} reads in; each is an index read in order (migration 43). */
export type CurrentEntityOrder = 'subject' | 'start' | 'updated';

/** What {@link searchCurrentEntities} filters on; every given filter must hold. */
export interface CurrentEntityQuery {
  kind: string;
  /** Only entities of these instances; undefined: every instance. */
  instances?: readonly string[];
  /**
   * The entity's `data` has these string fields (e.g. `{ domain: 'clinical' }`). The domain has
   * statistics beside the kind (migration 44); another field is estimated by a guess.
   */
  data?: Record<string, string>;
  /**
   * The entity's `data.patient` contains one of these `fields` (e.g. `{ id: '50' }`), on the given
   * instance when one is named; several: any of them (an OR); empty: nothing matches.
   */
  patient?: readonly { instance?: string; fields: Record<string, string> }[];
  /** Only these subjects (`appointment/<hub id>`); empty: nothing matches. */
  subjects?: readonly string[];
  /** None of these subjects. */
  notSubjects?: readonly string[];
  /**
   * The status is one of these; empty: nothing matches. `data.status`, but a document's is its
   * DocumentReference.status ({@link DOCUMENT_STATUS}).
   */
  statuses?: readonly string[];
  /** Bounds on `data.start` (all must hold; an entity without a start never matches). */
  start?: readonly TimeBound[];
  /**
   * Bounds on when the hub last changed the row ({@link CurrentEntity.updatedAt}; all must hold).
   * The hub's clock and not the event's, so that polling `gt` the latest change read never misses
   * an entity whose late notification carried an old event time.
   */
  updated?: readonly TimeBound[];
  /**
   * The order (default `subject`), ties broken by subject in the same direction: `start` is
   * `data.start` with an entity without one after all others (ascending; first descending),
   * `updated` when the hub last changed it.
   */
  order?: { by: CurrentEntityOrder; descending?: boolean };
  /**
   * Keyset paging: only rows after this one in the order; `key` is the {@link SearchedEntity.orderKey}
   * of that row (unused for the `subject` order).
   */
  after?: { subject: string; key?: string };
  /** At most this many rows (the caller asks one more to know whether a next page exists). */
  limit: number;
}

/** A row of a search, with its position in the order asked. */
export interface SearchedEntity extends CurrentEntity {
  /**
   * The row's sort value as an RFC 3339 instant in UTC with microseconds (`infinity` for an entity
   * without a start), for {@link CurrentEntityQuery.after}; the subject in the `subject` order.
   */
  orderKey: string;
}

function bound(column: RawBuilder<unknown>, b: TimeBound): RawBuilder<unknown> {
  const at = sql`${b.at}::timestamptz`;
  switch (b.op) {
    case 'lt':
      return sql`${column} < ${at}`;
    case 'le':
      return sql`${column} <= ${at}`;
    case 'gt':
      return sql`${column} > ${at}`;
    case 'ge':
      return sql`${column} >= ${at}`;
  }
}

/**
 * The start as the start index holds it (migration 43): an entity without one sorts after every
 * time, so a keyset row comparison reaches it. Date filters use the same expression, so they read
 * the same index.
 */
const START_KEY = sql`coalesce(starts_at, 'infinity'::timestamptz)`;
const STATUS = sql`(envelope -> 'data' ->> 'status')`;
/**
 * A document's status as its DocumentReference has it (fhir/map.ts `documentResource`): a note
 * deleted at the vendor is `entered-in-error` (its last `data` still says what it was), else
 * `data.status`, `current` when the vendor gave none. Its own index holds documents only
 * (migration 44), so other kinds' writes maintain nothing more. Exported for
 * document-status.int.test.ts, which holds it to the map's rule and to the index's expression
 * (an expression Postgres does not read as the index's leaves the index unused).
 */
export const DOCUMENT_STATUS = sql`(case when event_type = 'document.deleted' then 'entered-in-error' else coalesce(envelope -> 'data' ->> 'status', 'current') end)`;

/** The sort expression of an order (the subject breaks ties). */
function orderExpression(by: CurrentEntityOrder): RawBuilder<unknown> {
  if (by === 'start') return START_KEY;
  if (by === 'updated') return sql.ref('updated_at');
  return sql.ref('subject');
}

/** The filters of a query, as the search and the count both apply them. */
function filters(query: CurrentEntityQuery): RawBuilder<unknown>[] {
  const where: RawBuilder<unknown>[] = [sql`kind = ${query.kind}`];
  if (query.instances) where.push(sql`instance_id = any(${query.instances as string[]}::text[])`);
  // An equality per field, not a jsonb containment: Postgres has statistics of `data ->> 'domain'`
  // beside the kind (migration 44), and none of a containment, whose guess (1%) made it read every
  // document and sort them when the clinical notes are most of them.
  for (const [field, value] of Object.entries(query.data ?? {}))
    where.push(sql`(envelope -> 'data') ->> ${field} = ${value}`);
  if (query.patient) {
    const any = query.patient.map((p) => {
      const fields = sql`envelope -> 'data' -> 'patient' @> ${JSON.stringify(p.fields)}::jsonb`;
      return p.instance === undefined ? fields : sql`(instance_id = ${p.instance} and ${fields})`;
    });
    where.push(any.length > 0 ? sql`(${sql.join(any, sql` or `)})` : sql`false`);
  }
  if (query.subjects) where.push(sql`subject = any(${query.subjects as string[]}::text[])`);
  if (query.notSubjects && query.notSubjects.length > 0)
    where.push(sql`subject <> all(${query.notSubjects as string[]}::text[])`);
  if (query.statuses) {
    const status = query.kind === 'document' ? DOCUMENT_STATUS : STATUS;
    where.push(sql`${status} = any(${query.statuses as string[]}::text[])`);
  }
  if (query.start && query.start.length > 0) {
    for (const b of query.start) where.push(bound(START_KEY, b));
    where.push(sql`starts_at is not null`);
  }
  for (const b of query.updated ?? []) where.push(bound(sql.ref('updated_at'), b));
  return where;
}

/**
 * Entities of one kind matching every given filter, in the order asked (default: by subject), each
 * with its {@link SearchedEntity.orderKey} for the next page's `after`. Every order reads an index
 * in order and stops at `limit` (migration 43); `after` is a row comparison on (key, subject), so
 * rows sharing a sort value are neither skipped nor repeated across pages.
 *
 * @example
 * ```ts
 * const page = await searchCurrentEntities(db, {
 *   kind: 'appointment', patient: [{ fields: { id: '50' } }], start: [{ op: 'ge', at: '2026-03-10T00:00:00Z' }],
 *   order: { by: 'start', descending: true }, limit: 21,
 * });
 * const next = await searchCurrentEntities(db, { ...query, after: { subject: page[19].subject, key: page[19].orderKey } });
 * ```
 */
export async function searchCurrentEntities(
  db: Executor,
  query: CurrentEntityQuery,
): Promise<SearchedEntity[]> {
  const by = query.order?.by ?? 'subject';
  const desc = query.order?.descending === true;
  const key = orderExpression(by);
  const where = filters(query);
  const cmp = desc ? sql`<` : sql`>`;
  if (query.after !== undefined) {
    if (by === 'subject') where.push(sql`subject ${cmp} ${query.after.subject}`);
    else
      where.push(
        sql`(${key}, subject) ${cmp} (${query.after.key ?? null}::timestamptz, ${query.after.subject})`,
      );
  }
  const dir = desc ? sql`desc` : sql`asc`;
  const order = by === 'subject' ? sql`subject ${dir}` : sql`${key} ${dir}, subject ${dir}`;
  // The key as an RFC 3339 instant in UTC with microseconds, whatever the session's DateStyle and
  // TimeZone, so it reads back as the same instant ('infinity' for an entity without a start).
  const orderKey =
    by === 'subject'
      ? sql`subject`
      : sql`coalesce(to_char(${key} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'infinity')`;
  // A patient's (or named subjects') entities are few: read them by their own index and sort them.
  // Left to the planner, which can only guess how many rows a jsonb containment matches, a search by
  // a patient sometimes walked the sort's index instead, filtering the whole kind for the patient's
  // rows (39,992 rows read for 21 in search-cost.int.test.ts, one run in three). `offset 0` keeps
  // the filtered rows a subquery of their own, planned without the order and the limit.
  const selective = query.patient !== undefined || query.subjects !== undefined;
  const from = selective
    ? sql`(select * from switchyard.current_entities where ${sql.join(where, sql` and `)} offset 0) c`
    : sql`switchyard.current_entities where ${sql.join(where, sql` and `)}`;
  const r = await sql<CurrentRow & { order_key: string }>`
    select subject, kind, hub_id, instance_id, event_id, event_type, event_sequence, envelope, updated_at,
      ${orderKey} as order_key
    from ${from}
    order by ${order} limit ${query.limit}`.execute(db);
  return r.rows.map((row) => ({ ...fromRow(row), orderKey: row.order_key }));
}

/**
 * How many entities match a query's filters (its order, `after` and `limit` are not used): one
 * count over the same indexed filters as {@link searchCurrentEntities}, for FHIR's `_total`.
 *
 * @example
 * ```ts
 * await countCurrentEntities(db, { kind: 'appointment', statuses: ['booked'], limit: 0 }); // 1234
 * ```
 */
export async function countCurrentEntities(db: Executor, query: CurrentEntityQuery): Promise<number> {
  const r = await sql<{ n: string }>`
    select count(*) as n from switchyard.current_entities where ${sql.join(filters(query), sql` and `)}`.execute(
    db,
  );
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * How many entities match a query's filters by the planner's estimate (`EXPLAIN` of the same rows
 * {@link countCurrentEntities} counts: from the table's statistics and its current size, nothing of
 * the table read). Where no filter is selective a count reads every entry of the kind's index, for
 * every page a client asks with a total; the estimate costs a plan. It can be far off for a
 * selective filter (a patient's appointments: a guess at a jsonb containment), which is why FHIR's
 * `_total=estimate` counts below a bound (fhir/search.ts, `TOTAL_ESTIMATE_COUNTED_BELOW`).
 *
 * @example
 * ```ts
 * await estimateCurrentEntities(db, { kind: 'appointment', limit: 0 }); // ~400000
 * ```
 */
export async function estimateCurrentEntities(db: Executor, query: CurrentEntityQuery): Promise<number> {
  const r = await sql<{ 'QUERY PLAN': { Plan: { 'Plan Rows': number } }[] }>`
    explain (format json) select 1 from switchyard.current_entities
    where ${sql.join(filters(query), sql` and `)}`.execute(db);
  return Math.round(r.rows[0]?.['QUERY PLAN'][0]?.Plan['Plan Rows'] ?? 0);
}
