/**
 * The commands' read queries on a large table (the list's filters, as the API and the dashboard's
 * commands page send them, and the echo check every worker makes while commands are in use) read
 * their few rows through an index, not the whole table. Plans come from auto_explain with actual
 * rows, as in events/commit-cost.int.test.ts (storage/explain.test-support.ts).
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
import * as q from './store.ts';

const pgdb = useTestDatabase();
let database: Database;
const explained: Explained[] = [];

const ROWS = 30_000;

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 1 });
  await migrate(database.db);
  // 30,000 finished commands: one instance, sender and type for nearly all, 20 of each rare one
  // (a failed command, another instance, a subscription that sends few, an update), spread out.
  await sql`insert into switchyard.commands (id, type, instance_id, connector, subject, ordering_key, data, sent_by,
      idempotency_key, request_hash, status, completed_at)
    select gen_random_uuid(),
      case when i % 1500 = 7 then 'appointment.update' else 'appointment.cancel' end,
      case when i % 1500 = 3 then 'rare' else 'dp' end, 'docplanner',
      'appointment/' || i, 'appointment/' || i, '{}'::jsonb,
      case when i % 1500 = 5 then 'subscription:rare' else 'subscription:crm' end, 'k' || i, 'h',
      case when i % 1500 = 1 then 'failed' else 'succeeded' end,
      now() - (${ROWS} - i) * interval '1 second'
    from generate_series(1, ${ROWS}) i`.execute(database.db);
  // The entities those commands acted on: the retention purge keeps a creating command whose entity
  // has none yet, looking it up here.
  await sql`insert into switchyard.current_entities (subject, kind, hub_id, instance_id, event_id, event_type,
      event_time, event_sequence, envelope)
    select 'appointment/' || i, 'appointment', i::text, 'dp', gen_random_uuid(), 'appointment.created', now(), i,
      '{}'::jsonb
    from generate_series(1, ${ROWS}) i`.execute(database.db);
  await sql`analyze switchyard.commands`.execute(database.db);
  await sql`analyze switchyard.current_entities`.execute(database.db);
  await explainEverything(database.pool, explained);
}, 60_000);

afterAll(async () => {
  await database?.close();
});

/** The plan of the one statement `run` makes. */
const planOf = (run: () => Promise<unknown>) => planOfStatement(explained, run);

const wasted = rowsWasted;

it.each([
  ['status', { status: 'failed' as const }],
  ['instance', { instanceId: 'rare' }],
  ['type', { type: 'appointment.update' }],
  [
    'status and sender (a subscription sees its own)',
    { status: 'failed' as const, sentBy: 'subscription:crm' },
  ],
])("the list filtered by %s reads that filter's rows, not the table", async (_what, filter) => {
  const plan = await planOf(() => q.listCommands(database.db, { ...filter, limit: 51 }));
  const rows = await q.listCommands(database.db, { ...filter, limit: 51 });
  expect(rows.length).toBeGreaterThan(0);
  // Before: a sequential scan (or the whole newest-first index) of the 30,000 rows, nearly all
  // thrown away by the filter.
  expect(plan.filter((n) => n['Node Type'] === 'Seq Scan')).toEqual([]);
  expect(wasted(plan)).toBeLessThan(1000);
});

it('the echo check (the latest success in the window) reads an index, not every row', async () => {
  const plan = await planOf(() => q.echoActivity(database.db, new Date(Date.now() - 600_000), 3000));
  expect(plan.filter((n) => n['Node Type'] === 'Seq Scan' || n['Node Type'] === 'Parallel Seq Scan')).toEqual(
    [],
  );
  expect(wasted(plan)).toBeLessThan(1000);
});

it('the retention purge with nothing old enough to delete reads an index, not every command kept', async () => {
  // Each hourly purge ends on such a statement (its last batch). Before: a sequential scan of
  // every command kept (150 ms at 50,000; each batch of a backlog scanned again from the start).
  const plan = await planOf(() =>
    q.purgeCommands(database.db, new Date(Date.now() - 30 * 86_400_000), 1000, [
      'appointment.book',
      'slot.block',
    ]),
  );
  expect(plan.filter((n) => n['Node Type'] === 'Seq Scan' || n['Node Type'] === 'Parallel Seq Scan')).toEqual(
    [],
  );
  expect(wasted(plan)).toBeLessThan(1000);
});
