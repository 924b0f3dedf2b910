/**
 * The delivery claim reads a bounded part of the queue, whatever one subject's backlog.
 *
 * Before migration 19, `claimable_deliveries` walked every due delivery in (next_attempt_at, seq)
 * order until it had found its limit: behind the in-flight head of one (subscription, subject) with
 * a deep queue it read every waiting delivery of that subject and probed its line for each, on every
 * claim (~20,000 rows with 10,000 queued). These tests count the rows the claim reads (Postgres'
 * per-transaction table statistics), not time, and check that per-subject order holds.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { useMigratedDatabase } from '../storage/database.test-support.ts';
import type { Executor } from '../storage/db.ts';
import * as subscriptionStore from '../subscriptions/store.ts';
import * as deliveryStore from './store.ts';

const database = useTestDatabase();
const store = useMigratedDatabase(database);

beforeAll(async () => {
  await sql`insert into switchyard.subscriptions (id, kind, url, ordering) values
    ('sub-hold', 'webhook', 'https://example.test/hook', 'hold')`.execute(store.db);
});

/**
 * Stores `count` events of `subject` (after everything stored so far) and one pending delivery of
 * each to sub-hold, due `dueAgo` before now.
 */
async function enqueue(prefix: string, subject: string, count: number, dueAgo = '10 seconds'): Promise<void> {
  await sql`with ev as (
      insert into switchyard.events (id, type, source, subject, time, envelope)
      select gen_random_uuid(), 'appointment.updated', 'test', ${subject}, now(), jsonb_build_object('n', ${prefix} || '-' || i)
      from generate_series(1, ${count}::integer) as i
      returning id, sequence, subject, envelope->>'n' as n)
    insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, next_attempt_at, last_error)
    select gen_random_uuid(), 'sub-hold', ev.id, ev.sequence, ev.subject, now() - ${dueAgo}::interval, ev.n
    from ev order by ev.sequence`.execute(store.db);
}

/** Rows of deliveries read by `work`, in a transaction rolled back afterwards (as in inbound-claim.int.test.ts). */
async function probe<T>(work: (trx: Executor) => Promise<T>): Promise<{ result: T; rowsRead: number }> {
  let out: { result: T; rowsRead: number } | undefined;
  const read = async (trx: Executor) => {
    const stats = await sql<{ read: string }>`
      select coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) as read
      from pg_stat_xact_user_tables where schemaname = 'switchyard' and relname = 'deliveries'`.execute(trx);
    return Number(stats.rows[0]?.read ?? 0);
  };
  await store.db
    .transaction()
    .execute(async (trx) => {
      const before = await read(trx);
      const result = await work(trx);
      out = { result, rowsRead: (await read(trx)) - before };
      throw new Rollback();
    })
    .catch((e: unknown) => {
      if (!(e instanceof Rollback)) throw e;
    });
  if (out === undefined) throw new Error('the probe did not run');
  return out;
}

class Rollback extends Error {}

/** Empties the queue and adds a `hold` subscription `id` (kept if a test before added it). */
async function emptyWith(id: string, url: string): Promise<void> {
  await sql`truncate switchyard.deliveries, switchyard.events cascade`.execute(store.db);
  await sql`insert into switchyard.subscriptions (id, kind, url, ordering)
    values (${id}, 'webhook', ${url}, 'hold') on conflict (id) do nothing`.execute(store.db);
}

/**
 * Queues one due delivery each of two healthy subjects of sub-hold, and claims under {@link probe}
 * (after an ANALYZE): what the claim took past another subscription's waiting deliveries, and the
 * rows it read. The two are deleted afterwards.
 */
async function claimTwo() {
  await enqueue('live', 'subject-live', 1);
  await enqueue('other', 'subject-other', 1);
  await sql`analyze switchyard.deliveries`.execute(store.db);
  const r = await probe((trx) => deliveryStore.claimDeliveries(trx, 15_000, 16));
  await sql`delete from switchyard.deliveries where subscription_id = 'sub-hold'`.execute(store.db);
  return r;
}

/** The test names (kept in last_error) of what a claim took. */
const names = (rows: readonly deliveryStore.DeliveryRow[]) => rows.map((r) => r.last_error).sort();

