/**
 * The FHIR search's filters, sorts and counts on a large current-state table (migration 43) read
 * their few rows through an index, in order, and stop at the page: no sequential scan, no sort of
 * the table, few rows read and thrown away. Plans come from auto_explain with actual rows, as in
 * commands/list-cost.int.test.ts (storage/explain.test-support.ts).
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase } from '../storage/db.ts';
import {
  type Explained,
  explainEverything,
  type PlanNode,
  planNodes,
  planOfStatement,
  rowsWasted,
} from '../storage/explain.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import {
  type CurrentEntityOrder,
  type CurrentEntityQuery,
  countCurrentEntities,
  estimateCurrentEntities,
  searchCurrentEntities,
} from './current.ts';

const pgdb = useTestDatabase();
let database: Database;
const explained: Explained[] = [];

const ROWS = 40_000;
const DOCUMENTS = 20_000;
const STATUSES = ['proposed', 'pending', 'booked', 'arrived', 'fulfilled', 'cancelled', 'noshow'];

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 1 });
  await migrate(database.db);
  // 40,000 appointments of one instance: nearly all booked, one in ten cancelled, 40 no-shows;
  // starts four to a minute (ties), 20 without a start; changed ten to a millisecond (ties);
  // 5,000 patients. And 20,000 documents beside them, one in five a catalogue record (the rest
  // clinical notes, what every DocumentReference search filters for); of the notes 200 deleted
  // (entered-in-error, though their data says current) and 400 superseded.
  await sql`insert into switchyard.current_entities (subject, kind, hub_id, instance_id, event_id,
      event_type, event_time, event_sequence, starts_at, envelope, updated_at)
    select 'appointment/' || h, 'appointment', h, 'dp', gen_random_uuid(), 'appointment.created', now(), i,
      case when i % 2000 = 3 then null else '2026-01-01T00:00:00Z'::timestamptz + (i / 4) * interval '1 minute' end,
      jsonb_build_object('data', jsonb_build_object('id', h,
        'status', case when i % 1000 = 1 then 'noshow' when i % 10 = 2 then 'cancelled' else 'booked' end,
        'patient', jsonb_build_object('id', 'p' || (i % 5000)))),
      '2026-12-01T00:00:00Z'::timestamptz + (i / 10) * interval '1 millisecond'
    from generate_series(1, ${ROWS}) i, lateral (select md5('a' || i) as h) x`.execute(database.db);
  await sql`insert into switchyard.current_entities (subject, kind, hub_id, instance_id, event_id,
      event_type, event_time, event_sequence, starts_at, envelope, updated_at)
    select 'document/' || h, 'document', h, 'notes', gen_random_uuid(),
      case when i % 100 = 9 then 'document.deleted' else 'document.created' end, now(), ${ROWS} + i, null,
      jsonb_build_object('data', jsonb_build_object('id', h,
        'domain', case when i % 5 = 0 then 'catalog' else 'clinical' end,
        'status', case when i % 50 = 7 then 'superseded' else 'current' end,
        'patient', jsonb_build_object('id', 'p' || i))),
      '2026-12-01T00:00:00Z'::timestamptz + i * interval '1 second'
    from generate_series(1, ${DOCUMENTS}) i, lateral (select md5('d' || i) as h) x`.execute(database.db);
  await sql`vacuum analyze switchyard.current_entities`.execute(database.db);
  await explainEverything(database.pool, explained);
}, 120_000);

afterAll(async () => {
  await database?.close();
});

/** The plan of the one statement `run` makes. */
const planOf = (run: () => Promise<unknown>) => planOfStatement(explained, run);

/** Rows the plan's scans read (an index read in order and stopped at the page reads few). */
function read(plan: PlanNode[]): number {
  return plan
    .filter((n) => /Scan/.test(n['Node Type']) && n['Node Type'] !== 'Bitmap Index Scan')
    .reduce((sum, n) => sum + (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1), 0);
}

const wasted = rowsWasted;

function expectIndexServed(plan: PlanNode[], budget = 1000) {
  expect(plan.filter((n) => /Seq Scan/.test(n['Node Type']))).toEqual([]);
  expect(wasted(plan)).toBeLessThan(budget);
  expect(read(plan)).toBeLessThan(budget);
}

const base: CurrentEntityQuery = { kind: 'appointment', limit: 21 };

