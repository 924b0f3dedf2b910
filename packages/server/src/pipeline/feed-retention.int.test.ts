import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  behaviour,
  eventually,
  makeHub,
  push,
  resetBehaviour,
  setupInstance,
} from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
let hub: Hub;

beforeAll(async () => {
  hub = await makeHub(database.url(), {
    options: {
      retention: { eventsMs: 60_000, inboundMs: 60_000, deliveriesMs: 60_000, batchSize: 2, cron: false },
    },
  });
  await hub.start();
  await setupInstance(hub);
});
afterAll(async () => {
  await hub?.stop();
});
beforeEach(() => resetBehaviour());

async function send(id: string, type = 'created') {
  const r = await hub.ingest('acme-1', push({ id, type, booking: id }));
  if (!r.ok) throw new Error('ingest failed');
  return eventually(async () => {
    const m = await hub.inbound.get(r.stored[0]!);
    return m.status === 'normalized' ? m.events[0]! : undefined;
  });
}

/** An event's feed cursor (its sequence, unpadded). */
const cursor = (event: { sequence: string }) => String(BigInt(event.sequence));

/**
 * Acknowledges `sequence` for every pull subscription but `except` (directly: an ack refuses to
 * move back): the earlier tests' subscriptions must not hold the events a purge here removes.
 */
async function ackEveryPullSubscription(sequence: string, except: string[] = []) {
  await sql`insert into switchyard.feed_cursors (subscription_id, cursor)
    select id, ${sequence}::bigint from switchyard.subscriptions
    where kind = 'pull' and not (id = any(${except}::text[]))
    on conflict (subscription_id) do update set cursor = excluded.cursor`.execute(hub.host.db);
}

describe('pull feed', () => {
  it('returns matching events in order from a cursor and remembers acknowledgements', async () => {
    const { subscription, secret } = await hub.subscriptions.create({
      kind: 'pull',
      eventTypes: ['appointment.cancelled'],
    });
    // Its feed's credential, generated when none is given (webhook and pull alike), shown once.
    expect(secret).toMatch(/^whsec_/);
    expect(subscription.secrets).toEqual([expect.objectContaining({ fromFile: false })]);
    const a = await send('feed-1', 'cancelled');
    await send('feed-2', 'created');
    const b = await send('feed-3', 'cancelled');
    const first = await hub.feed.poll(subscription.id, { limit: 1 });
    expect(first.events.map((e) => e.id)).toEqual([a.id]);
    const second = await hub.feed.poll(subscription.id, { after: first.nextCursor, limit: 10 });
    expect(second.events.map((e) => e.id)).toEqual([b.id]);
    // Without `after` the feed starts at the acknowledged position.
    expect((await hub.feed.poll(subscription.id)).events.map((e) => e.id)).toEqual([a.id, b.id]);
    await hub.feed.ack(subscription.id, first.nextCursor);
    expect((await hub.feed.poll(subscription.id)).events.map((e) => e.id)).toEqual([b.id]);
    await hub.feed.ack(subscription.id, second.nextCursor);
    await hub.feed.ack(subscription.id, first.nextCursor); // an old ack never moves back
    const empty = await hub.feed.poll(subscription.id);
    expect(empty).toEqual({ events: [], nextCursor: second.nextCursor });
  });

  it('refuses to read after a cursor past the newest event, and takes one it gave after retention removed every event', async () => {
    // A reader resuming from a cursor it kept (its own store, after a crash) that this hub never gave
    // (the hub's database restored from an older backup, another hub's cursor): the feed answered no
    // events and that cursor as nextCursor, poll after poll, while the events numbered up to it were
    // stored and passed by for good (downstream-consumer audit). ack already refused such a cursor.
    const { subscription } = await hub.subscriptions.create({ kind: 'pull', eventTypes: ['*'] });
    const event = await send('feed-past-1');
    const newest = BigInt(event.sequence);
    const past = String(newest + 1000n);
    await expect(hub.feed.poll(subscription.id, { after: past })).rejects.toMatchObject({
      code: 'SY_PIPELINE_INVALID_INPUT',
      message: `cursor ${past} is past the newest event: use a nextCursor the feed gave`,
    });
    expect(await hub.feed.poll(subscription.id, { after: String(newest) })).toEqual({
      events: [],
      nextCursor: String(newest),
    });
    // Retention may remove every event (none owed to a webhook): the cursors the feed gave stay good.
    await sql`delete from switchyard.deliveries`.execute(hub.host.db);
    await sql`delete from switchyard.events`.execute(hub.host.db);
    expect(await hub.feed.poll(subscription.id, { after: String(newest) })).toEqual({
      events: [],
      nextCursor: String(newest),
    });
    expect(await hub.feed.ack(subscription.id, String(newest))).toEqual({ cursor: String(newest) });
    await expect(hub.feed.poll(subscription.id, { after: past })).rejects.toMatchObject({
      code: 'SY_PIPELINE_INVALID_INPUT',
    });
  });
});

