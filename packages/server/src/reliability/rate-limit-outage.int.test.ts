/**
 * A database outage between a delivery's claim and its POST: the claim counted an attempt, nothing
 * was sent. Fresh-clone CI under load read a rate-limited delivery at 2 attempts with one recorded
 * (rate-limit.int.test.ts): a statement of the attempt before its POST (the rate-limit token) failed
 * as the database being unavailable, the delivery was given back with its claim's attempt counted,
 * and the next claim counted another. Here the outage is made to meet the token on purpose: its row
 * is locked by the test, so the token's statement waits, and the hub's connection is cut meanwhile.
 * The same reading came after the POST too: the attempt's record failed with the database, the
 * delivery was given back with its attempt counted and no row, and was sent again as attempt 2.
 */
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import { eventually, makeHub, push, setupInstance } from '../pipeline/fixtures.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.test-support.ts';

const database = useTestDatabase();
const secret = generateSecret();
let subscriber: RecordingSubscriber;
let proxy: TcpProxy;
let hub: Hub;
let direct: pg.Client;
let pool: pg.Pool;

beforeAll(async () => {
  subscriber = await startRecordingSubscriber({ secrets: secret });
  const url = new URL(database.url());
  proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
  const proxied = new URL(database.url());
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  hub = await makeHub(proxied.toString());
  await hub.start();
  await setupInstance(hub);
  direct = new pg.Client({ connectionString: database.url() });
  await direct.connect();
  pool = new pg.Pool({ connectionString: database.url(), max: 2 });
});

afterAll(async () => {
  proxy?.restore();
  await direct?.end();
  await pool?.end();
  await hub?.stop({ graceful: false });
  await proxy?.close();
  await subscriber?.close();
});

it('a delivery cut short before its POST (the outage met its rate-limit token) is not counted an attempt', {
  timeout: 60_000,
}, async () => {
  const { subscription } = await hub.subscriptions.create({
    url: `${subscriber.url}limited`,
    secrets: [secret],
    allowPrivateAddresses: true,
    rateLimit: { perSecond: 1 },
  });
  // The token's row held as the token holds it (`for no key update`: a fan-out's foreign-key check,
  // `for key share`, still passes): the attempt's token statement waits for it.
  await direct.query('begin');
  await direct.query('select 1 from switchyard.subscriptions where id = $1 for no key update', [
    subscription.id,
  ]);
  const r = await hub.ingest('acme-1', push({ id: 'rlo-1', type: 'created', booking: 'rlo-b-1' }));
  expect(r.ok).toBe(true);
  await eventually(async () => {
    // Asked on its own connection: the locking one sees pg_stat_activity as of its first look.
    const waiting = await pool.query(
      `select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like '%rate_tokens%'`,
    );
    return waiting.rows.length === 1;
  }, 20_000);
  // Nothing sent yet; the outage now, then the lock let go and the database back.
  expect(subscriber.requests).toHaveLength(0);
  proxy.cut();
  await new Promise((resolve) => setTimeout(resolve, 300));
  await direct.query('rollback');
  proxy.restore();

  await subscriber.waitFor(1, 30_000);
  const delivery = await eventually(async () => {
    const row = await direct.query<{ id: string; status: string; attempts: number }>(
      'select id, status, attempts from switchyard.deliveries where subscription_id = $1',
      [subscription.id],
    );
    return row.rows[0]?.status === 'succeeded' ? row.rows[0] : undefined;
  }, 30_000);
  const recorded = await direct.query<{ attempt: number; status_code: number }>(
    'select attempt, status_code from switchyard.delivery_attempts where delivery_id = $1 order by id',
    [delivery.id],
  );
  // One POST, one attempt recorded, one counted (before: 2 counted, the first never recorded).
  expect(subscriber.requests).toHaveLength(1);
  expect(recorded.rows).toEqual([{ attempt: 1, status_code: 200 }]);
  expect(delivery.attempts).toBe(1);
});

it('an attempt answered while the database is out is recorded when its delivery is given back', {
  timeout: 60_000,
}, async () => {
  const { subscription } = await hub.subscriptions.create({
    url: `${subscriber.url}recorded`,
    secrets: [secret],
    allowPrivateAddresses: true,
    rateLimit: { perSecond: 1 },
  });
  // Its first request held until the database is out: its answer (200) cannot be recorded then.
  let answer: () => void = () => {};
  const answered = new Promise<void>((resolve) => {
    answer = resolve;
  });
  const ours = () => subscriber.requests.filter((q) => q.path === '/recorded');
  subscriber.setHandler(async (request) => {
    if (request.path !== '/recorded' || ours().length > 1) return undefined;
    await answered;
    return 200;
  });
  const r = await hub.ingest('acme-1', push({ id: 'rlo-2', type: 'created', booking: 'rlo-b-2' }));
  expect(r.ok).toBe(true);
  await eventually(async () => ours().length === 1, 20_000);
  // The first case's subscription has the event too: its delivery recorded first, so that the one
  // given back is ours.
  await eventually(async () => {
    const others = await direct.query(
      `select 1 from switchyard.deliveries where subscription_id <> $1 and status <> 'succeeded'`,
      [subscription.id],
    );
    return others.rows.length === 0;
  }, 20_000);
  proxy.cut();
  answer();
  // Its record failed: the delivery waits to be given back until the database is back.
  await eventually(async () => hub.leaseCounts().deliveries.toRelease === 1, 20_000);
  proxy.restore();

  const delivery = await eventually(async () => {
    const row = await direct.query<{ id: string; status: string; attempts: number }>(
      'select id, status, attempts from switchyard.deliveries where subscription_id = $1',
      [subscription.id],
    );
    return row.rows[0]?.status === 'succeeded' ? row.rows[0] : undefined;
  }, 30_000);
  subscriber.setHandler(undefined);
  const recorded = await direct.query<{
    attempt: number;
    status_code: number;
    outcome: string;
    error: string;
  }>(
    'select attempt, status_code, outcome, error from switchyard.delivery_attempts where delivery_id = $1 order by id',
    [delivery.id],
  );
  // Two POSTs (the second carries the same webhook-id), two attempts counted and two recorded:
  // the first a retry saying why (before: only the second was recorded, numbered 2).
  expect(ours().map((q) => q.response?.status)).toEqual([200, 200]);
  expect(recorded.rows).toEqual([
    {
      attempt: 1,
      status_code: 200,
      outcome: 'retry',
      error: 'its outcome could not be recorded (the database was unavailable): sent again',
    },
    { attempt: 2, status_code: 200, outcome: 'succeeded', error: null },
  ]);
  expect(delivery.attempts).toBe(2);
});
