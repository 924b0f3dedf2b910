import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../storage/db.ts';
import { migrate } from '../storage/migrations.ts';
import { tablesNeedingAnalyze } from '../storage/statistics.ts';
import type { Runtime } from './shared.ts';
import { keepStatistics } from './statistics.ts';

const pgdb = useTestDatabase();
let database: Database;

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 2 });
  await migrate(database.db);
});

afterAll(async () => {
  await database?.close();
});

async function analyzeCount(table: string): Promise<number> {
  const r = await sql<{ n: string }>`select analyze_count + autoanalyze_count as n from pg_stat_user_tables
      where schemaname = 'switchyard' and relname = ${table}`.execute(database.db);
  return Number(r.rows[0]?.n ?? 0);
}

describe('keepStatistics', () => {
  it('analyzes a busy table after a burst of writes, and leaves it alone once analyzed', async () => {
    const rt = { db: database.db } as unknown as Runtime;
    await sql`insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id)
      select 'i', 'appointment', 'v' || g, gen_random_uuid()::text from generate_series(1, 2000) g`.execute(
      database.db,
    );
    // Activity statistics reach pg_stat_user_tables shortly after the commit.
    const deadline = Date.now() + 10_000;
    while (!(await tablesNeedingAnalyze(database.db)).includes('aliases')) {
      if (Date.now() > deadline) throw new Error('aliases never showed as changed');
      await new Promise((r) => setTimeout(r, 100));
    }
    const before = await analyzeCount('aliases');

    const result = await keepStatistics(rt);

    expect(result.busy).toBe(false);
    expect(result.nextDueAt!.getTime()).toBeGreaterThan(Date.now());
    const stats = await sql<{ reltuples: number }>`select reltuples from pg_class
        where oid = 'switchyard.aliases'::regclass`.execute(database.db);
    // The planner now knows the table's size (it was -1, never analyzed, or 0 before).
    expect(Number(stats.rows[0]!.reltuples)).toBe(2000);
    await expect.poll(() => analyzeCount('aliases'), { timeout: 10_000 }).toBeGreaterThan(before);
    expect(await tablesNeedingAnalyze(database.db)).not.toContain('aliases');
  });
});
