/**
 * A worker stopped gracefully (SIGTERM) hands the commands it set aside to the other processes at
 * once: those parked behind its instance's share of the slots are pending in the database with no
 * lease, and their jobs had ended, so before they waited for another process's sweep
 * (`commands.sweepInterval`, 30 s; never here, where the sweep is off). Two hub processes (the
 * wiring of `switchyard start`) on one database, a Docplanner simulator whose writes are slow.
 */
import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type CommandHub, docplannerInstance, startCommandHub } from './command-hub.test-support.ts';

const db = useTestDatabase();
const PUSH_KEY = 'dp-hand-over-push-key-9f8e7d';
const PLACE = { facility: '90211', doctor: '182733', address: '221304' };

let sim: DocplannerSimulator;
const hubs: CommandHub[] = [];

async function startHub(): Promise<CommandHub> {
  const hub = await startCommandHub(db.url(), {
    file: 'hand-over.yaml',
    instances: docplannerInstance('dp', sim.url),
    env: { T_PUSH: PUSH_KEY },
    // Two slots, one for an instance: the instance's next commands park. No sweep.
    commands: { concurrency: 2, sweepIntervalMs: 0, retentionCron: false },
  });
  hubs.push(hub);
  return hub;
}

beforeAll(async () => {
  sim = new DocplannerSimulator({ apiKey: PUSH_KEY, timeScale: 0.0001 });
  await sim.start();
  sim.writes.echoes = false;
});

afterAll(async () => {
  for (const hub of hubs) await hub.stop();
  await sim?.close();
});

const api = async (hub: CommandHub, method: string, path: string, body?: unknown) =>
  (await hub.api(method, path, body)).json;

let minute = 0;
async function book(hub: CommandHub): Promise<string> {
  const start = new Date(Date.UTC(2026, 4, 4, 8, 0) + minute++ * 60_000)
    .toISOString()
    .replace('.000Z', '+00:00');
  const sent = await api(hub, 'POST', '/v1/commands', {
    type: 'appointment.book',
    instance: 'dp',
    data: {
      start,
      durationMinutes: 30,
      patient: { name: 'Anna', phone: '+48500100200' },
      practitioner: { id: PLACE.doctor },
      location: { id: PLACE.address },
      organization: { id: PLACE.facility },
      service: { id: '4455661' },
    },
  });
  return sent.id;
}

it('a worker stopped with commands parked hands them over: the other process runs them at once', async () => {
  let calls = 0;
  sim.writes.onRequest = async () => {
    calls++;
    await new Promise((r) => setTimeout(r, 1500));
  };
  const first = await startHub();
  const ids = [await book(first), await book(first), await book(first)];
  // One runs (the instance's one slot), the others park in this process.
  const deadline = Date.now() + 10_000;
  while (calls < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(calls).toBe(1);
  const second = await startHub();
  await first.stop();
  // The running one finished before the stop ended; the parked ones run in the other process.
  const status = async () =>
    Promise.all(ids.map(async (id) => (await api(second, 'GET', `/v1/commands/${id}`)).status as string));
  const until = Date.now() + 10_000;
  let now = await status();
  while (now.some((s) => s !== 'succeeded') && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    now = await status();
  }
  expect(now).toEqual(['succeeded', 'succeeded', 'succeeded']);
  expect(calls).toBe(3);
}, 60_000);
