/**
 * Commands of several connector instances under load, through a started hub process (the wiring
 * of `switchyard start`) and two Docplanner simulators over real HTTP: one instance's slow vendor
 * or queue does not hold back the others' commands (`commands.instanceConcurrency`), and a vendor's
 * rate limit (429 with `X-RateLimit-Reset`) pauses the instance's other commands until the reset
 * instead of each one calling for a 429 of its own.
 */
import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import { useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { HubProcess } from '../runtime/process.ts';
import { type CommandHub, docplannerInstance, startCommandHub } from './command-hub.test-support.ts';

const db = useTestDatabase();
const PUSH_KEY = 'dp-fairness-push-key-9f8e7d';
const PLACE = { facility: '90211', doctor: '182733', address: '221304' };

let slowSim: DocplannerSimulator;
let fastSim: DocplannerSimulator;
let started: CommandHub;
let hub: HubProcess;

beforeAll(async () => {
  slowSim = new DocplannerSimulator({ apiKey: PUSH_KEY, timeScale: 0.0001 });
  fastSim = new DocplannerSimulator({ apiKey: PUSH_KEY, timeScale: 0.0001 });
  await slowSim.start();
  await fastSim.start();
  // Only the commands' own calls: no echoes pushed back.
  slowSim.writes.echoes = false;
  fastSim.writes.echoes = false;
  started = await startCommandHub(db.url(), {
    file: 'fairness.yaml',
    instances: [...docplannerInstance('dp-slow', slowSim.url), ...docplannerInstance('dp-fast', fastSim.url)],
    env: { T_PUSH: PUSH_KEY },
    // Four slots in the process, two for any one instance (the default: half).
    // maxRetryAfter as long as an operator may set it (no upper bound): 30 days, the last test's.
    commands: {
      concurrency: 4,
      retryScheduleMs: [100, 100, 100],
      retryJitter: 0,
      retentionCron: false,
      maxRetryAfterMs: 30 * 86_400_000,
    },
  });
  hub = started.hub;
}, 60_000);

afterAll(async () => {
  await started?.stop();
  await slowSim?.close();
  await fastSim?.close();
});

const api: CommandHub['api'] = (method, path, body) => started.api(method, path, body);

let nextMinute = 0;

/** Books a fresh slot (one a minute apart from the last) on an instance; the command's id. */
async function book(instanceId: string): Promise<string> {
  const start = new Date(Date.UTC(2026, 4, 4, 8, 0) + nextMinute++ * 60_000)
    .toISOString()
    .replace('.000Z', '+00:00');
  const sent = await api('POST', '/v1/commands', {
    type: 'appointment.book',
    instance: instanceId,
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
  expect(sent.status).toBe(202);
  return sent.json.id;
}

/** Polls until every command has finished; the finished commands, by id. */
async function finished(
  ids: string[],
  timeoutMs: number,
): Promise<Map<string, { status: string; attempts: number; completedAt: string }>> {
  const until = Date.now() + timeoutMs;
  type Finished = { status: string; attempts: number; completedAt: string };
  const done = new Map<string, Finished>();
  while (done.size < ids.length) {
    if (Date.now() > until)
      throw new Error(`${ids.length - done.size} commands not finished in ${timeoutMs} ms`);
    for (const id of ids) {
      if (done.has(id)) continue;
      const c = (await api('GET', `/v1/commands/${id}`)).json;
      if (c.status === 'succeeded' || c.status === 'failed') done.set(id, c as Finished);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return done;
}

/**
 * Holds each write call a simulator gets for `holdMs` (a slow vendor) and counts the calls it is
 * answering at once, and the most at any time.
 */
function inFlight(
  sim: DocplannerSimulator,
  holdMs = 0,
): { max: () => number; calls: number[]; stop: () => void } {
  let now = 0;
  let max = 0;
  const calls: number[] = [];
  sim.writes.onRequest = async () => {
    calls.push(Date.now());
    now++;
    max = Math.max(max, now);
    await new Promise((r) => setTimeout(r, holdMs));
    now--;
  };
  return {
    max: () => max,
    calls,
    stop: () => {
      sim.writes.onRequest = undefined;
    },
  };
}

it("one instance's slow vendor and long queue do not hold back another instance's commands", async () => {
  // 16 bookings at a vendor answering in 2 s, queued first: with every slot of the process theirs
  // (as before), the other instance's bookings waited for four rounds of them, about 8 s.
  const slowCalls = inFlight(slowSim, 2000);
  try {
    const slow: string[] = [];
    for (let i = 0; i < 16; i++) slow.push(await book('dp-slow'));
    const sentAt = Date.now();
    const fast: string[] = [];
    for (let i = 0; i < 3; i++) fast.push(await book('dp-fast'));
    const fastDone = await finished(fast, 20_000);
    const fastTook = Math.max(...[...fastDone.values()].map((c) => Date.parse(c.completedAt))) - sentAt;
    expect([...fastDone.values()].map((c) => c.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(fastTook).toBeLessThan(5000);
    const slowDone = await finished(slow, 60_000);
    expect(new Set([...slowDone.values()].map((c) => c.status))).toEqual(new Set(['succeeded']));
    // The slow vendor had two calls at a time from this process, its share of the four slots.
    expect(slowCalls.max()).toBe(2);
    expect(slowCalls.calls).toHaveLength(16);
  } finally {
    slowCalls.stop();
  }
}, 90_000);

it("a vendor's rate limit pauses the instance's other commands until its reset, each with its try kept", async () => {
  // Docplanner's limiter answers 429 with X-RateLimit-Reset (no Retry-After): the first booking's
  // call is refused until 4 s from now (whole seconds: 3 to 4 s).
  fastSim.rateLimitNext(1, 4);
  const first = await book('dp-fast');
  const refusedAt = await (async () => {
    for (;;) {
      const c = (await api('GET', `/v1/commands/${first}`)).json;
      if (c.attempts >= 1 && c.status === 'pending') return Date.now();
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const calls = inFlight(fastSim);
  try {
    const others: string[] = [];
    for (let i = 0; i < 6; i++) others.push(await book('dp-fast'));
    const done = await finished([first, ...others], 30_000);
    // Nothing reached the vendor before its reset (before: the six went out at once, each to be
    // refused while the limit lasted, a try of their few used up by each refusal).
    expect(calls.calls.length).toBe(7);
    expect(Math.min(...calls.calls) - refusedAt).toBeGreaterThan(2000);
    expect([...done.values()].map((c) => c.status)).toEqual(Array(7).fill('succeeded'));
    expect(others.map((id) => done.get(id)!.attempts)).toEqual(Array(6).fill(1));
    expect(done.get(first)!.attempts).toBe(2);
    // After the reset, at most the instance's share at once: no herd.
    expect(calls.max()).toBeLessThanOrEqual(2);
  } finally {
    calls.stop();
  }
}, 60_000);

it("a flood of one instance's commands parks at most 256 in the process; the rest wait in the database, none lost", async () => {
  // The slow vendor answers nothing until the test lets it: every command beyond the two running
  // is parked or waits. Before, the process fetched the whole queue and parked every job (698 here;
  // 19,938 of 20,000, 9.8 MB of heap, in a measurement), however many came.
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  let calls = 0;
  slowSim.writes.onRequest = async () => {
    calls++;
    await opened;
  };
  const client = new pg.Client({ connectionString: db.url() });
  await client.connect();
  try {
    const slow: string[] = [];
    for (let i = 0; i < 700; i++) slow.push(await book('dp-slow'));
    // Every job fetched: none left in pg-boss's queue.
    for (;;) {
      const r = await client.query<{ n: number }>(
        `select count(*)::int as n from switchyard_queue.job where name = 'switchyard-command' and state in ('created', 'retry')`,
      );
      if (r.rows[0]!.n === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const metrics = await (await fetch(`${hub.url}/metrics`)).text();
    // Whose backlog it is, per instance: the slow vendor's, not the other one's.
    const parked = Number(/^switchyard_commands_parked\{instance="dp-slow"\} (\d+)$/m.exec(metrics)?.[1]);
    expect(parked).toBeGreaterThan(0);
    expect(parked).toBeLessThanOrEqual(256);
    expect(metrics).not.toMatch(/^switchyard_commands_parked\{instance="dp-fast"\}/m);
    // The other instance's commands still go out while the slow one's wait.
    const fast = await finished([await book('dp-fast')], 20_000);
    expect([...fast.values()].map((c) => c.status)).toEqual(['succeeded']);
    open();
    const done = await finished(slow, 100_000);
    expect(new Set([...done.values()].map((c) => c.status))).toEqual(new Set(['succeeded']));
    // Each command called the vendor once: the ones read back from the database were not run twice.
    expect(calls).toBe(700);
    // One try each, but for a book held at the vendor past the hub's 10 s request timeout (under
    // CI's load, the 700 books and the wait for pg-boss took longer than that once): its next try
    // looked the booking up (a read, not a write) and was done with it. A second try for any other
    // reason would be a command run twice.
    const retried = [...done.entries()].filter(([, c]) => c.attempts !== 1);
    for (const [id, c] of retried) {
      const detail = (await api('GET', `/v1/commands/${id}`)).json;
      const firstWrite = detail.calls.find(
        (x: { attempt: number; method: string; url: string }) =>
          x.attempt === 1 && x.method === 'POST' && x.url.endsWith('/book'),
      );
      expect({
        attempts: c.attempts,
        firstAnswered: firstWrite?.statusCode,
        done: detail.result?.alreadyDone,
      }).toEqual({
        attempts: 2,
        firstAnswered: null,
        done: true,
      });
    }
  } finally {
    open();
    slowSim.writes.onRequest = undefined;
    await client.end();
  }
}, 180_000);

// Last: it leaves dp-fast paused for 30 days.
it('a pause longer than a timer can wait (a reset 30 days ahead) keeps the commands parked without spinning', async () => {
  // Node's setTimeout fires after 1 ms, with a TimeoutOverflowWarning, for more than 2^31 - 1 ms
  // (24.8 days): the pause's release timer fired, found the pause on, and armed itself again, about
  // 700 times a second, each a warning on stderr, for as long as the pause lasted.
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  let calls: ReturnType<typeof inFlight> | undefined;
  try {
    fastSim.rateLimitNext(1, 30 * 86_400);
    const first = await book('dp-fast');
    for (;;) {
      const c = (await api('GET', `/v1/commands/${first}`)).json;
      if (c.attempts >= 1 && c.status === 'pending') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    calls = inFlight(fastSim);
    const parked = await book('dp-fast');
    await new Promise((r) => setTimeout(r, 1500));
    expect(warnings.filter((name) => name === 'TimeoutOverflowWarning')).toEqual([]);
    // Parked, not sent: the vendor asked for 30 days.
    expect((await api('GET', `/v1/commands/${parked}`)).json).toMatchObject({
      status: 'pending',
      attempts: 0,
    });
    expect(calls.calls).toEqual([]);
  } finally {
    calls?.stop();
    process.off('warning', onWarning);
  }
}, 30_000);
