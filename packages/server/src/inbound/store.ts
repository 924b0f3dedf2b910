/**
 * The SQL of the inbound side, one named function each (pg-boss's "plans" style): `inbound_messages`
 * (what vendors sent, also the normalize queue: store, claim, lease, finish, retry, requeue, the
 * admin reads) and `inbound_bodies` (the raw request bodies), and their purge. Functions take an
 * {@link Executor} so callers decide the transaction; each statement's index is in
 * storage/migrations.ts.
 */
import type { JsonValue } from '@switchyard/core';
import { type RawBuilder, sql } from 'kysely';
import {
  type Executor,
  first,
  json,
  jsonBatchOf,
  jsonBatchText,
  PLAN_STABLE,
  rows,
  statement,
} from '../storage/db.ts';
import { CHANNEL_NORMALIZE, type HeldLease, inLockOrder, renewLeases } from '../storage/queues.ts';
import { type StoredAs, storableForms, unstorableReason } from './storable.ts';

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
  /** W3C tracestate of that request's trace (migration 48), resumed with the traceparent; null when none. */
  tracestate: string | null;
}

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
  /** W3C tracestate resumed with it (absent: tracing off or none). */
  tracestate?: string | null;
}

/** A push request's raw body, stored once however many notifications it carried. */
export interface NewBody {
  id: string;
  body: Buffer;
  receivedAt: Date;
}

/** What {@link storeInbound} may lease for its caller's normalize worker (lease at store). */
export interface StoreLease {
  /** The lease's length, as the claim's (`normalizeLeaseMs`). */
  ms: number;
  /**
   * The messages to lease if nothing of their ordering key is waiting (`received`, leased or not):
   * at most the first message of each ordering key in the call, never two of one key.
   */
  ids: ReadonlySet<string>;
}

/** A message {@link storeInbound} inserted (a duplicate is not returned). */
export interface StoredInbound {
  id: string;
  instance_id: string;
  dedupe_key: string;
  seq: string;
  /** Set when the message was stored leased (attempt 1, the lease's length from now). */
  lock_token: string | null;
}

/** The arguments of {@link STORE_INBOUND}: the messages and bodies as parallel columns. */
interface StoreInboundArgs {
  ids: string[];
  instanceIds: string[];
  routes: string[];
  dedupeKeys: string[];
  vendorTypes: string[];
  orderingKeys: (string | null)[];
  occurredAt: (string | null)[];
  gates: boolean[];
  /** `jsonBatchText` of the payloads, the metas and the headers. */
  payloads: string;
  metas: string;
  headers: string;
  bodyIds: (string | null)[];
  sourceIps: (string | null)[];
  origins: string[];
  receivedAt: string[];
  traceparents: (string | null)[];
  tracestates: (string | null)[];
  leases: boolean[];
  leaseSeconds: number;
  /** The bodies concatenated, and each one's id, 1-based start, length and time received. */
  bodies: Buffer;
  bodyRowIds: string[];
  bodyStarts: number[];
  bodyLengths: number[];
  bodyReceivedAt: string[];
  touch: string[];
}

