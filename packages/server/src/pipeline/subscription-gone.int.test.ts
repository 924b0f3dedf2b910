/**
 * A subscription deleted while a normalize commit fans out to it. The commit's snapshot still holds
 * the subscription, the delete commits before the commit's deliveries are checked against it, and
 * Postgres refuses them (`deliveries_subscription_id_fkey`). That was a crash of the run: its
 * message kept its lease until it ran out (30 s), and every later notification of its ordering key
 * waited that long. Found in gates.int's "matching the booking that follows" (a Docplanner
 * facility's slot-booking normalized while the previous test's afterEach removed its
 * subscriptions: the next three cases waited 25 s for their links). The commit is now run again.
 */
import { randomUUID } from 'node:crypto';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { advisoryLockWaiters, until } from '../storage/locks.test-support.ts';
import { makeHub, push, setupInstance } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
/** The first key of the normalize commit's subject locks (`lockSubjects` in events/store.ts). */
const SUBJECT_LOCK = 0x53595342;
let hub: Hub;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  await setupInstance(hub);
});
afterAll(async () => {
  await hub?.stop();
});

it('normalizes a message whose commit met a subscription deleted meanwhile, without waiting for its lease', async () => {
  for (const id of ['stays', 'gone'])
    await hub.subscriptions.create({
      id,
      url: 'http://127.0.0.1:9/never-reached',
      allowPrivateAddresses: true,
    });
  // The booking's hub id known beforehand, so its event's subject (and the lock the commit takes
  // for it) is known.
  const hubId = randomUUID();
  await sql`insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id)
    values ('acme-1', 'appointment', 'gone-1', ${hubId})`.execute(hub.host.db);
  // Holding the subject's lock stops the commit after its snapshot is taken (it holds both
  // subscriptions) and before it fans out; the delete commits in between.
  const holder = new pg.Client({ connectionString: database.url() });
  await holder.connect();
  try {
    await holder.query('begin');
    await holder.query('select pg_advisory_xact_lock($1::integer, hashtext($2))', [
      SUBJECT_LOCK,
      `appointment/${hubId}`,
    ]);
    const r = await hub.ingest('acme-1', push({ id: 'gone-n1', type: 'created', booking: 'gone-1' }));
    if (!r.ok) throw new Error('ingest failed');
    const messageId = r.stored[0]!;
    await until(async () => (await advisoryLockWaiters(hub.host.db)) === 1);
    await hub.subscriptions.remove('gone');
    await holder.query('commit');
    // The run has ended (its message finished, or dropped by a crash with its lease left to run out).
    await until(() => hub.leaseCounts().inbound.held === 0);
    const message = await hub.inbound.get(messageId);
    expect(message.status).toBe('normalized');
    const fanned = await sql<{
      subscription_id: string;
    }>`select d.subscription_id from switchyard.deliveries d
      join switchyard.events e on e.id = d.event_id where e.inbound_message_id = ${messageId}`.execute(
      hub.host.db,
    );
    expect(fanned.rows.map((d) => d.subscription_id)).toEqual(['stays']);
  } finally {
    await holder.end();
  }
});
