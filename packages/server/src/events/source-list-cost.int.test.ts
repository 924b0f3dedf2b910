/**
 * The events list of one instance (`GET /v1/events?source=`) reads that instance's events, not
 * every newer event of the others, however its events are spread. The data is skewed as a hub's
 * is: one instance whose events are all old (it stopped sending), many sending now. Plans come
 * from auto_explain with actual rows, as in events/list-cost.int.test.ts
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
import { eventsApi } from './api.ts';
import * as q from './store.ts';

const pgdb = useTestDatabase();
let database: Database;
const explained: Explained[] = [];

/** 100,000 events over 60 days: the first 5,000 from `old/clinic`, the rest from 40 others. */
const ROWS = 100_000;
const OLD = 5_000;
const SPAN_MS = 60 * 86_400_000;
const now = Date.now();
const at = (i: number) => new Date(now - SPAN_MS + (i * SPAN_MS) / ROWS);

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 1 });
  await migrate(database.db);
  await sql`insert into switchyard.events (id, type, source, subject, time, envelope, created_at)
    select gen_random_uuid(), case when i % 3 = 0 then 'patient.updated' else 'appointment.created' end,
      case when i <= ${OLD} then 'old/clinic' else 'inst/' || (i % 40) end, 'appointment/' || (i % 5000),
      now(), '{}'::jsonb, to_timestamp(${now / 1000}::float8 - ${SPAN_MS / 1000}::float8 + i * ${SPAN_MS / 1000 / ROWS}::float8)
    from generate_series(1, ${ROWS}) i`.execute(database.db);
  await sql`vacuum analyze switchyard.events`.execute(database.db);
  await explainEverything(database.pool, explained);
}, 120_000);

afterAll(async () => {
  await database?.close();
});

/** The plan of the one statement `run` makes. */
const planOf = (run: () => Promise<unknown>) => planOfStatement(explained, run);

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

type Filter = Omit<Parameters<typeof q.listEvents>[1], 'limit' | 'ascending'>;

/** What the list must return: the same filters as a plain scan of every event. */
async function expected(f: Filter, limit: number): Promise<string[]> {
  const r = await sql<{ sequence: string }>`select sequence from switchyard.events
    where (${f.source ?? null}::text is null or source = ${f.source ?? null})
      and (${f.subject ?? null}::text is null or subject = ${f.subject ?? null})
      and (${f.types?.[0] ?? null}::text is null or type = ${f.types?.[0] ?? null} or split_part(type, '.', 1) || '.*' = ${f.types?.[0] ?? null})
      and (${f.since ?? null}::timestamptz is null or created_at >= ${f.since ?? null})
      and (${f.until ?? null}::timestamptz is null or created_at < ${f.until ?? null})
      and (${f.beforeSequence ?? null}::bigint is null or sequence < ${f.beforeSequence ?? null}::bigint)
    order by sequence desc limit ${limit}`.execute(database.db);
  return r.rows.map((x) => x.sequence);
}

it.each<[string, Filter, number]>([
  ['an instance whose events are all old', { source: 'old/clinic' }, 50],
  ['an instance with no events', { source: 'gone/clinic' }, 0],
  ['an old instance, one type', { source: 'old/clinic', types: ['patient.updated'] }, 50],
  ['an old instance, a type family', { source: 'old/clinic', types: ['appointment.*'] }, 50],
  ['an old instance, a type it has no event of', { source: 'old/clinic', types: ['document.created'] }, 0],
  ['an old instance, after a cursor', { source: 'old/clinic', beforeSequence: '3000' }, 50],
  ['an old instance, a window', { source: 'old/clinic', since: at(1000), until: at(2000) }, 50],
  ['an old instance, since a day', { source: 'old/clinic', since: at(4000) }, 50],
  ['an old instance, until a day', { source: 'old/clinic', until: at(4000) }, 50],
  ['an instance sending now, a window with none of its events', { source: 'inst/7', until: at(OLD) }, 0],
  ['an old instance and a subject', { source: 'old/clinic', subject: 'appointment/42' }, 1],
])('%s: the list reads the instance’s events, not the others’', async (_what, f, found) => {
  const list = async () => (await q.listEvents(database.db, { ...f, limit: 50, ascending: false })).rows;
  const plan = await planOf(list);
  const rows = await list();
  expect(rows.map((r) => r.sequence)).toEqual(await expected(f, 50));
  expect(rows).toHaveLength(found);
  // Before: events_pkey walked backward from the newest event, every newer event of the other
  // instances read and thrown away (95,000 rows for old/clinic, 100,000 for an instance without events).
  // At most each of its events twice (its index entry, then the row by key), when none matches.
  expect(read(plan)).toBeLessThanOrEqual(2 * OLD);
  if (!f.subject) expect(plan.some((n) => n['Index Name'] === 'events_source_idx')).toBe(true);
});