/** The ingest statement, built once (`statement` in storage/db.ts); {@link storeInbound} says what it does. */
const STORE_INBOUND = statement<StoreInboundArgs>(
  ($) =>
    sql`${PLAN_STABLE}with inbound_input as (
          select * from unnest(${$.ids}::uuid[], ${$.instanceIds}::text[], ${$.routes}::text[], ${$.dedupeKeys}::text[],
            ${$.vendorTypes}::text[], ${$.orderingKeys}::text[], ${$.occurredAt}::text[], ${$.gates}::boolean[],
            ${jsonBatchOf($.payloads)}, ${jsonBatchOf($.metas)}, ${$.bodyIds}::uuid[], ${jsonBatchOf($.headers)},
            ${$.sourceIps}::text[], ${$.origins}::text[], ${$.receivedAt}::timestamptz[], ${$.traceparents}::text[],
            ${$.tracestates}::text[], ${$.leases}::boolean[])
            as t(id, instance_id, route, dedupe_key, vendor_type, ordering_key, occurred_at, gate, payload, meta,
              body_id, headers, source_ip, origin, received_at, traceparent, tracestate, lease)),
        ${lockOrderingKeys()},
        -- After the keys' locks (every row waits for keys_locked): whether each message asked to be
        -- leased may be, read past the statement's snapshot (migration 24). Only the first message
        -- of a key in a statement asks (the caller's rule), so none of this statement's rows of that
        -- key exists yet when it is asked.
        decided as materialized (
          select i.*, case when i.lease
              then i.ordering_key is null or not switchyard.inbound_key_waiting(i.instance_id, i.ordering_key)
              else false end as leased
          from inbound_input i where (select n from keys_locked) is not null),
        ins as (
          insert into switchyard.inbound_messages (id, instance_id, route, dedupe_key, vendor_type, ordering_key,
            occurred_at, gate, payload, meta, body_id, headers, source_ip, origin, received_at, traceparent,
            tracestate, lock_token, locked_until, attempts)
          select d.id, d.instance_id, d.route, d.dedupe_key, d.vendor_type, d.ordering_key, d.occurred_at, d.gate,
            d.payload, d.meta, d.body_id, d.headers, d.source_ip, d.origin, d.received_at, d.traceparent,
            d.tracestate,
            -- What claimInbound sets on a claimed message.
            case when d.leased then gen_random_uuid() end,
            case when d.leased then now() + make_interval(secs => ${$.leaseSeconds}) end,
            case when d.leased then 1 else 0 end
          from decided d
          on conflict (instance_id, dedupe_key) do nothing
          returning id, instance_id, dedupe_key, body_id, seq, lock_token),
        stored_bodies as (
          insert into switchyard.inbound_bodies (id, body, received_at)
          select b.id, substring(${$.bodies}::bytea from b.start for b.length), b.received_at
          from unnest(${$.bodyRowIds}::uuid[], ${$.bodyStarts}::integer[], ${$.bodyLengths}::integer[],
            ${$.bodyReceivedAt}::timestamptz[]) as b(id, start, length, received_at)
          where b.id in (select body_id from ins)),
        touched as (
          update switchyard.connector_instances set last_message_at = now()
          where id = any(${$.touch}::text[]) and id in (select instance_id from ins))
        select ins.id, ins.instance_id, ins.dedupe_key, ins.seq, ins.lock_token from ins`,
);

/**
 * Stores notifications (a (instance, dedupe key) already stored is left alone), the requests' raw
 * bodies and the instances' `last_message_at` in one statement: autocommit for pushes, so the
 * group commit of ingest costs one round trip per batch; inside a pull's transaction, with its
 * cursor. It sends no NOTIFY: the caller wakes the normalize workers of every process after its
 * commit (`CHANNEL_NORMALIZE` through host/notifier.ts) when a returned row is unleased, so that
 * the commit takes no part in Postgres's NOTIFY lock.
 *
 * Each body travels once (`bodies`), however many of `items` reference it, and is stored only when
 * at least one of its messages is new: a vendor's retry of a whole request stores nothing.
 *
 * Only the instances in `touch` get `last_message_at` moved: every statement that updates an
 * instance row waits for the previous one's commit on that row lock, so the caller passes each
 * instance at most once a second (ingest statements went from 5.1 ms to 0.4 ms at 200 pushes/s).
 *
 * Before its rows draw their `seq`, it locks their ordering keys ({@link lockOrderingKeys}): a
 * second statement storing one of them waits for this one's commit (inside a pull's transaction,
 * until the pull commits), so a key's messages commit in arrival order.
 *
 * With `lease`, the messages it names are stored already leased, as {@link claimInbound} would
 * lease them, when no message of their ordering key is waiting (asked after the key's lock, so a
 * message another statement stored just before is seen): the caller normalizes them at once,
 * without a wake-up and a claim.
 *
 * @example
 * ```ts
 * const stored = await storeInbound(db, items, bodies, ['dp-main'], { ms: 30_000, ids: new Set([items[0].id]) });
 * const mine = stored.filter((s) => s.lock_token !== null); // attempt 1, leased for 30 s
 * ```
 */