it('a claim behind the in-flight head of one deep subject reads as many rows with 10,000 queued as with 1,000', {
  timeout: 60_000,
}, async () => {
  await enqueue('deep', 'subject-deep', 1_000);
  const head = await deliveryStore.claimDeliveries(store.db, 15_000, 16);
  expect(names(head)).toEqual(['deep-1']);

  const small = await probe((trx) => deliveryStore.claimDeliveries(trx, 15_000, 16));
  expect(small.result).toEqual([]);
  await enqueue('deep-more', 'subject-deep', 9_000);
  const large = await probe((trx) => deliveryStore.claimDeliveries(trx, 15_000, 16));
  expect(large.result).toEqual([]);
  // Migration 9 read every waiting delivery of the subject and probed its line for each: ~20,000
  // rows with 10,000 queued. Now at most 256 in due order, then one head per line.
  expect(large.rowsRead).toBeLessThan(1_000);
  expect(large.rowsRead).toBeLessThanOrEqual(small.rowsRead + 50);

  // Other subjects queued behind the deep one are claimed in parallel with it, one head each.
  await enqueue('other', 'subject-other', 3);
  await enqueue('third', 'subject-third', 2);
  const behind = await deliveryStore.claimDeliveries(store.db, 15_000, 16);
  expect(names(behind)).toEqual(['other-1', 'third-1']);

  // Once the head has succeeded, the subject's next delivery (and only it) is claimable.
  const done = head[0]!;
  await sql`update switchyard.deliveries set status = 'succeeded', locked_until = null, lock_token = null
    where id = ${done.id}`.execute(store.db);
  const next = await deliveryStore.claimDeliveries(store.db, 15_000, 16);
  expect(names(next)).toEqual(['deep-2']);
});

it('past the walk, a line whose head is due later than the rest of the line is still claimed first, and only it', {
  timeout: 60_000,
}, async () => {
  await sql`update switchyard.deliveries set status = 'succeeded' where status <> 'succeeded'`.execute(
    store.db,
  );
  // 300 deliveries of one subject, all due; the first waits for a retry that fell due a second
  // ago, after all the others (created ten seconds ago): in due order it is the 300th row, past
  // the 256 the walk reads. Only the line's head may be claimed.
  await enqueue('late', 'subject-late', 300);
  await sql`update switchyard.deliveries set next_attempt_at = now() - interval '1 second', attempts = 1
    where last_error = 'late-1'`.execute(store.db);
  const claimed = await deliveryStore.claimDeliveries(store.db, 15_000, 16);
  expect(names(claimed)).toEqual(['late-1']);
  expect(await deliveryStore.claimDeliveries(store.db, 15_000, 16)).toEqual([]);

  // Its lease runs out (the process died): taken over, still alone.
  await sql`update switchyard.deliveries set locked_until = now() - interval '1 second'
    where last_error = 'late-1'`.execute(store.db);
  expect(names(await deliveryStore.claimDeliveries(store.db, 15_000, 16))).toEqual(['late-1']);

  // Dead and unsuperseded under 'hold', it still holds its line past the walk.
  await sql`update switchyard.deliveries set status = 'dead', locked_until = null where last_error = 'late-1'`.execute(
    store.db,
  );
  expect(await deliveryStore.claimDeliveries(store.db, 15_000, 16)).toEqual([]);
  // Once superseded by a replay (here: marked so), the next delivery of the line is the head.
  await sql`update switchyard.deliveries set superseded_by = gen_random_uuid() where last_error = 'late-1'`.execute(
    store.db,
  );
  expect(names(await deliveryStore.claimDeliveries(store.db, 15_000, 16))).toEqual(['late-2']);
});

it('a claim looks its deliveries up by key, not by reading the table (migration 20)', async () => {
  // A table of a few thousand finished deliveries (kept until retention) and one due: estimated at
  // 32 rows, the claim's update was planned as a hash join over a sequential scan of the whole
  // table, on every claim, while the table was this small.
  await sql`truncate switchyard.deliveries, switchyard.events cascade`.execute(store.db);
  await enqueue('done', 'subject-done', 3_000);
  await sql`update switchyard.deliveries set status = 'succeeded', completed_at = now()`.execute(store.db);
  await enqueue('due', 'subject-due', 1);
  await sql`analyze switchyard.deliveries`.execute(store.db);
  const { result, rowsRead } = await probe((trx) => deliveryStore.claimDeliveryWork(trx, 15_000, 16));
  expect(result.map((w) => w.delivery.last_error)).toEqual(['due-1']);
  expect(rowsRead).toBeLessThan(50);
});

