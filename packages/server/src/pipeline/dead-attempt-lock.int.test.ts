/**
 * The transaction that records a dead attempt and counts it against its subscription (the
 * automatic disable after consecutive deaths) against a disable of the same subscription: the
 * disable locks the subscription's row, then parks its pending deliveries. The attempt locked its
 * delivery first and then the row: the two at once deadlocked (40P01, seen in a burst of deaths of
 * a subscription with a backlog, its park a long statement). Each test holds the row in another
 * session, as a disable in progress does, until the attempts wait on it. And the deaths in flight
 * when a subscription is disabled each logged "subscription disabled" again ("13 … 17 consecutive
 * deliveries died"), though only the first disabled it.
 */
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { until } from '../storage/locks.test-support.ts';
import { eventually, makeHub, push, setupInstance } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
let hub: Hub;
let subscriber: RecordingSubscriber;
const lines: { msg?: string; subscription?: string; reason?: string }[] = [];

beforeAll(async () => {
  subscriber = await startRecordingSubscriber({ defaultResponse: 500 });
  hub = await makeHub(database.url(), {
    logger: pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) }),
  });
  await hub.start();
  await setupInstance(hub);
});
afterAll(async () => {
  await hub?.stop();
  await subscriber?.close();
});

/** Runs `inside` while subscription `id`'s row is locked in another session, as a disable holds it. */
async function holdingRow<T>(id: string, inside: (holder: pg.Client) => Promise<T>): Promise<T> {
  const holder = new pg.Client({ connectionString: database.url() });
  await holder.connect();
  try {
    await holder.query('begin');
    await holder.query('select 1 from switchyard.subscriptions where id = $1 for no key update', [id]);
    const result = await inside(holder);
    await holder.query('commit');
    return result;
  } finally {
    await holder.end();
  }
}

/**
 * Sessions waiting to lock a subscription's row as a dead attempt does (lockSubscription), not any
 * other lock waiter: under load another statement of the hub may wait a moment too, and counting
 * it let a test go on before the attempt had died (its delivery not yet written).
 */
async function deadAttemptsWaiting(): Promise<number> {
  const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock'
      and query like '%from switchyard.subscriptions where id = % for no key update%'`.execute(hub.host.db);
  return r.rows[0]!.n;
}

async function ingest(id: string, booking: string): Promise<void> {
  const r = await hub.ingest('acme-1', push({ id, type: 'created', booking }));
  if (!r.ok) throw new Error('ingest failed');
}

it('locks the subscription before the delivery when an attempt dies, as a disable does', async () => {
  await hub.subscriptions.create({
    id: 'dies-once',
    url: subscriber.url,
    allowPrivateAddresses: true,
    retryScheduleMs: [0],
    disableAfterConsecutiveDead: 5,
  });
  const locked = await holdingRow('dies-once', async (holder) => {
    await ingest('lock-n1', 'lock-1');
    // The dead attempt's transaction waits for the row the "disable" holds…
    await until(async () => (await deadAttemptsWaiting()) === 1);
    // …and holds no delivery of the subscription meanwhile: the park can go on.
    const r = await holder.query(
      `select id from switchyard.deliveries where subscription_id = 'dies-once' for update nowait`,
    );
    return r.rowCount;
  });
  expect(locked).toBe(1);
  await eventually(async () => {
    const r = await sql<{ status: string }>`select status from switchyard.deliveries
      where subscription_id = 'dies-once'`.execute(hub.host.db);
    return r.rows[0]?.status === 'dead';
  });
});

it('logs "subscription disabled" once, for the death that disabled it, not for those in flight then', async () => {
  await hub.subscriptions.create({
    id: 'dies-thrice',
    url: subscriber.url,
    allowPrivateAddresses: true,
    retryScheduleMs: [0],
    disableAfterConsecutiveDead: 1,
  });
  await holdingRow('dies-thrice', async () => {
    for (const n of [1, 2, 3]) await ingest(`thrice-n${n}`, `thrice-${n}`);
    // Three attempts died at once; each waits to count its death.
    await until(async () => (await deadAttemptsWaiting()) === 3);
  });
  await eventually(async () => {
    const r = await sql<{ n: number }>`select count(*)::int as n from switchyard.deliveries
      where subscription_id = 'dies-thrice' and status = 'dead'`.execute(hub.host.db);
    return r.rows[0]!.n === 3;
  });
  const disabled = lines.filter(
    (l) => l.subscription === 'dies-thrice' && l.msg?.startsWith('subscription disabled'),
  );
  expect(disabled.map((l) => l.reason)).toEqual(['1 consecutive deliveries died']);
  expect((await hub.subscriptions.get('dies-thrice')).disabledReason).toBe('1 consecutive deliveries died');
});