export async function storeInbound(
  db: Executor,
  items: readonly NewInbound[],
  bodies: readonly NewBody[],
  touch: readonly string[],
  lease?: StoreLease,
): Promise<StoredInbound[]> {
  if (items.length === 0) return [];
  const leaseMs = lease?.ms ?? 0;
  // The bodies travel as one bytea parameter, their concatenation, sent in binary as it is; each
  // is cut back out by its position (1-based). In a bytea[] each body was hex text inside an array
  // literal: twice its bytes, encoded by the hub and decoded by Postgres.
  const starts: number[] = [];
  let start = 1;
  for (const b of bodies) {
    starts.push(start);
    start += b.body.length;
  }
  // One statement for the whole batch: unnest() of parallel arrays keeps it a single round trip.
  // Returns the rows actually inserted, so the caller can tell new notifications from duplicates.
  // Plan-stable: inserts from parameters, and the instances table is sized by configuration.
  return rows<StoredInbound>(
    STORE_INBOUND.with({
      ids: items.map((i) => i.id),
      instanceIds: items.map((i) => i.instanceId),
      routes: items.map((i) => i.route),
      dedupeKeys: items.map((i) => i.dedupeKey),
      vendorTypes: items.map((i) => i.vendorType),
      orderingKeys: items.map((i) => i.orderingKey),
      occurredAt: items.map((i) => i.occurredAt),
      gates: items.map((i) => i.gate),
      payloads: jsonBatchText(items.map((i) => JSON.stringify(i.payload))),
      metas: jsonBatchText(items.map((i) => (i.meta === null ? null : JSON.stringify(i.meta)))),
      headers: jsonBatchText(items.map((i) => (i.headers === null ? null : JSON.stringify(i.headers)))),
      bodyIds: items.map((i) => i.bodyId),
      sourceIps: items.map((i) => i.sourceIp),
      origins: items.map((i) => i.origin),
      receivedAt: items.map((i) => i.receivedAt.toISOString()),
      traceparents: items.map((i) => i.traceparent ?? null),
      tracestates: items.map((i) => i.tracestate ?? null),
      leases: items.map((i) => lease?.ids.has(i.id) === true),
      leaseSeconds: leaseMs / 1000,
      bodies: Buffer.concat(bodies.map((b) => b.body)),
      bodyRowIds: bodies.map((b) => b.id),
      bodyStarts: starts,
      bodyLengths: bodies.map((b) => b.body.length),
      bodyReceivedAt: bodies.map((b) => b.receivedAt.toISOString()),
      touch: [...touch],
    }),
    db,
  );
}

/**
 * Puts `items`, just stored in the caller's transaction, before the messages of their ordering
 * keys that arrived after them and still wait for their normalization: those get new `seq`
 * numbers, after every existing one, in the order they had. For a batch stored late (a pulled
 * batch held through a database outage, or restored from the pull spool by the next start) while
 * another process stored the vendor's newer notifications of the same keys meanwhile: the claim
 * normalizes a key in `seq` order, so the older ones came after them (a `booking-canceled` before
 * its `slot-booked`). "After" is by `received_at`, the time the vendor handed a message over: a
 * pull queue hands its notifications over in its own order. Not moved: a message already being
 * normalized (leased) or finished; what happens then is each connector's comparison of vendor
 * times (docs/pipeline.md, "The pull spool"). Call it after {@link storeInbound} in the same
 * transaction, which holds the keys' advisory locks, so no other store of these keys interleaves.
 * Returns how many messages were moved.
 *
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await storeInbound(trx, held, [], ['dp-main']);
 *   await queueBefore(trx, 'dp-main', held); // 2: a newer cancellation and move now follow them
 * });
 * ```
 */
