/**
 * The events purge's batch reads the old events it deletes and probes each one's deliveries by
 * index, however many deliveries wait on newer events. Found at volume (1.2 million events, 2.4
 * million deliveries): the planner materialized every pending, held and dead delivery for each
 * batch (0.65 s of 0.9 s), or merged over the events in uuid order; a subscriber down for a day
 * makes that set as large as the day's traffic. Plans come from auto_explain with actual rows
 * (storage/explain.test-support.ts), as in commands/list-cost.int.test.ts.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase } from '../storage/db.ts';
import { type Explained, explainEverything, planNodes } from '../storage/explain.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import { purgeEvents } from './store.ts';

const pgdb = useTestDatabase();
let database: Database;
const explained: Explained[] = [];

/** Deliveries waiting on recent events (a subscriber down): what a batch must not read. */
const WAITING = 5000;
const OLD = 300;

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 1 });
  await migrate(database.db);
  await sql`insert into switchyard.subscriptions (id, kind, url) values ('crm', 'webhook', 'https://crm.example.test/hook')`.execute(
    database.db,
  );
  // Old events (100 days), each delivered; recent ones, each with a delivery still pending.
  await sql`with ev as (
      insert into switchyard.events (id, type, source, subject, time, envelope, created_at)
      select gen_random_uuid(), 'appointment.updated', 'dp', 'appointment/' || i, now(), '{}',
        case when i <= ${OLD} then now() - interval '100 days' else now() end
      from generate_series(1, ${OLD + WAITING}) i returning id, sequence, subject, created_at)
    insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status, completed_at)
    select gen_random_uuid(), 'crm', id, sequence, subject,
      case when created_at < now() - interval '1 day' then 'succeeded' else 'pending' end,
      case when created_at < now() - interval '1 day' then created_at end
    from ev`.execute(database.db);
  await sql`analyze switchyard.events`.execute(database.db);
  await sql`analyze switchyard.deliveries`.execute(database.db);
  await explainEverything(database.pool, explained);
}, 60_000);

afterAll(async () => {
  await database?.close();
});

it('a batch reads its own events and their deliveries, not every delivery still waiting', async () => {
  explained.length = 0;
  const n = await purgeEvents(database.db, new Date(Date.now() - 90 * 86_400_000), 100);
  expect(n).toBe(100);
  const purge = explained.find((e) => e['Query Text'].includes('delete from switchyard.events'));
  expect(purge).toBeDefined();
  const read = planNodes(purge!.Plan)
    .filter((node) => node['Relation Name'] === 'deliveries')
    .reduce((sum, node) => sum + (node['Actual Rows'] ?? 0) * (node['Actual Loops'] ?? 1), 0);
  // The batch's 100 events have one (finished) delivery each; the 5,000 pending ones are not read.
  expect(read).toBeLessThan(WAITING / 10);
});