it('a pass that claims nothing holds what waits behind a dead delivery and says when the next one is due', async () => {
  await sql`truncate switchyard.deliveries, switchyard.events cascade`.execute(store.db);
  // A dead, unsuperseded delivery under 'hold', and one due behind it that the fan-out left
  // pending (it committed while the first one died): the claim skips it, the idle pass holds it.
  await enqueue('line', 'subject-line', 2);
  await sql`update switchyard.deliveries set status = 'dead' where last_error = 'line-1'`.execute(store.db);
  // A retry of another subject, due in a minute; and a lease of a third that runs out in 30 s.
  await enqueue('retry', 'subject-retry', 1, '-60 seconds');
  await enqueue('leased', 'subject-leased', 1);
  await sql`update switchyard.deliveries set status = 'in_flight', locked_until = now() + interval '30 seconds'
    where last_error = 'leased-1'`.execute(store.db);
  expect(await deliveryStore.claimDeliveries(store.db, 15_000, 16)).toEqual([]);

  const next = await deliveryStore.settleIdleDeliveries(store.db);
  const statusOf = async (name: string) =>
    (
      await sql<{
        status: string;
      }>`select status from switchyard.deliveries where last_error = ${name}`.execute(store.db)
    ).rows[0]?.status;
  expect(await statusOf('line-2')).toBe('held');
  expect(await statusOf('retry-1')).toBe('pending');
  // The earliest future time: the lease (30 s), before the retry (60 s).
  const inMs = next!.getTime() - Date.now();
  expect(inMs).toBeGreaterThan(20_000);
  expect(inMs).toBeLessThanOrEqual(30_000);

  // Nothing scheduled: no time.
  await sql`update switchyard.deliveries set status = 'succeeded', locked_until = null
    where last_error in ('retry-1', 'leased-1')`.execute(store.db);
  expect(await deliveryStore.settleIdleDeliveries(store.db)).toBeUndefined();
});

it('a pass that claims nothing reads as many rows with 10,000 deliveries waiting as with none', {
  timeout: 60_000,
}, async () => {
  // The shapes in which the claim finds nothing while deliveries wait, each pass reading them all
  // before (~20,000 rows here): one subject's deep queue behind its in-flight head, retries
  // scheduled after a subscriber's outage. Plus a dead head with a delivery that raced its death.
  await sql`truncate switchyard.deliveries, switchyard.events cascade`.execute(store.db);
  await enqueue('line', 'subject-line', 2);
  await sql`update switchyard.deliveries set status = 'dead' where last_error = 'line-1'`.execute(store.db);
  await enqueue('head', 'subject-deep', 1);
  await sql`update switchyard.deliveries set status = 'in_flight', locked_until = now() + interval '30 seconds'
    where last_error = 'head-1'`.execute(store.db);
  const small = await probe((trx) => deliveryStore.settleIdleDeliveries(trx));

  await enqueue('deep', 'subject-deep', 5_000);
  await sql`with ev as (
      insert into switchyard.events (id, type, source, subject, time, envelope)
      select gen_random_uuid(), 'appointment.updated', 'test', 'subject-retry-' || i, now(), '{}'::jsonb
      from generate_series(1, 5000) as i
      returning id, sequence, subject)
    insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, attempts, next_attempt_at)
    select gen_random_uuid(), 'sub-hold', ev.id, ev.sequence, ev.subject, 1, now() + interval '60 seconds' from ev`.execute(
    store.db,
  );
  // Before an ANALYZE (the table filled since the last one): at most one pass over the table,
  // whatever the planner guesses. Left free, it drove from the pending rows and probed one deep
  // line per row: 12.5 million rows read.
  const unanalyzed = await probe((trx) => deliveryStore.settleIdleDeliveries(trx));
  expect(unanalyzed.rowsRead).toBeLessThan(25_000);
  await sql`analyze switchyard.deliveries`.execute(store.db);
  expect(await deliveryStore.claimDeliveries(store.db, 15_000, 16)).toEqual([]);
  const large = await probe((trx) => deliveryStore.settleIdleDeliveries(trx));
  // Every due pending row with a probe of its line, and every future one, before: ~20,000.
  expect(large.rowsRead).toBeLessThan(50);
  expect(large.rowsRead).toBeLessThanOrEqual(small.rowsRead + 10);
  // The same answer: the lease runs out first (30 s, before the retries' 60 s)...
  const inMs = large.result!.getTime() - Date.now();
  expect(inMs).toBeGreaterThan(20_000);
  expect(inMs).toBeLessThanOrEqual(30_000);
  // ...and the delivery behind the dead one is held; the deep queue behind a live head is not.
  await deliveryStore.settleIdleDeliveries(store.db);
  const held = await sql<{ last_error: string }>`select last_error from switchyard.deliveries
    where status = 'held'`.execute(store.db);
  expect(held.rows.map((r) => r.last_error)).toEqual(['line-2']);
});