export async function queueBefore(
  trx: Executor,
  instanceId: string,
  items: readonly NewInbound[],
): Promise<number> {
  const keyed = items.filter((i) => i.orderingKey !== null);
  if (keyed.length === 0) return 0;
  const keys = [...new Set(keyed.map((i) => i.orderingKey as string))];
  const since = new Date(Math.min(...keyed.map((i) => i.receivedAt.getTime()))).toISOString();
  // Fresh numbers from the table's own sequence, paired with the rows in their old order: an
  // update's nextval() follows no order of its own. inbound_ordering_idx finds the rows.
  const r = await sql`with later as (
        select m.id, m.seq from switchyard.inbound_messages m
        where m.status = 'received' and m.instance_id = ${instanceId} and m.ordering_key = any(${keys}::text[])
          and m.received_at > ${since}::timestamptz and m.id <> all(${items.map((i) => i.id)}::uuid[])
          and (m.locked_until is null or m.locked_until < now())
        -- Locked in id order, the order of every statement that updates several queue rows
        -- (inLockOrder in storage/queues.ts): a lease run out may still be renewed by its process,
        -- and in seq order the two deadlocked. The new numbers follow seq (paired, below).
        order by m.id
        for update),
      fresh as (select nextval(pg_get_serial_sequence('switchyard.inbound_messages', 'seq')) as seq from later),
      paired as (
        select l.id, f.seq
        from (select id, row_number() over (order by seq) as n from later) l
        join (select seq, row_number() over (order by seq) as n from fresh) f using (n))
      update switchyard.inbound_messages m set seq = paired.seq from paired where m.id = paired.id`.execute(
    trx,
  );
  return Number(r.numAffectedRows ?? 0);
}

/** A notification {@link storeInboundEach} stored in another form than it was given. */
export interface AlteredInbound {
  id: string;
  vendorType: string;
  /** Why Postgres refused it as it was ({@link unstorableReason}). */
  reason: string;
  storedAs: StoredAs;
}

/**
 * Stores notifications one at a time inside the caller's transaction, each behind a savepoint, so
 * that one Postgres refuses (a NUL or lone surrogate in a string, nesting too deep: see
 * {@link unstorableReason}) neither aborts the transaction nor keeps its neighbours out: it is
 * stored in the first of its {@link storableForms} Postgres takes (sanitized, else a placeholder)
 * and reported in `altered`; the others are stored as they are. For the rare batch
 * {@link storeInbound} could not store as a whole (one statement per notification, up to three for
 * a refused one), when its notifications cannot be refused: a pull, whose vendor no longer has
 * them. Any other failure is thrown, and the caller's transaction stores nothing.
 *
 * @example
 * ```ts
 * const { stored, altered } = await db.transaction().execute((trx) => storeInboundEach(trx, items, ['dp-main']));
 * // altered: [{ id, vendorType: 'booking-canceled', reason: 'the payload cannot be stored: …', storedAs: 'sanitized' }]
 * ```
 */
export async function storeInboundEach(
  trx: Executor,
  items: readonly NewInbound[],
  touch: readonly string[],
): Promise<{ stored: StoredInbound[]; altered: AlteredInbound[] }> {
  const stored: StoredInbound[] = [];
  const altered: AlteredInbound[] = [];
  for (const item of items) {
    const first = await storeOneBehindSavepoint(trx, item, touch);
    if ('rows' in first) {
      stored.push(...first.rows);
      continue;
    }
    let refusal = first;
    let taken = false;
    for (const form of storableForms(item, first.reason)) {
      const attempt = await storeOneBehindSavepoint(trx, form.item, touch);
      if (!('rows' in attempt)) {
        refusal = attempt;
        continue;
      }
      stored.push(...attempt.rows);
      // A duplicate of one stored earlier was not stored now: nothing of it was altered.
      if (attempt.rows.length > 0)
        altered.push({
          id: item.id,
          vendorType: item.vendorType,
          reason: first.reason,
          storedAs: form.storedAs,
        });
      taken = true;
      break;
    }
    // Even the placeholder was refused: the hub's statement, not the payload, is at fault.
    if (!taken) throw refusal.error;
  }
  return { stored, altered };
}

