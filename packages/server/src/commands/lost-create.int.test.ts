/**
 * A creating command whose answer a proxy replaced after the vendor acted, through a started hub:
 * a 503 with `Retry-After` (the answer a gateway gives when its upstream is slow, or a proxy's own
 * rate limit after it forwarded the write) was taken as "the vendor did nothing", and the retry
 * booked a second appointment. Now the next try looks for what the first one made before any
 * re-send: exactly one appointment at the vendor, and the command's result names it. Clockwise.MD
 * (no list call: found through its create webhook) and Docplanner (the slot's bookings listed).
 */

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ClockwiseSimulator } from '@switchyard/connector-clockwisemd/simulator';
import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CommandHub,
  clockwiseInstance,
  docplannerInstance,
  startCommandHub,
} from './command-hub.test-support.ts';

const db = useTestDatabase();
const DP_PUSH = 'dp-lost-create-push-key-9f8e7d';
const CW_HOOK_KEY = 'cw-lost-create-hook-key-0123456789';
const CW_API_KEY = 'cw-lost-create-api-key-abcdef';
const PLACE = { facility: '90211', doctor: '182733', address: '221304' };

/**
 * A proxy in front of a vendor: forwards every request; the answer to the next request `swallow`
 * matches is replaced by a 503 with `Retry-After: 1` once the vendor has carried it out (what it
 * answered is kept in `swallowed`).
 */
async function startProxy(upstream: string) {
  const swallowed: { path: string; status: number; body: string }[] = [];
  let swallow: RegExp | undefined;
  const read = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });
  const server: Server = createServer(async (req, res) => {
    const body = await read(req);
    const headers = Object.fromEntries(
      Object.entries(req.headers).filter(
        (e): e is [string, string] => typeof e[1] === 'string' && !['host', 'connection'].includes(e[0]),
      ),
    );
    const answer = await fetch(`${upstream}${req.url}`, {
      method: req.method ?? 'GET',
      headers,
      ...(body.length > 0 ? { body } : {}),
    });
    const text = await answer.text();
    if (swallow?.test(req.url ?? '') && req.method === 'POST') {
      swallow = undefined;
      swallowed.push({ path: req.url ?? '', status: answer.status, body: text });
      res.writeHead(503, { 'content-type': 'text/html', 'retry-after': '1' });
      res.end('<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>');
      return;
    }
    res.writeHead(answer.status, {
      'content-type': answer.headers.get('content-type') ?? 'application/json',
    });
    res.end(text);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    swallowed,
    swallowNext(path: RegExp) {
      swallow = path;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let dpSim: DocplannerSimulator;
let dpProxy: Awaited<ReturnType<typeof startProxy>>;
let cwSim: ClockwiseSimulator;
let c: CommandHub;

const api = (method: string, path: string, body?: unknown) => c.api(method, path, body);
const finished = (id: string) => c.finished(id, 20_000);

beforeAll(async () => {
  dpSim = new DocplannerSimulator({ apiKey: DP_PUSH, timeScale: 0.0001 });
  await dpSim.start();
  dpProxy = await startProxy(dpSim.url);
  cwSim = new ClockwiseSimulator({ key: CW_HOOK_KEY, keyPlacement: 'header', apiKey: CW_API_KEY });
  await cwSim.start();
  c = await startCommandHub(db.url(), {
    file: 'lost-create.yaml',
    instances: [
      ...docplannerInstance('dp', dpProxy.url),
      ...clockwiseInstance('cw', { hookKey: CW_HOOK_KEY, apiKey: CW_API_KEY, apiBaseUrl: cwSim.apiBaseUrl }),
    ],
    env: { T_PUSH: DP_PUSH },
    commands: {
      // Enough tries for the create webhook's normalization (it waits up to 3 s for the command).
      retryScheduleMs: [500, 500, 500, 500, 500, 500, 500, 500, 500, 500],
      retryJitter: 0,
      sweepIntervalMs: 200,
      leaseMs: 10_000,
      retentionCron: false,
    },
  });
  // Clockwise.MD's create webhook, which names what the create made, reaches the hub.
  cwSim.writes.hookUrl = `${c.hub.url}/hooks/cw`;
}, 60_000);

afterAll(async () => {
  await c?.stop();
  await dpProxy?.close();
  await dpSim?.close();
  await cwSim?.close();
});

describe('a creating command answered 503 with Retry-After after the vendor acted', () => {
  it('Clockwise.MD: one appointment, and the command names it', async () => {
    // The simulator books, and answers 503 with Retry-After: 1 (the proxy's answer) instead.
    cwSim.writes.loseAnswers(1, 503, 1);
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.book',
      instance: 'cw',
      data: {
        start: '2026-04-02T10:00:00-05:00',
        patient: { given: 'Proxied', family: 'Once' },
        location: { id: '77' },
      },
    });
    expect(sent.status).toBe(202);
    const done = await finished(sent.json.id);
    const creates = cwSim.writes.log.filter(
      (w) => w.path === '/v1/appointments/create' && w.body?.first_name === 'Proxied',
    );
    // Before: two creates (the second on the retry after the 503), two appointments for one booking.
    expect(creates.map((w) => `${w.status} ${w.lostStatus}`)).toEqual(['503 200']);
    expect(done).toMatchObject({
      status: 'succeeded',
      result: { vendorIds: [creates[0]!.id], alreadyDone: true, appointmentId: expect.any(String) },
    });
    expect(done.attempts).toBeGreaterThan(1);
  });

  for (const lost of [502, 503, 0]) {
    it(`Clockwise.MD, the answer lost otherwise (${lost || 'the connection cut'}): one appointment, and the command names it`, async () => {
      cwSim.writes.loseAnswers(1, lost);
      const sent = await api('POST', '/v1/commands', {
        type: 'appointment.book',
        instance: 'cw',
        data: {
          start: '2026-04-02T11:00:00-05:00',
          patient: { given: `Lost${lost}`, family: 'Answer' },
          location: { id: '77' },
        },
      });
      const done = await finished(sent.json.id);
      const creates = cwSim.writes.log.filter(
        (w) => w.path === '/v1/appointments/create' && w.body?.first_name === `Lost${lost}`,
      );
      // Before: failed, "outcome unknown", though the create webhook had named the appointment.
      expect(creates.map((w) => `${w.status} ${w.lostStatus}`)).toEqual([`${lost} 200`]);
      expect(done).toMatchObject({ status: 'succeeded', result: { vendorIds: [creates[0]!.id] } });
    });
  }

  it('Docplanner (a proxy in front of it): one booking, and the command names it', async () => {
    dpProxy.swallowNext(/\/slots\/[^/]+\/book$/);
    const start = '2026-04-07T09:30:00+02:00';
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.book',
      instance: 'dp',
      data: {
        start,
        durationMinutes: 30,
        patient: { name: 'Anna Proxied', phone: '+48500100299' },
        practitioner: { id: PLACE.doctor },
        location: { id: PLACE.address },
        organization: { id: PLACE.facility },
        service: { id: '4455661' },
      },
    });
    expect(sent.status).toBe(202);
    const done = await finished(sent.json.id);
    const books = dpSim.writes.log.filter((w) => w.path.endsWith('/book'));
    // Before: booked again on the retry (the slot then taken: a second booking, or a 409 failure).
    expect(books.map((w) => w.status)).toEqual([200]);
    expect(dpProxy.swallowed).toHaveLength(1);
    const booked = JSON.parse(dpProxy.swallowed[0]!.body) as { id: string };
    expect(done).toMatchObject({
      status: 'succeeded',
      result: { vendorIds: [String(booked.id)], alreadyDone: true, appointmentId: expect.any(String) },
    });
  });
});