it("a disabled subscription's backlog is parked: a claim reads as many rows with 10,000 of it waiting as with 1,000", {
  timeout: 60_000,
}, async () => {
  await emptyWith('sub-off', 'https://example.test/gone');
  /** `count` due deliveries of sub-off, each its own subject. */
  const queue = (prefix: string, count: number) =>
    sql`with ev as (
        insert into switchyard.events (id, type, source, subject, time, envelope)
        select gen_random_uuid(), 'appointment.updated', 'test', ${prefix} || i, now(), '{}'::jsonb
        from generate_series(1, ${count}::integer) as i
        returning id, sequence, subject)
      insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, next_attempt_at, last_error)
      select gen_random_uuid(), 'sub-off', ev.id, ev.sequence, ev.subject, now() - interval '1 minute', ev.subject
      from ev`.execute(store.db);
  const disable = () =>
    store.db.transaction().execute((trx) => subscriptionStore.disableSubscription(trx, 'sub-off', 'test'));
  await queue('parked-a-', 1_000);
  await disable();
  const small = await claimTwo();
  expect(names(small.result)).toEqual(['live-1', 'other-1']);
  await store.db.transaction().execute((trx) => subscriptionStore.enableSubscription(trx, 'sub-off'));
  await queue('parked-b-', 9_000);
  await disable();
  const large = await claimTwo();
  expect(names(large.result)).toEqual(['live-1', 'other-1']);
  // Left due, a disabled subscription's deliveries were filtered out of the claim's walk of the
  // due index one by one: all 10,000 read by every claim.
  expect(large.rowsRead).toBeLessThan(100);
  expect(large.rowsRead).toBeLessThanOrEqual(small.rowsRead + 10);
  const parked = await sql<{ n: string }>`select count(*) as n from switchyard.deliveries
    where subscription_id = 'sub-off' and next_attempt_at = ${deliveryStore.PARKED_UNTIL}::timestamptz`.execute(
    store.db,
  );
  expect(parked.rows[0]?.n).toBe('10000');

  // Enabled again: due now, and claimed in order.
  await store.db.transaction().execute((trx) => subscriptionStore.enableSubscription(trx, 'sub-off'));
  const back = await deliveryStore.claimDeliveries(store.db, 15_000, 3);
  expect(names(back)).toEqual(['parked-a-1', 'parked-a-2', 'parked-a-3']);
  await sql`delete from switchyard.deliveries where subscription_id = 'sub-off'`.execute(store.db);
  await sql`delete from switchyard.subscriptions where id = 'sub-off'`.execute(store.db);
});