/** {@link storeInbound} of one notification behind a savepoint; a refusal is rolled back and returned. */
async function storeOneBehindSavepoint(
  trx: Executor,
  item: NewInbound,
  touch: readonly string[],
): Promise<{ rows: StoredInbound[] } | { reason: string; error: unknown }> {
  await sql`savepoint store_inbound_one`.execute(trx);
  try {
    const stored = await storeInbound(trx, [item], [], touch);
    await sql`release savepoint store_inbound_one`.execute(trx);
    return { rows: stored };
  } catch (error) {
    // A rollback that fails (the connection went) must not hide why the store failed.
    await sql`rollback to savepoint store_inbound_one`.execute(trx).catch(() => {
      throw error;
    });
    const reason = unstorableReason(error);
    if (reason === undefined) throw error;
    return { reason, error };
  }
}

/** The first key of the ordering-key locks (`pg_advisory_xact_lock(int, int)`): "SYIK". */
const ORDERING_KEY_LOCK = 0x5359494b;

/**
 * A CTE `keys_locked` (one row, `n`) that takes a transaction-scoped advisory lock on each distinct
 * `(instance, ordering key)` of the `inbound_input` CTE (its name, not `input`, marks the
 * statement as ingest within the first kilobyte of its text, all `pg_stat_activity` keeps: the bench's
 * per-stage CPU reads it), in the order of the lock keys (two statements
 * sharing keys cannot deadlock on them), waiting for any other transaction holding one.
 * {@link storeInbound} references it before its insert draws sequence numbers, so the messages of
 * one ordering key commit in the order of their `seq`: a claim that sees a message of a key sees
 * every earlier one. Without it, of two statements storing one key at once (two ingest statements
 * in flight, two processes, a pull beside a push), the later-numbered message could commit first
 * and be claimed, and the earlier one, committed while it was being normalized, was then the
 * key's unleased head and claimed too: two messages of one key normalized at once, each reading
 * the entity's state before the other wrote it (test in inbound/key-lock.int.test.ts). Messages
 * without an ordering key take no lock; a hash collision of two keys only makes them share one.
 */
function lockOrderingKeys(): RawBuilder<unknown> {
  return sql`keys_locked as (
      select count(pg_advisory_xact_lock(${ORDERING_KEY_LOCK}::integer, k.key)) as n
      from (select distinct hashtext(i.instance_id || '/' || i.ordering_key) as key from inbound_input i
            where i.ordering_key is not null order by 1) k)`;
}

/** What a claim took, or when to look again if it took nothing. */
export interface InboundClaim {
  /** The claimed messages, leased; in no particular order. */
  rows: InboundRow[];
  /**
   * With nothing claimed: when the first message that could be claimed falls due (its retry, or
   * the lease of a head another process holds running out), for the loop to sleep until then.
   * Undefined when something was claimed, or when nothing waits for a time (a key behind a head
   * being normalized is woken by that head's finish).
   */
  nextDueAt: Date | undefined;
}

