/**
 * The pull feed and transactions that commit out of sequence order. An event's sequence is drawn
 * when it is inserted and becomes visible at commit; a transaction holding sequence 7 may commit
 * after one holding 8. A feed that served 8 then moved its reader's cursor past 7 for good (the
 * reader acknowledges what it read). Here a second connection draws a sequence inside an open
 * transaction, as a slow event-storing transaction does, while an event after it commits.
 */
import { useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FEED_COMMIT_WINDOW_S, sequenceAttribute } from '../events/store.ts';
import { eventually, makeHub, push, setupInstance } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
let hub: Hub;
let client: pg.Client;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  await setupInstance(hub);
  client = new pg.Client({ connectionString: database.url() });
  await client.connect();
});
afterAll(async () => {
  await client?.end();
  await hub?.stop();
});

async function send(id: string) {
  const r = await hub.ingest('acme-1', push({ id, type: 'created', booking: id }));
  if (!r.ok) throw new Error('ingest failed');
  return eventually(async () => {
    const m = await hub.inbound.get(r.stored[0]!);
    return m.status === 'normalized' ? m.events[0]! : undefined;
  });
}

it('serves nothing past a sequence still held by an open transaction, and serves it in order once it commits', async () => {
  const { subscription } = await hub.subscriptions.create({ kind: 'pull' });
  const first = await send('horizon-1');
  const read = await hub.feed.poll(subscription.id);
  expect(read.events.map((e) => e.id)).toEqual([first.id]);
  await hub.feed.ack(subscription.id, read.nextCursor);

  // A transaction draws the next sequence and stays open; an event after it commits meanwhile.
  await client.query('begin');
  const held = (
    await client.query<{ s: string }>(`select nextval('switchyard.events_sequence_seq')::text as s`)
  ).rows[0]!.s;
  const later = await send('horizon-2');
  expect(BigInt(later.sequence)).toBeGreaterThan(BigInt(held));
  const waiting = await hub.feed.poll(subscription.id);
  expect(waiting.events).toEqual([]);
  expect(waiting.nextCursor).toBe(read.nextCursor);

  // It commits its event with that sequence: the feed serves both, in sequence order.
  const { event } = await hub.events.get(first.id);
  await client.query(
    `insert into switchyard.events (sequence, id, type, source, subject, time, envelope)
     values ($1, gen_random_uuid(), 'appointment.created', $2, 'appointment/horizon-held', now(), $3)`,
    [held, event.source, JSON.stringify({ ...event, id: 'horizon-held' })],
  );
  await client.query('commit');
  const both = await hub.feed.poll(subscription.id);
  expect(both.events.map((e) => e.sequence)).toEqual([sequenceAttribute(held), later.sequence]);
});

it('serves past a sequence that never commits once the event after it is older than the commit window', async () => {
  const { subscription } = await hub.subscriptions.create({ kind: 'pull' });
  await client.query('begin');
  await client.query(`select nextval('switchyard.events_sequence_seq')`);
  await client.query('rollback');
  const after = await send('horizon-3');
  expect((await hub.feed.poll(subscription.id)).events.map((e) => e.id)).not.toContain(after.id);
  // As if the window had passed (FEED_COMMIT_WINDOW_S): the gap is a rollback's, for good.
  await client.query(`update switchyard.events set created_at = now() - interval '1 minute' where id = $1`, [
    after.id,
  ]);
  expect((await hub.feed.poll(subscription.id)).events.map((e) => e.id)).toContain(after.id);
});

it('counts the commit window from when an event was stored, not from when its transaction began', async () => {
  const { subscription } = await hub.subscriptions.create({ kind: 'pull' });
  const first = await send('horizon-4');
  const read = await hub.feed.poll(subscription.id);
  expect(read.events.map((e) => e.id)).toContain(first.id);
  await hub.feed.ack(subscription.id, read.nextCursor);
  const { event } = await hub.events.get(first.id);
  const insert = (c: pg.Client, id: string, sequence?: string) =>
    c.query(
      sequence === undefined
        ? `insert into switchyard.events (id, type, source, subject, time, envelope)
           values (gen_random_uuid(), 'appointment.created', $1, $2, now(), $3) returning sequence::text as s`
        : `insert into switchyard.events (sequence, id, type, source, subject, time, envelope)
           values ($4, gen_random_uuid(), 'appointment.created', $1, $2, now(), $3) returning sequence::text as s`,
      [event.source, `appointment/${id}`, JSON.stringify({ ...event, id }), ...(sequence ? [sequence] : [])],
    );

  // A transaction that began longer ago than the window (a commit that waited for its subjects'
  // locks) stores an event after a sequence another transaction still holds.
  const slow = new pg.Client({ connectionString: database.url() });
  await slow.connect();
  try {
    await slow.query('begin');
    await slow.query('select now()'); // its now() is fixed from here
    await client.query('begin');
    const held = (
      await client.query<{ s: string }>(`select nextval('switchyard.events_sequence_seq')::text as s`)
    ).rows[0]!.s;
    await slow.query(`select pg_sleep(${FEED_COMMIT_WINDOW_S} + 0.3)`);
    const later = (await insert(slow, 'horizon-late')).rows[0]!.s;
    await slow.query('commit');
    expect(BigInt(later)).toBeGreaterThan(BigInt(held));
    // Just stored: not served past the held sequence (served on the previous code, whose clock
    // started with the transaction).
    expect((await hub.feed.poll(subscription.id)).events).toEqual([]);
    await insert(client, 'horizon-held-2', held);
    await client.query('commit');
    expect((await hub.feed.poll(subscription.id)).events.map((e) => e.sequence)).toEqual(
      [held, later].map(sequenceAttribute),
    );
  } finally {
    await slow.end();
  }
});