describe('vendor pull poller', () => {
  it('stores each batch with its cursor, deduplicates, and records health', async () => {
    await hub.instances.upsert({
      id: 'acme-pull',
      connector: 'acme',
      mode: 'both',
      settings: { apiKey: 'k' },
      pull: { intervalMs: 3_600_000 },
    });
    // The poller's own first turn (queue still empty); after it the next is an hour away.
    await eventually(async () => (await hub.instances.health('acme-pull')).pull?.lastSuccessAt ?? undefined);
    behaviour.pullQueue.push(
      { id: 'p-1', type: 'created', booking: 'pb-1', at: new Date(Date.now() - 5000).toISOString() },
      { id: 'p-2', type: 'noop' },
      { id: 'p-3', type: 'created', booking: 'pb-3' },
    );
    const result = await hub.instances.pullNow('acme-pull');
    expect(result).toEqual({ stored: 3, duplicates: 0 });
    const health = await hub.instances.health('acme-pull');
    expect(health.pull).toMatchObject({ cursor: 'p-3', consecutiveFailures: 0 });
    expect(health.pull!.lagMs).toBeGreaterThanOrEqual(5000);
    behaviour.pullQueue.push({ id: 'p-3', type: 'created', booking: 'pb-3' });
    expect(await hub.instances.pullNow('acme-pull')).toEqual({ stored: 0, duplicates: 1 });
    await eventually(
      async () =>
        (await hub.inbound.list({ instanceId: 'acme-pull', status: 'normalized' })).items.length === 2,
    );
    behaviour.pullFailures = 1;
    const failed = await hub.instances.pullNow('acme-pull');
    expect(failed.error).toMatch(/vendor queue down/);
    const after = await hub.instances.health('acme-pull');
    expect(after.pull!.consecutiveFailures).toBe(1);
    expect(after.lastError).toMatch(/vendor queue down/);
    expect(after.pull!.cursor).toBe('p-3');
  });

  it('polls due instances on its own', async () => {
    behaviour.pullQueue.push({ id: 'auto-1', type: 'noop' });
    await hub.instances.upsert({
      id: 'acme-auto',
      connector: 'acme',
      mode: 'pull',
      settings: { apiKey: 'k' },
      pull: { intervalMs: 100 },
    });
    await eventually(async () => (await hub.inbound.list({ instanceId: 'acme-auto' })).items.length === 1);
  });
});

