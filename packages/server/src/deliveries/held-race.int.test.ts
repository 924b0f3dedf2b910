/**
 * Held deliveries and a replay racing a fan-out. Under `ordering: hold` a new event of a subject
 * whose delivery is dead is stored `held` by the fan-out itself; the replay (or skip) of the dead
 * delivery releases the subject's held rows. A fan-out whose snapshot predated a replay's commit,
 * and whose statement waited for the subject lock meanwhile, stored its delivery held behind a dead
 * row already replayed, where nothing would ever release it (found by an audit, 2026-12-06).
 */
import { randomUUID } from 'node:crypto';
import { type EventEnvelope, getSchemas } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { storeHubEvents } from '../events/emit.ts';
import { type Database, openDatabase } from '../storage/db.ts';
import { advisoryLockWaiters, until } from '../storage/locks.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import * as deliveryStore from './store.ts';

const database = useTestDatabase();
let store: Database;
beforeAll(async () => {
  store = openDatabase(database.url(), { max: 6 });
  await migrate(store.db);
  await sql`insert into switchyard.subscriptions (id, kind, url, ordering) values ('sub', 'webhook', 'https://example.test/hook', 'hold')`.execute(
    store.db,
  );
});
afterAll(async () => {
  await store?.close();
});

function example(type: string, subject: string): EventEnvelope {
  // biome-ignore lint/suspicious/noExplicitAny: the schema's examples are read as they are.
  const schema = getSchemas().find((x) => x.$id.endsWith(`/events/${type}.json`)) as any;
  const { sequence: _, ...event } = structuredClone(schema.examples[0]!);
  return { ...event, id: randomUUID(), subject };
}

it('a new event of a subject whose dead head is replayed meanwhile is not left held behind it', async () => {
  const S = 'appointment/6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b';
  // E1 stored and fanned out, its delivery dead (as the deliver worker leaves it).
  await storeHubEvents(store.db, [example('appointment.created', S)]);
  const [d1] = await deliveryStore.claimDeliveries(store.db, 1000, 10);
  await store.db.transaction().execute(async (trx) => {
    await deliveryStore.finishDelivery(trx, d1!.id, d1!.lock_token!, {
      status: 'dead',
      statusCode: 500,
      error: 'x',
    });
    await deliveryStore.holdSubject(trx, 'sub', S, d1!.event_sequence);
  });
  // Another commit of the same subject holds the subject lock for a moment (as a normalize commit does).
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let locked = false;
  const holder = store.db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${0x53595342}::integer, hashtext(${S}))`.execute(trx);
    locked = true;
    await gate;
  });
  await until(() => locked);
  // E2's fan-out statement starts (its snapshot: D1 dead, not replayed) and waits for the lock.
  const e2 = storeHubEvents(store.db, [example('appointment.cancelled', S)]);
  await until(async () => (await advisoryLockWaiters(store.db)) === 1);
  // The operator replays D1 meanwhile (deliveries/api.ts replayRow).
  await store.db.transaction().execute(async (trx) => {
    const row = (await deliveryStore.lockDelivery(trx, d1!.id))!;
    await deliveryStore.insertReplay(trx, randomUUID(), row);
    await deliveryStore.releaseSubject(trx, row.subscription_id, row.subject);
  });
  release();
  await holder;
  await e2;
  const st = async () =>
    (
      await sql<{
        reason: string;
        status: string;
        superseded_by: string | null;
      }>`select reason, status, superseded_by from switchyard.deliveries order by event_sequence, seq`.execute(
        store.db,
      )
    ).rows.map((r) => `${r.reason}:${r.status}${r.superseded_by ? '(replayed)' : ''}`);
  expect(await st()).toEqual(['fanout:dead(replayed)', 'replay:pending', 'fanout:pending']);
  // The replay goes first and succeeds.
  const [r] = await deliveryStore.claimDeliveries(store.db, 1000, 10);
  await deliveryStore.finishDelivery(store.db, r!.id, r!.lock_token!, {
    status: 'succeeded',
    statusCode: 200,
    error: null,
  });
  await deliveryStore.settleIdleDeliveries(store.db);
  const again = await deliveryStore.claimDeliveries(store.db, 1000, 10);
  // The new event's delivery goes next (before the fix: held for good, nothing claimable).
  expect(again).toHaveLength(1);
});
