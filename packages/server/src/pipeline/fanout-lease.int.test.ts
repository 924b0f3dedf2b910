/**
 * Deliveries leased by the normalize commit (events/store.ts `commitNormalized` with a lease):
 * attempted by the process that committed them without a delivery claim, and, when that process
 * never attempts one (a crash right after its commit), claimed by another once the lease runs out.
 */
import { randomUUID } from 'node:crypto';
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { leasedDeliveryWork } from '../deliveries/store.ts';
import { generateSecret } from '../delivery/sign.ts';
import { commitNormalized } from '../events/store.ts';
import { claimInbound } from '../inbound/store.ts';
import { type Database, openDatabase } from '../storage/db.ts';
import { eventually, makeHub, push, recordReturnedIds, setupInstance } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
const secret = generateSecret();
let subscriber: RecordingSubscriber;
const hubs: Hub[] = [];
let store: Database | undefined;

/** Ids of the deliveries every delivery claim statement of this process returned. */
let claims: ReturnType<typeof recordReturnedIds>;

beforeAll(() => {
  claims = recordReturnedIds('claimable_deliveries(');
});
afterAll(() => {
  claims.restore();
});
afterEach(async () => {
  for (const hub of hubs.splice(0)) await hub.stop();
  await store?.close();
  store = undefined;
  await subscriber?.close();
  const { db } = await openOnce();
  await sql`delete from switchyard.deliveries`.execute(db);
  await sql`delete from switchyard.subscriptions`.execute(db);
});

let shared: Database | undefined;
async function openOnce(): Promise<Database> {
  shared ??= openDatabase(database.url(), { max: 1 });
  return shared;
}
afterAll(async () => {
  await shared?.close();
});

async function subscribe(hub: Hub, timeoutMs?: number) {
  const { subscription } = await hub.subscriptions.create({
    url: `${subscriber.url}hook`,
    secrets: [secret],
    allowPrivateAddresses: true,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  });
  return subscription;
}

it('attempts a delivery its commit leased in this process, with no delivery claim, once, recording the attempt', async () => {
  subscriber = await startRecordingSubscriber({ secrets: secret });
  const hub = await makeHub(database.url());
  hubs.push(hub);
  await hub.start();
  await setupInstance(hub);
  const sub = await subscribe(hub);
  // A commit made while the deliver worker's own claim is in flight is promised no slot (the claim
  // holds them) and its delivery is claimed: on a loaded machine the worker's start-up pass can
  // overlap the first push, so up to three pushes, one at a time, until one was leased.
  let leased: Awaited<ReturnType<typeof hub.deliveries.get>> | undefined;
  let pushes = 0;
  const seen = new Set<string>();
  while (leased === undefined && pushes < 3) {
    pushes++;
    const r = await hub.ingest(
      'acme-1',
      push({ id: `lease-${pushes}`, type: 'created', booking: `b-lease-${pushes}` }),
    );
    expect(r.ok).toBe(true);
    await subscriber.waitFor(pushes);
    const page = await eventually(async () => {
      const p = await hub.deliveries.list({ subscriptionId: sub.id });
      return p.items.length === pushes && p.items.every((i) => i.status === 'succeeded') ? p : undefined;
    });
    const newest = page.items.find((i) => !seen.has(i.id))!;
    seen.add(newest.id);
    // No claim statement returned it: the commit leased it, and this process attempted it.
    if (!claims.ids.has(newest.id)) leased = await hub.deliveries.get(newest.id);
  }
  if (leased === undefined) throw new Error('three deliveries in a row went through the claim');
  expect(leased.attempts).toBe(1);
  expect(leased.attemptLog.map((a) => [a.attempt, a.statusCode])).toEqual([[1, 200]]);
  expect(subscriber.requests.map((q) => q.webhookId)).toContain(leased.eventId);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(subscriber.requests).toHaveLength(pushes);
});

it('a delivery leased by a commit whose process never attempts it is claimed by another hub once its lease runs out, and delivered once', async () => {
  subscriber = await startRecordingSubscriber({ secrets: secret });
  // The other hub: not started until the "crashed" commit is done.
  const hub = await makeHub(database.url(), { options: { deliveryLeaseMarginMs: 300 } });
  hubs.push(hub);
  await setupInstance(hub);
  const sub = await subscribe(hub, 1000);
  const r = await hub.ingest('acme-1', push({ id: 'crash-1', type: 'created', booking: 'b-crash-1' }));
  if (!r.ok) throw new Error(`ingest failed: ${r.status}`);
  // The process that "crashes": claims the message, commits its event leasing the delivery, then
  // never attempts it.
  store = openDatabase(database.url(), { max: 1 });
  const { rows: claimed } = await claimInbound(store.db, 30_000, 1);
  const eventId = randomUUID();
  const envelope = {
    specversion: '1.0',
    id: eventId,
    type: 'appointment.created',
    source: 'acme-1',
    subject: 'appointment/b-crash-1',
    time: new Date().toISOString(),
    data: {},
  };
  const committed = await commitNormalized(
    store.db,
    [
      {
        id: claimed[0]!.id,
        lockToken: claimed[0]!.lock_token!,
        status: 'normalized',
        reason: null,
        eventCount: 1,
      },
    ],
    [
      {
        id: eventId,
        type: envelope.type,
        source: envelope.source,
        subject: envelope.subject,
        time: envelope.time,
        envelope,
        inboundMessageId: claimed[0]!.id,
      },
    ],
    [],
    { limit: 1, marginMs: 300 },
  );
  const leased = committed.leased.map(leasedDeliveryWork);
  expect(leased.map((w) => [w.subscription.id, w.delivery.attempts])).toEqual([[sub.id, 1]]);
  const id = leased[0]!.delivery.id;
  const leasedAt = Date.now();

  await hub.start();
  await subscriber.waitFor(1);
  // Not before the lease (timeout 1000 ms + margin 300 ms) ran out.
  expect(Date.now() - leasedAt).toBeGreaterThanOrEqual(1000);
  const d = await eventually(async () => {
    const x = await hub.deliveries.get(id);
    return x.status === 'succeeded' ? x : undefined;
  });
  // The leased attempt counts, as a claim's does when its process dies before attempting.
  expect(d.attempts).toBe(2);
  expect(d.attemptLog.map((a) => [a.attempt, a.statusCode])).toEqual([[2, 200]]);
  expect(claims.ids.has(id)).toBe(true);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(subscriber.requests.map((q) => q.webhookId)).toEqual([eventId]);
});
