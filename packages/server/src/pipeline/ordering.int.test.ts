import {
  type RecordedRequest,
  type RecordingSubscriber,
  startRecordingSubscriber,
  useTestDatabase,
} from '@switchyard/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import type { HubEvent } from '../events/api.ts';
import type { SubscriptionInput } from '../subscriptions/api.ts';
import { eventually, makeHub, push, setupInstance } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
let hub: Hub;
let subscriber: RecordingSubscriber;
let counter = 0;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  await setupInstance(hub);
});
afterAll(async () => {
  await hub?.stop();
});
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {});
});

async function subscribe(secret: string, extra: SubscriptionInput = {}, on: Hub = hub) {
  const { subscription } = await on.subscriptions.create({
    url: `${subscriber.url}hook`,
    secrets: [secret],
    allowPrivateAddresses: true,
    ...extra,
  });
  cleanup.push(() => hub.subscriptions.remove(subscription.id));
  return subscription;
}

/** Pushes created → rescheduled → cancelled for one booking (one request), returns the events. */
async function lifecycle(booking: string): Promise<HubEvent[]> {
  counter++;
  const r = await hub.ingest(
    'acme-1',
    push({
      items: ['created', 'rescheduled', 'cancelled'].map((type) => ({
        id: `${booking}-${type}-${counter}`,
        type,
        booking,
      })),
    }),
  );
  if (!r.ok) throw new Error('ingest failed');
  const events: HubEvent[] = [];
  for (const id of r.stored) {
    const m = await eventually(async () => {
      const x = await hub.inbound.get(id);
      return x.status === 'normalized' ? x : undefined;
    });
    events.push(m.events[0]!);
  }
  return events;
}

const accepted = (requests: readonly RecordedRequest[], subject: string) =>
  requests.filter((r) => r.subject === subject && r.response?.status === 200).map((r) => r.type);

describe('ordering per subscription and subject', () => {
  it('delivers one subject in sequence while its first event is retried; other subjects are not held up', async () => {
    const secret = generateSecret();
    let failures = 2;
    subscriber = await startRecordingSubscriber({ secrets: secret });
    cleanup.push(() => subscriber.close());
    subscriber.setHandler((req) => {
      if (req.type === 'appointment.created' && req.text.includes('slow-booking') && failures > 0) {
        failures--;
        return { status: 503 };
      }
      return undefined;
    });
    await subscribe(secret, { retryScheduleMs: [0, 300, 300, 300] });
    const events = await lifecycle('slow-booking');
    const slowSubject = events[0]!.subject;
    const other = await lifecycle('fast-booking');
    const all = await subscriber.waitFor(
      (r) => r.subject === slowSubject && r.type === 'appointment.cancelled' && r.response?.status === 200,
      15_000,
    );
    expect(all).toBeDefined();
    expect(accepted(subscriber.requests, slowSubject)).toEqual([
      'appointment.created',
      'appointment.rescheduled',
      'appointment.cancelled',
    ]);
    // Nothing of the slow subject but `created` was even attempted before `created` succeeded.
    const firstOk = subscriber.requests.findIndex(
      (r) => r.subject === slowSubject && r.response?.status === 200,
    );
    const slowRequests = subscriber.requests.filter((r) => r.subject === slowSubject);
    expect(slowRequests.slice(0, 3).map((r) => r.type)).toEqual([
      'appointment.created',
      'appointment.created',
      'appointment.created',
    ]);
    // The other booking went through while the slow one was waiting for its retry.
    const otherDone = subscriber.requests.findIndex(
      (r) =>
        r.subject === other[0]!.subject && r.type === 'appointment.cancelled' && r.response?.status === 200,
    );
    expect(otherDone).toBeGreaterThanOrEqual(0);
    expect(otherDone).toBeLessThan(firstOk);
  });

  it('hold: a dead delivery holds its subject until it is skipped, then the rest follow in order', async () => {
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({ secrets: secret });
    cleanup.push(() => subscriber.close());
    subscriber.setHandler((req) => (req.type === 'appointment.created' ? { status: 500 } : undefined));
    const sub = await subscribe(secret, { retryScheduleMs: [0], ordering: 'hold' });
    const events = await lifecycle('hold-booking');
    const dead = await eventually(async () => {
      const d = (await hub.deliveries.list({ subscriptionId: sub.id, status: 'dead' })).items[0];
      return d;
    });
    expect(dead.eventId).toBe(events[0]!.id);
    const held = await eventually(async () => {
      const h = (await hub.deliveries.list({ subscriptionId: sub.id, status: 'held' })).items;
      return h.length === 2 ? h : undefined;
    });
    expect(held.map((d) => d.eventId).sort()).toEqual([events[1]!.id, events[2]!.id].sort());
    await new Promise((r) => setTimeout(r, 300));
    expect(subscriber.requests.map((r) => r.type)).toEqual(['appointment.created']);
    await hub.deliveries.skip(dead.id);
    await eventually(async () => accepted(subscriber.requests, events[0]!.subject).length === 2);
    expect(accepted(subscriber.requests, events[0]!.subject)).toEqual([
      'appointment.rescheduled',
      'appointment.cancelled',
    ]);
  });

  it('hold: replaying the dead delivery sends it first, then the held ones', async () => {
    const secret = generateSecret();
    let fail = true;
    subscriber = await startRecordingSubscriber({ secrets: secret });
    cleanup.push(() => subscriber.close());
    subscriber.setHandler((req) =>
      fail && req.type === 'appointment.created' ? { status: 500 } : undefined,
    );
    const sub = await subscribe(secret, { retryScheduleMs: [0] });
    const events = await lifecycle('replay-booking');
    const dead = await eventually(
      async () => (await hub.deliveries.list({ subscriptionId: sub.id, status: 'dead' })).items[0],
    );
    fail = false;
    await hub.deliveries.replay(dead.id);
    await eventually(async () => accepted(subscriber.requests, events[0]!.subject).length === 3);
    expect(accepted(subscriber.requests, events[0]!.subject)).toEqual([
      'appointment.created',
      'appointment.rescheduled',
      'appointment.cancelled',
    ]);
  });

  it('release: a dead delivery does not hold the later ones', async () => {
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({ secrets: secret });
    cleanup.push(() => subscriber.close());
    subscriber.setHandler((req) => (req.type === 'appointment.created' ? { status: 500 } : undefined));
    await subscribe(secret, { retryScheduleMs: [0], ordering: 'release' });
    const events = await lifecycle('release-booking');
    await eventually(async () => accepted(subscriber.requests, events[0]!.subject).length === 2);
    expect(subscriber.requests.map((r) => r.type)).toEqual([
      'appointment.created',
      'appointment.rescheduled',
      'appointment.cancelled',
    ]);
  });
});

