/**
 * What a `/metrics` scrape reads of the deliveries table: the open and settled deliveries by index,
 * not every delivery ever stored (the succeeded ones are the bulk of a hub's table). Plans come
 * from auto_explain with actual rows, as in events/list-cost.int.test.ts
 * (storage/explain.test-support.ts).
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase } from '../storage/db.ts';
import { type Explained, explainEverything, planOfStatement } from '../storage/explain.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import { countAttemptsSince, deliveryCounts, maxAttemptId } from './hub-stats.ts';

const pgdb = useTestDatabase();
let database: Database;
const explained: Explained[] = [];

/** 40,000 succeeded deliveries, and a few of every other status. */
const SUCCEEDED = 40_000;

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 1 });
  await migrate(database.db);
  const { db } = database;
  await sql`insert into switchyard.subscriptions (id, kind, url) values ('crm', 'webhook', 'https://crm.example/h')`.execute(
    db,
  );
  await sql`insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status,
      superseded_by, completed_at)
    select gen_random_uuid(), 'crm', gen_random_uuid(), i, 'appointment/' || i,
      case when i <= ${SUCCEEDED} then 'succeeded'
           else (array['pending', 'in_flight', 'held', 'dead', 'dead', 'skipped'])[1 + i % 6] end,
      case when i > ${SUCCEEDED} and i % 12 = 3 then gen_random_uuid() end,
      case when i <= ${SUCCEEDED} then now() end
    from generate_series(1, ${SUCCEEDED + 120}) i`.execute(db);
  // An attempt log of 40,000 records, all finished long ago.
  await sql`insert into switchyard.delivery_attempts (delivery_id, attempt, started_at, latency_ms, status_code, outcome)
    select id, 1, now() - interval '1 day', 40, 200, 'succeeded' from switchyard.deliveries where status = 'succeeded'`.execute(
    db,
  );
  await sql`analyze switchyard.deliveries`.execute(db);
  await sql`analyze switchyard.delivery_attempts`.execute(db);
  await explainEverything(database.pool, explained);
}, 120_000);

afterAll(async () => {
  await database?.close();
});

it('a scrape counts the open and settled deliveries by index, and estimates the succeeded ones', async () => {
  const plan = await planOfStatement(explained, () => deliveryCounts(database.db));
  const read = plan
    .filter((n) => n['Relation Name'] === 'deliveries')
    .reduce(
      (sum, n) =>
        sum + ((n['Actual Rows'] ?? 0) + (n['Rows Removed by Filter'] ?? 0)) * (n['Actual Loops'] ?? 1),
      0,
    );
  // Before: a sequential scan of every delivery (40,120 rows read per scrape).
  expect(read).toBeLessThan(500);
  const counts = await deliveryCounts(database.db);
  expect({ ...counts, succeeded: 0 }).toEqual({
    pending: 20,
    in_flight: 20,
    held: 20,
    dead: 30,
    replayed: 10,
    skipped: 20,
    succeeded: 0,
  });
  // The statistics' live rows less the others: what ANALYZE counted.
  expect(Math.abs(counts.succeeded! - SUCCEEDED)).toBeLessThan(SUCCEEDED / 10);
});

it('a scrape reads the attempts recorded since the last one, not the whole attempt log', async () => {
  const after = await maxAttemptId(database.db);
  const plan = await planOfStatement(explained, () => countAttemptsSince(database.db, after));
  const read = plan
    .filter((n) => n['Relation Name'] === 'delivery_attempts')
    .reduce(
      (sum, n) =>
        sum + ((n['Actual Rows'] ?? 0) + (n['Rows Removed by Filter'] ?? 0)) * (n['Actual Loops'] ?? 1),
      0,
    );
  // Before: the horizon's `y.id - 1 > after` was no index condition: a scan of all 40,000.
  expect(read).toBeLessThan(100);
  expect(await countAttemptsSince(database.db, after)).toEqual({ attempts: [], last: after });
});
