/**
 * A read of a pull subscription's feed looks at a bounded number of events (EVENT_LIST_SCAN), as
 * the events list does: a subscription filtered to a type that none of millions of events has,
 * first read from 0, looked through every one of them in one statement (242–327 ms at 2 million
 * events), then jumped to the head. Its `nextCursor` still goes on past the events it looked at
 * (docs/api.md, "Subscriber pull feed"). Plans come from auto_explain with actual rows, as in
 * events/source-list-cost.int.test.ts.
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
import type { SubscriptionRow } from '../storage/subscription-row.ts';
import * as q from './store.ts';

const pgdb = useTestDatabase();
let database: Database;
const explained: Explained[] = [];

/** 35,000 events an hour old, the last one of a type the others are not. */
const ROWS = 35_000;

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 1 });
  await migrate(database.db);
  await sql`insert into switchyard.events (id, type, source, subject, time, envelope, created_at)
    select gen_random_uuid(), case when i = ${ROWS} then 'document.created' else 'appointment.created' end,
      'inst/' || (i % 40), 'appointment/' || (i % 5000), now(), '{}'::jsonb, now() - interval '1 hour'
    from generate_series(1, ${ROWS}) i`.execute(database.db);
  await sql`vacuum analyze switchyard.events`.execute(database.db);
  await explainEverything(database.pool, explained);
}, 120_000);

afterAll(async () => {
  await database?.close();
});

/** Rows the plan read of the events table: what its scans returned plus what their filters threw away, every loop. */
function read(plan: PlanNode[]): number {
  return plan
    .filter((n) => n['Relation Name'] === 'events')
    .reduce(
      (sum, n) =>
        sum + ((n['Actual Rows'] ?? 0) + (n['Rows Removed by Filter'] ?? 0)) * (n['Actual Loops'] ?? 1),
      0,
    );
}

const documents = { event_types: ['document.*'], sources: null } as unknown as SubscriptionRow;

it('a filtered subscription read from 0 looks at a bounded number of events, and says how far it looked', async () => {
  const plan = await planOfStatement(explained, () => q.pollFeed(database.db, documents, '0', 100));
  // Before: every event after 0 read and thrown away (35,000) to answer nothing, in one statement.
  // Now the bound's index entries, then the events up to it.
  expect(read(plan)).toBeLessThanOrEqual(2 * q.EVENT_LIST_SCAN + 10);
  const page = await q.pollFeed(database.db, documents, '0', 100);
  expect(page.rows).toEqual([]);
  expect(page.stopped).toBe(true);
  const scanned = await sql<{ s: string }>`select sequence::text as s from switchyard.events
    order by sequence offset ${q.EVENT_LIST_SCAN - 1} limit 1`.execute(database.db);
  expect(page.through).toBe(scanned.rows[0]!.s);
});

it('reading on from each page’s through finds the one matching event and ends at the head', async () => {
  let after = '0';
  let pages = 0;
  const found: string[] = [];
  for (;;) {
    const page = await q.pollFeed(database.db, documents, after, 100);
    pages += 1;
    found.push(...page.rows.map((r) => r.type));
    if (page.through === null) break;
    after = page.through;
    if (!page.stopped) break;
  }
  expect(found).toEqual(['document.created']);
  expect(pages).toBeLessThanOrEqual(Math.ceil(ROWS / q.EVENT_LIST_SCAN) + 1);
  const head = await sql<{ s: string }>`select max(sequence)::text as s from switchyard.events`.execute(
    database.db,
  );
  expect(after).toBe(head.rows[0]!.s);
});

it('an unfiltered subscription is served its page as before', async () => {
  const all = { event_types: null, sources: null } as unknown as SubscriptionRow;
  const page = await q.pollFeed(database.db, all, '0', 100);
  expect(page.rows).toHaveLength(100);
  expect(page.rows[99]!.sequence).toBe(page.rows[0]!.sequence.replace(/\d+$/, (d) => String(Number(d) + 99)));
});