describe('several hub processes on one database', () => {
  it('never attempts one delivery twice at once, and every event is delivered once', async () => {
    const other = await makeHub(database.url());
    cleanup.push(() => other.stop());
    await other.start();
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({
      secrets: secret,
      defaultResponse: { status: 200, delayMs: 30 },
    });
    cleanup.push(() => subscriber.close());
    await subscribe(secret);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push(...(await lifecycle(`cluster-${i}`)).map((e) => e.id));
    await subscriber.waitFor(ids.length, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    const seen = subscriber.requests.map((r) => r.webhookId);
    expect(seen.sort()).toEqual([...ids].sort());
  });

  it('takes over a delivery whose worker died mid-attempt', async () => {
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({
      secrets: secret,
      script: [{ status: 200, delayMs: 5000 }],
      defaultResponse: 200,
    });
    cleanup.push(() => subscriber.close());
    // Only the doomed hub runs workers for this subscription at first.
    const doomed = await makeHub(database.url());
    await doomed.start();
    await hub.stop({ graceful: true });
    const sub = await subscribe(secret, { timeoutMs: 1000 }, doomed);
    const event = (await lifecycleOn(doomed, 'crash-booking'))[0]!;
    await subscriber.waitFor(1);
    await doomed.stop({ graceful: false }); // the attempt in flight is never recorded: a crash
    hub = await makeHub(database.url());
    await hub.start();
    const done = await eventually(async () => {
      const d = (await hub.deliveries.list({ subscriptionId: sub.id, eventId: event.id })).items[0];
      return d?.status === 'succeeded' ? hub.deliveries.get(d.id) : undefined;
    }, 15_000);
    expect(done.attempts).toBe(2);
    expect(done.attemptLog).toHaveLength(1);
    expect(subscriber.requests.filter((r) => r.webhookId === event.id)).toHaveLength(2);
  });
});

async function lifecycleOn(on: Hub, booking: string): Promise<HubEvent[]> {
  const r = await on.ingest('acme-1', push({ id: `${booking}-created`, type: 'created', booking }));
  if (!r.ok) throw new Error('ingest failed');
  const m = await eventually(async () => {
    const x = await on.inbound.get(r.stored[0]!);
    return x.status === 'normalized' ? x : undefined;
  });
  return m.events;
}
