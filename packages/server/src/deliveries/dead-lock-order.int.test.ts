/**
 * The lock order of a subscription's dead deliveries. "Replay all" (`replayDead`, and `enable` with
 * `replayMissed`) locks the dead rows `for update` in event-sequence order; the fan-out's hold check
 * (`fanOutStoredEvents` in events/store.ts, run by the normalize commit) and the idle deliver pass
 * (`settleIdleDeliveries`) take `for share` on the dead rows of the subjects they meet. Taken in their
 * own order (the commit's events', the pass's held candidates'), a replay-all holding one dead row
 * and waiting for another that the commit or the pass had share-locked, while that one waited for
 * the first: Postgres aborted one of them after `deadlock_timeout` (40P01: the replay a 500, or a
 * normalize commit run again). Each test lets the other side share-lock the second dead row while a
 * third session holds it `for share` too (compatible with theirs, not with the replay's `for
 * update`), until both wait, then lets it go: with one order both go through.
 */
import { randomUUID } from 'node:crypto';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { commitNormalized } from '../events/store.ts';
import { newInbound } from '../inbound/fixtures.test-support.ts';
import { storeInbound } from '../inbound/store.ts';
import { type Database, openDatabase } from '../storage/db.ts';
import { lockWaitersRunning, until } from '../storage/locks.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import type { SubscriptionRow } from '../storage/subscription-row.ts';
import { deliveriesApi } from './api.ts';
import { settleIdleDeliveries } from './store.ts';

const pgdb = useTestDatabase();
let database: Database;

beforeAll(async () => {
  // The commit on a plan-stable session, as the hub runs it; the replay and the pass on the main pool.
  database = openDatabase(pgdb.url(), { max: 4, planStable: 1 });
  await migrate(database.db);
  await sql`insert into switchyard.subscriptions (id, kind, url, ordering) values
    ('sub-hold', 'webhook', 'https://example.test/hook', 'hold')`.execute(database.db);
  await sql`insert into switchyard.connector_instances (id, connector, mode, settings_sealed)
    values ('inst-1', 'test', 'push', 'x')`.execute(database.db);
});
afterAll(async () => {
  await database?.close();
});

/** Subjects: S1's dead delivery is of the earlier event, so a replay-all locks it first. */
const S1 = 'appointment/k1';
const S2 = 'appointment/k2';

/** The dead (unreplayed) delivery of each subject, S1's event stored before S2's. */
let dead: { s1: string; s2: string };

beforeEach(async () => {
  await sql`delete from switchyard.deliveries`.execute(database.db);
  const r = await sql<{ id: string; subject: string }>`with ev as (
      insert into switchyard.events (id, type, source, subject, time, envelope)
      select gen_random_uuid(), 'appointment.updated', 'test', s.subject, now(), '{}'::jsonb
      from unnest(${[S1, S2]}::text[]) with ordinality as s(subject, n) order by s.n
      returning id, sequence, subject)
    insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status, attempts,
      completed_at, last_error)
    select gen_random_uuid(), 'sub-hold', ev.id, ev.sequence, ev.subject, 'dead', 5, now(), 'HTTP 500'
    from ev order by ev.sequence returning id, subject`.execute(database.db);
  const of = new Map(r.rows.map((x) => [x.subject, x.id]));
  dead = { s1: of.get(S1)!, s2: of.get(S2)! };
});

/**
 * Runs `inside` while dead delivery `id` is share-locked in another session (as a fan-out or a
 * pass in flight holds it: other share lockers go on, the replay's `for update` waits), then lets
 * it go.
 */
async function sharingRow<T>(id: string, inside: () => Promise<T>): Promise<T> {
  const holder = new pg.Client({ connectionString: pgdb.url() });
  await holder.connect();
  try {
    await holder.query('begin');
    await holder.query('select 1 from switchyard.deliveries where id = $1 for share', [id]);
    const result = await inside();
    await holder.query('commit');
    return result;
  } finally {
    await holder.end();
  }
}

/** How a call ended, settled at once: 'ok', or the SQLSTATE it was aborted with (40P01 on the old order). */
function outcome(work: Promise<unknown>): Promise<string> {
  return work.then(
    () => 'ok',
    (error: { code?: string }) => String(error.code ?? error),
  );
}