it('a type with no events looks at a bounded number of events per page, and its pages end', async () => {
  const f = { types: ['document.*'], limit: 50, ascending: false };
  const plan = await planOf(() => q.listEvents(database.db, f));
  // Before: every event of the table read and thrown away (100,000 rows) to answer nothing.
  expect(read(plan)).toBeLessThanOrEqual(q.EVENT_LIST_SCAN + 10);
  let page = await q.listEvents(database.db, f);
  let pages = 1;
  while (page.scannedTo !== null) {
    expect(page.rows).toEqual([]);
    page = await q.listEvents(database.db, { ...f, beforeSequence: page.scannedTo });
    pages += 1;
  }
  expect(page.rows).toEqual([]);
  expect(pages).toBeLessThanOrEqual(ROWS / q.EVENT_LIST_SCAN + 1);
});

it.each<[string, Filter, number]>([
  ['a type, all instances', { types: ['patient.*'] }, 5000],
  ['a type of one instance', { source: 'old/clinic', types: ['patient.updated'] }, 500],
  [
    'a type of one instance sending now, in a window',
    { source: 'inst/3', types: ['appointment.*'], since: at(20_000), until: at(90_000) },
    400,
  ],
])(
  'the pages of %s, each looking at a bounded number of events, hold what the plain filter finds',
  async (_what, f, limit) => {
    const all = await expected(f, ROWS);
    expect(all.length).toBeGreaterThan(limit);
    const paged: string[] = [];
    let before: string | undefined;
    let bounded = 0;
    for (;;) {
      const page = await q.listEvents(database.db, {
        ...f,
        ...(before ? { beforeSequence: before } : {}),
        limit,
        ascending: false,
      });
      paged.push(...page.rows.map((r) => r.sequence));
      if (page.rows.length === limit) before = page.rows[limit - 1]!.sequence;
      else if (page.scannedTo !== null) {
        bounded += 1;
        before = page.scannedTo;
      } else break;
    }
    expect(paged).toEqual(all);
    if (f.types?.[0] === 'patient.*') expect(bounded).toBeGreaterThan(0);
  },
);

it('hub.events.list answers a page that looked at its bound without a match with no items and a cursor to go on from', async () => {
  const events = eventsApi({ db: database.db, deliveriesOf: async () => [] });
  let page = await events.list({ type: 'document.*' });
  expect(page.items).toEqual([]);
  let pages = 1;
  while (page.nextCursor !== null) {
    expect(page.items).toEqual([]);
    page = await events.list({ type: 'document.*', cursor: page.nextCursor });
    pages += 1;
  }
  // Before: one page, the whole table read, no cursor. Now the table a bound at a time.
  expect(pages).toBeGreaterThan(ROWS / q.EVENT_LIST_SCAN - 1);
  // A type that matches fills its pages, each cursor the last item's.
  const some = await events.list({ type: 'patient.updated', limit: 10 });
  expect(some.items).toHaveLength(10);
  expect(BigInt(some.nextCursor!)).toBe(BigInt(some.items[9]!.sequence));
});
