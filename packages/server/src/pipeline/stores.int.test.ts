import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../storage/db.ts';
import { migrate } from '../storage/migrations.ts';
import { aliasStore } from './stores.ts';

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
