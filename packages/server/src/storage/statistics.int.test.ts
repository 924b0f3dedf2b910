import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, newSessionTag, openDatabase, sessionApplicationName } from './db.ts';
import { migrate } from './migrations.ts';
import {
  analyzeTable,
  SAMPLED_STATISTICS_TARGET,
  SAMPLED_TABLES,
  tablesNeedingAnalyze,
} from './statistics.ts';

const pgdb = useTestDatabase();
let database: Database;

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 2 });
  await migrate(database.db);
});

afterAll(async () => {
  await database?.close();
});

/** Waits until the activity statistics of the last commits show (they arrive shortly after). */
async function until(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('the activity statistics never showed the change');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('planner statistics of the traffic-sized tables', () => {
  it('every column of them has the sampled statistics target (a column added later too)', async () => {
    const r = await sql<{ rel: string; column: string; target: number }>`
      select c.relname as rel, a.attname as column, a.attstattarget as target
      from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'switchyard' and c.relname = any(${[...SAMPLED_TABLES]}::text[])
        and a.attnum > 0 and not a.attisdropped`.execute(database.db);
    expect(new Set(r.rows.map((x) => x.rel))).toEqual(new Set(SAMPLED_TABLES));
    expect(r.rows.filter((x) => x.target !== SAMPLED_STATISTICS_TARGET)).toEqual([]);
  });

  it('ANALYZE reads a sample of 3,000 rows of them, not 30,000', async () => {
    await sql`insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id)
      select 'sample', 'appointment', 'v' || g, gen_random_uuid()::text from generate_series(1, 5000) g`.execute(
      database.db,
    );
    const client = new pg.Client({ connectionString: pgdb.url() });
    await client.connect();
    try {
      const notices: string[] = [];
      client.on('notice', (n) => notices.push(n.message ?? ''));
      await client.query('analyze verbose switchyard.aliases');
      // "… containing 5000 live rows and 0 dead rows; 3000 rows in sample, …"
      expect(notices.find((m) => /rows in sample/.test(m))).toMatch(/5000 live rows.*; 3000 rows in sample/);
    } finally {
      await client.end();
    }
  });

  it('a busy table is due for ANALYZE once its size doubled, not when it changed by a fifth', async () => {
    const db = database.db;
    await sql`insert into switchyard.entity_state (instance_id, key, value)
      select 'due', 'k' || g, '{}'::jsonb from generate_series(1, 2000) g`.execute(db);
    await until(async () => (await tablesNeedingAnalyze(db)).includes('entity_state'));
    await sql`analyze switchyard.entity_state`.execute(db);
    await until(async () => !(await tablesNeedingAnalyze(db)).includes('entity_state'));
    // 1,500 more rows: more than a fifth of the table, less than doubling it.
    await sql`insert into switchyard.entity_state (instance_id, key, value)
      select 'due', 'm' || g, '{}'::jsonb from generate_series(1, 1500) g`.execute(db);
    const counted = async () => {
      const r = await sql<{ n: string }>`select n_live_tup as n from pg_stat_user_tables
        where schemaname = 'switchyard' and relname = 'entity_state'`.execute(db);
      return Number(r.rows[0]?.n ?? 0);
    };
    await until(async () => (await counted()) >= 3500);
    expect(await tablesNeedingAnalyze(db)).not.toContain('entity_state');
    await sql`insert into switchyard.entity_state (instance_id, key, value)
      select 'due', 'n' || g, '{}'::jsonb from generate_series(1, 600) g`.execute(db);
    await until(async () => (await tablesNeedingAnalyze(db)).includes('entity_state'));
  });
});

describe('the statistics keeper beside a lock on the table', () => {
  it('skips a busy table whose lock is held (an index build, autovacuum) instead of queueing behind it', async () => {
    const db = database.db;
    await sql`insert into switchyard.entity_state (instance_id, key, value)
      select 'locked', 'k' || g, '{}'::jsonb from generate_series(1, 3000) g`.execute(db);
    await until(async () => (await tablesNeedingAnalyze(db)).includes('entity_state'));
    // What a CREATE INDEX CONCURRENTLY holds for its whole build (and autovacuum while it runs).
    const holder = new pg.Client({ connectionString: pgdb.url() });
    await holder.connect();
    const tag = newSessionTag();
    const analyzer = openDatabase(pgdb.url(), { max: 1, sessionTag: tag });
    try {
      await holder.query('begin');
      await holder.query('lock table switchyard.entity_state in share update exclusive mode');
      const run = analyzeTable(analyzer.db, 'entity_state').then(() => 'done' as const);
      // Either the ANALYZE finishes while the lock is held, or it is seen waiting for it.
      const waiting = async () => {
        const r = await sql<{ n: string }>`select count(*) as n from pg_stat_activity
          where application_name = ${sessionApplicationName(tag)} and wait_event_type = 'Lock'`.execute(db);
        return Number(r.rows[0]?.n) > 0;
      };
      let outcome: 'done' | 'waited' | undefined;
      void run.then((o) => {
        outcome ??= o;
      });
      while (outcome === undefined) {
        if (await waiting()) outcome = 'waited';
        else await new Promise((r) => setTimeout(r, 20));
      }
      expect(outcome).toBe('done');
      // Skipped, not analyzed: still due, and the next pass after the lock is gone counts it.
      expect(await tablesNeedingAnalyze(db)).toContain('entity_state');
      await holder.query('commit');
      await run;
      await analyzeTable(db, 'entity_state');
      await until(async () => !(await tablesNeedingAnalyze(db)).includes('entity_state'));
    } finally {
      await holder.query('rollback').catch(() => {});
      await holder.end();
      await analyzer.close();
    }
  });
});
