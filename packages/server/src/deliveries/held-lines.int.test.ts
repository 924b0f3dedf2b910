/**
 * Held deliveries (`ordering: hold`: the later deliveries of a subject whose delivery is dead) are
 * released only by the dead one's replay or skip. Two ways they were left held for good: retention
 * purged the dead one they wait behind, and a switch of the subscription to `release` (which holds
 * nothing) left them held (found by an audit, 2026-12-06).
 */
import { randomUUID } from 'node:crypto';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as eventStore from '../events/store.ts';
import { type Database, openDatabase } from '../storage/db.ts';
import { migrate } from '../storage/migrations.ts';
import type { SubscriptionRow } from '../storage/subscription-row.ts';
import * as deliveryStore from './store.ts';

const database = useTestDatabase();
let store: Database;
beforeAll(async () => {
  store = openDatabase(database.url(), { max: 4 });
  await migrate(store.db);
});
afterAll(async () => {
  await store?.close();
});

async function scenario(sub: string, subject: string) {
  await sql`insert into switchyard.subscriptions (id, kind, url, ordering) values (${sub}, 'webhook', 'https://example.test/hook', 'hold')`.execute(
    store.db,
  );
  await sql`with ev as (
      insert into switchyard.events (id, type, source, subject, time, envelope)
      select gen_random_uuid(), 'appointment.updated', 'test', ${subject}, now(), jsonb_build_object('n', i)
      from generate_series(1, 2) as i returning id, sequence, subject, envelope->>'n' as n)
    insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, next_attempt_at, status, attempts)
    select gen_random_uuid(), ${sub}, ev.id, ev.sequence, ev.subject, now() - interval '1 second', 'pending', 0
    from ev order by ev.sequence`.execute(store.db);
  // The first dies as the deliver worker records it (finishDelivery + holdSubject).
  const [first] = await deliveryStore
    .claimDeliveries(store.db, 1000, 10)
    .then((r) => r.filter((d) => d.subscription_id === sub));
  await store.db.transaction().execute(async (trx) => {
    await deliveryStore.finishDelivery(trx, first!.id, first!.lock_token!, {
      status: 'dead',
      statusCode: 500,
      error: 'x',
    });
    await deliveryStore.holdSubject(trx, sub, subject, first!.event_sequence);
  });
  return first!;
}

async function addLater(sub: string, subject: string) {
  await sql`with ev as (insert into switchyard.events (id, type, source, subject, time, envelope)
      values (gen_random_uuid(), 'appointment.updated', 'test', ${subject}, now(), '{}') returning id, sequence, subject)
    insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, next_attempt_at)
    select gen_random_uuid(), ${sub}, id, sequence, subject, now() - interval '1 second' from ev`.execute(
    store.db,
  );
}

async function statuses(sub: string) {
  return (
    await sql<{
      status: string;
    }>`select status from switchyard.deliveries where subscription_id = ${sub} order by event_sequence, seq`.execute(
      store.db,
    )
  ).rows.map((r) => r.status);
}

it('retention keeps a dead delivery that holds its subject, whose replay or skip alone releases the held ones', async () => {
  await scenario('sub-ret', 'appointment/r');
  expect(await statuses('sub-ret')).toEqual(['dead', 'held']);
  await sql`update switchyard.deliveries set completed_at = now() - interval '31 days' where status = 'dead'`.execute(
    store.db,
  );
  const purged = await deliveryStore.purgeDeliveries(store.db, new Date(Date.now() - 30 * 86400_000), 100);
  await addLater('sub-ret', 'appointment/r');
  await deliveryStore.settleIdleDeliveries(store.db);
  const claimed = (await deliveryStore.claimDeliveries(store.db, 1000, 10)).filter(
    (d) => d.subscription_id === 'sub-ret',
  );
  expect(purged).toBe(0);
  expect(claimed).toHaveLength(0); // still held behind the dead one, as under hold they should be
  // The later one waits held too, behind the dead one kept for its replay or skip to release them.
  expect(await statuses('sub-ret')).toEqual(['dead', 'held', 'held']);
});