it('a subscriber down: a delivery due behind its retrying head is put off until the head is, and claims stop reading it', {
  timeout: 120_000,
}, async () => {
  await emptyWith('sub-down', 'https://example.test/down');
  /**
   * `count` subjects of sub-down, each with a head waiting for its retry `retryIn` from now and a
   * later event due since the outage (an appointment booked, then moved, while the subscriber was
   * down): the later ones are the oldest due rows, in front of every healthy subscription's.
   */
  const outage = (prefix: string, count: number, retryIn: string) =>
    sql`with ev as (
        insert into switchyard.events (id, type, source, subject, time, envelope)
        select gen_random_uuid(), 'appointment.updated', 'test', ${prefix} || (i / 2), now(), '{}'::jsonb
        from generate_series(2, ${count * 2 + 1}::integer) as i
        returning id, sequence, subject)
      insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, attempts,
        next_attempt_at, last_error)
      select gen_random_uuid(), 'sub-down', ev.id, ev.sequence, ev.subject,
        case when ev.sequence = min(ev.sequence) over (partition by ev.subject) then 1 else 0 end,
        case when ev.sequence = min(ev.sequence) over (partition by ev.subject) then now() + ${retryIn}::interval
             else now() - interval '1 minute' end,
        ev.subject || case when ev.sequence = min(ev.sequence) over (partition by ev.subject) then '-head' else '-next' end
      from ev`.execute(store.db);
  /** Claims as the deliver workers do until the walk has met every such delivery once. */
  const settle = async (subjects: number) => {
    for (let i = 0; i <= Math.ceil(subjects / 256); i++)
      await deliveryStore.claimDeliveries(store.db, 15_000, 16);
  };
  /** The next_attempt_at (ms) of a line's head and of the delivery behind it. */
  const timesOf = async (subject: string): Promise<{ head: number; next: number }> => {
    const r = await sql<{ name: string; at: Date }>`select last_error as name, next_attempt_at as at
      from switchyard.deliveries where subject = ${subject}`.execute(store.db);
    const at = (suffix: string) => r.rows.find((x) => x.name === `${subject}${suffix}`)!.at.getTime();
    return { head: at('-head'), next: at('-next') };
  };

  await outage('small-', 500, '1 hour');
  await settle(500);
  const small = await claimTwo();
  expect(names(small.result)).toEqual(['live-1', 'other-1']);
  await outage('large-', 4_500, '1 hour');
  await settle(4_500);
  const large = await claimTwo();
  expect(names(large.result)).toEqual(['live-1', 'other-1']);
  // Left due behind their heads, the 5,000 later events filled the walk's 256 rows with blocked
  // ones and sent every claim, for every subscription, through the walk by line: ~10,500 rows.
  expect(large.rowsRead).toBeLessThan(100);
  expect(large.rowsRead).toBeLessThanOrEqual(small.rowsRead + 10);
  // Put off to their heads' time, not parked: each goes when its head can, never before.
  const large7 = await timesOf('large-7');
  expect(large7.next).toBe(large7.head);

  // In order once the head's retry falls due: the head alone, then (it succeeded) the next one.
  await outage('soon-', 1, '1 second');
  await settle(1);
  const soon = await timesOf('soon-1');
  expect(soon.next).toBe(soon.head);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, soon.head - Date.now() + 50)));
  const head = await deliveryStore.claimDeliveries(store.db, 15_000, 16);
  expect(names(head)).toEqual(['soon-1-head']);
  expect(await deliveryStore.claimDeliveries(store.db, 15_000, 16)).toEqual([]);
  const finished = await deliveryStore.finishDeliveries(store.db, [
    {
      deliveryId: head[0]!.id,
      lockToken: head[0]!.lock_token!,
      status: 'succeeded',
      nextAttemptInMs: 0,
      attempt: 2,
      startedAt: new Date(),
      latencyMs: 5,
      statusCode: 200,
      responseSnippet: null,
      error: null,
      outcome: 'succeeded',
      traceparent: null,
    },
  ]);
  expect(finished).toEqual([{ id: head[0]!.id, successor: true }]);
  expect(names(await deliveryStore.claimDeliveries(store.db, 15_000, 16))).toEqual(['soon-1-next']);

  // A head given up on (skipped) lets what was put off behind it go at once, not at its retry time.
  const skipped = await sql<{ id: string }>`select id from switchyard.deliveries
    where last_error = 'large-9-head'`.execute(store.db);
  await store.db.transaction().execute(async (trx) => {
    const row = await deliveryStore.skipDelivery(trx, skipped.rows[0]!.id);
    await deliveryStore.releaseSubject(trx, row!.subscription_id, row!.subject);
  });
  expect(names(await deliveryStore.claimDeliveries(store.db, 15_000, 16))).toEqual(['large-9-next']);
  await sql`delete from switchyard.deliveries where subscription_id = 'sub-down'`.execute(store.db);
});
