/**
 * The events list with a time window on a busy hub (`GET /v1/events?since&until`, the dashboard's
 * Stored from/until): the window's pages start at the window. Its sequence bounds were read an hour
 * of events beyond each end (events/store.ts EVENT_CLOCK_SLACK); a hub storing more than 10,000
 * events an hour (EVENT_LIST_SCAN, three a second) answered a window's first pages empty, with a
 * cursor, and a client walked them to the window (the dashboard: "No events match among the 10,000
 * this page looked at: Older →", once for each 10,000 events), then again past its start to learn
 * that the list ended.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase } from '../storage/db.ts';
import { migrate } from '../storage/migrations.ts';
import * as q from './store.ts';

const pgdb = useTestDatabase();
let database: Database;

/** 40,000 events, ten a second (36,000 an hour), over the last 4,000 s, in sequence order. */
const ROWS = 40_000;
const now = Date.now();
const at = (secondsAgo: number) => new Date(now - secondsAgo * 1000);

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 1 });
  await migrate(database.db);
  await sql`insert into switchyard.events (id, type, source, subject, time, envelope, created_at)
    select gen_random_uuid(), 'appointment.created', 'docplanner/dp', 'appointment/' || (i % 5000),
      now(), '{}'::jsonb, to_timestamp(${now / 1000}::float8 - ${ROWS / 10}::float8 + i * 0.1)
    from generate_series(1, ${ROWS}) i`.execute(database.db);
  // Two events whose created_at disagrees with their sequence's order by 5 s (less than the slack
  // listEvents allows), each just inside the window of the test below by created_at and 50
  // events outside it by sequence: listed in it.
  await sql`update switchyard.events set created_at = ${at(20 * 60)}::timestamptz - interval '1 millisecond'
    where sequence = (select min(sequence) from switchyard.events where created_at >= ${at(20 * 60 - 5)})`.execute(
    database.db,
  );
  await sql`update switchyard.events set created_at = ${at(21 * 60)}
    where sequence = (select max(sequence) from switchyard.events where created_at < ${at(21 * 60 + 5)})`.execute(
    database.db,
  );
  await sql`analyze switchyard.events`.execute(database.db);
}, 120_000);

afterAll(async () => {
  await database?.close();
});

/** The window read by a plain filter, every event looked at: what the list must return. */
async function expected(since: Date, until: Date): Promise<string[]> {
  const r = await sql<{ sequence: string }>`select sequence from switchyard.events
    where created_at >= ${since} and created_at < ${until} order by sequence desc`.execute(database.db);
  return r.rows.map((x) => x.sequence);
}

it('a minute 20 minutes back is read by pages that each hold events of it, the last one ending the list', async () => {
  const since = at(21 * 60);
  const until = at(20 * 60);
  const all = await expected(since, until);
  expect(all).toHaveLength(602);
  const pages: string[][] = [];
  let before: string | undefined;
  for (;;) {
    const page = await q.listEvents(database.db, {
      since,
      until,
      ...(before ? { beforeSequence: before } : {}),
      limit: 50,
      ascending: false,
    });
    pages.push(page.rows.map((r) => r.sequence));
    // As GET /v1/events answers its cursor (events/api.ts): the last item of a full page, or
    // where a page that looked at its bound stopped.
    const next = page.rows.length === 50 ? page.rows.at(-1)!.sequence : page.scannedTo;
    if (!next) break;
    before = next;
  }
  expect(pages.flat()).toEqual(all);
  // Before: the 12,000 events stored after the window, then the 27,000 before it, walked 10,000 a
  // page: the first page held none of the window, nor the one after its last event.
  expect(pages.slice(0, -1).filter((p) => p.length === 0)).toEqual([]);
  expect(pages).toHaveLength(13);
});
