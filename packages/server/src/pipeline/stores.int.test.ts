import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../storage/db.ts';
import { migrate } from '../storage/migrations.ts';
import { aliasStore, type FreshHubIds, normalizeStateStore, type StateWrites } from './stores.ts';

const pgdb = useTestDatabase();
let database: Database;
let statements = 0;

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 6 });
  await migrate(database.db);
  // Kysely checks a client out per statement: counts the statements the store sends.
  database.pool.on('acquire', () => {
    statements++;
  });
});

afterAll(async () => {
  await database?.close();
});

async function counted<T>(body: () => Promise<T>): Promise<{ value: T; statements: number }> {
  const before = statements;
  const value = await body();
  return { value, statements: statements - before };
}

describe('aliasStore batching', () => {
  it('answers many concurrent hubId calls with few statements and one id per vendor id', async () => {
    const a = aliasStore(database.db, 'inst-a');
    const b = aliasStore(database.db, 'inst-b');
    const ids = Array.from({ length: 60 }, (_, i) => `v${i % 30}`);
    const { value, statements: n } = await counted(() =>
      Promise.all([...ids.map((v) => a.hubId('appointment', v)), b.hubId('appointment', 'v1')]),
    );
    expect(n).toBeLessThan(10);
    for (let i = 0; i < 30; i++) expect(value[i]).toBe(value[i + 30]);
    expect(new Set(value.slice(0, 30)).size).toBe(30);
    // Same vendor id, other instance: its own hub id.
    expect(value[60]).not.toBe(value[1]);
    const stored = await sql<{ hub_id: string }>`
      select hub_id from switchyard.aliases where instance_id = 'inst-a' and vendor_id = 'v7'`.execute(
      database.db,
    );
    expect(stored.rows.map((r) => r.hub_id)).toEqual([value[7]]);
  });

  it('finds existing aliases and misses unknown ones in one batch, without caching a miss', async () => {
    const seed = aliasStore(database.db, 'inst-c');
    const hub = await seed.hubId('slot', 'known');
    const fresh = aliasStore(database.db, 'inst-c');
    const { value } = await counted(() =>
      Promise.all([
        fresh.find('slot', 'known'),
        fresh.find('slot', 'unknown'),
        fresh.find('schedule', 'known'),
      ]),
    );
    expect(value).toEqual([hub, undefined, undefined]);
    // Created by someone else after the miss: the next find sees it.
    await sql`insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id)
              values ('inst-c', 'slot', 'unknown', 'h-other')`.execute(database.db);
    expect(await fresh.find('slot', 'unknown')).toBe('h-other');
  });

  it('lists vendor ids per hub id in creation order for concurrent callers', async () => {
    const s = aliasStore(database.db, 'inst-d');
    const h1 = await s.hubId('appointment', 'first');
    await s.link('appointment', 'second', h1);
    const h2 = await s.hubId('appointment', 'other');
    const [l1, l2, l3, empty] = await Promise.all([
      s.vendorIds('appointment', h1),
      s.vendorIds('appointment', h2),
      s.vendorIds('appointment', h1),
      s.vendorIds('appointment', 'no-such-hub'),
    ]);
    expect(l1).toEqual(['first', 'second']);
    expect(l2).toEqual(['other']);
    expect(l3).toEqual(['first', 'second']);
    // Each caller owns its list.
    l1!.push('x');
    expect(l3).toEqual(['first', 'second']);
    expect(empty).toEqual([]);
  });

  it('agrees on one hub id when two stores race on a new vendor id', async () => {
    const x = aliasStore(database.db, 'inst-e');
    const other = openDatabase(pgdb.url(), { max: 2 });
    try {
      const y = aliasStore(other.db, 'inst-e');
      const [hx, hy] = await Promise.all([x.hubId('appointment', 'race'), y.hubId('appointment', 'race')]);
      expect(hx).toBe(hy);
    } finally {
      await other.close();
    }
  });
});

