/**
 * Subscriber outages at the network level (a TCP proxy in front of the recording subscriber that
 * resets every connection): a short outage is ridden out by retries, in per-subject order; an
 * endpoint that stays down is disabled, and re-enabling it with `replayMissed` delivers everything.
 */
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import {
  ADMIN_TOKEN,
  eventually,
  type InProcessHub,
  newLedger,
  openPool,
  pushOne,
  received,
  startInProcessHub,
} from './support.test-support.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.test-support.ts';

const database = useTestDatabase();
const secret = generateSecret();
let subscriber: RecordingSubscriber;
let proxy: TcpProxy;
let h: InProcessHub;
let pool: pg.Pool;
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  subscriber = await startRecordingSubscriber({ secrets: secret });
  proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(subscriber.url).port) });
  h = await startInProcessHub({
    databaseUrl: database.url(),
    adminToken: ADMIN_TOKEN,
    pipeline: { disableAfterConsecutiveDead: 3 },
    logger: pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) }),
  });
  pool = openPool(database.url());
});

afterAll(async () => {
  await h?.close();
  await proxy?.close();
  await subscriber?.close();
  await pool?.end();
});

const viaProxy = (path: string) => `http://127.0.0.1:${proxy.port}/${path}`;
const on = (path: string) => subscriber.requests.filter((r) => r.path === `/${path}`);

