/**
 * Event numbers of `fhir-r4-notification` deliveries (the Subscriptions Backport's event-number and
 * events-since-subscription-start): taken at a delivery's first claim from its subscription's
 * counter, gapless, kept on later attempts, given back by a claim that rolls back.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { beforeEach, expect, it } from 'vitest';
import { useMigratedDatabase } from '../storage/database.test-support.ts';
import * as deliveryStore from './store.ts';

const database = useTestDatabase();
const store = useMigratedDatabase(database);
beforeEach(async () => {
  await sql`delete from switchyard.deliveries`.execute(store.db);
  await sql`delete from switchyard.subscriptions`.execute(store.db);
  await sql`insert into switchyard.subscriptions (id, kind, url, format) values
    ('notify', 'webhook', 'https://example.test/notify', 'fhir-r4-notification'),
    ('plain', 'webhook', 'https://example.test/plain', 'cloudevents')`.execute(store.db);
});

/** Stores `count` events, each of its own subject, and a due delivery of each to every one of `subs`. */
async function enqueue(count: number, subs: readonly string[]): Promise<void> {
  await sql`with ev as (
      insert into switchyard.events (id, type, source, subject, time, envelope)
      select gen_random_uuid(), 'appointment.updated', 'test', 'appointment/' || gen_random_uuid(), now(), '{}'::jsonb
      from generate_series(1, ${count}::integer)
      returning id, sequence, subject)
    insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, next_attempt_at)
    select gen_random_uuid(), s, ev.id, ev.sequence, ev.subject, now() - interval '1 second'
    from ev cross join unnest(${[...subs]}::text[]) as s order by ev.sequence`.execute(store.db);
}

async function counter(id: string): Promise<number> {
  const r = await sql<{
    n: string;
  }>`select notification_events as n from switchyard.subscriptions where id = ${id}`.execute(store.db);
  return Number(r.rows[0]!.n);
}

const numbers = (rows: readonly deliveryStore.DeliveryRow[], sub: string) =>
  rows.filter((d) => d.subscription_id === sub).map((d) => Number(d.notification_number));

it('numbers a notification subscription’s deliveries at their first claim, 1..N without gaps, in event order within a claim', async () => {
  await enqueue(7, ['notify', 'plain']);
  const first = await deliveryStore.claimDeliveryWork(store.db, 15_000, 6);
  const second = await deliveryStore.claimDeliveryWork(store.db, 15_000, 100);
  const claimed = [...first, ...second].map((w) => w.delivery);
  expect(claimed).toHaveLength(14);
  expect(numbers(claimed, 'notify').sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  expect(claimed.filter((d) => d.subscription_id === 'plain').map((d) => d.notification_number)).toEqual(
    Array(7).fill(null),
  );
  for (const batch of [first, second]) {
    const mine = batch.filter((w) => w.delivery.subscription_id === 'notify');
    const bySequence = [...mine].sort(
      (a, b) => Number(a.delivery.event_sequence) - Number(b.delivery.event_sequence),
    );
    expect(bySequence.map((w) => Number(w.delivery.notification_number))).toEqual(
      mine.map((w) => Number(w.delivery.notification_number)).sort((a, b) => a - b),
    );
    // events-since-subscription-start as rendered: the counter after this claim, never below a number.
    for (const w of mine) {
      expect(Number(w.subscription.notification_events)).toBeGreaterThanOrEqual(
        Number(w.delivery.notification_number),
      );
    }
  }
  expect(
    Number(second.find((w) => w.delivery.subscription_id === 'notify')!.subscription.notification_events),
  ).toBe(7);
  expect(await counter('notify')).toBe(7);
  expect(await counter('plain')).toBe(0);
});

it('keeps a delivery’s number on its later attempts', async () => {
  await enqueue(2, ['notify']);
  const [a, b] = await deliveryStore.claimDeliveries(store.db, 15_000, 100);
  // Back in line (as after a failed attempt, or a crash whose lease ran out).
  await sql`update switchyard.deliveries set status = 'pending', lock_token = null, locked_until = null
    where id = ${a!.id}`.execute(store.db);
  const [again] = await deliveryStore.claimDeliveries(store.db, 15_000, 100);
  expect(again!.id).toBe(a!.id);
  expect(again!.notification_number).toBe(a!.notification_number);
  expect([a!.notification_number, b!.notification_number].map(Number).sort()).toEqual([1, 2]);
  expect(await counter('notify')).toBe(2);
});

it('gives the numbers of a claim that rolls back back: the next claim takes them', async () => {
  await enqueue(3, ['notify']);
  await store.db
    .transaction()
    .execute(async (trx) => {
      expect(numbers(await deliveryStore.claimDeliveries(trx, 15_000, 100), 'notify').sort()).toEqual([
        1, 2, 3,
      ]);
      throw new Error('roll back');
    })
    .catch(() => undefined);
  expect(await counter('notify')).toBe(0);
  expect(numbers(await deliveryStore.claimDeliveries(store.db, 15_000, 100), 'notify').sort()).toEqual([
    1, 2, 3,
  ]);
});

it('numbers a delivery made before its subscription became a notification subscription when it is claimed', async () => {
  await sql`update switchyard.subscriptions set format = 'fhir-r4' where id = 'notify'`.execute(store.db);
  await enqueue(2, ['notify']);
  await sql`update switchyard.subscriptions set format = 'fhir-r4-notification' where id = 'notify'`.execute(
    store.db,
  );
  expect(numbers(await deliveryStore.claimDeliveries(store.db, 15_000, 100), 'notify').sort()).toEqual([
    1, 2,
  ]);
});
