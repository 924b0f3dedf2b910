/**
 * The lock order of the queues' statements that update several rows by id (an `unnest` of arrays,
 * each locking its rows in its arrays' order in the plan-stable sessions that run them): the lease
 * renewal (`renewLeases`, storage/queues.ts) against the attempt record (`finishDeliveries`) and
 * against the normalize commit (`commitNormalized`, events/store.ts), which lock rows the lease
 * keeper is still renewing. Given the same rows in different orders, each locked one and waited for
 * the other's: Postgres aborted one of them after `deadlock_timeout` (40P01, logged and retried).
 * The late pull batch's reordering (`queueBefore`) took its rows in `seq` order, against the
 * renewal of leases run out but still held (a process stalled past its lease, renewing late).
 * Each test holds one row in a third session, as a statement in flight does, until both
 * statements wait, then lets it go: with one order both go through.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { commitNormalized } from '../events/store.ts';
import { newInbound } from '../inbound/fixtures.test-support.ts';
import { queueBefore, renewInboundLeases, storeInbound } from '../inbound/store.ts';
import { type Database, openDatabase } from '../storage/db.ts';
import { lockWaitersRunning, until } from '../storage/locks.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import { finishDeliveries, renewDeliveryLeases } from './store.ts';

const pgdb = useTestDatabase();
let database: Database;

beforeAll(async () => {
  // Two plan-stable sessions, as the hub runs the renewal and the record (nested loops over the
  // arrays: rows locked in the arrays' order); the main pool for the setup and the waits.
  database = openDatabase(pgdb.url(), { max: 2, planStable: 2 });
  await migrate(database.db);
  await sql`insert into switchyard.subscriptions (id, kind, url) values
    ('sub-order', 'webhook', 'https://example.test/hook')`.execute(database.db);
  await sql`insert into switchyard.connector_instances (id, connector, mode, settings_sealed)
    values ('inst-1', 'test', 'push', 'x')`.execute(database.db);
});
afterAll(async () => {
  await database?.close();
});

/** Ids in ascending order: A before B. */
const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

/**
 * Runs `inside` while row `id` of `table` is locked in another session (`for no key update`, as
 * an update of it in flight holds it), then lets it go.
 */
async function holdingRow<T>(
  table: 'deliveries' | 'inbound_messages',
  id: string,
  inside: () => Promise<T>,
): Promise<T> {
  const holder = new pg.Client({ connectionString: pgdb.url() });
  await holder.connect();
  try {
    await holder.query('begin');
    await holder.query(`select 1 from switchyard.${table} where id = $1 for no key update`, [id]);
    const result = await inside();
    await holder.query('commit');
    return result;
  } finally {
    await holder.end();
  }
}

/**
 * How a statement ended, settled at once (it may fail before its test looks): 'ok', or the SQLSTATE
 * it was aborted with (40P01 on the old order).
 */
function outcome(work: Promise<unknown>): Promise<string> {
  return work.then(
    () => 'ok',
    (error: { code?: string }) => String(error.code ?? error),
  );
}

it('renews leases and records attempts of the same deliveries given in different orders without a deadlock', async () => {
  const tokens = await sql<{ id: string; lock_token: string }>`with ev as (
      insert into switchyard.events (id, type, source, subject, time, envelope)
      select gen_random_uuid(), 'appointment.updated', 'test', 'appointment/' || i, now(), '{}'::jsonb
      from generate_series(1, 2) as i returning id, sequence, subject)
    insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status, attempts,
      lock_token, locked_until)
    select case when ev.subject = 'appointment/1' then ${A}::uuid else ${B}::uuid end, 'sub-order', ev.id,
      ev.sequence, ev.subject, 'in_flight', 1, gen_random_uuid(), now() + interval '1 minute'
    from ev returning id, lock_token`.execute(database.db);
  const token = new Map(tokens.rows.map((r) => [r.id, r.lock_token]));
  const record = (id: string) => ({
    deliveryId: id,
    lockToken: token.get(id)!,
    status: 'succeeded' as const,
    nextAttemptInMs: 0,
    attempt: 1,
    startedAt: new Date(),
    latencyMs: 4,
    statusCode: 200,
    responseSnippet: null,
    error: null,
    outcome: 'succeeded',
    traceparent: null,
  });

  const [renewal, recordings] = await holdingRow('deliveries', B, async () => {
    // The keeper's renewal, its leases in the order they were taken: B, then A…
    const renewing = outcome(
      renewDeliveryLeases(database.db, [
        { id: B, lockToken: token.get(B)!, leaseMs: 60_000 },
        { id: A, lockToken: token.get(A)!, leaseMs: 60_000 },
      ]),
    );
    await until(async () => (await lockWaitersRunning(database.db, '%set locked_until = greatest%')) === 1);
    // …and the attempts' record, in the order they were answered: A, then B.
    const recording = outcome(finishDeliveries(database.db, [record(A), record(B)]));
    await until(
      async () => (await lockWaitersRunning(database.db, '%insert into switchyard.delivery_attempts%')) === 1,
    );
    return [renewing, recording] as const;
  });

  expect([await renewal, await recordings]).toEqual(['ok', 'ok']);
  const after = await sql<{ id: string; status: string }>`select id, status from switchyard.deliveries
    where id in (${A}, ${B}) order by id`.execute(database.db);
  expect(after.rows).toEqual([
    { id: A, status: 'succeeded' },
    { id: B, status: 'succeeded' },
  ]);
});

