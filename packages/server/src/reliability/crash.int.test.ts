/**
 * kill -9 under load: a hub process dies mid-flight (pushes being stored, notifications being
 * normalized, deliveries waiting for the subscriber's answer); a new process on the same database
 * finishes the work. Nothing acknowledged is lost; the only duplicates repeat a webhook-id.
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
const children: HubChild[] = [];

beforeAll(async () => {
  // Answers take a moment, so deliveries are in flight when the process dies.
  subscriber = await startRecordingSubscriber({
    secrets: secret,
    defaultResponse: { status: 200, delayMs: 25 },
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
    id: 'crash-sub',
    url: `${subscriber.url}crash`,
    secrets: [secret],
    allowPrivateAddresses: true,
    timeoutMs: 2000,
    retryScheduleMs: [0, 200, 500, 1000, 1000, 1000, 1000, 1000],
  });
  await setup.stop();
  pool = openPool(database.url());
});

afterAll(async () => {
  for (const c of children) await c.kill();
  await subscriber?.close();
  await pool?.end();
});

const spawn = async () => {
  const c = await spawnHub({
    databaseUrl: database.url(),
    secretKey: SECRET_KEY,
    logLevel: 'warn',
    options: FAST_OPTIONS,
  });
  children.push(c);
  return c;
};

it('loses nothing acknowledged when a hub process is killed with SIGKILL under load', {
  timeout: 90_000,
}, async () => {
  const ledger = newLedger();
  let current = await spawn();
  let killed = false;
  let killing: Promise<void> | undefined;

  // Phase 1: load on the first process; SIGKILL once work is flowing through every stage.
  await pushLoad({
    base: () => current.base,
    ledger,
    prefix: 'a',
    max: 2000,
    concurrency: 8,
    subjects: 12,
    stop: () => killed,
    after: () => {
      if (!killing && ledger.acked.length >= 120 && subscriber.requests.length >= 30) {
        killing = current.kill().then(() => {
          killed = true;
        });
      }
    },
  });
  await killing;
  const ackedBeforeKill = ledger.acked.length;

  // Phase 2: a new process on the same database, more load.
  current = await spawn();
  await pushLoad({ base: () => current.base, ledger, prefix: 'b', max: 100, concurrency: 8, subjects: 12 });

  const stored = await eventually(
    'every stored message normalized',
    async () => {
      const m = await storedMessages(pool);
      return [...m.values()].every((x) => x.status === 'normalized') ? m : undefined;
    },
    30_000,
  );
  const expectedIds = new Set([...stored.values()].flatMap((m) => m.eventIds));
  await eventually(
    'every event delivered',
    () => {
      const got = received(subscriber.requests);
      return [...expectedIds].every((id) => got.ids.has(id));
    },
    40_000,
  );

  const got = received(subscriber.requests);
  const result = account(ledger, stored, got);
  console.info('crash accounting', {
    ackedBeforeKill,
    ...result,
    lost: result.lost.length,
    undelivered: result.undelivered.length,
    unexpected: result.unexpected.length,
    refused: ledger.refused.length,
  });

  expect(ackedBeforeKill).toBeGreaterThanOrEqual(120);
  expect(result.acknowledged).toBe(ackedBeforeKill + 100);
  expect(result.lost).toEqual([]);
  expect(result.undelivered).toEqual([]);
  expect(result.unexpected).toEqual([]);
  expect(result.delivered).toBe(result.expectedEvents);
  expect(result.expectedEvents).toBe(result.stored);
  // Duplicates are repeats of one webhook-id with the same body; order per subject held.
  expect(got.conflicting).toEqual([]);
  expect(got.outOfOrder).toEqual([]);
  expect(got.unsigned).toBe(0);
  // A push either got its 2xx after the commit or no answer at all (the process was gone): never a 5xx.
  expect(ledger.refused.every((r) => typeof r.outcome === 'string')).toBe(true);
  // Stored without an acknowledgement is only possible for the pushes cut by the kill.
  expect(result.storedUnacknowledged).toBeLessThanOrEqual(ledger.refused.length);
});
