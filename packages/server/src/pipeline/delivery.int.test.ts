import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import type { SubscriptionInput } from '../subscriptions/api.ts';
import { eventually, makeHub, push, resetBehaviour, setupInstance } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
let hub: Hub;
let subscriber: RecordingSubscriber;
let counter = 0;
const subscriptions: string[] = [];

beforeAll(async () => {
  hub = await makeHub(database.url(), { options: { disableAfterConsecutiveDead: 2 } });
  await hub.start();
  await setupInstance(hub);
});
afterAll(async () => {
  await hub?.stop();
});
beforeEach(() => resetBehaviour());
afterEach(async () => {
  // Each test's subscription is disabled afterwards so it does not receive the next test's events.
  for (const id of subscriptions.splice(0)) await hub.subscriptions.remove(id).catch(() => {});
  await subscriber?.close();
});

async function subscribe(secret: string, extra: SubscriptionInput = {}) {
  const { subscription } = await hub.subscriptions.create({
    url: `${subscriber.url}hook`,
    secrets: [secret],
    allowPrivateAddresses: true,
    ...extra,
  });
  subscriptions.push(subscription.id);
  return subscription;
}

async function send(type = 'created', booking?: string) {
  counter++;
  const r = await hub.ingest(
    'acme-1',
    push({ id: `d-${counter}`, type, booking: booking ?? `b-${counter}` }),
  );
  if (!r.ok) throw new Error(`ingest failed: ${r.status}`);
  const message = await eventually(async () => {
    const m = await hub.inbound.get(r.stored[0]!);
    return m.status === 'normalized' ? m : undefined;
  });
  return message.events[0]!;
}

async function deliveryOf(subscriptionId: string, eventId: string, status?: string) {
  return eventually(async () => {
    const page = await hub.deliveries.list({ subscriptionId, eventId });
    const d = page.items.find((x) => status === undefined || x.status === status);
    return d ? hub.deliveries.get(d.id) : undefined;
  });
}