it('holds an event after a sequence a writing transaction still holds past the commit window, until it commits', async () => {
  // A transaction that stored an event and waited longer than the window before its commit (a lock
  // on a subscription row, pg-boss's job table, a stalled disk: 8 s in the fault-injection audit).
  const { subscription } = await hub.subscriptions.create({ kind: 'pull' });
  const first = await send('horizon-5');
  const read = await hub.feed.poll(subscription.id);
  expect(read.events.map((e) => e.id)).toContain(first.id);
  await hub.feed.ack(subscription.id, read.nextCursor);
  const { event } = await hub.events.get(first.id);
  await client.query('begin');
  const held = (
    await client.query<{ s: string }>(
      `insert into switchyard.events (id, type, source, subject, time, envelope)
       values (gen_random_uuid(), 'appointment.created', $1, 'appointment/horizon-writer', now(), $2)
       returning sequence::text as s`,
      [event.source, JSON.stringify({ ...event, id: 'horizon-writer' })],
    )
  ).rows[0]!.s;
  const later = await send('horizon-6');
  expect(BigInt(later.sequence)).toBeGreaterThan(BigInt(held));
  await new Promise((resolve) => setTimeout(resolve, (FEED_COMMIT_WINDOW_S + 0.5) * 1000));
  // Past the window, and still not served past the held sequence (the previous code served it,
  // and the held event was never read).
  const waiting = await hub.feed.poll(subscription.id);
  expect(waiting.events).toEqual([]);
  await client.query('commit');
  expect((await hub.feed.poll(subscription.id)).events.map((e) => e.sequence)).toEqual([
    sequenceAttribute(held),
    later.sequence,
  ]);
}, 30_000);

it('a filtered reader moves on past the events it is not served, never past a sequence still held', async () => {
  // Its nextCursor stayed at its position while others' events went by: its acknowledged position
  // never passed them, so retention kept every event after it (up to retention.unreadEvents) and
  // switchyard_feed_oldest_unread_age_seconds grew for a reader that had read all it could (h3 audit).
  const { subscription } = await hub.subscriptions.create({ kind: 'pull', eventTypes: ['document.*'] });
  const before = await hub.feed.poll(subscription.id);
  const other = await send('filtered-1');
  const passed = await hub.feed.poll(subscription.id, { after: before.nextCursor });
  expect(passed).toEqual({ events: [], nextCursor: other.sequence.replace(/^0+/, '') });
  await hub.feed.ack(subscription.id, passed.nextCursor);

  // A sequence held by an open transaction, an event not served after it: the cursor stops before
  // the held one, which is then served once it commits.
  await client.query('begin');
  const held = (
    await client.query<{ s: string }>(`select nextval('switchyard.events_sequence_seq')::text as s`)
  ).rows[0]!.s;
  const later = await send('filtered-2');
  expect(BigInt(later.sequence)).toBeGreaterThan(BigInt(held));
  const waiting = await hub.feed.poll(subscription.id);
  expect(waiting.events).toEqual([]);
  expect(BigInt(waiting.nextCursor)).toBeLessThan(BigInt(held));
  const { event } = await hub.events.get(other.id);
  await client.query(
    `insert into switchyard.events (sequence, id, type, source, subject, time, envelope)
     values ($1, gen_random_uuid(), 'document.created', $2, 'document/filtered-held', now(), $3)`,
    [held, event.source, JSON.stringify({ ...event, id: 'filtered-held', type: 'document.created' })],
  );
  await client.query('commit');
  const served = await hub.feed.poll(subscription.id, { after: waiting.nextCursor });
  expect(served.events.map((e) => e.sequence)).toEqual([sequenceAttribute(held)]);
  // A page that is not full goes on past the event after it, which it is not served.
  expect(served.nextCursor).toBe(later.sequence.replace(/^0+/, ''));
});