describe('hub ids a normalization created', () => {
  it('answers their vendor ids and known state without a statement', async () => {
    const fresh: FreshHubIds = new Map();
    const aliases = aliasStore(database.db, 'inst-f', fresh);
    const writes: StateWrites = new Map();
    const state = normalizeStateStore(database.db, 'inst-f', new Map(), writes, fresh);
    const hubId = await aliases.hubId('appointment', 'b1');
    expect(fresh.get(hubId)).toEqual({ entity: 'appointment', vendorId: 'b1' });
    const { value, statements: n } = await counted(() =>
      Promise.all([
        aliases.vendorIds('appointment', hubId),
        aliases.vendorIds('slot', hubId),
        state.get(`known:appointment/${hubId}`),
      ]),
    );
    expect(n).toBe(0);
    expect(value).toEqual([['b1'], [], undefined]);
    // The same answers as the database gives.
    const plain = aliasStore(database.db, 'inst-f');
    expect(await plain.vendorIds('appointment', hubId)).toEqual(['b1']);
    expect(await plain.vendorIds('slot', hubId)).toEqual([]);
    // Its own writes still win.
    await state.set(`known:appointment/${hubId}`, { status: 'booked' });
    expect(await state.get(`known:appointment/${hubId}`)).toEqual({ status: 'booked' });
    // A key naming no fresh id is read from the database.
    await sql`insert into switchyard.entity_state (instance_id, key, value)
              values ('inst-f', 'known:appointment/other', '{"status":"cancelled"}')`.execute(database.db);
    const other = await counted(() => state.get('known:appointment/other'));
    expect(other).toEqual({ value: { status: 'cancelled' }, statements: 1 });
  });

  it('reads vendor ids from the database once a vendor id was linked to a fresh hub id', async () => {
    const fresh: FreshHubIds = new Map();
    const aliases = aliasStore(database.db, 'inst-g', fresh);
    const hubId = await aliases.hubId('appointment', 'gate:1');
    await aliases.link('appointment', 'b2', hubId);
    const { value, statements: n } = await counted(() => aliases.vendorIds('appointment', hubId));
    expect(value).toEqual(['gate:1', 'b2']);
    expect(n).toBe(1);
  });

  it('does not count a hub id that existed, or that another store created first, as fresh', async () => {
    await aliasStore(database.db, 'inst-h').hubId('appointment', 'seen');
    const fresh: FreshHubIds = new Map();
    // Another process's alias store (no shared cache): its hubId finds the stored alias.
    const other = openDatabase(pgdb.url(), { max: 2 });
    try {
      const known = await aliasStore(other.db, 'inst-h', fresh).hubId('appointment', 'seen');
      const x = aliasStore(database.db, 'inst-h', fresh);
      const y = aliasStore(other.db, 'inst-h', fresh);
      const [hx, hy] = await Promise.all([x.hubId('appointment', 'race'), y.hubId('appointment', 'race')]);
      expect(hx).toBe(hy);
      // One of the two inserts won: that store created the id, the other read it.
      expect([...fresh.keys()]).toEqual([hx]);
      expect(fresh.has(known)).toBe(false);
    } finally {
      await other.close();
    }
  });
});

describe('aliasStore.hubIdUnless', () => {
  it('answers a vendor id with its hub id, created unless the other vendor id exists, in one statement', async () => {
    const fresh: FreshHubIds = new Map();
    const aliases = aliasStore(database.db, 'inst-u', fresh);
    const gate = await aliasStore(database.db, 'inst-u').hubId('appointment', 'gate:k1');
    const seen = await aliasStore(database.db, 'inst-u').hubId('appointment', 'b-seen');
    // Another process's store (no shared cache): each answer is the database's.
    const other = openDatabase(pgdb.url(), { max: 2 });
    try {
      const o = aliasStore(other.db, 'inst-u', fresh);
      const value = await Promise.all([
        o.hubIdUnless('appointment', 'b-new', 'gate:none'),
        o.hubIdUnless('appointment', 'b-blocked', 'gate:k1'),
        o.hubIdUnless('appointment', 'b-seen', 'gate:k1'),
      ]);
      const [created, blocked, known] = value;
      expect(blocked).toEqual({ other: gate });
      expect(known).toEqual({ hubId: seen });
      const createdId = (created as { hubId: string }).hubId;
      expect(fresh.get(createdId)).toEqual({ entity: 'appointment', vendorId: 'b-new' });
      // The blocked vendor id was not created; the created one was.
      expect(await aliases.find('appointment', 'b-blocked')).toBeUndefined();
      expect(await aliases.find('appointment', 'b-new')).toBe(createdId);
    } finally {
      await other.close();
    }
    // A vendor id seen first: one statement, where find of both and then hubId took two in a row.
    const first = await counted(() => aliases.hubIdUnless('appointment', 'b-first', 'gate:k2'));
    expect(first.statements).toBe(1);
    expect(first.value).toEqual({
      hubId: await aliasStore(database.db, 'inst-u').find('appointment', 'b-first'),
    });
    // Answered from the cache next time; hubId agrees.
    const again = await counted(() => aliases.hubIdUnless('appointment', 'b-first', 'gate:k2'));
    expect(again).toEqual({ value: first.value, statements: 0 });
    // Mixed in one batch with a plain hubId of the same vendor id: one hub id.
    const [plain, unless] = await Promise.all([
      aliases.hubId('appointment', 'b-mixed'),
      aliasStore(database.db, 'inst-u').hubIdUnless('appointment', 'b-mixed', 'gate:k1'),
    ]);
    expect(unless).toEqual({ hubId: plain });
  });
});
