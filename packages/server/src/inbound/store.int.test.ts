/**
 * What `storeInbound` stores is what it was given: every raw body byte for byte (they are the
 * vendor's signed bytes, checked again on a replay), each at its own place in a batch of several
 * bodies; the JSON columns with their NULLs (`meta` and `headers` SQL NULL when absent, a payload
 * of JSON null kept as jsonb null).
 */
import { randomUUID } from 'node:crypto';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase } from '../storage/db.ts';
import { migrate } from '../storage/migrations.ts';
import { newInbound } from './fixtures.test-support.ts';
import { getInboundBody, type NewBody, type NewInbound, queueBefore, storeInbound } from './store.ts';

const pgdb = useTestDatabase();
let database: Database;

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 2, planStable: 1 });
  await migrate(database.db);
  await sql`insert into switchyard.connector_instances (id, connector, mode, settings_sealed)
    values ('inst-1', 'test', 'push', 'x'), ('inst-2', 'test', 'push', 'x')`.execute(database.db);
});

afterAll(async () => {
  await database?.close();
});

function message(bodyId: string | null, over: Partial<NewInbound> = {}): NewInbound {
  return newInbound({ bodyId, ...over });
}

it('stores each body of a batch byte for byte, whatever its bytes and length', async () => {
  const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const bodies: NewBody[] = [
    every,
    Buffer.alloc(0),
    Buffer.from('{"a":"\\"quoted\\" \\\\ back, zażółć"}'),
    Buffer.from([0xff, 0xfe, 0x00, 0x5c, 0x78, 0x22, 0x7b, 0x7d]), // not UTF-8; `\x"{}` inside
    Buffer.concat([every, every, every]).subarray(17, 700), // a view into a larger buffer
  ].map((body) => ({ id: randomUUID(), body, receivedAt: new Date() }));
  const items = bodies.map((b) => message(b.id));
  const stored = await storeInbound(database.db, items, bodies, []);
  expect(stored).toHaveLength(bodies.length);
  for (const b of bodies) {
    const back = await getInboundBody(database.db, b.id);
    expect(back?.equals(b.body), `body of ${b.body.length} bytes`).toBe(true);
  }
});

it('stores a body only when one of its messages is new, the others cut out at their places', async () => {
  const first = message(null);
  const body: NewBody = { id: randomUUID(), body: Buffer.from('again'), receivedAt: new Date() };
  await storeInbound(database.db, [{ ...first, bodyId: body.id }], [body], []);
  // The vendor's retry of the first request beside a new request, in one batch.
  const retry: NewBody = { id: randomUUID(), body: Buffer.from('again'), receivedAt: new Date() };
  const other: NewBody = { id: randomUUID(), body: Buffer.from('other'), receivedAt: new Date() };
  const fresh = message(other.id);
  const stored = await storeInbound(
    database.db,
    [{ ...first, id: randomUUID(), bodyId: retry.id }, fresh],
    [retry, other],
    [],
  );
  expect(stored.map((s) => s.id)).toEqual([fresh.id]);
  expect(await getInboundBody(database.db, retry.id)).toBeUndefined();
  expect((await getInboundBody(database.db, other.id))?.toString()).toBe('other');
});

it('keeps SQL NULL and jsonb null apart in the JSON columns', async () => {
  const absent = message(null);
  const given = message(null, {
    payload: null,
    meta: { note: 'zażółć "gęślą" \\ jaźń', list: [1, null] },
    headers: { 'x-sig': 'v1,"a\\b"' },
  });
  await storeInbound(database.db, [absent, given], [], []);
  const r = await sql<{
    id: string;
    payload: string;
    meta: string | null;
    headers: string | null;
  }>`select id, payload::text, meta::text, headers::text from switchyard.inbound_messages
      where id in (${absent.id}, ${given.id})`.execute(database.db);
  const byId = new Map(r.rows.map((row) => [row.id, row]));
  expect(byId.get(absent.id)).toMatchObject({ payload: '{}', meta: null, headers: null });
  const g = byId.get(given.id)!;
  expect(g.payload).toBe('null');
  expect(JSON.parse(g.meta!)).toEqual(given.meta);
  expect(JSON.parse(g.headers!)).toEqual(given.headers);
});

it("queueBefore moves only its own instance's waiting messages of the batch's keys, never another's", async () => {
  // Another instance's vendor chooses its ordering keys and pushes meanwhile: the same key at
  // inst-2 must keep its place, as must inst-1's other keys and what is being normalized.
  const heldAt = new Date(Date.now() - 60_000);
  const later = new Date(Date.now() - 30_000);
  const key = 'booking-1';
  const mine = message(null, { instanceId: 'inst-1', orderingKey: key, receivedAt: later });
  const leased = message(null, { instanceId: 'inst-1', orderingKey: key, receivedAt: later });
  const otherKey = message(null, { instanceId: 'inst-1', orderingKey: 'booking-2', receivedAt: later });
  const theirs = message(null, { instanceId: 'inst-2', orderingKey: key, receivedAt: later });
  await storeInbound(database.db, [mine, leased, otherKey, theirs], [], []);
  await sql`update switchyard.inbound_messages set locked_until = now() + interval '1 minute'
    where id = ${leased.id}::uuid`.execute(database.db);
  const seqs = async () =>
    new Map(
      (
        await sql<{ id: string; seq: string }>`select id, seq::text from switchyard.inbound_messages
          where id = any(${[mine.id, leased.id, otherKey.id, theirs.id]}::uuid[])`.execute(database.db)
      ).rows.map((r) => [r.id, BigInt(r.seq)]),
    );
  const before = await seqs();
  const held = message(null, { instanceId: 'inst-1', orderingKey: key, receivedAt: heldAt });
  const moved = await database.db.transaction().execute(async (trx) => {
    await storeInbound(trx, [held], [], ['inst-1']);
    return queueBefore(trx, 'inst-1', [held]);
  });
  const after = await seqs();
  expect(moved).toBe(1);
  expect(after.get(mine.id)! > before.get(mine.id)!).toBe(true);
  for (const id of [leased.id, otherKey.id, theirs.id]) expect(after.get(id)).toBe(before.get(id));
});
