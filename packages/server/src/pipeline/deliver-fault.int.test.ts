/**
 * A delivery the hub itself cannot send (here a signing secret that no longer opens: sealed under
 * another secretKey, or damaged) is an attempt that failed, retried on the schedule and dead at
 * its end with the error in its attempt log. It was a crash the lease ran again and again: its
 * attempts climbed past the schedule, nothing was logged, it never died, and the later events of
 * its subject waited behind it unseen (found by an audit, 2026-12-06).
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually, makeHub, push, setupInstance } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
let hub: Hub;
beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  await setupInstance(hub);
});
afterAll(async () => {
  await hub?.stop();
});

it('makes a delivery the hub cannot sign dead after its schedule, with the error logged, never looping', async () => {
  const { subscription } = await hub.subscriptions.create({
    url: 'http://127.0.0.1:9/never-reached',
    allowPrivateAddresses: true,
    retryScheduleMs: [0, 50, 50],
  });
  await sql`update switchyard.subscriptions set secrets = jsonb_set(secrets, '{0,sealed}', to_jsonb('v1:AAAA:BBBB:CCCC'::text))
    where id = ${subscription.id}`.execute(hub.host.db);
  const r = await hub.ingest('acme-1', push({ id: 'fault-1', type: 'created', booking: 'fault-1' }));
  expect(r.ok).toBe(true);
  const dead = await eventually(async () => {
    const page = await hub.deliveries.list({ subscriptionId: subscription.id, status: 'dead' });
    return page.items[0];
  }, 20_000);
  const detail = await hub.deliveries.get(dead.id);
  expect(detail.attempts).toBe(3);
  expect(detail.attemptLog).toHaveLength(3);
  for (const a of detail.attemptLog) expect(a.error).toMatch(/^the hub could not send it: /);
  // The hub's failure says nothing of the subscriber's endpoint.
  expect((await hub.subscriptions.get(subscription.id)).consecutiveDead).toBe(0);
});
