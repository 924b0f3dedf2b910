/**
 * Ingest first (pipeline/pressure.ts): while pushes queue for their durable write in a process that
 * also runs the workers, its normalize worker runs one run at a time; once the queue is gone it is
 * back at its full concurrency. Turned off (`ingestFirst: false`), the worker keeps its concurrency
 * during the burst.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
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

/**
 * Pushes from `clients` clients at once, each sending its next push as soon as the last one is
 * acknowledged, for `ms` (much longer than a normalization: what the worker does meanwhile shows);
 * each message of its own key. Resolves once all are acknowledged, with the number pushed.
 * `behaviour.maxNormalizing` then holds the most normalizations at once from 150 ms after the
 * process first saw its pushes queue (what claims and ingest statements decided before that, at
 * full concurrency, has ended by then), or from 150 ms on with ingest first off.
 */
async function burst(hub: Hub, tag: string, clients = 48, ms = 600): Promise<number> {
  const until = Date.now() + ms;
  let n = 0;
  const watch = (async () => {
    if (hub.options.ingestFirst) while (!hub.ingestPressure.pressed && Date.now() < until) await sleep(2);
    await sleep(150);
    behaviour.maxNormalizing = behaviour.normalizing;
  })();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < until) {
        const i = n++;
        const a = await hub.ingest(
          'acme-1',
          push({ id: `${tag}-${i}`, type: 'created', booking: `b-${tag}-${i}` }),
        );
        expect(a.ok).toBe(true);
      }
    }),
  );
  await watch;
  return n;
}

async function allNormalized(hub: Hub, tag: string, n: number) {
  await eventually(async () => {
    const r = await sql<{ n: string }>`select count(*) as n from switchyard.inbound_messages
      where dedupe_key like ${`${tag}-%`} and status = 'normalized'`.execute(hub.host.db);
    return Number(r.rows[0]!.n) === n || undefined;
  }, 20_000);
}

it('normalizes one run at a time while pushes queue for their write, at full concurrency after', async () => {
  const hub = await startHub(true);
  behaviour.normalizeDelayMs = 30;
  const n = await burst(hub, 'if-1');
  // Every push acknowledged: while they queued, the worker had at most one normalization going.
  expect(behaviour.maxNormalizing).toBe(1);
  // It did queue, for most of the burst (the window above measured the worker giving way).
  expect(hub.ingestPressure.pressedSeconds).toBeGreaterThan(0.3);
  // The queue is gone: what waits is normalized at the worker's full concurrency.
  behaviour.maxNormalizing = behaviour.normalizing;
  await allNormalized(hub, 'if-1', n);
  expect(behaviour.maxNormalizing).toBeGreaterThan(4);
});

it('turned off, keeps normalizing at full concurrency during the burst', async () => {
  const hub = await startHub(false);
  behaviour.normalizeDelayMs = 30;
  const n = await burst(hub, 'if-2');
  // The same burst as above: the worker normalized several at once while the pushes queued.
  expect(behaviour.maxNormalizing).toBeGreaterThan(1);
  await allNormalized(hub, 'if-2', n);
});
