/**
 * A process stopped in a pull turn gives its instance back (due at once) and says so: the other
 * processes hear `NOTIFY switchyard_pull` and take the instance at once. Before, one whose loop
 * slept (nothing else due) woke when the stopped process's lease would have ended, up to 30 s on,
 * or at its polling backstop.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { useTestDatabase } from '@switchyard/testing';
import { afterEach, expect, it } from 'vitest';
import { behaviour, eventually, makeHub, resetBehaviour } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
const hubs: Hub[] = [];
afterEach(async () => {
  for (const hub of hubs.splice(0)) await hub.stop();
  resetBehaviour();
});

it('a process stopped in a pull turn wakes the others: one whose loop sleeps pulls the instance at once', async () => {
  const stopping = await makeHub(database.url());
  // Its backstop is a minute: only a wake-up makes it look before the stopped lease would end.
  const waiting = await makeHub(database.url(), { options: { pollIntervalMs: 60_000 } });
  hubs.push(waiting);
  await stopping.start();
  behaviour.pullBatchSize = 1;
  behaviour.pullQueue.push(...Array.from({ length: 40 }, (_, i) => ({ id: `w-${i}`, type: 'noop' })));
  let fetches = 0;
  behaviour.beforePull = async (id) => {
    if (id !== 'acme-wake') return;
    fetches++;
    await sleep(25);
  };
  await stopping.instances.upsert({
    id: 'acme-wake',
    connector: 'acme',
    mode: 'pull',
    settings: { apiKey: 'k' },
    pull: { intervalMs: 3_600_000 },
  });
  await eventually(async () => fetches >= 3);
  // Started while the instance is leased: its first pass finds nothing due before the lease ends.
  await waiting.start();
  await sleep(300);
  expect(behaviour.pullQueue.length).toBeGreaterThan(0);
  await stopping.stop();
  const stoppedAt = Date.now();
  await eventually(async () => behaviour.pullQueue.length === 0);
  expect(Date.now() - stoppedAt).toBeLessThan(3000);
});

it('a process stopped between two pull turns wakes the others too: the instance is pulled when due, not when a lease it held would have ended', async () => {
  const stopping = await makeHub(database.url());
  const waiting = await makeHub(database.url(), { options: { pollIntervalMs: 60_000 } });
  hubs.push(waiting);
  await stopping.start();
  let open = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let inTurn = false;
  let turns = 0;
  behaviour.beforePull = async (id) => {
    if (id !== 'acme-between') return;
    turns++;
    inTurn = true;
    await gate;
  };
  await stopping.instances.upsert({
    id: 'acme-between',
    connector: 'acme',
    mode: 'pull',
    settings: { apiKey: 'k' },
    pull: { intervalMs: 1500 },
  });
  await eventually(async () => inTurn);
  // Its first pass finds the instance leased: it sleeps until that lease would end (30 s on).
  await waiting.start();
  await sleep(300);
  open();
  // The turn ends (the instance due 1.5 s later) and the process stops before the next one.
  await sleep(300);
  await stopping.stop();
  expect(turns).toBe(1);
  behaviour.pullQueue.push({ id: 'b-1', type: 'noop' });
  const stoppedAt = Date.now();
  await eventually(async () => behaviour.pullQueue.length === 0);
  expect(Date.now() - stoppedAt).toBeLessThan(5000);
});
