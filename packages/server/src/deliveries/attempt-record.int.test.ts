/**
 * The attempt record commits without waiting for its WAL flush (`finishDeliveries`), and the
 * commits that let a subject's next delivery go still wait for theirs: that is what keeps a lost
 * record (a Postgres crash before the flush) from reordering a subject (deliveries/store.ts says
 * why). A transaction's own setting is what its commit reads, so the tests run each statement in a
 * transaction and read `synchronous_commit` there before it commits.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { oneEventEach } from '../events/fixtures.test-support.ts';
import { commitNormalized } from '../events/store.ts';
import { newInbound } from '../inbound/fixtures.test-support.ts';
import { claimInbound, storeInbound } from '../inbound/store.ts';
import { useMigratedDatabase } from '../storage/database.test-support.ts';
import type { Executor } from '../storage/db.ts';
import * as deliveryStore from './store.ts';

const database = useTestDatabase();
const store = useMigratedDatabase(database);

beforeAll(async () => {
  await sql`insert into switchyard.subscriptions (id, kind, url) values
    ('sub-record', 'webhook', 'https://example.test/hook')`.execute(store.db);
  await sql`insert into switchyard.connector_instances (id, connector, mode, settings_sealed)
    values ('inst-1', 'test', 'push', 'x')`.execute(store.db);
});

/** An empty queue, then two events of one subject, each with a pending delivery to sub-record, due now. */
async function twoOfOneSubject(subject: string): Promise<void> {
  await sql`truncate switchyard.deliveries, switchyard.events cascade`.execute(store.db);
  await sql`with ev as (
      insert into switchyard.events (id, type, source, subject, time, envelope)
      select gen_random_uuid(), 'appointment.updated', 'test', ${subject}, now(), jsonb_build_object('n', i)
      from generate_series(1, 2) as i
      returning id, sequence, subject)
    insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, next_attempt_at)
    select gen_random_uuid(), 'sub-record', ev.id, ev.sequence, ev.subject, now() - interval '1 second'
    from ev order by ev.sequence`.execute(store.db);
}

/** The `synchronous_commit` the transaction of `work` commits with, and what `work` returned. */
async function committedWith<T>(work: (trx: Executor) => Promise<T>): Promise<{ result: T; sync: string }> {
  return store.db.transaction().execute(async (trx) => {
    const result = await work(trx);
    const r = await sql<{ sync: string }>`select current_setting('synchronous_commit') as sync`.execute(trx);
    return { result, sync: r.rows[0]!.sync };
  });
}

const succeeded = (d: deliveryStore.DeliveryRow) => ({
  deliveryId: d.id,
  lockToken: d.lock_token!,
  status: 'succeeded' as const,
  nextAttemptInMs: 0,
  attempt: d.attempts,
  startedAt: new Date(),
  latencyMs: 4,
  statusCode: 200,
  responseSnippet: null,
  error: null,
  outcome: 'succeeded',
  traceparent: null,
});

it("records an attempt without waiting for its flush, and leaves the connection's setting alone", async () => {
  await twoOfOneSubject('appointment/record-1');
  const [head] = await deliveryStore.claimDeliveries(store.db, 15_000, 16);
  expect(head?.subject).toBe('appointment/record-1');

  const { result, sync } = await committedWith((trx) =>
    deliveryStore.finishDeliveries(trx, [succeeded(head!)]),
  );
  expect(sync).toBe('off');
  // The record is the whole of it: the attempt row, the delivery moved, the successor reported.
  expect(result).toEqual([{ id: head!.id, successor: true }]);
  const after = await sql<{ status: string; attempts: string }>`
    select d.status, (select count(*) from switchyard.delivery_attempts a where a.delivery_id = d.id) as attempts
    from switchyard.deliveries d where d.id = ${head!.id}`.execute(store.db);
  expect(after.rows[0]).toEqual({ status: 'succeeded', attempts: '1' });
  // SET LOCAL: the pool's next statement on any connection commits as configured.
  const next = await sql<{ sync: string }>`select current_setting('synchronous_commit') as sync`.execute(
    store.db,
  );
  expect(next.rows[0]?.sync).toBe('on');
});

it("the claim that lets a subject's next delivery go waits for its flush (which writes out the record)", async () => {
  await twoOfOneSubject('appointment/record-2');
  const [head] = await deliveryStore.claimDeliveries(store.db, 15_000, 16);
  expect(head?.subject).toBe('appointment/record-2');
  // Behind its in-flight head, the subject's second delivery is not claimable.
  expect(await deliveryStore.claimDeliveries(store.db, 15_000, 16)).toEqual([]);
  await deliveryStore.finishDeliveries(store.db, [succeeded(head!)]);

  const { result, sync } = await committedWith((trx) => deliveryStore.claimDeliveries(trx, 15_000, 16));
  expect(result.map((d) => [d.subject, d.event_sequence > head!.event_sequence])).toEqual([
    ['appointment/record-2', true],
  ]);
  expect(sync).toBe('on');
});

it('the normalize commit that leases a fan-out delivery waits for its flush', async () => {
  await sql`truncate switchyard.deliveries, switchyard.events cascade`.execute(store.db);
  await storeInbound(store.db, [newInbound({ orderingKey: 'record-3' })], [], ['inst-1']);
  const { rows: claimed } = await claimInbound(store.db, 60_000, 1);
  const a = oneEventEach(claimed);
  const { result, sync } = await committedWith((trx) =>
    commitNormalized(trx, a.messages, a.events, a.states, { limit: 4, marginMs: 15_000 }, a.aliases),
  );
  expect(result.leased.map((l) => l.delivery.subject)).toEqual(['appointment/record-3']);
  expect(sync).toBe('on');
});
