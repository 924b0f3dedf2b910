/**
 * A long-poll of a filtered pull subscription far behind the head: a read looks at a bounded
 * number of events (events/store.ts EVENT_LIST_SCAN, events/feed-scan-cost.int.test.ts), and one
 * that stopped there with nothing to serve answers at once with the cursor it reached, instead of
 * waiting for a new event while the events after it are still unread.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EVENT_LIST_SCAN } from '../events/store.ts';
import { makeHub } from '../http/app.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';

const database = useTestDatabase();
let hub: Hub;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await sql`insert into switchyard.events (id, type, source, subject, time, envelope, created_at)
    select gen_random_uuid(), 'appointment.created', 'inst/1', 'appointment/' || i, now(), '{}'::jsonb,
      now() - interval '1 hour'
    from generate_series(1, ${EVENT_LIST_SCAN + 500}) i`.execute(hub.host.db);
}, 60_000);
afterAll(async () => {
  await hub?.stop({ graceful: false });
});

it('a read that stopped at its bound answers at once with the cursor it reached, though asked to wait', async () => {
  const { subscription } = await hub.subscriptions.create({ kind: 'pull', eventTypes: ['document.*'] });
  const bound = await sql<{ s: string }>`select sequence::text as s from switchyard.events
    order by sequence offset ${EVENT_LIST_SCAN - 1} limit 1`.execute(hub.host.db);
  // Before: the read looked through every event, found none, and the call waited the 30 s.
  const page = await hub.feed.poll(subscription.id, { after: '0', wait: 30 });
  expect(page).toEqual({ events: [], nextCursor: bound.rows[0]!.s });
  const head = await sql<{ s: string }>`select max(sequence)::text as s from switchyard.events`.execute(
    hub.host.db,
  );
  // The next read looks at the rest: at the head, nothing to serve (wait 0: at once).
  expect(await hub.feed.poll(subscription.id, { after: page.nextCursor, wait: 0 })).toEqual({
    events: [],
    nextCursor: head.rows[0]!.s,
  });
});
