/**
 * Ingest first (pipeline/pressure.ts): while pushes queue for their durable write in a process that
 * also runs the workers, its normalize worker runs one run at a time and rests after each; once the
 * queue is gone it is back at its full concurrency, without rests. Turned off (`ingestFirst: false`), the worker keeps its concurrency.
 * The queue the worker reads is the writer's count (`IngestPressure`); the tests set it directly
 * rather than time writes against this machine's commit speed, and a burst of pushes from many
 * clients shows the writer counting a real queue.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  behaviour,
  eventually,
  makeHub,
  push,
  resetBehaviour,
  setupInstance,
} from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';
import {
  INGEST_FIRST_REST,
  INGEST_PRESSURE_HOLD_MS,
  INGEST_PRESSURE_WAITING,
  type IngestPressure,
} from './pressure.ts';

const database = useTestDatabase();
const hubs: Hub[] = [];

beforeEach(() => resetBehaviour());
afterEach(async () => {
  for (const hub of hubs.splice(0)) await hub.stop();
});

async function startHub(ingestFirst: boolean): Promise<Hub> {
  const hub = await makeHub(database.url(), { options: { ingestFirst } });
  hubs.push(hub);
  await hub.start();
  await setupInstance(hub);
  return hub;
}

async function pushOne(hub: Hub, tag: string, i: number): Promise<void> {
  const a = await hub.ingest(
    'acme-1',
    push({ id: `${tag}-${i}`, type: 'created', booking: `b-${tag}-${i}` }),
  );
  expect(a.ok).toBe(true);
}

/**
 * Stores `n` messages of one ordering key in one push through a hub that does not normalize, so the
 * running hub claims them together (its claim is woken by the push's NOTIFY).
 */
async function storeKeyRun(tag: string, n: number): Promise<void> {
  const storing = await makeHub(database.url());
  try {
    const items = Array.from({ length: n }, (_, i) => ({
      id: `${tag}-${i}`,
      type: 'created',
      booking: `b-${tag}`,
    }));
    expect((await storing.ingest('acme-1', push({ items }))).ok).toBe(true);
  } finally {
    await storing.stop();
  }
}

/** Pushes `n` messages at once, each of its own key, and waits until all are normalized. */
async function pushAndNormalize(hub: Hub, tag: string, n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => pushOne(hub, tag, i)));
  await allNormalized(hub, tag, n);
}

async function allNormalized(hub: Hub, tag: string, n: number) {
  await eventually(async () => {
    const r = await sql<{ n: string }>`select count(*) as n from switchyard.inbound_messages
      where dedupe_key like ${`${tag}-%`} and status = 'normalized'`.execute(hub.host.db);
    return Number(r.rows[0]!.n) === n || undefined;
  }, 20_000);
}

/**
 * Makes `waiting` pushes wait for their write, as far as the process can tell: what
 * `InboundWriter.write` counts around each write. The writes themselves are timing (how fast this
 * machine commits decides how many wait at once); counting them is what the worker reads.
 */
function queueWrites(hub: Hub, waiting = INGEST_PRESSURE_WAITING): () => void {
  // The hub shows a read-only view of the writer's counter; the counter itself is behind it.
  const pressure = hub.ingestPressure as IngestPressure;
  for (let i = 0; i < waiting; i++) pressure.begin();
  return () => {
    for (let i = 0; i < waiting; i++) pressure.end();
  };
}

it('normalizes one run at a time while pushes queue for their write, at full concurrency after', async () => {
  const hub = await startHub(true);
  behaviour.normalizeDelayMs = 30;
  const written = queueWrites(hub);
  expect(hub.ingestPressure.pressed).toBe(true);
  // What arrives meanwhile is normalized, one at a time (each a run of its own, with its rest).
  await pushAndNormalize(hub, 'if-1', 8);
  expect(behaviour.maxNormalizing).toBe(1);
  expect(hub.ingestPressure.pressed).toBe(true);
  // The queue is gone: once the hold is over, the worker is back at its full concurrency.
  written();
  const freed = performance.now();
  await eventually(async () => !hub.ingestPressure.pressed);
  expect(performance.now() - freed).toBeGreaterThanOrEqual(INGEST_PRESSURE_HOLD_MS - 1);
  behaviour.maxNormalizing = 0;
  await pushAndNormalize(hub, 'if-2', 40);
  expect(behaviour.maxNormalizing).toBeGreaterThan(4);
});