describe('a lost Clockwise.MD create and another booking of the same slot', () => {
  it("another patient's create webhook of the same name but other contact details is not taken for the command's appointment", async () => {
    // The create never reaches Clockwise.MD (a gateway's 502, nothing done): its outcome is unknown.
    cwSim.failApi(1, { status: 502 });
    const start = '2026-04-03T09:00:00-05:00';
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.book',
      instance: 'cw',
      data: {
        start,
        patient: { given: 'Maria', family: 'Garcia', phone: '+1 555 010 0001', email: 'maria@example.org' },
        location: { id: '78' },
      },
    });
    expect(sent.status).toBe(202);
    for (let until = Date.now() + 10_000; ; ) {
      const c = (await api('GET', `/v1/commands/${sent.json.id}`)).json;
      if (c.attempts >= 1 && c.status !== 'running') break;
      if (Date.now() > until) throw new Error(`no first try: ${JSON.stringify(c)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // Someone else books the same slot at the same hospital under the same name (Clockwise.MD's
    // online booking): its create webhook reaches the hub.
    const other = await fetch(`${cwSim.apiBaseUrl}/appointments/create`, {
      method: 'POST',
      headers: { authtoken: CW_API_KEY, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        hospital_id: '78',
        apt_time: start,
        first_name: 'maria',
        last_name: 'GARCIA',
        phone_number: '555-0199-999',
        email: 'someone.else@example.org',
        type: 'online',
      }),
    });
    expect(other.status).toBe(200);
    const otherId = String(((await other.json()) as { id: number }).id);
    for (let until = Date.now() + 10_000; ; ) {
      const events = (await api('GET', '/v1/events?type=appointment.created&limit=50')).json;
      if (JSON.stringify(events).includes(`"value":"${otherId}"`)) break;
      if (Date.now() > until) throw new Error('the other booking was not normalized');
      await new Promise((r) => setTimeout(r, 50));
    }
    // Several tries later (500 ms apart) the command still waits for its own webhook. On the old
    // code it succeeded at once with the other patient's appointment as its own (alreadyDone): a
    // cancel through the hub would then have removed that patient's booking.
    await new Promise((r) => setTimeout(r, 2500));
    const c = (await api('GET', `/v1/commands/${sent.json.id}`)).json;
    expect(JSON.stringify(c.result ?? null)).not.toContain(otherId);
    expect(c.status).not.toBe('succeeded');
    expect(cwSim.writes.log.filter((w) => w.body?.first_name === 'Maria')).toEqual([]);
  });
});