it("the events purge keeps a line-holding dead delivery's event, and so the dead delivery and the line", async () => {
  // Found at volume (1.2 million events, 120 days): every dead delivery older than
  // retention.events that held its subject was deleted with its event (the cascade of migration
  // 21), and the 60 deliveries behind the 20 of them stayed held with no dead one to replay or skip.
  const dead = await scenario('sub-ev', 'appointment/e');
  await sql`update switchyard.deliveries set completed_at = now() - interval '100 days' where id = ${dead.id}`.execute(
    store.db,
  );
  await sql`update switchyard.events set created_at = now() - interval '100 days' where subject = 'appointment/e'`.execute(
    store.db,
  );
  const cutoff = (days: number) => new Date(Date.now() - days * 86400_000);
  expect(await deliveryStore.purgeDeliveries(store.db, cutoff(30), 100)).toBe(0);
  await eventStore.purgeEvents(store.db, cutoff(90), 100);
  expect(await statuses('sub-ev')).toEqual(['dead', 'held']);
  // Its skip releases the line; the events purge then takes the skipped one's event with it.
  await deliveryStore.skipDelivery(store.db, dead.id);
  await deliveryStore.releaseSubject(store.db, 'sub-ev', 'appointment/e');
  expect(await statuses('sub-ev')).toEqual(['skipped', 'pending']);
  await sql`update switchyard.deliveries set status = 'succeeded', completed_at = now() where subscription_id = 'sub-ev' and status = 'pending'`.execute(
    store.db,
  );
  expect(await eventStore.purgeEvents(store.db, cutoff(90), 100)).toBe(2);
  expect(await statuses('sub-ev')).toEqual([]);
});

it('switching ordering from hold to release lets the held deliveries and the later ones go', async () => {
  await scenario('sub-rel', 'appointment/s');
  await sql`update switchyard.subscriptions set ordering = 'release' where id = 'sub-rel'`.execute(store.db);
  await addLater('sub-rel', 'appointment/s');
  await deliveryStore.settleIdleDeliveries(store.db);
  expect(await statuses('sub-rel')).toEqual(['dead', 'pending', 'pending']);
  const claimed = (await deliveryStore.claimDeliveries(store.db, 1000, 10)).filter(
    (d) => d.subscription_id === 'sub-rel',
  );
  expect(claimed.length).toBeGreaterThan(0);
});

it('a replay since the dead one shows held behind it, its own event too, and goes once the dead one is replayed', async () => {
  // replay-since (or a forced replay of an earlier delivery) of the dead one's own event made a
  // delivery with its event sequence: the claim waits it behind the dead one, but the holds compared
  // event sequences strictly and left it `pending`, due in the past and never sent, for good.
  const since = (await sql<{ now: Date }>`select now()`.execute(store.db)).rows[0]!.now;
  const dead = await scenario('sub-since', 'appointment/since');
  const sub = (
    await sql<SubscriptionRow>`select * from switchyard.subscriptions where id = 'sub-since'`.execute(
      store.db,
    )
  ).rows[0]!;
  expect(await deliveryStore.insertReplaysSince(store.db, sub, { since })).toBe(2);
  await deliveryStore.settleIdleDeliveries(store.db);
  const claimed = (await deliveryStore.claimDeliveries(store.db, 1000, 10)).filter(
    (d) => d.subscription_id === 'sub-since',
  );
  expect(claimed).toHaveLength(0);
  // In line order: the dead one, the first event's replay, the second event's delivery and replay.
  expect(await statuses('sub-since')).toEqual(['dead', 'held', 'held', 'held']);
  await store.db.transaction().execute(async (trx) => {
    const row = (await deliveryStore.lockDelivery(trx, dead.id))!;
    await deliveryStore.insertReplay(trx, randomUUID(), row);
    await deliveryStore.releaseSubject(trx, row.subscription_id, row.subject);
  });
  expect(await statuses('sub-since')).toEqual(['dead', 'pending', 'pending', 'pending', 'pending']);
});