describe('retention', () => {
  it('purges old finished rows in batches and keeps what is still owed', async () => {
    const old = await send('ret-1');
    await send('ret-2');
    const { subscription } = await hub.subscriptions.create({ kind: 'pull' });
    // Age everything stored so far; keep one event "owed" by a pending delivery.
    const { db } = hub.host;
    await sql`update switchyard.events set created_at = now() - interval '1 day'`.execute(db);
    await sql`update switchyard.inbound_messages set received_at = now() - interval '1 day'`.execute(db);
    await sql`update switchyard.inbound_bodies set received_at = now() - interval '1 day'`.execute(db);
    expect(subscription.kind).toBe('pull');
    const webhook = await hub.subscriptions.create({
      url: 'http://127.0.0.1:9/never',
      allowPrivateAddresses: true,
    });
    await hub.subscriptions.disable(webhook.subscription.id);
    await sql`insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject)
      values (gen_random_uuid(), ${webhook.subscription.id}, ${old.id}, ${old.sequence}::bigint, ${old.subject})`.execute(
      db,
    );
    const fresh = await send('ret-3');
    // Every pull subscription has read what is stored (an unread event stays: the next test).
    await ackEveryPullSubscription(fresh.sequence);
    const result = await hub.retention.purge();
    expect(result.events).toBeGreaterThanOrEqual(2);
    expect(result.inbound).toBeGreaterThanOrEqual(2);
    // The raw bodies go with their messages; the fresh message keeps its body.
    expect(result.inboundBodies).toBeGreaterThanOrEqual(2);
    const bodies = await sql<{ orphans: number; kept: number }>`
      select (select count(*)::int from switchyard.inbound_bodies b where not exists (
                select 1 from switchyard.inbound_messages m where m.body_id = b.id)) as orphans,
             (select count(*)::int from switchyard.inbound_bodies) as kept`.execute(db);
    expect(bodies.rows[0]!.orphans).toBe(0);
    expect(bodies.rows[0]!.kept).toBeGreaterThanOrEqual(1);
    const freshMessage = (await hub.inbound.list({ instanceId: 'acme-1' })).items.find(
      (m) => m.dedupeKey === 'ret-3',
    )!;
    expect((await hub.inbound.get(freshMessage.id)).rawBody).toContain('ret-3');
    await expect(hub.events.get(old.id)).resolves.toBeDefined();
    await expect(hub.events.get(fresh.id)).resolves.toBeDefined();
    const left = await sql<{
      n: number;
    }>`select count(*)::int as n from switchyard.events where created_at < now() - interval '1 hour'`.execute(
      db,
    );
    expect(left.rows[0]!.n).toBe(1);
  });

  it("keeps an enabled pull subscription's unread events, and answers the gap when they go anyway", async () => {
    // A pull reader slower than retention.events lost the events the purge removed before it read
    // them, and its feed went on after them as if nothing had been (downstream audit).
    const reader = (await hub.subscriptions.create({ kind: 'pull', eventTypes: ['*'] })).subscription;
    const stopped = (await hub.subscriptions.create({ kind: 'pull', eventTypes: ['*'] })).subscription;
    const e1 = await send('unread-1');
    const e2 = await send('unread-2');
    const e3 = await send('unread-3');
    await ackEveryPullSubscription(cursor(e1), [reader.id, stopped.id]);
    await hub.feed.ack(reader.id, cursor(e1));
    await hub.subscriptions.disable(stopped.id);
    const { db } = hub.host;
    await sql`update switchyard.events set created_at = now() - interval '1 day'`.execute(db);
    // Only events stored since a subscription was created were ever its to read.
    await sql`update switchyard.subscriptions set created_at = now() - interval '2 days'
      where id in (${reader.id}, ${stopped.id})`.execute(db);
    // retention.events is a minute here: the reader's unread events stay, the read one goes.
    const kept = await hub.retention.purge();
    expect(kept.events).toBeGreaterThanOrEqual(1);
    await expect(hub.events.get(e1.id)).rejects.toThrow();
    const page = await hub.feed.poll(reader.id);
    expect(page).toEqual({
      events: [expect.objectContaining({ id: e2.id }), expect.objectContaining({ id: e3.id })],
      nextCursor: cursor(e3),
    });
    // The disabled subscription holds nothing: what it had not read is gone, and its feed says so.
    expect(kept.feedGaps).toEqual([
      expect.objectContaining({ subscription: stopped.id, through: cursor(e1) }),
    ]);
    expect((await hub.feed.poll(stopped.id)).gap).toEqual({
      through: cursor(e1),
      events: expect.any(Number),
    });

    // Past retention.unreadEvents (180 days by default) the unread events go too: the gap is answered.
    const later = await hub.retention.purge(new Date(Date.now() + 200 * 86_400_000));
    expect(later.feedGaps).toContainEqual(
      expect.objectContaining({ subscription: reader.id, through: cursor(e3), events: 2 }),
    );
    const e4 = await send('unread-4');
    // (Served once the commit window passes: it follows numbers the purge removed.)
    const after = await hub.feed.poll(reader.id, { wait: 10 });
    expect(after).toEqual({
      events: [expect.objectContaining({ id: e4.id })],
      nextCursor: cursor(e4),
      gap: { through: cursor(e3), events: 2 },
    });
    // Through HTTP the same answer (the route's schema carries the field).
    // Acknowledging past the gap clears it.
    await hub.feed.ack(reader.id, after.nextCursor);
    expect(await hub.feed.poll(reader.id)).toEqual({ events: [], nextCursor: cursor(e4) });
    // A reader reading from before the gap again (its own cursor) is not told: the gap was acknowledged.
    expect((await hub.feed.poll(reader.id, { after: cursor(e1) })).gap).toBeUndefined();
  });
});

describe('scheduled maintenance', () => {
  it('schedules the retention purge in pg-boss (schema switchyard_queue)', async () => {
    const withQueue = await makeHub(database.url(), {
      options: { queue: true, retention: { cron: '*/5 * * * *' } },
    });
    try {
      await withQueue.start();
      const rows = await sql<{
        name: string;
        cron: string;
      }>`select name, cron from switchyard_queue.schedule`.execute(withQueue.host.db);
      expect(rows.rows).toEqual([{ name: 'switchyard-retention', cron: '*/5 * * * *' }]);
    } finally {
      await withQueue.stop();
    }
  });
});
