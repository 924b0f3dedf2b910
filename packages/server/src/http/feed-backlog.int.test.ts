/**
 * A pull reader that holds retention back, as operators see it: retention keeps every event after
 * the lowest acknowledged position of the enabled pull subscriptions (events/store.ts
 * `purgeEvents`), so a subscription created and never read, or a reader stopped for weeks, grows
 * the events table until `retention.unreadEvents`. Before, nothing showed it until the disk filled:
 * `/metrics` (over HTTP) now serves each enabled pull subscription's backlog
 * (`switchyard_feed_unread_events`, `switchyard_feed_oldest_unread_age_seconds`), the purge names
 * the subscription that kept events (`heldBy`, logged once per run), and the scrape's statement reads
 * one event per subscription, not the backlog, on a large table (auto_explain plans).
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventsHeldForReaders } from '../events/store.ts';
import type { Hub } from '../pipeline/hub.ts';
import { type Database, openDatabase } from '../storage/db.ts';
import {
  type Explained,
  explainEverything,
  planOfStatement,
  rowsWasted,
} from '../storage/explain.test-support.ts';
import { call, listen, makeHub, subscriptionSeries } from './app.test-support.ts';
import { feedBacklogs } from './hub-stats.ts';

const database = useTestDatabase();
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;
const DAY = 86_400_000;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  server = await listen(hub);
});
afterAll(async () => {
  await server?.close();
  await hub?.stop();
});

/** The value of one series of the scrape, or undefined when it is not served. */
const series = (name: string, subscription: string) => subscriptionSeries(server.base, name, subscription);

/** `n` bare events stored `daysAgo` days ago. */
async function store(n: number, daysAgo: number) {
  await sql`insert into switchyard.events (id, type, source, subject, time, envelope, created_at)
    select gen_random_uuid(), 'appointment.updated', 'dp', 'appointment/' || i, now(), '{}',
      now() - make_interval(days => ${daysAgo})
    from generate_series(1, ${n}) i`.execute(hub.host.db);
}

it('shows each enabled pull subscription’s backlog, and the purge names the reader that kept events', async () => {
  const { db } = hub.host;
  const idle = (await hub.subscriptions.create({ kind: 'pull' })).subscription;
  const reader = await hub.subscriptions.create({ kind: 'pull' });
  const off = (await hub.subscriptions.create({ kind: 'pull' })).subscription;
  await hub.subscriptions.disable(off.id);
  // Nothing stored yet: no backlog.
  expect(await series('switchyard_feed_unread_events', idle.id)).toBe(0);
  expect(await series('switchyard_feed_oldest_unread_age_seconds', idle.id)).toBe(0);
  // 30 events of 100 days ago (past retention.events, 90 days), 20 of today.
  await store(30, 100);
  await store(20, 0);
  const [{ lo, hi }] = (
    await sql<{ lo: string; hi: string }>`select min(sequence)::text as lo, max(sequence)::text as hi
      from switchyard.events`.execute(db)
  ).rows as [{ lo: string; hi: string }];
  // The reader acknowledged the first 10 old events over HTTP; idle never read (position 0).
  const ack = await call(server.base, 'POST', `/v1/subscriptions/${reader.subscription.id}/ack`, {
    token: reader.secret,
    body: { cursor: String(BigInt(lo) + 9n) },
  });
  expect(ack.status, ack.text).toBe(200);
  expect(await series('switchyard_feed_unread_events', idle.id)).toBe(50);
  expect(await series('switchyard_feed_unread_events', reader.subscription.id)).toBe(40);
  const age = (await series('switchyard_feed_oldest_unread_age_seconds', idle.id))!;
  expect(age).toBeGreaterThan((100 * DAY) / 1000 - 60);
  expect(age).toBeLessThan((100 * DAY) / 1000 + 60);
  // A disabled subscription holds nothing (purgeEvents), so it has no series.
  expect(await series('switchyard_feed_unread_events', off.id)).toBeUndefined();
  expect(await series('switchyard_feed_oldest_unread_age_seconds', off.id)).toBeUndefined();

  // The purge keeps the 30 old events for idle (position 0), and says which reader and how many.
  const kept = await hub.retention.purge();
  expect(kept.events).toBe(0);
  expect(kept.heldBy).toEqual({ subscriptions: [idle.id], position: '0', events: 30 });
  // idle reads up to the reader's position: the reader holds the 20 old events after it now.
  await sql`insert into switchyard.feed_cursors (subscription_id, cursor) values (${idle.id}, ${BigInt(lo) + 9n})`.execute(
    db,
  );
  const next = await hub.retention.purge();
  expect(next.events).toBe(10);
  expect(next.heldBy).toEqual({
    subscriptions: [idle.id, reader.subscription.id].sort(),
    position: String(BigInt(lo) + 9n),
    events: 20,
  });
  // Both read everything: nothing held, no backlog.
  await sql`update switchyard.feed_cursors set cursor = ${hi}::bigint`.execute(db);
  const done = await hub.retention.purge();
  expect(done.events).toBe(20);
  expect(done.heldBy).toBeUndefined();
  expect(await series('switchyard_feed_unread_events', idle.id)).toBe(0);
  expect(await series('switchyard_feed_oldest_unread_age_seconds', reader.subscription.id)).toBe(0);
});

it('a scrape reads one event per pull subscription, not its backlog; the purge’s count reads the held events only', async () => {
  const plans: Database = openDatabase(database.url(), { max: 1 });
  try {
    const { db } = plans;
    // 40,000 events: 2,000 of 100 days ago, the rest recent; a never-read reader and one halfway.
    await sql`insert into switchyard.events (id, type, source, subject, time, envelope, created_at)
      select gen_random_uuid(), 'appointment.updated', 'dp', 'appointment/' || i, now(), '{}',
        case when i <= 2000 then now() - interval '100 days' else now() end
      from generate_series(1, 40000) i`.execute(db);
    await sql`insert into switchyard.feed_cursors (subscription_id, cursor)
      select id, case when id = (select min(id) from switchyard.subscriptions where kind = 'pull' and disabled_at is null) then 0
                      else (select max(sequence) - 20000 from switchyard.events) end
      from switchyard.subscriptions where kind = 'pull'
      on conflict (subscription_id) do update set cursor = excluded.cursor`.execute(db);
    await sql`analyze switchyard.events`.execute(db);
    const explained: Explained[] = [];
    await explainEverything(plans.pool, explained);

    const scrape = await planOfStatement(explained, () => feedBacklogs(db));
    const eventsRead = scrape
      .filter((n) => n['Relation Name'] === 'events')
      .reduce((sum, n) => sum + (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1), 0);
    expect(eventsRead).toBeLessThanOrEqual(10);
    expect(rowsWasted(scrape)).toBeLessThan(100);
    expect((await feedBacklogs(db)).some((b) => b.unreadEvents >= 40000)).toBe(true);

    const count = await planOfStatement(explained, () =>
      eventsHeldForReaders(db, new Date(Date.now() - 90 * DAY), new Date(Date.now() - 180 * DAY)),
    );
    const counted = count
      .filter((n) => n['Relation Name'] === 'events')
      .reduce((sum, n) => sum + (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1), 0);
    // The 2,000 old events (and the first test's 0 left), not the 38,000 recent ones.
    expect(counted).toBeLessThan(2500);
    expect(rowsWasted(count)).toBeLessThan(2500);
  } finally {
    await plans.close();
  }
});