/**
 * Claims due messages to normalize. A message whose ordering key has an earlier unfinished
 * message waits for it, so one entity's notifications are normalized in arrival order.
 *
 * Heads are found by `switchyard.claimable_inbound` (migrations 14, 22, 29): a walk of at most 256
 * messages in due order (a new message's due time is its arrival), stopping at the first not yet
 * due, then only the first message of each ordering key and the due messages without one, so a
 * claim costs O(limit + 256 + keys waiting), however deep one key's backlog, and a message waiting
 * for its retry costs nothing until it is due. A head that is leased or not yet due blocks its
 * whole key (a message never tried behind a head waiting for its retry is put off to that time
 * when the walk meets it, so claims stop reading it); messages without an ordering key are each
 * their own head. A claim that takes nothing returns the earliest time one of the heads it
 * saw becomes claimable, in the same statement (once a second one, over an index on the lease's
 * expiry that kept every claim from being a HOT update: migration 22).
 *
 * With `run` > 1, each head comes with up to `run - 1` of its key's next messages, consecutive in
 * arrival order and all due (`switchyard.claimable_inbound_runs`, migration 19), leased together
 * under the same claim: the caller must normalize them in `seq` order, one after another, and
 * give back the ones it did not reach ({@link unclaimInbound}). At most `limit` heads, so at most
 * `limit × run` rows.
 *
 * @example
 * ```ts
 * const { rows, nextDueAt } = await claimInbound(db, 30_000, 16, 32); // 16 keys, up to 32 messages each
 * ```
 */
export async function claimInbound(
  db: Executor,
  leaseMs: number,
  limit: number,
  run = 1,
): Promise<InboundClaim> {
  const lease = sql`make_interval(secs => ${leaseMs / 1000})`;
  const found = await rows<InboundRow & { wake_at: Date | null }>(
    // The functions' rows: the claimed ids, or one row without an id carrying the wake-up time.
    sql`${PLAN_STABLE}with due as (
          select d.id, d.wake_at from switchyard.claimable_inbound_runs(${limit}::integer, ${run}::integer, ${lease}) as d),
        claimed as (
          update switchyard.inbound_messages m set locked_until = now() + ${lease},
            lock_token = gen_random_uuid(), attempts = m.attempts + 1
          from due where m.id = due.id returning m.*)
        select c.*, null::timestamptz as wake_at from claimed c
        union all
        select (null::switchyard.inbound_messages).*, due.wake_at from due where due.id is null`,
    db,
  );
  const claimed: InboundRow[] = [];
  let nextDueAt: Date | undefined;
  for (const { wake_at, ...row } of found) {
    if (row.id === null) nextDueAt = wake_at ?? undefined;
    else claimed.push(row);
  }
  return { rows: claimed, nextDueAt };
}

/**
 * Hands back claimed messages a run did not reach (an earlier message of the run waits for a
 * retry or crashed): lease cleared and the claim's attempt taken back, since they were never
 * tried. No NOTIFY: each waits behind the unfinished message that ended its run. Rows whose token
 * no longer matches are left alone. Rows are locked in {@link inLockOrder}.
 */
