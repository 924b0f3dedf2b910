/**
 * The events list with a time window far back (the dashboard's and `GET /v1/events`'s `since` and
 * `until`) reads the window's neighbourhood, not every event newer than it. Plans come from
 * auto_explain with actual rows, as in commands/list-cost.int.test.ts
 * (storage/explain.test-support.ts).
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase } from '../storage/db.ts';
import {
  type Explained,
  explainEverything,
  type PlanNode,
  planOfStatement,
} from '../storage/explain.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import * as q from './store.ts';

const pgdb = useTestDatabase();
let database: Database;
const explained: Explained[] = [];

/** 100,000 events over 60 days, one every 52 s, in sequence order as the hub stores them. */
const ROWS = 100_000;
const SPAN_MS = 60 * 86_400_000;
const now = Date.now();

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 1 });
  await migrate(database.db);
  await sql`insert into switchyard.events (id, type, source, subject, time, envelope, created_at)
    select gen_random_uuid(), 'appointment.created', 'docplanner/dp', 'appointment/' || (i % 5000),
      now(), '{}'::jsonb, to_timestamp(${now / 1000}::float8 - ${SPAN_MS / 1000}::float8 + i * ${SPAN_MS / 1000 / ROWS}::float8)
    from generate_series(1, ${ROWS}) i`.execute(database.db);
  await sql`analyze switchyard.events`.execute(database.db);
  await explainEverything(database.pool, explained);
}, 120_000);

afterAll(async () => {
  await database?.close();
});

/** The plan of the one statement `run` makes. */
const planOf = (run: () => Promise<unknown>) => planOfStatement(explained, run);

/** Rows the plan read: what its scans returned plus what their filters threw away. */
function read(plan: PlanNode[]): number {
  return plan
    .filter((n) => String(n['Node Type']).includes('Scan'))
    .reduce((sum, n) => sum + (n['Actual Rows'] ?? 0) + (n['Rows Removed by Filter'] ?? 0), 0);
}

/** The same window read by a plain filter, every event looked at: what the list must return. */
async function expected(since: Date, until: Date, limit: number): Promise<string[]> {
  const r = await sql<{ sequence: string }>`select sequence from switchyard.events
    where created_at >= ${since} and created_at < ${until} order by sequence desc limit ${limit}`.execute(
    database.db,
  );
  return r.rows.map((x) => x.sequence);
}

it.each([
  ['a day, 50 days back', 50, 49],
  ['an hour, 30 days back', 30, 30 - 1 / 24],
  ['from 59 days back to 10 days back', 59, 10],
])('a window of %s reads the window, not every newer event', async (_what, fromDays, toDays) => {
  const since = new Date(now - fromDays * 86_400_000);
  const until = new Date(now - toDays * 86_400_000);
  const list = async () =>
    (await q.listEvents(database.db, { since, until, limit: 50, ascending: false })).rows;
  const plan = await planOf(list);
  const rows = await list();
  expect(rows.map((r) => r.sequence)).toEqual(await expected(since, until, 50));
  expect(rows).toHaveLength(50);
  // Before: events_pkey walked backward from the newest event to the window, every newer event
  // read and thrown away (10 days back: 16,717 rows; 50 days back: 81,717).
  expect(read(plan)).toBeLessThan(500);
});

it('every page of a window far back holds what the plain filter finds, and only that', async () => {
  const since = new Date(now - 45 * 86_400_000);
  const until = new Date(now - 44.9 * 86_400_000);
  const all = await expected(since, until, 100_000);
  expect(all.length).toBeGreaterThan(100);
  const paged: string[] = [];
  let before: string | undefined;
  for (;;) {
    const page = await q.listEvents(database.db, {
      since,
      until,
      ...(before ? { beforeSequence: before } : {}),
      limit: 50,
      ascending: false,
    });
    paged.push(...page.rows.map((r) => r.sequence));
    if (page.rows.length < 50) break;
    before = page.rows[page.rows.length - 1]!.sequence;
  }
  expect(paged).toEqual(all);
});

it('a window reaching the newest events, or one bound alone, lists what the plain filter finds', async () => {
  const cases: { since?: Date; until?: Date }[] = [
    { since: new Date(now - 600_000) },
    { until: new Date(now - 20 * 86_400_000) },
    { since: new Date(now - 61 * 86_400_000), until: new Date(now - 59.99 * 86_400_000) },
    { since: new Date(now - 2 * 86_400_000), until: new Date(now + 86_400_000) },
  ];
  for (const c of cases) {
    const { rows } = await q.listEvents(database.db, { ...c, limit: 50, ascending: false });
    expect(rows.map((r) => r.sequence)).toEqual(
      await expected(c.since ?? new Date(0), c.until ?? new Date(now + 365 * 86_400_000), 50),
    );
  }
});
