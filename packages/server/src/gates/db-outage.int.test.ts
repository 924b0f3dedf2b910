/**
 * A vendor's approval request while Postgres is unreachable: the hub reaches Postgres through a TCP
 * proxy the test cuts. The request gets the instance's configured default, within its deadline
 * (for Docplanner any answer but a 2xx refuses the booking, so a 503 would refuse every booking of
 * the outage whatever the operator chose); a push that is not a gate still gets 503 (nothing stored,
 * so the vendor must send it again).
 */
import { readFileSync } from 'node:fs';
import { docplannerConnector } from '@switchyard/connector-docplanner';
import type { JsonObject } from '@switchyard/core';
import {
  inboundRequest,
  type RecordingSubscriber,
  startRecordingSubscriber,
  useTestDatabase,
} from '@switchyard/testing';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import { createHub, type Hub } from '../pipeline/hub.ts';
import { startTcpProxy, type TcpProxy } from '../reliability/tcp-proxy.test-support.ts';
import { createGates, type Gates } from './gates.ts';

const database = useTestDatabase();
const SECRET_KEY = 'gates-outage-secret-key-0123456789';
const API_KEY = 'dp-push-key';
const DEADLINE_MS = 1500;
const fixtures = new URL('../../../connectors/docplanner/fixtures/', import.meta.url);
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`${name}.json`, fixtures), 'utf8')) as JsonObject;

let proxy: TcpProxy;
let hub: Hub;
let gates: Gates;
let approver: RecordingSubscriber | undefined;

beforeAll(async () => {
  const direct = new URL(database.url());
  proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  const proxied = new URL(database.url());
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  // The approver list read for every request: the one created below is asked at once.
  gates = createGates({ worker: true, approverCacheMs: 0 });
  hub = await createHub({
    databaseUrl: proxied.toString(),
    connectors: [docplannerConnector],
    secretKey: SECRET_KEY,
    logger: pino({ level: 'silent' }),
    // A short instance cache, so the outage outlasts it: the instance as last read answers then.
    options: { pollIntervalMs: 200, retention: { cron: false }, instanceCacheMs: 200 },
    ...gates.hooks,
  });
  await hub.start();
  await gates.start(hub.host);
  for (const [id, outcome] of [
    ['dp-approve', 'approve'],
    ['dp-refuse', 'refuse'],
  ] as const) {
    await hub.instances.upsert({
      id,
      connector: 'docplanner',
      mode: 'push',
      settings: { pushAuth: { apiKey: API_KEY } },
      gate: { deadlineMs: DEADLINE_MS, default: outcome },
    });
  }
});

afterAll(async () => {
  proxy?.restore();
  await gates?.stop().catch(() => {});
  await hub?.stop({ graceful: false }).catch(() => {});
  await proxy?.close();
  await approver?.close();
});

const push = (instanceId: string, body: JsonObject) =>
  hub.ingest(instanceId, inboundRequest({ headers: { 'x-api-key': API_KEY }, body }));

it("answers a gate request with the instance's default within its deadline while Postgres is unreachable", {
  timeout: 60_000,
}, async () => {
  // Each instance answered once with the database up: what a running hub knows of it.
  for (const id of ['dp-approve', 'dp-refuse'])
    expect((await push(id, fixture('slot-booked'))).ok).toBe(true);
  proxy.cut();
  try {
    await new Promise((r) => setTimeout(r, 400));
    const approveAt = Date.now();
    const approved = await push('dp-approve', fixture('slot-booking'));
    const approveMs = Date.now() - approveAt;
    expect(approved).toMatchObject({ ok: true, status: 200, stored: [] });
    expect(approveMs).toBeLessThan(DEADLINE_MS + 1000);
    const refused = await push('dp-refuse', fixture('slot-booking'));
    expect(refused.ok).toBe(true);
    // Docplanner's refusal (gate.ts): a 4xx the vendor shows the patient.
    expect(refused.status).toBe(409);
    // Not a gate: nothing can be stored, so the vendor must send it again.
    const booked = await push('dp-approve', {
      ...fixture('slot-booked'),
      created_at: '2026-03-10T09:16:00+01:00',
    });
    expect(booked.ok).toBe(false);
    expect(booked.status).toBe(503);
  } finally {
    proxy.restore();
  }
});