export async function unclaimInbound(
  db: Executor,
  given: readonly Pick<HeldLease, 'id' | 'lockToken'>[],
): Promise<void> {
  if (given.length === 0) return;
  const held = inLockOrder(given, (h) => h.id);
  await sql`update switchyard.inbound_messages m
      set locked_until = null, lock_token = null, attempts = greatest(m.attempts - 1, 0)
    from unnest(${held.map((h) => h.id)}::uuid[], ${held.map((h) => h.lockToken)}::uuid[]) as v(id, lock_token)
    where m.id = v.id and m.lock_token = v.lock_token and m.status = 'received'`.execute(db);
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

/**
 * Extends the leases of messages this process is still normalizing. Only rows whose token still
 * matches (and still `received`) are touched; returns their ids, so a lease taken over by another
 * process is noticed.
 */
export async function renewInboundLeases(db: Executor, held: readonly HeldLease[]): Promise<Set<string>> {
  return renewLeases(db, 'inbound_messages', 'received', held);
}

/**
 * Gives leased messages back to the queue at once (their normalization was cut short by a database
 * outage, nothing of it stored), where their token still matches, and wakes the normalize workers.
 * The claim's attempt is taken back, as {@link unclaimInbound} does: the database failed, not the
 * message. A database that takes claims but not commits (a full disk under the events, a cancel)
 * has the same process claim it again every half second, and each claim counted would carry the
 * message past `normalizeRetryMs`' limit, where a transient error of its connector fails it (an
 * outage of a minute counted 100 attempts). A crash (no release) still counts its claim. Rows are
 * locked in {@link inLockOrder}. Returns how many were given back.
 */
export async function releaseInbound(
  db: Executor,
  given: readonly Pick<HeldLease, 'id' | 'lockToken'>[],
): Promise<number> {
  if (given.length === 0) return 0;
  const held = inLockOrder(given, (h) => h.id);
  const r = await first<{ n: string }>(
    sql`with released as (
          update switchyard.inbound_messages m set locked_until = null, lock_token = null, next_attempt_at = now(),
            attempts = greatest(m.attempts - 1, 0)
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

/**
 * Puts up to `limit` failed messages of an instance back in the normalize queue, oldest first (as
 * {@link requeueInbound} one): those received since `since` (when given) that failed at or before
 * `failedBefore`. The bound is what lets a caller repeat this until nothing is left: a message that
 * fails again (the connector still refuses it) fails after `failedBefore` and is not taken twice.
 * Read from inbound_settled_idx (failed and ignored only). Returns the ids, in that order.
 *
 * @example
 * ```ts
 * const ids = await requeueFailedInbound(db, { instanceId: 'dp-main', failedBefore: new Date(), limit: 500 });
 * ```
 */
export async function requeueFailedInbound(
  db: Executor,
  f: { instanceId: string; since?: Date; failedBefore: Date; limit: number },
): Promise<string[]> {
  const r = await rows<{ id: string }>(
    sql`with taken as (
          select id, seq from switchyard.inbound_messages
          where status = 'failed' and instance_id = ${f.instanceId}
            and (${f.since ?? null}::timestamptz is null or received_at >= ${f.since ?? null})
            and processed_at <= ${f.failedBefore}
          order by seq limit ${f.limit}
          for update skip locked),
        requeued as (
          update switchyard.inbound_messages m set status = 'received', attempts = 0, next_attempt_at = now(),
            locked_until = null, lock_token = null, reason = null, processed_at = null
          from taken where m.id = taken.id and m.status = 'failed'
          returning m.id, taken.seq)
        select id from requeued order by seq`,
    db,
  );
  return r.map((row) => row.id);
}

/** Whether a connector instance of this id exists (enabled or not). */
export async function instanceExists(db: Executor, instanceId: string): Promise<boolean> {
  return (
    (await first<{ one: number }>(
      sql`select 1 as one from switchyard.connector_instances where id = ${instanceId}`,
      db,
    )) !== undefined
  );
}

/** How many of the messages `ids` are in each status. */
export async function statusCounts(db: Executor, ids: readonly string[]): Promise<Record<string, number>> {
  const r = await rows<{ status: string; n: number }>(
    sql`select status, count(*)::int as n from switchyard.inbound_messages
        where id = any(${ids as string[]}::uuid[]) group by status`,
    db,
  );
  return Object.fromEntries(r.map((row) => [row.status, row.n]));
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
  // Oldest first from inbound_bodies_received_idx, each body's messages probed by inbound_body_idx
  // (the "offset 0" fence keeps the not-exists a probe per body, as in events/store.ts purgeEvents).
  // Left to the planner, right after the messages' purge (statistics not yet updated), each batch
  // merged the bodies in uuid order with every entry of inbound_body_idx: 1.3 s a batch and 175 s
  // for 450,000 bodies on a hub with 1.2 million messages.
  const r = await sql`delete from switchyard.inbound_bodies where id in (
      select b.id from switchyard.inbound_bodies b where b.received_at < ${olderThan}
        and not exists (select 1 from switchyard.inbound_messages m where m.body_id = b.id offset 0)
      order by b.received_at
      limit ${batch})`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}