describe('delivery', () => {
  it('retries 500, 500, 200 with one webhook-id and valid signatures, recording every attempt', async () => {
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({ secrets: secret, script: [500, 500, 200] });
    const sub = await subscribe(secret);
    const event = await send();
    const requests = await subscriber.waitFor(3);
    expect(requests.map((r) => r.webhookId)).toEqual([event.id, event.id, event.id]);
    expect(requests.every((r) => r.signature.valid)).toBe(true);
    expect(requests[0]!.headers['content-type']).toBe('application/cloudevents+json');
    expect(requests[0]!.json).toMatchObject({
      id: event.id,
      type: 'appointment.created',
      sequence: event.sequence,
    });
    const d = await deliveryOf(sub.id, event.id, 'succeeded');
    expect(d.attempts).toBe(3);
    expect(d.attemptLog.map((a) => a.statusCode)).toEqual([500, 500, 200]);
    expect(d.attemptLog.every((a) => typeof a.latencyMs === 'number')).toBe(true);
  });

  it("sends the first attempt at once whatever the schedule's first entry says (docs/api.md, retryScheduleMs)", async () => {
    // The first entry stands for the first attempt, which goes as soon as the event is stored: the
    // docs called it "the wait before" it, and a schedule of [60 s, 50 ms] was read as a minute's wait.
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({ secrets: secret, script: [500, 200] });
    const sub = await subscribe(secret, { retryScheduleMs: [60_000, 50] });
    const event = await send();
    const requests = await subscriber.waitFor(2, 10_000);
    expect(requests.map((r) => r.webhookId)).toEqual([event.id, event.id]);
    expect((await deliveryOf(sub.id, event.id, 'succeeded')).attempts).toBe(2);
  });

  it('signs with old and new secrets during a rotation overlap, and never returns secrets', async () => {
    const old = generateSecret();
    subscriber = await startRecordingSubscriber({ secrets: [old] });
    const sub = await subscribe(old, { contentType: 'application/json' });
    const { secret: fresh, subscription } = await hub.subscriptions.rotateSecret(sub.id, {
      overlapMs: 60_000,
    });
    expect(JSON.stringify(subscription)).not.toContain(old.slice(6));
    expect(subscription.secrets).toHaveLength(2);
    expect(subscription.secrets[0]!.secretHint).toMatch(/^whsec_..…..$/);
    await subscriber.close();
    subscriber = await startRecordingSubscriber({ secrets: [old, fresh] });
    await hub.subscriptions.update(sub.id, { url: `${subscriber.url}hook` });
    await send();
    const [request] = await subscriber.waitFor(1);
    expect(request!.signature.matchedSecrets).toEqual([0, 1]);
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.headers['webhook-signature']!.split(' ')).toHaveLength(2);
    const raw = await sql<{
      secrets: unknown;
    }>`select secrets from switchyard.subscriptions where id = ${sub.id}`.execute(hub.host.db);
    expect(JSON.stringify(raw.rows[0]!.secrets)).not.toContain(fresh.slice(6));
  });

  it("keeps no signing secret a subscriber's answer quotes back: the attempt's snippet has it redacted", async () => {
    // A subscriber's error page that prints the secret it verifies with (a debug page), in full and
    // as the base64 key a verifier holds: the attempt row and the API kept both as they came.
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({
      script: [
        {
          status: 401,
          body: { error: `signature mismatch with ${secret}`, key: secret.slice('whsec_'.length) },
        },
      ],
    });
    const sub = await subscribe(secret, { retryScheduleMs: [0, 60_000] });
    const event = await send();
    const d = await eventually(async () => {
      const got = await deliveryOf(sub.id, event.id);
      return got.attemptLog.length > 0 ? got : undefined;
    });
    const snippet = d.attemptLog[0]!.responseSnippet ?? '';
    expect(snippet).toContain('signature mismatch with [redacted]');
    expect(snippet).not.toContain(secret.slice('whsec_'.length));
    const raw = await sql<{ row: string }>`select a::text as row from switchyard.delivery_attempts a
      where delivery_id = ${d.id}`.execute(hub.host.db);
    expect(raw.rows.map((r) => r.row).join('\n')).not.toContain(secret.slice('whsec_'.length));
  });

  it('disables the subscription on 410 Gone', async () => {
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({ secrets: secret, script: [410] });
    const sub = await subscribe(secret);
    await send();
    const disabled = await eventually(async () => {
      const s = await hub.subscriptions.get(sub.id);
      return s.disabledAt ? s : undefined;
    });
    expect(disabled.disabledReason).toMatch(/410/);
    expect(subscriber.requests).toHaveLength(1);
  });

  it('counts a timeout as a failed attempt', async () => {
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({
      secrets: secret,
      script: [{ status: 200, delayMs: 2000 }, 200],
    });
    const sub = await subscribe(secret, { timeoutMs: 200 });
    const event = await send();
    const d = await deliveryOf(sub.id, event.id, 'succeeded');
    expect(d.attemptLog).toHaveLength(2);
    expect(d.attemptLog[0]!.statusCode).toBeNull();
    expect(d.attemptLog[0]!.error).toMatch(/no answer within 200 ms|time/i);
  });

  it('marks exhausted deliveries dead with their attempts, and replays them with the same event id', async () => {
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({
      secrets: secret,
      script: [500, 502, { status: 503, body: { error: 'down for maintenance' } }],
      defaultResponse: 200,
    });
    const sub = await subscribe(secret, { ordering: 'release' });
    const event = await send();
    const dead = await deliveryOf(sub.id, event.id, 'dead');
    expect(dead.attemptLog.map((a) => a.statusCode)).toEqual([500, 502, 503]);
    expect(dead.attemptLog[2]!.responseSnippet).toContain('down for maintenance');
    const replay = await hub.deliveries.replay(dead.id);
    expect(replay).toMatchObject({ eventId: event.id, replayOf: dead.id, status: 'pending' });
    const done = await eventually(async () => {
      const d = await hub.deliveries.get(replay.id);
      return d.status === 'succeeded' ? d : undefined;
    });
    expect(done.attempts).toBe(1);
    expect(subscriber.requests.map((r) => r.webhookId)).toEqual([event.id, event.id, event.id, event.id]);
    await expect(hub.deliveries.replay(replay.id)).resolves.toMatchObject({ eventId: event.id });
  });

  it('disables after N consecutive dead deliveries and replays what it missed on enable', async () => {
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({ secrets: secret, defaultResponse: 500 });
    const sub = await subscribe(secret, { ordering: 'release', retryScheduleMs: [0] });
    const e1 = await send();
    await deliveryOf(sub.id, e1.id, 'dead');
    const e2 = await send();
    await deliveryOf(sub.id, e2.id, 'dead');
    const disabled = await eventually(async () => {
      const s = await hub.subscriptions.get(sub.id);
      return s.disabledAt ? s : undefined;
    });
    expect(disabled.disabledReason).toMatch(/2 consecutive/);
    const e3 = await send(); // stored while disabled: no delivery yet
    expect((await hub.deliveries.list({ subscriptionId: sub.id, eventId: e3.id })).items).toHaveLength(0);
    subscriber.setDefaultResponse(200);
    const { replayed } = await hub.subscriptions.enable(sub.id, { replayMissed: true });
    expect(replayed).toBe(3);
    await eventually(async () => {
      const ok = new Set(
        subscriber.requests.filter((r) => r.response?.status === 200).map((r) => r.webhookId),
      );
      return [e1.id, e2.id, e3.id].every((id) => ok.has(id));
    });
    expect((await hub.subscriptions.get(sub.id)).consecutiveDead).toBe(0);
  });

  it("uses the subscription's own dead limit over the hub's default", async () => {
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({ secrets: secret, defaultResponse: 500 });
    const sub = await subscribe(secret, {
      ordering: 'release',
      retryScheduleMs: [0],
      disableAfterConsecutiveDead: 1,
    });
    expect(sub.disableAfterConsecutiveDead).toBe(1);
    const e1 = await send();
    await deliveryOf(sub.id, e1.id, 'dead');
    const disabled = await eventually(async () => {
      const s = await hub.subscriptions.get(sub.id);
      return s.disabledAt ? s : undefined;
    });
    expect(disabled.disabledReason).toMatch(/1 consecutive/);
  });

  it('replays every dead delivery of a subscription and every event since a time', async () => {
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({ secrets: secret, defaultResponse: 500 });
    const sub = await subscribe(secret, { ordering: 'release', retryScheduleMs: [0] });
    const since = new Date();
    const e1 = await send();
    await deliveryOf(sub.id, e1.id, 'dead');
    subscriber.setDefaultResponse(200);
    expect(await hub.deliveries.replayDead(sub.id)).toEqual({ replayed: 1 });
    await deliveryOf(sub.id, e1.id, 'succeeded');
    expect(await hub.deliveries.replaySince(sub.id, since)).toEqual({ replayed: 1 });
    await eventually(async () => subscriber.requests.filter((r) => r.response?.status === 200).length === 2);
    expect(subscriber.requests.map((r) => r.webhookId)).toEqual([e1.id, e1.id, e1.id]);
  });

  it('refuses private destinations unless the subscription allows them (SSRF)', async () => {
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({ secrets: secret });
    const sub = await subscribe(secret, {
      allowPrivateAddresses: false,
      retryScheduleMs: [0],
      ordering: 'release',
    });
    const event = await send();
    const d = await deliveryOf(sub.id, event.id, 'dead');
    expect(d.attemptLog[0]!.error).toMatch(/refused|loopback|not allowed/i);
    expect(subscriber.requests).toHaveLength(0);
  });

  it('gives the CloudEvents sequence attribute in an order strings compare in, past 9999 too', async () => {
    // The CloudEvents sequence extension (cloudevents/spec, cloudevents/extensions/sequence.md): a
    // receiver orders events by comparing `sequence` values as strings ("might need padding, e.g.
    // leading zeros"). Unpadded, event 10000 sorted before event 9999 (downstream-consumer audit).
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({ secrets: secret, script: [204, 204] });
    const sub = await subscribe(secret);
    const { subscription: feed } = await hub.subscriptions.create({ kind: 'pull', eventTypes: ['*'] });
    subscriptions.push(feed.id);
    await sql`select setval(pg_get_serial_sequence('switchyard.events', 'sequence'), 9998)`.execute(
      hub.host.db,
    );
    const first = await send();
    const second = await send();
    const bodies = (await subscriber.waitFor(2)).map((r) => r.json as { id: string; sequence: string });
    const stored = await Promise.all(
      [first, second].map(async (e) => (await deliveryOf(sub.id, e.id)).eventSequence),
    );
    expect(stored).toEqual(['9999', '10000']);
    const polled = await eventually(async () => {
      const page = await hub.feed.poll(feed.id, { after: '9998' });
      return page.events.length === 2 ? page.events : undefined;
    });
    for (const events of [bodies, polled]) {
      const [a, b] = events.map((e) => e.sequence);
      expect([a, b]).toEqual(['0000000000000009999', '0000000000000010000']);
      expect(a! < b!).toBe(true);
      expect(BigInt(b!)).toBe(10000n); // still the feed position, read as a number
    }
    // The padded value is still a cursor the feed takes.
    expect((await hub.feed.poll(feed.id, { after: polled[0]!.sequence })).events.map((e) => e.id)).toEqual([
      second.id,
    ]);
  });

  it('sends a signed test event on demand', async () => {
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({ secrets: secret, script: [204] });
    const sub = await subscribe(secret, { eventTypes: ['slot.*'] });
    const result = await hub.sendTestEvent(sub.id);
    expect(result).toMatchObject({ ok: true, statusCode: 204 });
    expect(subscriber.requests[0]!.signature.valid).toBe(true);
  });

  it('delivers only events matching the type and source filters', async () => {
    const secret = generateSecret();
    subscriber = await startRecordingSubscriber({ secrets: secret });
    const onlyCancelled = await subscribe(secret, { eventTypes: ['appointment.cancelled'] });
    await setupInstance(hub, 'elsewhere');
    const otherSource = await subscribe(secret, { eventTypes: ['*'], sources: ['elsewhere'] });
    const e1 = await send('created');
    const e2 = await send('cancelled');
    await subscriber.waitFor(1);
    expect(
      (await hub.deliveries.list({ subscriptionId: onlyCancelled.id })).items.map((d) => d.eventId),
    ).toEqual([e2.id]);
    expect((await hub.deliveries.list({ subscriptionId: otherSource.id })).items).toHaveLength(0);
    expect(e1.id).not.toBe(e2.id);
  });
});