/** "Replay all" of the subscription, as `POST /v1/subscriptions/{id}/replay-dead` runs it. */
function replayAll(): Promise<{ replayed: number }> {
  const api = deliveriesApi({
    db: database.db,
    wakeDeliver: () => {},
    requireSubscription: async (id) => ({ id }) as SubscriptionRow,
  });
  return api.replayDead('sub-hold');
}

/** The replay-all's statement waits for a row lock (it holds S1's dead row, waits for S2's). */
const replayWaits = async () =>
  (await lockWaitersRunning(database.db, '%order by event_sequence, seq for update%')) === 1;

async function deadRows(): Promise<{ subject: string; status: string; replayed: boolean }[]> {
  const r = await sql<{ subject: string; status: string; replayed: boolean }>`select subject, status,
      superseded_by is not null as replayed from switchyard.deliveries where reason = 'fanout'
      and status = 'dead' order by subject`.execute(database.db);
  return r.rows;
}

it('replays all dead deliveries while a normalize commit fans out behind them, without a deadlock', async () => {
  // Two messages whose events are of S2, then S1: the fan-out's hold check meets S2's dead row first.
  const [m2, m1] = [newInbound({ orderingKey: 'k2' }), newInbound({ orderingKey: 'k1' })];
  const stored = await storeInbound(database.db, [m2!, m1!], [], [], {
    ms: 60_000,
    ids: new Set([m2!.id, m1!.id]),
  });
  const token = new Map(stored.map((s) => [s.id, s.lock_token!]));
  const messages = [m2!, m1!].map((m) => ({
    id: m.id,
    lockToken: token.get(m.id)!,
    status: 'normalized' as const,
    reason: null,
    eventCount: 1,
  }));
  const events = [
    [m2!, S2],
    [m1!, S1],
  ].map(([m, subject]) => ({
    id: randomUUID(),
    type: 'appointment.booked',
    source: 'inst-1',
    subject: subject as string,
    time: new Date().toISOString(),
    envelope: { data: {} },
    inboundMessageId: (m as { id: string }).id,
  }));

  const [replay, commit, committed] = await sharingRow(dead.s2, async () => {
    const replaying = replayAll();
    await until(replayWaits);
    const committing = commitNormalized(database.db, messages, events, []);
    // The commit's text as pg_stat_activity shows it (its first 1024 bytes).
    await until(async () => (await lockWaitersRunning(database.db, '%with input as (%')) === 1);
    return [outcome(replaying), outcome(committing), committing] as const;
  });

  expect([await replay, await commit]).toEqual(['ok', 'ok']);
  expect((await committed).fanned).toBe(2);
  expect(await deadRows()).toEqual([
    { subject: S1, status: 'dead', replayed: true },
    { subject: S2, status: 'dead', replayed: true },
  ]);
});

it('replays all dead deliveries while an idle deliver pass holds the lines behind them, without a deadlock', async () => {
  // A due pending delivery behind each dead one, S2's first (the pass meets S2's dead row first).
  await sql`with ev as (
      insert into switchyard.events (id, type, source, subject, time, envelope)
      select gen_random_uuid(), 'appointment.updated', 'test', s.subject, now(), '{}'::jsonb
      from unnest(${[S2, S1]}::text[]) with ordinality as s(subject, n) order by s.n
      returning id, sequence, subject)
    insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, next_attempt_at)
    select case when ev.subject = ${S2} then '00000000-0000-4000-8000-00000000000a'::uuid
      else '00000000-0000-4000-8000-00000000000b'::uuid end, 'sub-hold', ev.id, ev.sequence, ev.subject,
      now() - interval '1 second'
    from ev order by ev.sequence`.execute(database.db);

  const [replay, pass] = await sharingRow(dead.s2, async () => {
    const replaying = replayAll();
    await until(replayWaits);
    const settling = settleIdleDeliveries(database.db);
    await until(
      async () => (await lockWaitersRunning(database.db, '%with behind_dead as materialized%')) === 1,
    );
    return [outcome(replaying), outcome(settling)] as const;
  });

  expect([await replay, await pass]).toEqual(['ok', 'ok']);
  expect(await deadRows()).toEqual([
    { subject: S1, status: 'dead', replayed: true },
    { subject: S2, status: 'dead', replayed: true },
  ]);
});
