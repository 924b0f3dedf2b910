/**
 * The overview's newest dead letters (`recentDead`): those that died last, not those created last.
 * A delivery retried for a day and a half (the default schedule) dies long after deliveries created
 * since then that died at once; ordered by creation it was left off the card while they filled it.
 * Read from the dead letters' own index (deliveries_dead_idx, migration 49), as the counts are (http/dead-letters-cost.int.test.ts).
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase } from '../storage/db.ts';
import { type Explained, explainEverything, planOfStatement } from '../storage/explain.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import { recentDead } from './queries.ts';

const pgdb = useTestDatabase();
let database: Database;
const explained: Explained[] = [];

/** 20,000 succeeded deliveries, 2,000 dead ones replayed long ago and 30 dead letters waiting. */
beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 1 });
  await migrate(database.db);
  const { db } = database;
  await sql`insert into switchyard.subscriptions (id, kind, url) values ('crm', 'webhook', 'https://crm.example/h')`.execute(
    db,
  );
  // Sequence i: created in order; the waiting dead letters (i > 22,000) died a minute apart in the
  // order they were created, except the first of them, retried for 36 hours: it died last.
  await sql`insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status,
      superseded_by, completed_at)
    select gen_random_uuid(), 'crm', gen_random_uuid(), i, 'appointment/' || i,
      case when i <= 20000 then 'succeeded' else 'dead' end,
      case when i > 20000 and i <= 22000 then gen_random_uuid() end,
      case when i = 22001 then now() else now() - interval '2 days' + (i - 20000) * interval '1 minute' end
    from generate_series(1, 22030) i`.execute(db);
  await sql`vacuum analyze switchyard.deliveries`.execute(db);
  await explainEverything(database.pool, explained);
}, 120_000);

afterAll(async () => {
  await database?.close();
});

it('the overview lists the dead letters that died last, newest first, reading their own index', async () => {
  const plan = await planOfStatement(explained, () => recentDead(database.db, 10));
  const dead = await recentDead(database.db, 10);
  expect(dead.map((d) => d.subject)).toEqual([
    'appointment/22001',
    ...Array.from({ length: 9 }, (_, k) => `appointment/${22030 - k}`),
  ]);
  const died = dead.map((d) => d.completedAt!.getTime());
  expect(died).toEqual([...died].sort((a, b) => b - a));
  const rows = plan
    .filter((n) => n['Relation Name'] === 'deliveries')
    .reduce((sum, n) => sum + (n['Actual Rows'] ?? 0) + (n['Rows Removed by Filter'] ?? 0), 0);
  // The ten shown, not every dead delivery (2,030) nor every delivery completed since (a scan of
  // deliveries_completed_idx).
  expect(rows).toBeLessThanOrEqual(10);
  expect(JSON.stringify(plan)).toContain('deliveries_dead_idx');
});
