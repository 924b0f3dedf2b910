/**
 * The gates list's filters (decision, reason, each with an instance or not, as the API and the
 * dashboard send them) read their few rows through an index, not every request kept. Gates are
 * kept as long as events (90 days by default): found at 100,000 requests, where the refusals read
 * the whole table (310 ms) and one instance's refusals every request of that instance (335 ms).
 * One instance's refusals of an instance that never refuses read every refusal of the others
 * through gate_requests_decision_idx (58–112 ms at 200,000 requests): the instance's filters read
 * an index that starts with the instance.
 * Plans come from auto_explain with actual rows, as in commands/list-cost.int.test.ts.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase } from '../storage/db.ts';
import {
  type Explained,
  explainEverything,
  planOfStatement,
  rowsWasted,
} from '../storage/explain.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import { type GateListFilter, listGateRequests } from './store.ts';

const pgdb = useTestDatabase();
let database: Database;
const explained: Explained[] = [];

const ROWS = 30_000;

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 1 });
  await migrate(database.db);
  // First, 3,000 undecided requests of an instance retired long ago: older than every other one.
  await sql`insert into switchyard.gate_requests (id, instance_id, connector, dedupe_key, vendor_type, status,
      deadline_ms, default_outcome, deadline_at, received_at)
    select 'o' || i, 'cw-old', 'clockwisemd', 'd' || i, 'appointment.requested', 'pending', 5000, 'approve',
      now() - interval '1 year', now() - interval '1 year'
    from generate_series(1, 3000) i`.execute(database.db);
  // 30,000 decided requests of two instances, nearly all approved by an approver; one in 1,500
  // refused, one in 1,500 decided by its deadline.
  await sql`insert into switchyard.gate_requests (id, instance_id, connector, dedupe_key, vendor_type, status,
      deadline_ms, default_outcome, deadline_at, received_at, decision, decision_reason, decided_at)
    select 'g' || i, case when i % 2 = 0 then 'cw-a' else 'cw-b' end, 'clockwisemd', 'd' || i, 'appointment.requested',
      'decided', 5000, 'approve', now() - (${ROWS} - i) * interval '1 minute', now() - (${ROWS} - i) * interval '1 minute',
      case when i % 1500 = 1 then 'refuse' else 'approve' end,
      case when i % 1500 = 1 then 'refused' when i % 1500 = 2 then 'deadline' else 'approved' end,
      now() - (${ROWS} - i) * interval '1 minute'
    from generate_series(1, ${ROWS}) i`.execute(database.db);
  // And 3,000 of a third instance that refuses them all (by its approver): cw-a never refuses.
  await sql`insert into switchyard.gate_requests (id, instance_id, connector, dedupe_key, vendor_type, status,
      deadline_ms, default_outcome, deadline_at, received_at, decision, decision_reason, decided_at)
    select 'r' || i, 'cw-strict', 'clockwisemd', 'd' || i, 'appointment.requested',
      'decided', 5000, 'approve', now() - (3000 - i) * interval '1 minute', now() - (3000 - i) * interval '1 minute',
      'refuse', 'refused', now() - (3000 - i) * interval '1 minute'
    from generate_series(1, 3000) i`.execute(database.db);
  // Vacuumed, as autovacuum leaves a table of requests decided and kept: an index's entries of
  // all-visible pages are read without their rows (what the instance's list reads first).
  await sql`vacuum analyze switchyard.gate_requests`.execute(database.db);
  await explainEverything(database.pool, explained);
}, 60_000);

afterAll(async () => {
  await database?.close();
});

/** The plan of the one statement `run` makes. */
const planOf = (run: () => Promise<unknown>) => planOfStatement(explained, run);

const wasted = rowsWasted;

it.each<[string, Omit<GateListFilter, 'limit'>]>([
  ['decision', { decision: 'refuse' }],
  ['reason', { reason: 'deadline' }],
  ['instance and decision', { instanceId: 'cw-b', decision: 'refuse' }],
  ['instance and reason', { instanceId: 'cw-a', reason: 'deadline' }],
])("the list filtered by %s reads that filter's rows, not the table", async (_what, filter) => {
  const plan = await planOf(() => listGateRequests(database.db, { ...filter, limit: 51 }));
  const rows = await listGateRequests(database.db, { ...filter, limit: 51 });
  expect(rows.length).toBeGreaterThan(0);
  // Before: a sequential scan of the 30,000 rows (or all of one instance's), nearly all thrown away.
  expect(plan.filter((n) => n['Node Type'] === 'Seq Scan')).toEqual([]);
  expect(wasted(plan)).toBeLessThan(1000);
});

it.each<[string, Omit<GateListFilter, 'limit'>]>([
  ['decision', { instanceId: 'cw-a', decision: 'refuse' }],
  ['reason', { instanceId: 'cw-a', reason: 'refused' }],
])(
  "the refusals of an instance that never refuses (by %s) read none of the others' rows",
  async (_what, filter) => {
    const plan = await planOf(() => listGateRequests(database.db, { ...filter, limit: 51 }));
    expect(await listGateRequests(database.db, { ...filter, limit: 51 })).toEqual([]);
    // Before: gate_requests_decision_idx (or _reason_idx) read every refusal of cw-b and cw-strict
    // (3,020), each thrown away for its instance.
    expect(plan.filter((n) => n['Node Type'] === 'Seq Scan')).toEqual([]);
    expect(wasted(plan)).toBeLessThan(100);
  },
);

it.each<[string, string, number]>([
  ['an instance whose requests are all older than the others', 'cw-old', 51],
  ['an instance with no requests', 'cw-none', 0],
  ["an instance whose newest requests are older than another's", 'cw-a', 51],
])(
  "one instance's list (no decision or reason) of %s reads that instance's rows, not the others'",
  async (_what, instanceId, found) => {
    const plan = await planOf(() => listGateRequests(database.db, { instanceId, limit: 51 }));
    const rows = await listGateRequests(database.db, { instanceId, limit: 51 });
    expect(rows).toHaveLength(found);
    expect(rows.every((r) => r.instance_id === instanceId)).toBe(true);
    expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((r) => Number(r.seq)).sort((a, b) => b - a));
    // Before: the seq key walked backward from the newest request, the others' requests read and
    // thrown away (33,000 for cw-old, 3,050 for cw-a): migration 50's indexes hold decided
    // requests only, and the undecided are listed too.
    expect(plan.filter((n) => n['Node Type'] === 'Seq Scan')).toEqual([]);
    expect(wasted(plan)).toBeLessThan(100);
  },
);