/** `switchyard_subscription_disabled` of a subscription, scraped from the hub's `/metrics`. */
async function disabledGauge(subscriptionId: string): Promise<number | undefined> {
  const text = await (await fetch(`${h.base}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`switchyard_subscription_disabled{subscription="${subscriptionId}"} `));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

async function eventIdsOf(prefix: string): Promise<string[]> {
  const r = await pool.query<{ id: string }>(
    `select e.id from switchyard.events e join switchyard.inbound_messages m on m.id = e.inbound_message_id
      where m.dedupe_key like $1 order by e.sequence`,
    [`${prefix}-%`],
  );
  return r.rows.map((row) => row.id);
}

it('rides out a short outage with recorded retries and delivers every event in per-subject order', {
  timeout: 60_000,
}, async () => {
  const { subscription } = await h.hub.subscriptions.create({
    url: viaProxy('short'),
    secrets: [secret],
    allowPrivateAddresses: true,
    retryScheduleMs: [0, 100, 200, 500, 1000, 1000, 2000, 2000, 2000, 2000, 3000, 3000, 3000],
  });
  proxy.cut();
  const ledger = newLedger();
  // 6 subjects × 8 events, pushed while the subscriber is unreachable.
  for (let n = 0; n < 48; n++) {
    await pushOne(h.base, ledger, {
      id: `short-${n}`,
      subject: `short-s${n % 6}`,
      type: n < 6 ? 'created' : 'updated',
    });
  }
  expect(ledger.acked).toHaveLength(48);
  // Each subject's first event is retried (and each failure recorded) while the rest wait behind it.
  await eventually('3 failed attempts at the head of every subject', async () => {
    const r = await pool.query<{ n: string }>(
      `select count(*) as n from (select d.subject from switchyard.deliveries d
          join switchyard.delivery_attempts a on a.delivery_id = d.id
         where d.subscription_id = $1 and a.outcome <> 'succeeded' group by d.subject having count(*) >= 3) x`,
      [subscription.id],
    );
    return Number(r.rows[0]!.n) === 6;
  });
  const sentDuringOutage = await pool.query<{ n: string }>(
    `select count(*) as n from switchyard.deliveries where subscription_id = $1 and attempts > 0`,
    [subscription.id],
  );
  // Only the heads were attempted: ordering holds the other 42 back while the subscriber is down.
  expect(Number(sentDuringOutage.rows[0]!.n)).toBe(6);
  proxy.restore();

  const expected = await eventually('48 events stored', async () => {
    const ids = await eventIdsOf('short');
    return ids.length === 48 ? ids : undefined;
  });
  await eventually(
    'every event delivered after the outage',
    () => {
      const got = received(on('short'));
      return expected.every((id) => got.ids.has(id));
    },
    30_000,
  );
  const got = received(on('short'));
  expect(got.ids.size).toBe(48);
  expect(got.outOfOrder).toEqual([]);
  expect(got.conflicting).toEqual([]);
  expect(got.unsigned).toBe(0);

  // The retries are visible: every head shows its failed attempts, then the success. The subscriber
  // may have the last event a moment before the hub has recorded its attempt.
  const deliveries = await eventually('every delivery recorded as succeeded', async () => {
    const list = await h.hub.deliveries.list({ subscriptionId: subscription.id, limit: 100 });
    return list.items.every((d) => d.status === 'succeeded') ? list : undefined;
  });
  const retried = [];
  for (const d of deliveries.items) {
    expect(d.status).toBe('succeeded');
    if (d.attempts > 1) retried.push(await h.hub.deliveries.get(d.id));
  }
  expect(retried.length).toBeGreaterThanOrEqual(6);
  for (const d of retried) {
    const log = d.attemptLog;
    expect(log.at(-1)!.outcome).toBe('succeeded');
    expect(log.slice(0, -1).every((a) => a.outcome !== 'succeeded' && a.error !== null)).toBe(true);
  }
  console.info('subscriber outage (short)', {
    events: 48,
    retriedDeliveries: retried.length,
    attempts: retried.reduce((n, d) => n + d.attemptLog.length, 0),
    duplicates: got.duplicates,
  });
  await h.hub.subscriptions.remove(subscription.id);
});

it('disables an endpoint that stays down and, re-enabled with replayMissed, delivers all it missed', {
  timeout: 60_000,
}, async () => {
  const { subscription } = await h.hub.subscriptions.create({
    url: viaProxy('long'),
    secrets: [secret],
    allowPrivateAddresses: true,
    retryScheduleMs: [0, 50],
    ordering: 'release',
  });
  // A live subscription beside it, to know when the hub has processed an event.
  const { subscription: witness } = await h.hub.subscriptions.create({
    url: `${subscriber.url}witness`,
    secrets: [secret],
    allowPrivateAddresses: true,
  });
  proxy.cut();
  const ledger = newLedger();
  for (let n = 0; n < 5; n++) await pushOne(h.base, ledger, { id: `long-${n}`, subject: `long-s${n}` });
  const disabled = await eventually('the subscription disabled', async () => {
    const s = await h.hub.subscriptions.get(subscription.id);
    return s.disabledAt ? s : undefined;
  });
  expect(disabled.disabledReason).toMatch(/dead|consecutive/i);
  // Visible in /metrics per subscription: its attempts stop once it is disabled, so the attempt
  // counters alone read it as quiet, not as down.
  expect(await disabledGauge(subscription.id)).toBe(1);
  expect(await disabledGauge(witness.id)).toBe(0);
  // The log says why and what to do (before: 'subscription disabled' and the id alone).
  const line = await eventually('the disabling logged', async () =>
    lines.find((l) => l.subscription === subscription.id && /^subscription disabled/.test(String(l.msg))),
  );
  expect(line).toMatchObject({ level: 40, reason: '3 consecutive deliveries died' });
  expect(String(line.msg)).toContain('replayMissed');

  // Events while disabled: the hub processes them (the witness gets them) but does not attempt them.
  for (let n = 5; n < 10; n++) await pushOne(h.base, ledger, { id: `long-${n}`, subject: `long-s${n}` });
  expect(ledger.acked).toHaveLength(10);
  const expected = await eventually('10 events stored', async () => {
    const ids = await eventIdsOf('long');
    return ids.length === 10 ? ids : undefined;
  });
  await eventually('the witness got every event', () => {
    const got = received(on('witness'));
    return expected.every((id) => got.ids.has(id));
  });
  proxy.restore();
  expect(on('long')).toHaveLength(0);

  const res = await fetch(`${h.base}/v1/subscriptions/${subscription.id}/enable`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ replayMissed: true }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { replayed: number };
  // Every dead delivery and every event stored while disabled.
  expect(body.replayed).toBeGreaterThanOrEqual(5);
  await eventually(
    'everything missed delivered after re-enabling',
    () => {
      const got = received(on('long'));
      return expected.every((id) => got.ids.has(id));
    },
    20_000,
  );
  expect(await disabledGauge(subscription.id)).toBe(0);
  const got = received(on('long'));
  expect(got.ids.size).toBe(10);
  expect(got.conflicting).toEqual([]);
  console.info('subscriber outage (long)', {
    events: 10,
    replayed: body.replayed,
    delivered: got.ids.size,
    duplicates: got.duplicates,
  });
  await h.hub.subscriptions.remove(witness.id);
});
