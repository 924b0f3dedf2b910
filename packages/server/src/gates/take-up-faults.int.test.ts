/**
 * Fault tests of the gate take-up (gates.ts `takeUpWhenAbandoned`, store.ts `takeUpGateRequest`):
 * the deciding process paused and resumed after a vendor retry took its request up, and two
 * retries in two processes taking up the same request at once. Real Postgres, a forked hub process
 * (gate-process.test-support.ts) stopped, continued or killed with signals, approvers on loopback.
 */
import { type ChildProcess, fork } from 'node:child_process';
import type { JsonObject } from '@switchyard/core';
import { type RecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../pipeline/hub.ts';
import type { Gates } from './gates.ts';
import {
  API_KEY,
  addApprover,
  dpFixture,
  pushTo,
  SECRET_KEY,
  startGatesHub,
} from './gates-hub.test-support.ts';
import { getGateRequest } from './store.ts';

const database = useTestDatabase();
const DEADLINE_MS = 3000;

const hubs: { hub: Hub; gates: Gates }[] = [];
const subscribers: RecordingSubscriber[] = [];
const children: ChildProcess[] = [];
let counter = 0;

async function makeHub(): Promise<{ hub: Hub; gates: Gates }> {
  const started = await startGatesHub(database.url(), {
    gates: { worker: true, approverCacheMs: 0, sweepIntervalMs: 0 },
  });
  hubs.push(started);
  return started;
}

let main: { hub: Hub; gates: Gates };

beforeAll(async () => {
  main = await makeHub();
  await main.hub.instances.upsert({
    id: 'dp',
    connector: 'docplanner',
    mode: 'push',
    settings: { pushAuth: { apiKey: API_KEY } },
    gate: { deadlineMs: DEADLINE_MS, default: 'approve' },
  });
});

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const { gates } of hubs) await gates.drain();
  for (const s of await main.hub.subscriptions.list()) await main.hub.subscriptions.remove(s.id);
});

afterAll(async () => {
  for (const { hub, gates } of hubs.reverse()) {
    await gates.stop();
    await hub.stop();
  }
  await Promise.all(subscribers.map((s) => s.close()));
});

/** A distinct slot-booking: a new gate request. */
function slotBooking(n = ++counter): JsonObject {
  const body = dpFixture('slot-booking');
  const request = (body.data as JsonObject).visit_booking_request as JsonObject;
  const minute = String(n % 60).padStart(2, '0');
  request.start_at = `2026-05-01T09:${minute}:00+02:00`;
  request.end_at = `2026-05-01T09:${minute}:30+02:00`;
  (request.patient as JsonObject).phone = `+48611${String(100000 + n)}`;
  return body;
}

const push = (hub: Hub, body: JsonObject) => pushTo(hub, 'dp', body);

async function approver(handler: (n: number) => Promise<{ status: number; body: JsonObject }>) {
  let calls = 0;
  const sub = await addApprover(main.hub, 'crm', { handler: () => handler(++calls) });
  subscribers.push(sub);
  return sub;
}

async function spawnGateProcess(): Promise<{ child: ChildProcess; base: string }> {
  const child = fork(new URL('./gate-process.test-support.ts', import.meta.url), [
    JSON.stringify({ databaseUrl: database.url(), secretKey: SECRET_KEY }),
  ]);
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gate process not ready in 30 s')), 30_000);
    child.on('message', (m: { type?: string; port?: number }) => {
      if (m.type !== 'ready') return;
      clearTimeout(timer);
      resolve(m.port!);
    });
    child.once('exit', (code) => reject(new Error(`gate process exited with ${code} before ready`)));
  });
  return { child, base: `http://127.0.0.1:${port}` };
}

/** The vendor's first request, to the gate process: its status, or 'broken'. */
function firstRequest(base: string, body: JsonObject): Promise<number | 'broken'> {
  return fetch(`${base}/hooks/dp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
    body: JSON.stringify(body),
  }).then(
    (r) => r.status,
    () => 'broken' as const,
  );
}

const refusal = { status: 409, body: { vendorErrorCode: 14 } };
const hang = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('gate take-up under faults', () => {
  it('a decider paused past its deadline and resumed while the retry asks the approvers does not record its default over the take-up', async () => {
    let resume: () => void = () => {};
    const a = await approver(async (n) => {
      if (n === 1) await hang(60_000); // the paused process's call: never answered in time
      if (n === 2) {
        resume(); // the paused process runs again while the retry's approver is deciding
        await hang(800);
      }
      return refusal;
    });
    const gate = await spawnGateProcess();
    const body = slotBooking();
    const started = Date.now();
    const first = firstRequest(gate.base, body);
    await a.waitFor(1);
    gate.child.kill('SIGSTOP');
    resume = () => gate.child.kill('SIGCONT');
    // The vendor timed out and retries once the first request's deadline has passed; the paused
    // process still runs (kill -0 answers), so the retry takes it up 250 ms past that deadline.
    await hang(Math.max(0, started + DEADLINE_MS + 100 - Date.now()));
    const retry = await push(main.hub, body);
    const id = (await main.gates.list({ instanceId: 'dp', limit: 1 })).items[0]!.id;
    await main.gates.drain();
    const row = await getGateRequest(main.hub.host.db, id);
    // The retry has the approver's refusal, and that is what is recorded. On the old code the
    // resumed process recorded its default (approve, deadline) first and the retry answered it.
    expect(retry).toMatchObject({ status: 409, body: { error_code: 14 } });
    expect(row).toMatchObject({ decision: 'refuse', decision_reason: 'refused', response_status: 409 });
    expect(a.requests).toHaveLength(2);
    // The first connection, the one the vendor gave up on, got the paused process's default.
    expect(await first).toBe(200);
  }, 30_000);

  it('two retries in two processes at once: one takes the request up, both answer its decision', async () => {
    const other = await makeHub();
    const a = await approver(async (n) => {
      if (n === 1) await hang(60_000);
      await hang(200);
      return refusal;
    });
    const gate = await spawnGateProcess();
    const exited = new Promise((resolve) => gate.child.once('exit', resolve));
    const body = slotBooking();
    const first = firstRequest(gate.base, body);
    await a.waitFor(1);
    gate.child.kill('SIGKILL');
    await exited;
    expect(await first).toBe('broken');
    const [r1, r2] = await Promise.all([push(main.hub, body), push(other.hub, body)]);
    expect(r1).toMatchObject({ status: 409, body: { error_code: 14 } });
    expect(r2).toMatchObject({ status: 409, body: { error_code: 14 } });
    // One take-up: the approver is asked once more, not once per retry.
    expect(a.requests).toHaveLength(2);
    const id = (await main.gates.list({ instanceId: 'dp', limit: 1 })).items[0]!.id;
    const row = await getGateRequest(main.hub.host.db, id);
    expect([main.gates.workerId, other.gates.workerId]).toContain(row?.claimed_by);
    expect(row).toMatchObject({ decision: 'refuse', decision_reason: 'refused' });
  }, 30_000);
});
