/**
 * The attempt-latency histogram's read of the attempt log and records that commit out of id order.
 * An attempt's id is drawn when its record is inserted and becomes visible at commit; a record of
 * one worker holding id 7 may commit after another's holding 8. A read that took 8 and continued
 * after it skipped 7 for good. Here a second connection draws an id inside an open transaction, as
 * a slow attempt-record statement does, while a later record commits.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually, makeHub, push, setupInstance } from '../pipeline/fixtures.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { countAttemptsSince, maxAttemptId } from './hub-stats.ts';

const database = useTestDatabase();
let hub: Hub;
let client: pg.Client;
let deliveryId: string;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  await setupInstance(hub);
  client = new pg.Client({ connectionString: database.url() });
  await client.connect();
  // One stored event and a delivery of it for the attempt records to name (a pull subscription's
  // feed never delivers, so the records below are the only attempts).
  const { subscription } = await hub.subscriptions.create({ kind: 'pull' });
  const r = await hub.ingest('acme-1', push({ id: 'stats-1', type: 'created', booking: 'stats-1' }));
  if (!r.ok) throw new Error('ingest failed');
  const event = await eventually(async () => {
    const m = await hub.inbound.get(r.stored[0]!);
    return m.status === 'normalized' ? m.events[0]! : undefined;
  });
  deliveryId = crypto.randomUUID();
  await sql`insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status)
    values (${deliveryId}, ${subscription.id}, ${event.id}, ${event.sequence}, ${event.subject}, 'succeeded')`.execute(
    hub.host.db,
  );
});
afterAll(async () => {
  await client?.end();
  await hub?.stop();
});

/** Writes one attempt record on `c` (an id drawn from the sequence unless given) and returns its id. */
async function record(c: pg.Client, id: string | null, latencyMs: number): Promise<string> {
  const r = await c.query<{ id: string }>(
    `insert into switchyard.delivery_attempts (id, delivery_id, attempt, started_at, latency_ms, outcome)
     values (coalesce($1::bigint, nextval('switchyard.delivery_attempts_id_seq')), $2, 1,
             now() - make_interval(secs => $3 / 1000.0), $3, 'succeeded') returning id::text`,
    [id, deliveryId, latencyMs],
  );
  return r.rows[0]!.id;
}

it('reads nothing past an id still held by an open transaction, and reads it once it commits', async () => {
  const db = hub.host.db;
  const after = await maxAttemptId(db);
  await client.query('begin');
  const held = (
    await client.query<{ id: string }>(`select nextval('switchyard.delivery_attempts_id_seq')::text as id`)
  ).rows[0]!.id;
  // A later record commits meanwhile (another worker's).
  const other = new pg.Client({ connectionString: database.url() });
  await other.connect();
  try {
    const later = await record(other, null, 12);
    expect(BigInt(later)).toBeGreaterThan(BigInt(held));
    const waiting = await countAttemptsSince(db, after);
    expect(waiting).toEqual({ attempts: [], last: after });

    // It commits: both are read, in id order, and the cursor moves past both.
    await record(client, held, 34);
    await client.query('commit');
    const both = await countAttemptsSince(db, after);
    expect(both.attempts.map((a) => a.latencyMs)).toEqual([34, 12]);
    expect(both.last).toBe(later);
  } finally {
    await other.end();
  }
});

it('reads past an id that never commits once the record after it is older than the commit window', async () => {
  const db = hub.host.db;
  const after = await maxAttemptId(db);
  await client.query('begin');
  await client.query(`select nextval('switchyard.delivery_attempts_id_seq')`);
  await client.query('rollback');
  const fresh = await record(client, null, 5);
  expect(await countAttemptsSince(db, after)).toEqual({ attempts: [], last: after });
  // A record written a minute ago (its attempt ended then): the gap is a rollback's, for good.
  await client.query(
    `update switchyard.delivery_attempts set started_at = now() - interval '1 minute' where id = $1`,
    [fresh],
  );
  const read = await countAttemptsSince(db, after);
  expect([read.attempts.length, read.last]).toEqual([1, fresh]);
});