/** A row in the middle of the table in an order, as the page before it would have ended. */
async function middle(by: CurrentEntityOrder, descending: boolean, of: CurrentEntityQuery = base) {
  const r = await sql<{ subject: string }>`select subject from switchyard.current_entities
    where kind = ${of.kind} and (kind <> 'appointment' or starts_at is not null)
    order by subject offset ${of.kind === 'appointment' ? ROWS / 2 : DOCUMENTS / 2} limit 1`.execute(
    database.db,
  );
  const [row] = await searchCurrentEntities(database.db, {
    ...of,
    subjects: [r.rows[0]!.subject],
    order: { by, descending },
  });
  return { subject: row!.subject, key: row!.orderKey };
}

it.each([
  ['subject', false],
  ['subject', true],
  ['start', false],
  ['start', true],
  ['updated', false],
  ['updated', true],
] as const)(
  'the order by %s (descending: %s) reads its page from an index, first page and after a cursor mid-table',
  async (by, descending) => {
    const order = { by, descending };
    const first = await planOf(() => searchCurrentEntities(database.db, { ...base, order }));
    expectIndexServed(first);
    const after = await middle(by, descending);
    const page = await searchCurrentEntities(database.db, { ...base, order, after });
    expect(page).toHaveLength(21);
    expectIndexServed(await planOf(() => searchCurrentEntities(database.db, { ...base, order, after })));
    // With a filter beside it (the common case: booked appointments from a day on, by start).
    expectIndexServed(
      await planOf(() =>
        searchCurrentEntities(database.db, {
          ...base,
          order,
          after,
          statuses: ['booked'],
          start: [{ op: 'ge', at: '2026-01-05T00:00:00Z' }],
        }),
      ),
    );
  },
);

/** Every DocumentReference search: clinical notes only (fhir/read.ts). */
const notes: CurrentEntityQuery = { kind: 'document', data: { domain: 'clinical' }, limit: 21 };

// The clinical-notes filter was a jsonb containment (`data @> {"domain": "clinical"}`) that Postgres
// guessed keeps 0.1% of the documents: it read all 20,000 and sorted them (a bitmap scan, 16,000
// rows read for 21) instead of reading an order's index and stopping at the page.
it.each([
  ['subject', false],
  ['subject', true],
  ['updated', false],
  ['updated', true],
] as const)(
  'a clinical-notes search by %s (descending: %s) reads its page from an index, first page and after a cursor mid-table',
  async (by, descending) => {
    const order = { by, descending };
    const first = await searchCurrentEntities(database.db, { ...notes, order });
    expect(first).toHaveLength(21);
    expect(first.every((e) => e.data.domain === 'clinical')).toBe(true);
    expectIndexServed(await planOf(() => searchCurrentEntities(database.db, { ...notes, order })));
    const after = await middle(by, descending, notes);
    const page = await searchCurrentEntities(database.db, { ...notes, order, after });
    expect(page).toHaveLength(21);
    expect(page.every((e) => e.data.domain === 'clinical')).toBe(true);
    expectIndexServed(await planOf(() => searchCurrentEntities(database.db, { ...notes, order, after })));
    // With the last-change filter a client polls with.
    expectIndexServed(
      await planOf(() =>
        searchCurrentEntities(database.db, {
          ...notes,
          order,
          after,
          updated: [{ op: 'ge', at: '2026-12-01T01:00:00Z' }],
        }),
      ),
    );
  },
);

// DocumentReference.status: a deleted note's is entered-in-error, which only its event type says.
it.each<[string, Partial<CurrentEntityQuery>]>([
  ['current, by id', { statuses: ['current'] }],
  [
    'current, by last change, descending',
    { statuses: ['current'], order: { by: 'updated', descending: true } },
  ],
  ['entered-in-error (deleted)', { statuses: ['entered-in-error'] }],
  ['entered-in-error, by last change', { statuses: ['entered-in-error'], order: { by: 'updated' } }],
  ['status:not current', { statuses: ['superseded', 'entered-in-error'] }],
])('a clinical-notes search by status %s reads its rows through an index', async (_what, filter) => {
  const rows = await searchCurrentEntities(database.db, { ...notes, ...filter });
  expect(rows).toHaveLength(21);
  for (const row of rows) {
    const status = row.eventType === 'document.deleted' ? 'entered-in-error' : row.data.status;
    expect(filter.statuses).toContain(status);
  }
  expectIndexServed(await planOf(() => searchCurrentEntities(database.db, { ...notes, ...filter })));
});

