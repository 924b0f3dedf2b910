/**
 * `DELETE /v1/subscriptions/{id}` beside the deliver worker's lease renewal. The delete's cascade
 * took the subscription's deliveries in the order it scanned them; the renewal (and the attempt
 * record, the release) takes its leases in id order, in batches across subscriptions
 * (`inLockOrder`, storage/queues.ts). Holding one the other needed, one of the two was aborted
 * after `deadlock_timeout` (40P01): the renewal (every lease of its batch unrenewed for a pass), or
 * the delete, which `retryingDeadlock` runs again (a 503, SY_STORAGE_UNAVAILABLE, without it, and
 * after three deadlocked tries). The delete now takes the in-flight deliveries in id order after
 * the subscription's row and before its cascade (`deleteSubscription`, subscriptions/store.ts).
 * Each test holds a row in a third session, as a statement in flight does, until both wait.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { renewDeliveryLeases } from '../deliveries/store.ts';
import { call, listen, makeHub } from '../http/app.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { lockWaiters, lockWaitersRunning, until } from '../storage/locks.test-support.ts';

const database = useTestDatabase();
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  // No workers started: the leases below are this test's, renewed as the lease keeper would.
  hub = await makeHub(database.url());
  server = await listen(hub);
});
afterAll(async () => {
  await server?.close();
  await hub?.stop();
});

/** Ids in ascending order: the renewal locks A, then M, then B. */
const A = '00000000-0000-4000-8000-00000000000a';
const M = '00000000-0000-4000-8000-00000000000b';
const B = '00000000-0000-4000-8000-00000000000c';

/** The lease tokens of A, M and B. */
let token: Map<string, string>;

beforeEach(async () => {
  const db = hub.host.db;
  await sql`delete from switchyard.subscriptions`.execute(db);
  await sql`insert into switchyard.subscriptions (id, kind, url) values
    ('doomed', 'webhook', 'https://example.test/doomed'), ('other', 'webhook', 'https://example.test/other')`.execute(
    db,
  );
  // In flight under this process's leases: A and B of the subscription deleted, B stored after A
  // (the cascade's scan, newest first, meets B first), M of another subscription.
  const leased = await sql<{ id: string; lock_token: string }>`with ev as (
      insert into switchyard.events (id, type, source, subject, time, envelope)
      select gen_random_uuid(), 'appointment.updated', 'test', 'appointment/' || i, now(), '{}'::jsonb
      from generate_series(1, 3) as i returning id, sequence, subject)
    insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status, attempts,
      lock_token, locked_until)
    select v.id, v.sub, ev.id, ev.sequence, ev.subject, 'in_flight', 1, gen_random_uuid(), now() + interval '1 minute'
    from ev join (values ('appointment/1', ${A}::uuid, 'doomed'), ('appointment/2', ${B}::uuid, 'doomed'),
      ('appointment/3', ${M}::uuid, 'other')) as v(subject, id, sub) on v.subject = ev.subject
    order by ev.sequence returning id, lock_token`.execute(db);
  token = new Map(leased.rows.map((r) => [r.id, r.lock_token]));
});

/** The renewal of the three leases, given in no order: the renewed ids, sorted, or the SQLSTATE it failed with. */
function renewal(): { done: () => boolean; result: Promise<string[] | string> } {
  let settled = false;
  const lease = (id: string) => ({ id, lockToken: token.get(id)!, leaseMs: 60_000 });
  const result = renewDeliveryLeases(hub.host.db, [lease(B), lease(M), lease(A)])
    .then(
      (renewed) => [...renewed].sort(),
      (error: { code?: string }) => String(error.code ?? error),
    )
    .finally(() => {
      settled = true;
    });
  return { done: () => settled, result };
}

/** Runs `inside` with delivery `id` locked in another session (`mode`), then lets it go. */
async function holding<T>(
  id: string,
  mode: 'for share' | 'for key share',
  inside: () => Promise<T>,
): Promise<T> {
  const holder = new pg.Client({ connectionString: database.url() });
  await holder.connect();
  try {
    await holder.query('begin');
    await holder.query(`select 1 from switchyard.deliveries where id = $1 ${mode}`, [id]);
    const result = await inside();
    await holder.query('commit');
    return result;
  } finally {
    await holder.end();
  }
}

const renewalWaits = async () =>
  (await lockWaitersRunning(hub.host.db, '%set locked_until = greatest%')) === 1;

async function left(): Promise<string[]> {
  const r = await sql<{ id: string }>`select id from switchyard.deliveries order by id`.execute(hub.host.db);
  return r.rows.map((x) => x.id);
}

it('deletes a subscription beside a renewal of its leases without aborting the renewal', async () => {
  // A is key-shared elsewhere (as a row being referenced): the renewal may update it, the delete waits.
  const [renewing, deleting] = await holding(A, 'for key share', async () => {
    const deleting = call(server.base, 'DELETE', '/v1/subscriptions/doomed');
    // Before the fix its cascade had taken B by now; either way it waits for A.
    await until(async () => (await lockWaiters(hub.host.db)) === 1);
    const renewing = renewal();
    // It waited for B, the delete's (before the fix), or went through.
    await until(async () => renewing.done() || (await renewalWaits()));
    return [renewing, deleting] as const;
  });
  // Before the fix: the renewal had waited first, and Postgres aborted it (40P01).
  expect(await renewing.result).toEqual([A, M, B]);
  expect((await deleting).status).toBe(204);
  expect(await left()).toEqual([M]);
});

it("answers 204 to a delete beside a renewal held up on another subscription's lease", async () => {
  // M is held elsewhere (its attempt's record in flight): the renewal takes A, then waits for M.
  const [renewing, deleting] = await holding(M, 'for share', async () => {
    const renewing = renewal();
    await until(renewalWaits);
    // Before the fix the cascade took B, then waited for A; now it waits for A before any delivery.
    const deleting = call(server.base, 'DELETE', '/v1/subscriptions/doomed');
    await until(async () => (await lockWaiters(hub.host.db)) === 2);
    return [renewing, deleting] as const;
  });
  // Before the fix the delete, which waited first, was aborted and run again a second later
  // (retryingDeadlock); without that run, a 503.
  expect(await renewing.result).toEqual([A, M, B]);
  expect((await deleting).status).toBe(204);
  expect(await left()).toEqual([M]);
  expect((await call(server.base, 'GET', '/v1/subscriptions/doomed')).status).toBe(404);
});
