/**
 * What counting the dead letters reads (`switchyard_deliveries_dead` and `switchyard_deliveries`
 * of `/metrics`, the dashboard overview) and what `GET /v1/deliveries?replayed=true` reads: the
 * dead letters still waiting and the replayed deliveries, from their own indexes (migration 49),
 * not every dead delivery's row nor every delivery. Plans come from auto_explain with actual rows,
 * as in http/metrics-cost.int.test.ts (storage/explain.test-support.ts).
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listDeliveries } from '../deliveries/store.ts';
import { type Database, openDatabase } from '../storage/db.ts';
import {
  type Explained,
  explainEverything,
  type PlanNode,
  planOfStatement,
} from '../storage/explain.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import { deliveriesByStatus } from '../ui/queries.ts';
import { deadBySubscription, deliveryCounts } from './hub-stats.ts';

const pgdb = useTestDatabase();
let database: Database;
const explained: Explained[] = [];

/**
 * Two subscriptions, 40,000 succeeded deliveries each, and 4,000 dead ones each, of which all but
 * 20 were replayed long ago (the dead letters an operator dealt with, kept until retention). A few
 * held and skipped ones, and a few succeeded deliveries replayed too.
 */
const SUCCEEDED = 40_000;
const DEAD = 4_000;
const WAITING = 20;

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 1 });
  await migrate(database.db);
  const { db } = database;
  await sql`insert into switchyard.subscriptions (id, kind, url) values
    ('crm', 'webhook', 'https://crm.example/h'), ('erp', 'webhook', 'https://erp.example/h')`.execute(db);
  await sql`insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status,
      superseded_by, completed_at)
    select gen_random_uuid(), s, gen_random_uuid(), i, 'appointment/' || i,
      case when i <= ${DEAD} then 'dead' when i <= ${DEAD} + 30 then 'held' when i <= ${DEAD} + 60 then 'skipped'
           else 'succeeded' end,
      case when i <= ${DEAD - WAITING} or i % 10000 = 0 then gen_random_uuid() end,
      now()
    from generate_series(1, ${DEAD + SUCCEEDED}) i cross join (values ('crm'), ('erp')) v(s)`.execute(db);
  await sql`vacuum analyze switchyard.deliveries`.execute(db);
  await explainEverything(database.pool, explained);
}, 120_000);

afterAll(async () => {
  await database?.close();
});

/** Rows read of the deliveries table: what its scans returned and threw away, and rows read by index-only scans from the table. */
function read(plan: PlanNode[]): number {
  return plan
    .filter((n) => n['Relation Name'] === 'deliveries')
    .reduce(
      (sum, n) =>
        sum +
        ((n['Actual Rows'] ?? 0) + (n['Rows Removed by Filter'] ?? 0) + Number(n['Heap Fetches'] ?? 0)) *
          (n['Actual Loops'] ?? 1),
      0,
    );
}

it('the dead letters by subscription are counted from their index, not every dead delivery', async () => {
  const plan = await planOfStatement(explained, () => deadBySubscription(database.db));
  expect(await deadBySubscription(database.db)).toEqual([
    { subscription: 'crm', dead: WAITING },
    { subscription: 'erp', dead: WAITING },
  ]);
  // Before: every dead delivery of each subscription (deliveries_sub_idx), its row read to leave
  // the replayed ones out (8,000 rows).
  expect(read(plan)).toBeLessThanOrEqual(2 * WAITING);
});

it('the overview counts the dead letters from their index', async () => {
  const plan = await planOfStatement(explained, () => deliveriesByStatus(database.db));
  expect(await deliveriesByStatus(database.db)).toEqual({
    pending: 0,
    in_flight: 0,
    held: 60,
    dead: 2 * WAITING,
  });
  // Before: a bitmap heap scan of every dead and held delivery (8,060 rows).
  expect(read(plan)).toBeLessThanOrEqual(60 + 2 * WAITING + 2);
});

it('a scrape counts the dead letters, waiting and replayed, from the indexes alone', async () => {
  const plan = await planOfStatement(explained, () => deliveryCounts(database.db));
  const counts = await deliveryCounts(database.db);
  expect({ ...counts, succeeded: 0 }).toEqual({
    pending: 0,
    in_flight: 0,
    held: 60,
    dead: 2 * WAITING,
    replayed: 2 * (DEAD - WAITING),
    skipped: 60,
    succeeded: 0,
  });
  // The settled ones from the indexes alone, no row of the table read (before: every held, dead
  // and skipped delivery's row, 8,120). The open ones (none here) by deliveries_due_seq_idx.
  const settled = plan.filter(
    (n) => n['Relation Name'] === 'deliveries' && n['Index Name'] !== 'deliveries_due_seq_idx',
  );
  const named = settled.map((n) => `${n['Node Type']} ${n['Index Name']}`);
  expect(named.sort()).toEqual([
    'Index Only Scan deliveries_dead_idx',
    'Index Only Scan deliveries_replayed_idx',
    'Index Only Scan deliveries_settled_idx',
  ]);
  expect(settled.reduce((sum, n) => sum + Number(n['Heap Fetches'] ?? 0), 0)).toBe(0);
});

it('the replayed deliveries are listed from their index, newest first', async () => {
  const list = () => listDeliveries(database.db, { replayed: true, limit: 50 });
  const plan = await planOfStatement(explained, list);
  const rows = await list();
  expect(rows).toHaveLength(50);
  expect(rows.every((r) => r.superseded_by !== null)).toBe(true);
  // The succeeded deliveries replayed (the newest) come first.
  expect(rows.slice(0, 8).map((r) => r.status)).toEqual(Array(8).fill('succeeded'));
  // Before: the seq key walked backward, every delivery not replayed read and thrown away (88,000).
  expect(read(plan)).toBeLessThanOrEqual(100);
});