it.each([
  ['current', 15_400],
  ['superseded', 400],
  ['entered-in-error', 200],
])(
  '_total counts the notes of status %s (a deleted note is entered-in-error only)',
  async (status, expected) => {
    const query = { ...notes, statuses: [status] };
    expect(await countCurrentEntities(database.db, query)).toBe(expected);
    if (status !== 'current') expectIndexServed(await planOf(() => countCurrentEntities(database.db, query)));
  },
);

it('the clinical-notes filter keeps exactly the clinical notes (search and count)', async () => {
  expect(await countCurrentEntities(database.db, notes)).toBe(DOCUMENTS - DOCUMENTS / 5);
  expect(await countCurrentEntities(database.db, { ...notes, data: { domain: 'catalog' } })).toBe(
    DOCUMENTS / 5,
  );
  const all = await searchCurrentEntities(database.db, { ...notes, limit: 100 });
  expect(all.map((e) => e.subject)).toEqual([...all.map((e) => e.subject)].sort());
});

it.each<[string, Partial<CurrentEntityQuery>]>([
  // Another kind than the one the primary key's first rows hold.
  ['kind alone', { kind: 'document' }],
  ['kind alone, descending', { kind: 'document', order: { by: 'subject', descending: true } }],
  ['a rare status', { statuses: ['noshow'] }],
  ['a common status', { statuses: ['booked'] }],
  ['status:not of the common one', { statuses: STATUSES.filter((s) => s !== 'booked') }],
  ['status:not of a rare one', { statuses: STATUSES.filter((s) => s !== 'noshow') }],
  ['_id', { subjects: ['appointment/a', 'appointment/b'] }],
  ['_id:not', { notSubjects: ['appointment/a', 'appointment/b'] }],
  [
    'an hour of starts',
    {
      start: [
        { op: 'ge', at: '2026-01-03T10:00:00Z' },
        { op: 'lt', at: '2026-01-03T11:00:00Z' },
      ],
    },
  ],
  ['a rare status by start, descending', { statuses: ['noshow'], order: { by: 'start', descending: true } }],
  [
    'a patient by start, descending',
    { patient: [{ fields: { id: 'p42' } }], order: { by: 'start', descending: true } },
  ],
  [
    'a patient, booked, by last change',
    { patient: [{ fields: { id: 'p43' } }], statuses: ['booked'], order: { by: 'updated' } },
  ],
])('the search by %s reads its rows through an index', async (_what, filter) => {
  const rows = await searchCurrentEntities(database.db, { ...base, ...filter });
  if (!filter.subjects) expect(rows.length).toBeGreaterThan(0);
  const plan = await planOf(() => searchCurrentEntities(database.db, { ...base, ...filter }));
  expectIndexServed(plan);
});

it.each<[string, Partial<CurrentEntityQuery>, number]>([
  ['a rare status', { statuses: ['noshow'] }, 40],
  ['a patient', { patient: [{ fields: { id: 'p42' } }] }, 8],
  [
    'an hour of starts',
    {
      start: [
        { op: 'ge', at: '2026-01-03T10:00:00Z' },
        { op: 'lt', at: '2026-01-03T11:00:00Z' },
      ],
    },
    239, // 240 in the hour, one of them without a start (i = 14003)
  ],
  ['a few ids', { subjects: ['appointment/a', 'appointment/b'] }, 0],
])('_total counts %s through an index (only the matching rows read)', async (_what, filter, expected) => {
  const query = { ...base, ...filter };
  expect(await countCurrentEntities(database.db, query)).toBe(expected);
  expectIndexServed(await planOf(() => countCurrentEntities(database.db, query)));
});

it('the estimate of a count reads nothing of the table; the count of a whole kind reads its whole index', async () => {
  const query = { kind: 'appointment', limit: 0 };
  const counted = await planOf(() => countCurrentEntities(database.db, query));
  expect(read(counted)).toBe(ROWS);
  explained.length = 0;
  const estimated = await estimateCurrentEntities(database.db, query);
  // EXPLAIN without ANALYZE starts the plan but does not run it: auto_explain logs it, no row read.
  expect(explained.map((e) => e['Query Text'].trim().split(' ')[0])).toEqual(['explain']);
  const plan = planNodes(explained[0]!.Plan);
  expect(plan.every((n) => n['Actual Rows'] === undefined)).toBe(true);
  expect(read(plan)).toBe(0);
  expect(Math.abs(estimated - ROWS)).toBeLessThan(ROWS / 10);
  // The documents beside them are not reckoned in.
  expect(
    Math.abs((await estimateCurrentEntities(database.db, { kind: 'document', limit: 0 })) - DOCUMENTS),
  ).toBeLessThan(DOCUMENTS / 10);
});