it('while pushes queue, takes whole runs and rests after each, four times as long as it took', async () => {
  const hub = await startHub(true);
  // Whether the message before the one being normalized (same key) was committed by then: in a
  // run of one it was, in a longer run it waits for the run's commit.
  const committedBefore: boolean[] = [];
  const startedAt: number[] = [];
  behaviour.afterHubId = async () => {
    startedAt.push(performance.now());
    const [tag, n] = behaviour.seen.at(-1)!.key.split('-');
    if (tag !== 'rp' || n === '0') return;
    const r = await sql<{ status: string }>`select status from switchyard.inbound_messages
      where dedupe_key = ${`${tag}-${Number(n) - 1}`}`.execute(hub.host.db);
    committedBefore.push(r.rows[0]?.status === 'normalized');
  };
  const written = queueWrites(hub);
  await storeKeyRun('rp', 6);
  await allNormalized(hub, 'rp', 6);
  // One run took them (a slow machine may commit part of it early: RUN_FLUSH_MS).
  expect(committedBefore).toContain(false);
  // Messages of keys of their own: a run each, one at a time, the next starting after the rest
  // that followed the last one: at least INGEST_FIRST_REST times the normalization it waited for.
  behaviour.normalizeDelayMs = 40;
  startedAt.length = 0;
  await pushAndNormalize(hub, 'rs', 3);
  expect(behaviour.maxNormalizing).toBe(1);
  expect(startedAt).toHaveLength(3);
  for (let i = 1; i < 3; i++)
    expect(startedAt[i]! - startedAt[i - 1]!).toBeGreaterThanOrEqual(INGEST_FIRST_REST * 40);
  // Once the queue is gone the worker no longer rests: pushed together, they overlap.
  written();
  await eventually(async () => !hub.ingestPressure.pressed);
  behaviour.maxNormalizing = 0;
  await pushAndNormalize(hub, 'rt', 6);
  expect(behaviour.maxNormalizing).toBeGreaterThan(1);
});

it('turned off, keeps normalizing at full concurrency while pushes queue', async () => {
  const hub = await startHub(false);
  behaviour.normalizeDelayMs = 30;
  queueWrites(hub);
  expect(hub.ingestPressure.pressed).toBe(false);
  await pushAndNormalize(hub, 'if-3', 40);
  expect(behaviour.maxNormalizing).toBeGreaterThan(4);
});

it('pushes from many clients at once do queue for their write, and the time is counted', async () => {
  const hub = await startHub(true);
  // The table's writes held (a SHARE lock: inserts wait, reads do not) while 48 clients push at
  // once: their writes queue behind it, whatever this machine's speed. Timed instead (48 clients
  // for 600 ms), a CPU-starved run never had 32 pushes waiting at once, its commits outpacing the
  // starved event loop (fresh-clone CI under load: pressedSeconds 0).
  const holder = new pg.Client({ connectionString: database.url() });
  await holder.connect();
  let pushes: Promise<void>[];
  try {
    await holder.query('begin');
    await holder.query('lock table switchyard.inbound_messages in share mode');
    pushes = Array.from({ length: 48 }, (_, i) => pushOne(hub, 'if-4', i));
    await eventually(async () => hub.ingestPressure.pressed, 30_000);
  } finally {
    await holder.query('commit');
    await holder.end();
  }
  await Promise.all(pushes);
  expect(hub.ingestPressure.pressedSeconds).toBeGreaterThan(0);
  await allNormalized(hub, 'if-4', 48);
});
