/**
 * Fault tests of retention against a pull reader (events/store.ts `purgeEvents`, `feed_gaps`,
 * subscriptions/feed.ts): a purge committing between a poll's reads, a purge whose statement began
 * before the reader's ack commits after it, two purges at once, a reader deleted while the purge
 * notes its gap. The interleavings are forced with
 * real Postgres locks: a transaction holding the events table or running the purge uncommitted.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedGaps, purgeEvents } from '../events/store.ts';
import { eventually, makeHub, push, setupInstance } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
let hub: Hub;
let n = 0;

beforeAll(async () => {
  hub = await makeHub(database.url(), {
    options: {
      retention: { eventsMs: 60_000, inboundMs: 60_000, deliveriesMs: 60_000, batchSize: 100, cron: false },
    },
  });
  await hub.start();
  await setupInstance(hub);
});
afterAll(async () => {
  await hub?.stop();
});

async function send() {
  const id = `race-${++n}`;
  const r = await hub.ingest('acme-1', push({ id, type: 'created', booking: id }));
  if (!r.ok) throw new Error('ingest failed');
  return eventually(async () => {
    const m = await hub.inbound.get(r.stored[0]!);
    return m.status === 'normalized' ? m.events[0]! : undefined;
  });
}

const cursor = (event: { sequence: string }) => String(BigInt(event.sequence));
const DAY = 86_400_000;
/** The purge's bounds as the hub passes them: a minute's retention, the 180-day cap of unread events. */
const purgeNow = (db: Parameters<typeof purgeEvents>[0], batch = 100) =>
  purgeEvents(db, new Date(Date.now() - 60_000), batch, new Date(Date.now() - 180 * DAY));

/**
 * A pull reader created long ago that has read nothing, and three events: the first past the
 * unread cap (it goes, and is the reader's gap), the others a minute old (kept, unread). Every
 * other pull subscription has read them all.
 */
async function readerWithOneLostEvent() {
  const reader = (await hub.subscriptions.create({ kind: 'pull', eventTypes: ['*'] })).subscription;
  const [e1, e2, e3] = [await send(), await send(), await send()];
  const { db } = hub.host;
  await sql`insert into switchyard.feed_cursors (subscription_id, cursor)
    select id, ${cursor(e3)}::bigint from switchyard.subscriptions where kind = 'pull' and id <> ${reader.id}
    on conflict (subscription_id) do update set cursor = greatest(switchyard.feed_cursors.cursor, excluded.cursor)`.execute(
    db,
  );
  await sql`update switchyard.subscriptions set created_at = now() - interval '400 days' where id = ${reader.id}`.execute(
    db,
  );
  await sql`update switchyard.events set created_at = now() - interval '300 days' where id = ${e1.id}`.execute(
    db,
  );
  // Past the feed's commit window (an event after a missing number is held back for 3 s).
  await sql`update switchyard.events set created_at = now() - interval '30 seconds' where id in (${e2.id}, ${e3.id})`.execute(
    db,
  );
  return { reader, e1, e2, e3 };
}

/** Resolves once a session of the test database waits on a lock (the statement the test holds back). */
async function someoneWaitsOnALock(): Promise<void> {
  await eventually(async () => {
    const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'`.execute(hub.host.db);
    return r.rows[0]!.n > 0 ? true : undefined;
  });
}

describe('retention racing a pull reader', () => {
  it('a purge committed between a poll reading its gap and its events: the page names the gap', async () => {
    const { reader, e1, e2, e3 } = await readerWithOneLostEvent();
    let page: Awaited<ReturnType<Hub['feed']['poll']>> | undefined;
    await hub.host.db.transaction().execute(async (trx) => {
      // The poll's read of the events waits behind this lock; the purge commits with it.
      await sql`lock table switchyard.events in access exclusive mode`.execute(trx);
      const polling = hub.feed.poll(reader.id).then((p) => {
        page = p;
      });
      await someoneWaitsOnALock();
      expect(await purgeNow(trx)).toBeGreaterThanOrEqual(1);
      void polling;
    });
    await eventually(async () => page);
    // On the old code the gap was read before the purge and the page went on after e1 silently;
    // its nextCursor past the gap, the next poll did not name it either.
    expect(page).toEqual({
      events: [expect.objectContaining({ id: e2.id }), expect.objectContaining({ id: e3.id })],
      nextCursor: cursor(e3),
      gap: { through: cursor(e1), events: 1 },
    });
  });

  it("a purge that began before the reader's ack and committed after it reports no gap for the acknowledged events", async () => {
    const { reader, e3 } = await readerWithOneLostEvent();
    const { db } = hub.host;
    await db.transaction().execute(async (trx) => {
      // The purge's statement reads the reader's position (none yet) and notes e1 as its gap ...
      expect(await purgeNow(trx)).toBeGreaterThanOrEqual(1);
      // ... while the reader acknowledges past it (its ack clears the gaps it can see: none yet).
      await hub.feed.ack(reader.id, cursor(e3));
    });
    // On the old code the gap stayed noted for events the reader had acknowledged: the gauge and
    // the purge's warning named it until the reader's next ack.
    expect((await feedGaps(db)).filter((g) => g.subscription === reader.id)).toEqual([]);
    expect(await hub.feed.poll(reader.id)).toEqual({ events: [], nextCursor: cursor(e3) });
  });

  it('two purges at once remove each event once and count it once in the gap', async () => {
    const { reader, e1, e2, e3 } = await readerWithOneLostEvent();
    const { db } = hub.host;
    // Two more past the cap: three lost events in all.
    const [e4, e5] = [await send(), await send()];
    await sql`update switchyard.events set created_at = now() - interval '300 days' where id in (${e4.id}, ${e5.id})`.execute(
      db,
    );
    await sql`update switchyard.events set created_at = now() - interval '30 seconds' where id in (${e2.id}, ${e3.id})`.execute(
      db,
    );
    let second: Promise<number> | undefined;
    const first = await db.transaction().execute(async (trx) => {
      const removed = await purgeNow(trx);
      // The second purge picks the same events and waits on their row locks.
      second = purgeNow(db);
      await someoneWaitsOnALock();
      return removed;
    });
    const removedBySecond = await second!;
    expect(first + removedBySecond).toBeGreaterThanOrEqual(3);
    const gap = (await feedGaps(db)).find((g) => g.subscription === reader.id);
    expect(gap).toMatchObject({ events: 3 });
    expect(BigInt(gap!.through)).toBeGreaterThan(BigInt(cursor(e1)));
  });

  it('a reader deleted while the purge notes its gap: the purge goes on without it', async () => {
    const { reader } = await readerWithOneLostEvent();
    const { db } = hub.host;
    // The delete held uncommitted: the purge's snapshot still holds the reader, and its feed_gaps
    // row waits at the foreign key check for the delete, which then commits.
    const deleter = new pg.Client({ connectionString: database.url() });
    await deleter.connect();
    try {
      await deleter.query('begin');
      await deleter.query('delete from switchyard.subscriptions where id = $1', [reader.id]);
      const purging = purgeNow(db).then(
        (n) => ({ n }),
        (error: unknown) => ({ error }),
      );
      await someoneWaitsOnALock();
      await deleter.query('commit');
      // On the old code the purge failed (23503 feed_gaps_subscription_id_fkey), and with it the
      // retention run: its other batches and tables were left for the next run.
      expect(await purging).toEqual({ n: expect.any(Number) });
    } finally {
      await deleter.end();
    }
    expect((await feedGaps(db)).filter((g) => g.subscription === reader.id)).toEqual([]);
  });
});
