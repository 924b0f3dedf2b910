/**
 * Two hub processes on one database under load: each push goes to one of them, both work the
 * shared queues. No delivery is attempted twice at once (nor twice at all, without faults), and
 * both processes take a share of the deliveries.
 */
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import { createHub } from '../pipeline/hub.ts';
import { relConnector } from './connector.test-support.ts';
import {
  API_KEY,
  account,
  eventually,
  FAST_OPTIONS,
  type HubChild,
  INSTANCE,
  newLedger,
  openPool,
  pushLoad,
  received,
  SECRET_KEY,
  spawnHub,
  storedMessages,
} from './support.test-support.ts';

const database = useTestDatabase();
const secret = generateSecret();
let subscriber: RecordingSubscriber;
let pool: pg.Pool;
let hubs: HubChild[] = [];
const inFlight = new Map<string, number>();
let maxInFlightPerId = 0;

beforeAll(async () => {
  subscriber = await startRecordingSubscriber({
    secrets: secret,
    // Answer after a moment, counting concurrent requests per webhook-id.
    handler: async (request) => {
      const id = request.webhookId ?? '';
      const n = (inFlight.get(id) ?? 0) + 1;
      inFlight.set(id, n);
      maxInFlightPerId = Math.max(maxInFlightPerId, n);
      await new Promise((r) => setTimeout(r, 10));
      inFlight.set(id, (inFlight.get(id) ?? 1) - 1);
      return 200;
    },
  });
  const setup = await createHub({
    databaseUrl: database.url(),
    connectors: [relConnector],
    secretKey: SECRET_KEY,
    logger: pino({ level: 'silent' }),
    options: { workers: false, queue: false },
  });
  await setup.instances.upsert({ id: INSTANCE, connector: 'reltest', settings: { apiKey: API_KEY } });
  await setup.subscriptions.create({
    url: `${subscriber.url}two`,
    secrets: [secret],
    allowPrivateAddresses: true,
  });
  await setup.stop();
  pool = openPool(database.url());
  hubs = await Promise.all(
    [0, 1].map(() =>
      spawnHub({
        databaseUrl: database.url(),
        secretKey: SECRET_KEY,
        logLevel: 'warn',
        options: FAST_OPTIONS,
      }),
    ),
  );
});

afterAll(async () => {
  for (const c of hubs) await c.stop();
  await subscriber?.close();
  await pool?.end();
});

it('never attempts one delivery twice at once and shares the work between processes', {
  timeout: 90_000,
}, async () => {
  const ledger = newLedger();
  let turn = 0;
  await pushLoad({
    base: () => hubs[turn++ % 2]!.base,
    ledger,
    prefix: 't',
    max: 300,
    concurrency: 8,
    subjects: 20,
  });
  expect(ledger.acked).toHaveLength(300);

  const stored = await eventually(
    'every stored message normalized',
    async () => {
      const m = await storedMessages(pool);
      return m.size === 300 && [...m.values()].every((x) => x.status === 'normalized') ? m : undefined;
    },
    30_000,
  );
  await eventually('every event delivered', () => received(subscriber.requests).ids.size === 300, 40_000);
  // A delivery's attempt is recorded (with its success, in one statement) after the subscriber has
  // answered, so the subscriber can have seen all 300 while the last outcomes are still being written.
  await eventually(
    'every delivery recorded as succeeded',
    async () => {
      const r = await pool.query<{ n: string }>(
        `select count(*) as n from switchyard.deliveries where status = 'succeeded'`,
      );
      return Number(r.rows[0]!.n) === 300;
    },
    20_000,
  );
  const got = received(subscriber.requests);
  const result = account(ledger, stored, got);

  const [a, b] = await Promise.all(hubs.map((h) => h.stats()));
  const sentA = new Set(a!.webhookIds);
  const sentB = new Set(b!.webhookIds);
  const both = [...sentA].filter((id) => sentB.has(id));
  const attempts = await pool.query<{ n: string }>('select count(*) as n from switchyard.delivery_attempts');
  console.info('two processes', {
    events: 300,
    deliveredByA: sentA.size,
    deliveredByB: sentB.size,
    sentByBoth: both.length,
    attempts: Number(attempts.rows[0]!.n),
    maxInFlightPerId,
    duplicates: got.duplicates,
  });

  expect(result.lost).toEqual([]);
  expect(result.undelivered).toEqual([]);
  expect(got.outOfOrder).toEqual([]);
  // No faults: exactly one attempt per delivery, never two at once, never by both processes.
  expect(maxInFlightPerId).toBe(1);
  expect(got.duplicates).toBe(0);
  expect(subscriber.requests).toHaveLength(300);
  expect(Number(attempts.rows[0]!.n)).toBe(300);
  expect(both).toEqual([]);
  // The work is shared: each process delivered some, together all of them.
  expect(sentA.size).toBeGreaterThan(0);
  expect(sentB.size).toBeGreaterThan(0);
  expect(sentA.size + sentB.size).toBe(300);
});
