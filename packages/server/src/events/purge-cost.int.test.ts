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

it('a lagging pull reader keeps the events after its position; a batch still reads only the old events', async () => {
  // An enabled pull subscription whose reader acknowledged the 250th event: the old events after it
  // stay (its unread events), those up to it go. The batch walks the old events by age, not the
  // 5,000 recent ones, nor a match per event and subscription.
  const { db } = database;
  await sql`insert into switchyard.subscriptions (id, kind) values ('erp', 'pull')`.execute(db);
  await sql`insert into switchyard.feed_cursors (subscription_id, cursor) values ('erp', 250)`.execute(db);
  const upTo = await sql<{ n: number }>`select count(*)::int as n from switchyard.events
    where sequence <= 250 and created_at < now() - interval '90 days'`.execute(db);
  explained.length = 0;
  const day = 86_400_000;
  const n = await purgeEvents(db, new Date(Date.now() - 90 * day), 1000, new Date(Date.now() - 180 * day));
  expect(n).toBe(upTo.rows[0]!.n);
  const kept = await sql<{ n: number }>`select count(*)::int as n from switchyard.events
    where created_at < now() - interval '90 days'`.execute(db);
  expect(kept.rows[0]!.n).toBe(OLD - 250);
  const purge = explained.find((e) => e['Query Text'].includes('delete from switchyard.events'));
  console.log(
    JSON.stringify(
      planNodes(purge!.Plan).map((p) => [
        p['Node Type'],
        p['Relation Name'],
        p['Index Name'],
        p['Actual Rows'],
        p['Actual Loops'],
      ]),
    ),
  );
  const read = planNodes(purge!.Plan)
    .filter((node) => node['Relation Name'] === 'events')
    .reduce(
      (sum, node) =>
        sum +
        ((node['Actual Rows'] ?? 0) +
          ((node as { 'Rows Removed by Filter'?: number })['Rows Removed by Filter'] ?? 0)) *
          (node['Actual Loops'] ?? 1),
      0,
    );
  // The old events (those it deletes, read by age and then by number; those it keeps, by age), not
  // the 5,000 recent ones (with an `in (…)` delete: a sequential scan of all 5,300).
  expect(read).toBeLessThanOrEqual(2 * OLD);
  // Past the cap (retention.unreadEvents) they go too, and the reader's gap is noted.
  expect(await purgeEvents(db, new Date(Date.now() - 90 * day), 1000, new Date())).toBe(OLD - 250);
});
