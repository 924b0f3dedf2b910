/**
 * Changes of one subscription at once, as retrying clients and scripts send them. Each change reads
 * the subscription, merges into it and writes it whole: two at once both read the same row, and the
 * second write undid the first (a PATCH of `timeoutMs` and one of `eventTypes` at once kept one of
 * the two; of two rotations, the secret the first answered never signed). Each pair here is held
 * by a row lock taken in another session until both wait on it, then released. Two enables with
 * `replayMissed` at once (a client retrying after a timeout) both replayed what the subscription
 * missed: every missed event was sent twice.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { secretHint } from '../delivery/secret-box.ts';
import { eventually, makeHub, push, setupInstance } from '../pipeline/fixtures.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { lockWaiters, until } from '../storage/locks.test-support.ts';

const database = useTestDatabase();
let hub: Hub;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  await setupInstance(hub);
});
afterAll(async () => {
  await hub?.stop();
});

/** Runs `changes` at once while subscription `id`'s row is locked, released once `waiting` wait on it. */
async function atOnce<T>(id: string, waiting: number, changes: (() => Promise<T>)[]): Promise<T[]> {
  const holder = new pg.Client({ connectionString: database.url() });
  await holder.connect();
  try {
    await holder.query('begin');
    await holder.query('select 1 from switchyard.subscriptions where id = $1 for update', [id]);
    const done = Promise.all(changes.map((change) => change()));
    await until(async () => (await lockWaiters(hub.host.db)) === waiting);
    await holder.query('commit');
    return await done;
  } finally {
    await holder.end();
  }
}

it('keeps both of two PATCHes of different fields sent at once', async () => {
  await hub.subscriptions.create({ id: 'both-fields', kind: 'pull' });
  await atOnce('both-fields', 2, [
    () => hub.subscriptions.update('both-fields', { timeoutMs: 4321 }),
    () => hub.subscriptions.update('both-fields', { eventTypes: ['slot.*'] }),
  ]);
  const after = await hub.subscriptions.get('both-fields');
  expect({ timeoutMs: after.timeoutMs, eventTypes: after.eventTypes }).toEqual({
    timeoutMs: 4321,
    eventTypes: ['slot.*'],
  });
});

it('keeps every secret two rotations at once answered, with the one before', async () => {
  const { secret: first } = await hub.subscriptions.create({ id: 'two-rotations', kind: 'pull' });
  const rotations = await atOnce('two-rotations', 2, [
    () => hub.subscriptions.rotateSecret('two-rotations', { overlapMs: 600_000 }),
    () => hub.subscriptions.rotateSecret('two-rotations', { overlapMs: 600_000 }),
  ]);
  const after = await hub.subscriptions.get('two-rotations');
  const hints = after.secrets.map((s) => s.secretHint);
  for (const secret of [first!, ...rotations.map((r) => r.secret)])
    expect(hints).toContain(secretHint(secret));
  // The newest signs without an end; every earlier one until its overlap ends.
  expect(after.secrets.filter((s) => s.expiresAt === null)).toHaveLength(1);
});

it('replays what a subscription missed once, when two enables with replayMissed come at once', async () => {
  await hub.subscriptions.create({
    id: 'two-enables',
    url: 'http://127.0.0.1:9/never-reached',
    allowPrivateAddresses: true,
  });
  await hub.subscriptions.disable('two-enables');
  const r = await hub.ingest('acme-1', push({ id: 'missed-n1', type: 'created', booking: 'missed-1' }));
  if (!r.ok) throw new Error('ingest failed');
  await eventually(async () => (await hub.inbound.get(r.stored[0]!)).status === 'normalized');
  const enables = await atOnce('two-enables', 2, [
    () => hub.subscriptions.enable('two-enables', { replayMissed: true }),
    () => hub.subscriptions.enable('two-enables', { replayMissed: true }),
  ]);
  const replays = await sql<{ n: number }>`select count(*)::int as n from switchyard.deliveries
    where subscription_id = 'two-enables' and reason = 'replay'`.execute(hub.host.db);
  expect(replays.rows[0]!.n).toBe(1);
  expect(enables.map((e) => e.replayed).sort()).toEqual([0, 1]);
});
