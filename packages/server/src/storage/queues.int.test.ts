/** The queue depths `switchyard_queue_depth` and the dashboard's backlog read. */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import * as subscriptionStore from '../subscriptions/store.ts';
import { useMigratedDatabase } from './database.test-support.ts';
import { queueDepths } from './queues.ts';

const database = useTestDatabase();
const store = useMigratedDatabase(database);

/** Stores `count` events and one pending delivery of each to `subscription`, due now. */
async function enqueue(subscription: string, count: number): Promise<void> {
  await sql`with ev as (
      insert into switchyard.events (id, type, source, subject, time, envelope)
      select gen_random_uuid(), 'appointment.updated', 'test', ${subscription} || '-' || i, now(), '{}'::jsonb
      from generate_series(1, ${count}::integer) as i
      returning id, sequence, subject)
    insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, next_attempt_at)
    select gen_random_uuid(), ${subscription}, ev.id, ev.sequence, ev.subject, now() from ev`.execute(
    store.db,
  );
}

it("counts the deliveries due or retrying, not a disabled subscription's parked backlog", async () => {
  await sql`insert into switchyard.subscriptions (id, kind, url) values
    ('sub-on', 'webhook', 'https://on.example.test/hook'),
    ('sub-off', 'webhook', 'https://off.example.test/hook')`.execute(store.db);
  await enqueue('sub-on', 3);
  await enqueue('sub-off', 5);
  expect((await queueDepths(store.db)).deliver).toBe(8);
  // Parked until it is enabled again: no worker can send them, so adding workers (what the depth
  // is watched for) would not lower it.
  await store.db
    .transaction()
    .execute((trx) => subscriptionStore.disableSubscription(trx, 'sub-off', 'test'));
  expect((await queueDepths(store.db)).deliver).toBe(3);
});
