/**
 * A replay of a dead delivery lets the held ones of its subject go; a deliver pass that holds the
 * deliveries waiting behind a dead one (`settleIdleDeliveries`) running at the same moment must not
 * hold them again. Its snapshot could show the dead one not yet replayed while the replay had
 * already let the held ones go: they stayed held for good (seen in CI as a replay whose later
 * deliveries never went). The pass now waits for the replay and reads the dead row again.
 */

import { randomUUID } from 'node:crypto';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase } from '../storage/db.ts';
import { lockWaiters, until } from '../storage/locks.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import * as deliveryStore from './store.ts';

const database = useTestDatabase();
let store: Database;

beforeAll(async () => {
  store = openDatabase(database.url(), { max: 4 });
  await migrate(store.db);
  await sql`insert into switchyard.subscriptions (id, kind, url, ordering) values
    ('sub-hold', 'webhook', 'https://example.test/hook', 'hold')`.execute(store.db);
});
afterAll(async () => {
  await store?.close();
});

it('a pass holding deliveries behind a dead one waits for its replay in progress, and holds nothing', async () => {
  // Three events of one subject, a due pending delivery each; the first one is dead.
  await sql`with ev as (
      insert into switchyard.events (id, type, source, subject, time, envelope)
      select gen_random_uuid(), 'appointment.updated', 'test', 'appointment/1', now(), jsonb_build_object('n', i)
      from generate_series(1, 3) as i
      returning id, sequence, subject, envelope->>'n' as n)
    insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, next_attempt_at, last_error, status)
    select gen_random_uuid(), 'sub-hold', ev.id, ev.sequence, ev.subject, now() - interval '1 second', ev.n,
      case when ev.n = '1' then 'dead' else 'pending' end
    from ev order by ev.sequence`.execute(store.db);
  const dead = await sql<{ id: string }>`select id from switchyard.deliveries where status = 'dead'`.execute(
    store.db,
  );

  // The replay, as deliveries/api.ts does it, left open after letting the subject go.
  let commit!: () => void;
  const open = new Promise<void>((resolve) => {
    commit = resolve;
  });
  let replayed = false;
  const replay = store.db.transaction().execute(async (trx) => {
    const row = (await deliveryStore.lockDelivery(trx, dead.rows[0]!.id))!;
    await deliveryStore.insertReplay(trx, randomUUID(), row);
    await deliveryStore.releaseSubject(trx, row.subscription_id, row.subject);
    replayed = true;
    await open;
  });
  await until(() => replayed);

  // The pass starts while the replay is open: it waits for the dead row.
  let settled = false;
  const settle = deliveryStore.settleIdleDeliveries(store.db).then(() => {
    settled = true;
  });
  await until(async () => settled || (await lockWaiters(store.db)) > 0);
  expect(settled).toBe(false);
  commit();
  await replay;
  await settle;

  const r = await sql<{
    status: string;
    n: number;
  }>`select status, count(*)::int as n from switchyard.deliveries
    group by status order by status`.execute(store.db);
  // The dead one (replayed), its replay and the two later ones, pending: nothing held.
  expect(r.rows).toEqual([
    { status: 'dead', n: 1 },
    { status: 'pending', n: 3 },
  ]);
});
