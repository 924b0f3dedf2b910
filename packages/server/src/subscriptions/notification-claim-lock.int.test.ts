/**
 * A disable or a delete of a `fhir-r4-notification` subscription while a delivery claim numbers its
 * deliveries. The disable locks the subscription's row, then its deliveries (the park); the delete
 * its row, then its deliveries (the cascade). The claim locked deliveries first and then the row
 * (to advance its event counter): the two at once deadlocked, and Postgres aborted one (40P01).
 * Forced here: another session holds the subscription's row as the disable or delete has it
 * after its first statement, the claim starts and waits for the row, then that session goes on to
 * the deliveries.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { beforeEach, expect, it } from 'vitest';
import * as deliveryStore from '../deliveries/store.ts';
import { useMigratedDatabase } from '../storage/database.test-support.ts';
import { lockWaiters, until } from '../storage/locks.test-support.ts';

const database = useTestDatabase();
const store = useMigratedDatabase(database);

beforeEach(async () => {
  await sql`delete from switchyard.deliveries`.execute(store.db);
  await sql`delete from switchyard.subscriptions`.execute(store.db);
  await sql`insert into switchyard.subscriptions (id, kind, url, format)
    values ('notify', 'webhook', 'https://example.test/notify', 'fhir-r4-notification')`.execute(store.db);
  await sql`with ev as (
      insert into switchyard.events (id, type, source, subject, time, envelope)
      select gen_random_uuid(), 'appointment.updated', 'test', 'appointment/' || g, now(), '{}'::jsonb
      from generate_series(1, 3) g
      returning id, sequence, subject)
    insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, next_attempt_at)
    select gen_random_uuid(), 'notify', ev.id, ev.sequence, ev.subject, now() - interval '1 second'
    from ev order by ev.sequence`.execute(store.db);
});

/**
 * Runs a claim while another session holds subscription `notify`'s row (`rowLock`), and once the
 * claim waits for it, runs `thenDeliveries` in that session (the disable's park, the delete's
 * cascade) and commits. Returns the claim's outcome and the other session's error, if any.
 */
async function claimDuring(rowLock: string, thenDeliveries: string) {
  const other = new pg.Client({ connectionString: database.url() });
  await other.connect();
  try {
    await other.query('begin');
    await other.query(rowLock);
    const claim = deliveryStore.claimDeliveryWork(store.db, 15_000, 10).then(
      (works) => ({ works, error: undefined }),
      (error: { code?: string }) => ({ works: [], error }),
    );
    await until(async () => (await lockWaiters(store.db)) === 1);
    let otherError: { code?: string } | undefined;
    try {
      await other.query(thenDeliveries);
      await other.query('commit');
    } catch (error) {
      otherError = error as { code?: string };
      await other.query('rollback');
    }
    return { ...(await claim), otherError };
  } finally {
    await other.end();
  }
}

it('disables a notification subscription while a claim numbers its deliveries: no deadlock, no number taken', async () => {
  const r = await claimDuring(
    `update switchyard.subscriptions set disabled_at = now(), disabled_reason = 'test' where id = 'notify'`,
    `update switchyard.deliveries set next_attempt_at = '${deliveryStore.PARKED_UNTIL}'::timestamptz
      where subscription_id = 'notify' and status = 'pending'`,
  );
  expect({ claim: r.error?.code, other: r.otherError?.code }).toEqual({ claim: undefined, other: undefined });
  // Disabled first, the claim took none of its deliveries, and numbered none.
  expect(r.works).toEqual([]);
  const left = await sql<{ n: string; unnumbered: string; parked: string }>`select
      (select notification_events from switchyard.subscriptions where id = 'notify') as n,
      (select count(*) from switchyard.deliveries where notification_number is null and status = 'pending') as unnumbered,
      (select count(*) from switchyard.deliveries where next_attempt_at = ${deliveryStore.PARKED_UNTIL}::timestamptz) as parked`.execute(
    store.db,
  );
  expect(left.rows[0]).toEqual({ n: '0', unnumbered: '3', parked: '3' });

  // Enabled again, they are numbered from 1 without a gap.
  await sql`update switchyard.subscriptions set disabled_at = null, disabled_reason = null where id = 'notify'`.execute(
    store.db,
  );
  await deliveryStore.unparkDeliveries(store.db, 'notify');
  const works = await deliveryStore.claimDeliveryWork(store.db, 15_000, 10);
  expect(works.map((w) => Number(w.delivery.notification_number)).sort()).toEqual([1, 2, 3]);
});

it('deletes a notification subscription while a claim numbers its deliveries: no deadlock', async () => {
  const r = await claimDuring(
    `select 1 from switchyard.subscriptions where id = 'notify' for update`,
    `delete from switchyard.subscriptions where id = 'notify'`,
  );
  expect({ claim: r.error?.code, other: r.otherError?.code }).toEqual({ claim: undefined, other: undefined });
  expect(r.works).toEqual([]);
  const left = await sql<{ n: string }>`select count(*) as n from switchyard.deliveries`.execute(store.db);
  expect(left.rows[0]!.n).toBe('0');
});