it("answers concurrent gate requests each with the instance's default while Postgres is unreachable", {
  timeout: 60_000,
}, async () => {
  expect((await push('dp-refuse', fixture('slot-booked'))).ok).toBe(true);
  proxy.cut();
  try {
    // Past the instance cache: both requests read the instance, the second sharing the first's read.
    await new Promise((r) => setTimeout(r, 400));
    const bodies = ['2026-03-12T11:30:00+01:00', '2026-03-12T12:30:00+01:00'].map((start) => {
      const body = fixture('slot-booking');
      ((body.data as JsonObject).visit_booking_request as JsonObject).start_at = start;
      return body;
    });
    const answers = await Promise.all(bodies.map((b) => push('dp-refuse', b)));
    // Before, the second got the shared read's failure: 503, not the configured default.
    expect(answers.map((a) => a.status)).toEqual([409, 409]);
  } finally {
    proxy.restore();
  }
});

it('records a decision given while the database went away once it is back; the vendor retries get it meanwhile', {
  timeout: 60_000,
}, async () => {
  const secret = generateSecret();
  let cut!: () => void;
  const isCut = new Promise<void>((resolve) => {
    cut = resolve;
  });
  // Refuses once the database is cut: the decision is made, and cannot be recorded.
  approver = await startRecordingSubscriber({
    secrets: secret,
    handler: async () => {
      await isCut;
      return { status: 409, body: { reason: 'slot taken', vendorErrorCode: 4 } };
    },
  });
  await hub.subscriptions.create({
    id: 'crm',
    url: approver.url,
    eventTypes: ['schedule.updated'],
    approver: true,
    secrets: [secret],
    allowPrivateAddresses: true,
  });
  const body = fixture('slot-booking');
  ((body.data as JsonObject).visit_booking_request as JsonObject).start_at = '2026-03-11T11:30:00+01:00';
  const first = push('dp-approve', body);
  await approver.waitFor(1);
  proxy.cut();
  cut();
  try {
    expect(await first).toMatchObject({ ok: true, status: 409, body: { error_code: 4 } });
    // The vendor sends it again while the database is away: the refusal it had, not the default
    // (approve) every unstored request gets during an outage.
    expect(await push('dp-approve', body)).toMatchObject({ ok: true, status: 409, body: { error_code: 4 } });
  } finally {
    proxy.restore();
  }
  const id = (await gates.list({ instanceId: 'dp-approve', limit: 1 })).items[0]!.id;
  const deadline = Date.now() + 20_000;
  let gate = await gates.get(id);
  while (gate.decision === null && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    gate = await gates.get(id);
  }
  // Before, the row stayed undecided, and the retry below waited its deadline and got approve.
  expect(gate).toMatchObject({
    decision: 'refuse',
    reason: 'refused',
    decidedBy: 'crm',
    vendorErrorCode: 4,
    responseStatus: 409,
  });
  expect(gate.answers).toMatchObject([{ subscriptionId: 'crm', outcome: 'refuse', afterDecision: false }]);
  expect(await push('dp-approve', body)).toMatchObject({ ok: true, status: 409, body: { error_code: 4 } });
  expect(approver.requests).toHaveLength(1);
});

// Fresh-clone CI caught four unhandled rejections (ECONNRESET from the gate push's write) in this
// file: the gate machinery is handed the write's outcome as a promise and may answer, or look at
// it only later (after reading the instance), while the write fails meanwhile. Unhandled, such a
// rejection ends a hub process (Node's default): an outage during an approval request crashed it.
it('leaves no rejection unhandled when the gate machinery answers without waiting for the write', {
  timeout: 60_000,
}, async () => {
  // Gates not started: the responder answers nothing at once and never looks at the write.
  const idle = createGates({ worker: true });
  const proxied = new URL(database.url());
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  const other = await createHub({
    databaseUrl: proxied.toString(),
    connectors: [docplannerConnector],
    secretKey: SECRET_KEY,
    logger: pino({ level: 'silent' }),
    options: { pollIntervalMs: 200, retention: { cron: false }, instanceCacheMs: 600_000, workers: false },
    ...idle.hooks,
  });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    await other.start();
    await other.instances.upsert({
      id: 'dp-idle',
      connector: 'docplanner',
      mode: 'push',
      settings: { pushAuth: { apiKey: API_KEY } },
      gate: { deadlineMs: DEADLINE_MS, default: 'refuse' },
    });
    expect(
      (
        await other.ingest(
          'dp-idle',
          inboundRequest({ headers: { 'x-api-key': API_KEY }, body: fixture('slot-booked') }),
        )
      ).ok,
    ).toBe(true);
    proxy.cut();
    try {
      const r = await other.ingest(
        'dp-idle',
        inboundRequest({ headers: { 'x-api-key': API_KEY }, body: fixture('slot-booking') }),
      );
      expect(r.status).toBe(503);
      // A turn or two for a rejection to be reported.
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      proxy.restore();
    }
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await other.stop({ graceful: false }).catch(() => {});
  }
});