it('renews leases and commits normalized messages given in different orders without a deadlock', async () => {
  const [a, b] = [newInbound({ id: A }), newInbound({ id: B })];
  const stored = await storeInbound(database.db, [a!, b!], [], [], { ms: 60_000, ids: new Set([A, B]) });
  const token = new Map(stored.map((s) => [s.id, s.lock_token!]));
  const finished = (id: string) => ({
    id,
    lockToken: token.get(id)!,
    status: 'ignored' as const,
    reason: 'test',
    eventCount: 0,
  });

  const [renewal, commit, committed] = await holdingRow('inbound_messages', B, async () => {
    const renewing = outcome(
      renewInboundLeases(database.db, [
        { id: B, lockToken: token.get(B)!, leaseMs: 60_000 },
        { id: A, lockToken: token.get(A)!, leaseMs: 60_000 },
      ]),
    );
    await until(async () => (await lockWaitersRunning(database.db, '%set locked_until = greatest%')) === 1);
    const committing = commitNormalized(database.db, [finished(A), finished(B)], []);
    // The commit's text as pg_stat_activity shows it (its first 1024 bytes: not its update's).
    await until(async () => (await lockWaitersRunning(database.db, '%with input as (%')) === 1);
    return [renewing, outcome(committing), committing] as const;
  });

  expect([await renewal, await commit]).toEqual(['ok', 'ok']);
  expect([...(await committed).finished].sort()).toEqual([A, B]);
});

it('renews leases run out and reorders a late pull batch behind the same messages without a deadlock', async () => {
  await sql`delete from switchyard.inbound_messages`.execute(database.db);
  // B is stored first (its seq before A's): queueBefore took B first, the renewal takes A first.
  const [b, a] = [
    newInbound({ id: B, orderingKey: 'k-order' }),
    newInbound({ id: A, orderingKey: 'k-order' }),
  ];
  await storeInbound(database.db, [b!], [], []);
  await storeInbound(database.db, [a!], [], []);
  // Leased by a process that stalled past its lease: run out, its token still what it renews with.
  const leased = await sql<{ id: string; lock_token: string }>`update switchyard.inbound_messages
    set lock_token = gen_random_uuid(), locked_until = now() - interval '1 second', attempts = 1
    where id in (${A}, ${B}) returning id, lock_token`.execute(database.db);
  const token = new Map(leased.rows.map((r) => [r.id, r.lock_token]));
  // A batch of the key pulled before them, stored late (its own store left out here).
  const late = newInbound({ orderingKey: 'k-order', receivedAt: new Date(Date.now() - 60_000) });

  const [renewal, reorder] = await holdingRow('inbound_messages', A, async () => {
    const renewing = outcome(
      renewInboundLeases(database.db, [
        { id: A, lockToken: token.get(A)!, leaseMs: 60_000 },
        { id: B, lockToken: token.get(B)!, leaseMs: 60_000 },
      ]),
    );
    await until(async () => (await lockWaitersRunning(database.db, '%set locked_until = greatest%')) === 1);
    const reordering = outcome(
      database.db.transaction().execute((trx) => queueBefore(trx, 'inst-1', [late])),
    );
    await until(async () => (await lockWaitersRunning(database.db, '%with later as (%')) === 1);
    return [renewing, reordering] as const;
  });

  expect([await renewal, await reorder]).toEqual(['ok', 'ok']);
});
