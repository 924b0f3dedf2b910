/**
 * The per-subscription gauges operators alert on, scraped from a hub's `/metrics` over HTTP: dead
 * deliveries not yet replayed or skipped (`switchyard_deliveries_dead`), and the events retention
 * removed before a pull subscription acknowledged them (`switchyard_feed_gap_events`), which the
 * feed's own answer names (`gap`) until the reader acknowledges past it.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Hub } from '../pipeline/hub.ts';
import { call, listen, makeHub, subscriptionSeries } from './app.test-support.ts';

const database = useTestDatabase();
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  server = await listen(hub);
});
afterAll(async () => {
  await server?.close();
  await hub?.stop();
});

/** The value of one series of the scrape, or undefined when it is not served. */
const series = (name: string, subscription: string) => subscriptionSeries(server.base, name, subscription);

it('counts each subscription’s dead deliveries not yet replayed or skipped', async () => {
  const { db } = hub.host;
  const crm = (await hub.subscriptions.create({ url: 'http://127.0.0.1:9/crm', allowPrivateAddresses: true }))
    .subscription;
  const erp = (await hub.subscriptions.create({ url: 'http://127.0.0.1:9/erp', allowPrivateAddresses: true }))
    .subscription;
  await hub.subscriptions.disable(crm.id);
  await hub.subscriptions.disable(erp.id);
  await sql`insert into switchyard.events (id, type, source, subject, time, envelope)
    select gen_random_uuid(), 'appointment.updated', 'dp', 'appointment/' || i, now(), '{}'
    from generate_series(1, 4) i`.execute(db);
  // crm: three dead, one of them replayed since (superseded by its replay); erp: one skipped.
  await sql`insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status)
    select gen_random_uuid(), ${crm.id}, id, sequence, subject, 'dead' from switchyard.events where sequence <= 3`.execute(
    db,
  );
  await sql`insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status)
    select gen_random_uuid(), ${erp.id}, id, sequence, subject, 'skipped' from switchyard.events where sequence = 4`.execute(
    db,
  );
  expect(await series('switchyard_deliveries_dead', crm.id)).toBe(3);
  expect(await series('switchyard_deliveries_dead', erp.id)).toBe(0);
  const replay = crypto.randomUUID();
  await sql`insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status, reason)
    select ${replay}::uuid, subscription_id, event_id, event_sequence, subject, 'succeeded', 'replay'
    from switchyard.deliveries where subscription_id = ${crm.id} and event_sequence = 1`.execute(db);
  await sql`update switchyard.deliveries set superseded_by = ${replay}::uuid
    where subscription_id = ${crm.id} and event_sequence = 1 and status = 'dead'`.execute(db);
  expect(await series('switchyard_deliveries_dead', crm.id)).toBe(2);
  // Beside them, many delivered ones: the count reads dead deliveries by index (deliveries_dead_idx,
  // the dead letters waiting, by subscription: migration 49; or deliveries_sub_idx, subscription and
  // status; or deliveries_settled_idx), never the table. Which one is the planner's pick at these
  // sizes (the fresh-clone CI's took deliveries_dead_idx, whose predicate holds the status).
  await sql`insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status, reason)
    select gen_random_uuid(), ${crm.id}, e.id, e.sequence, e.subject, 'succeeded', 'replay'
    from switchyard.events e, generate_series(1, 5000) where e.sequence = 4`.execute(db);
  await sql`analyze switchyard.deliveries`.execute(db);
  const plan = (
    await sql<{ 'QUERY PLAN': string }>`explain select count(*) from switchyard.deliveries d
      where d.subscription_id = ${crm.id} and d.status = 'dead' and d.superseded_by is null`.execute(db)
  ).rows
    .map((r) => r['QUERY PLAN'])
    .join('\n');
  expect(plan).not.toContain('Seq Scan');
  expect(plan, plan).toMatch(/using deliveries_dead_idx|Index Cond: .*status = 'dead'/);
  expect(await series('switchyard_deliveries_dead', crm.id)).toBe(2);
});

it('shows a pull subscription’s feed gap, which its feed answers over HTTP until an ack past it', async () => {
  const { db } = hub.host;
  // Filtered away from the first test's bare events (their envelopes are not CloudEvents).
  const { subscription, secret } = await hub.subscriptions.create({ kind: 'pull', eventTypes: ['slot.*'] });
  expect(await series('switchyard_feed_gap_events', subscription.id)).toBeUndefined();
  // As the purge notes it (pipeline/feed-retention.int.test.ts removes the events for real).
  await sql`insert into switchyard.feed_gaps (subscription_id, through, events) values (${subscription.id}, 3, 3)`.execute(
    db,
  );
  expect(await series('switchyard_feed_gap_events', subscription.id)).toBe(3);
  const read = await call(server.base, 'GET', `/v1/subscriptions/${subscription.id}/events`, {
    token: secret,
  });
  expect(read.status, read.text).toBe(200);
  expect(read.json.gap).toEqual({ through: '3', events: 3 });
  const ack = await call(server.base, 'POST', `/v1/subscriptions/${subscription.id}/ack`, {
    token: secret,
    body: { cursor: '3' },
  });
  expect(ack.status).toBe(200);
  expect(
    (await call(server.base, 'GET', `/v1/subscriptions/${subscription.id}/events`, { token: secret })).json,
  ).not.toHaveProperty('gap');
  expect(await series('switchyard_feed_gap_events', subscription.id)).toBeUndefined();
});
