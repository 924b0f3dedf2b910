/**
 * A finished attempt's record waits for others (`attemptLingerMs`) only while the deliver worker
 * keeps up: with deliveries waiting for its slots it writes at once, and a stopping hub writes what
 * waits. The linger here is a minute, far beyond the test's time: every record the test sees
 * written was written because the worker needed it, not because the wait ran out.
 */
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import { openDatabase } from '../storage/db.ts';
import { eventually, makeHub, push, resetBehaviour, setupInstance } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
const LINGER_MS = 60_000;
let hub: Hub | undefined;
let subscriber: RecordingSubscriber | undefined;

beforeEach(() => resetBehaviour());
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
  await subscriber?.close();
});

async function start(deliveryConcurrency: number): Promise<{ h: Hub; sub: string }> {
  const secret = generateSecret();
  subscriber = await startRecordingSubscriber({ secrets: secret });
  hub = await makeHub(database.url(), { options: { attemptLingerMs: LINGER_MS, deliveryConcurrency } });
  await hub.start();
  await setupInstance(hub);
  const { subscription } = await hub.subscriptions.create({
    url: `${subscriber.url}hook`,
    secrets: [secret],
    allowPrivateAddresses: true,
  });
  return { h: hub, sub: subscription.id };
}

/** How many of the subscription's deliveries are in each status. */
async function statuses(h: Hub, sub: string): Promise<Record<string, number>> {
  const r = await sql<{ status: string; n: number }>`select status, count(*)::int as n
    from switchyard.deliveries where subscription_id = ${sub} group by status`.execute(h.host.db);
  return Object.fromEntries(r.rows.map((x) => [x.status, x.n]));
}

it('keeps a lone record waiting while the worker keeps up, and writes it when the hub stops', async () => {
  const { h, sub } = await start(32);
  const r = await h.ingest('acme-1', push({ id: 'al-1-0', type: 'created', booking: 'b-al-1' }));
  expect(r.ok).toBe(true);
  await subscriber!.waitFor(1);
  await new Promise((resolve) => setTimeout(resolve, 300));
  // The subscriber has it; the record waits for company.
  expect(await statuses(h, sub)).toEqual({ in_flight: 1 });
  await h.stop();
  hub = undefined;
  const db = openDatabase(database.url(), { max: 1 });
  try {
    const r = await sql<{ status: string; attempts: number }>`select d.status,
        (select count(*)::int from switchyard.delivery_attempts a where a.delivery_id = d.id) as attempts
      from switchyard.deliveries d where d.subscription_id = ${sub}`.execute(db.db);
    expect(r.rows).toEqual([{ status: 'succeeded', attempts: 1 }]);
  } finally {
    await db.close();
  }
});

it('writes records at once while deliveries wait for the worker’s slots', async () => {
  const { h, sub } = await start(4);
  const n = 40;
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const r = await h.ingest('acme-1', push({ id: `al-2-${i}`, type: 'created', booking: `b-al-2-${i}` }));
      expect(r.ok).toBe(true);
    }),
  );
  // Four slots: had each record waited its minute, four deliveries would hold them all that time.
  await subscriber!.waitFor(n);
  await eventually(async () => ((await statuses(h, sub)).succeeded ?? 0) >= n - 4 || undefined, 15_000);
});
