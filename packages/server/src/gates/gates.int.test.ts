import { readFileSync } from 'node:fs';
import { docplannerConnector } from '@switchyard/connector-docplanner';
import type { JsonObject } from '@switchyard/core';
import {
  inboundRequest,
  type RecordingSubscriber,
  startRecordingSubscriber,
  useTestDatabase,
} from '@switchyard/testing';
import Fastify from 'fastify';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import { createHub, type Hub } from '../pipeline/hub.ts';
import { gatesCommand } from './cli.ts';
import { createGates, type Gates } from './gates.ts';
import { gateRoutes } from './http.ts';
import { getGateRequest } from './queries.ts';
import type { GateRequestDetail } from './views.ts';

const database = useTestDatabase();
const SECRET_KEY = 'gates-test-secret-key-0123456789';
const API_KEY = 'dp-push-key';
const fixtures = new URL('../../../connectors/docplanner/fixtures/', import.meta.url);
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`${name}.json`, fixtures), 'utf8')) as JsonObject;

let hub: Hub;
let gates: Gates;
const subscribers: RecordingSubscriber[] = [];
let counter = 0;

async function makeHub(opts: { worker?: boolean } = {}): Promise<{ hub: Hub; gates: Gates }> {
  const g = createGates({ worker: opts.worker ?? true });
  const h = await createHub({
    databaseUrl: database.url(),
    connectors: [docplannerConnector],
    secretKey: SECRET_KEY,
    logger: pino({ level: 'silent' }),
    options: {
      pollIntervalMs: 200,
      instanceCacheMs: 0,
      retention: { cron: false },
      workers: opts.worker ?? true,
    },
    ...g.hooks,
  });
  await h.start();
  await g.start(h);
  return { hub: h, gates: g };
}

beforeAll(async () => {
  ({ hub, gates } = await makeHub());
  await instance('dp', { deadlineMs: 5000, default: 'approve' });
  await instance('dp-refuse', { deadlineMs: 5000, default: 'refuse' });
  await instance('dp-fast', { deadlineMs: 300, default: 'refuse' });
});

afterAll(async () => {
  await gates?.stop();
  await hub?.stop();
  await Promise.all(subscribers.map((s) => s.close()));
});

afterEach(async () => {
  await gates.drain();
  for (const s of await hub.subscriptions.list()) await hub.subscriptions.remove(s.id);
});

async function instance(id: string, gate: JsonObject): Promise<void> {
  await hub.instances.upsert({
    id,
    connector: 'docplanner',
    mode: 'push',
    settings: { pushAuth: { apiKey: API_KEY } },
    gate,
  });
}

/** A distinct slot-booking (its own start time and patient): a new gate request, not a retry. */
function slotBooking(n = ++counter): JsonObject {
  const body = fixture('slot-booking');
  const data = body.data as JsonObject;
  const request = data.visit_booking_request as JsonObject;
  const minute = String(n % 60).padStart(2, '0');
  const hour = String(8 + (Math.floor(n / 60) % 10)).padStart(2, '0');
  request.start_at = `2026-04-01T${hour}:${minute}:00+02:00`;
  request.end_at = `2026-04-01T${hour}:${minute}:30+02:00`;
  (request.patient as JsonObject).phone = `+48600${String(100000 + n)}`;
  body.created_at = `2026-03-20T10:00:${String(n % 60).padStart(2, '0')}+01:00`;
  return body;
}

/** The slot-booked that follows a slot-booking (same doctor, address, start and patient). */
function slotBookedFor(request: JsonObject, bookingId: string): JsonObject {
  const body = fixture('slot-booked');
  const asked = (request.data as JsonObject).visit_booking_request as JsonObject;
  const booking = (body.data as JsonObject).visit_booking as JsonObject;
  booking.id = bookingId;
  booking.start_at = asked.start_at!;
  booking.end_at = asked.end_at!;
  booking.patient = asked.patient!;
  return body;
}

async function push(instanceId: string, body: JsonObject, via = hub) {
  const r = await via.ingest(instanceId, inboundRequest({ headers: { 'x-api-key': API_KEY }, body }));
  if (!r.ok) throw new Error(`ingest failed: ${JSON.stringify(r.problem)}`);
  return r;
}

async function approver(
  id: string,
  answer: Parameters<typeof startRecordingSubscriber>[0] = {},
  filters?: JsonObject,
): Promise<RecordingSubscriber> {
  const secret = generateSecret();
  const sub = await startRecordingSubscriber({ secrets: secret, ...answer });
  subscribers.push(sub);
  await hub.subscriptions.create({
    id,
    url: sub.url,
    // Ordinary deliveries go elsewhere: this endpoint only sees approval requests.
    eventTypes: ['schedule.updated'],
    approver: true,
    ...(filters ? { approverFilters: filters } : {}),
    secrets: [secret],
    allowPrivateAddresses: true,
  });
  return sub;
}

async function latestGate(instanceId: string): Promise<GateRequestDetail> {
  const page = await gates.list({ instanceId, limit: 1 });
  return gates.get(page.items[0]!.id);
}

async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs = 8000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('deciding', () => {
  it('approves when the approver answers 2xx, with a signed approval request', async () => {
    const a = await approver('crm', { defaultResponse: { status: 200, body: { decision: 'approve' } } });
    const r = await push('dp', slotBooking());
    expect(r.status).toBe(200);
    const [req] = a.requests;
    expect(a.requests).toHaveLength(1);
    expect(req!.signature.valid).toBe(true);
    expect(req!.type).toBe('appointment.booking_requested');
    const event = req!.json as JsonObject;
    expect((event.data as JsonObject).kind).toBe('booking');
    expect(typeof (event.data as JsonObject).deadline).toBe('string');
    const gate = await latestGate('dp');
    expect(gate).toMatchObject({
      decision: 'approve',
      reason: 'approved',
      approvers: 1,
      responseStatus: 200,
      status: 'decided',
    });
    expect(gate.eventId).toBe(req!.webhookId);
    expect(gate.id).toBe((event.data as JsonObject).id);
    expect(gate.answers).toMatchObject([{ subscriptionId: 'crm', outcome: 'approve', statusCode: 200 }]);
    expect(gate.answers[0]!.latencyMs).toEqual(expect.any(Number));
  });

  it('refuses with the vendor error code the approver asks for', async () => {
    await approver('crm', {
      defaultResponse: { status: 409, body: { reason: 'slot taken in our calendar', vendorErrorCode: 7 } },
    });
    const r = await push('dp', slotBooking());
    expect(r.status).toBe(409);
    expect(r.ok && r.body).toEqual({ error_code: 7 });
    const gate = await latestGate('dp');
    expect(gate).toMatchObject({
      decision: 'refuse',
      reason: 'refused',
      decidedBy: 'crm',
      refusalReason: 'slot taken in our calendar',
      vendorErrorCode: 7,
      responseStatus: 409,
    });
  });

  it('refuses without an error code (a 2xx saying refuse)', async () => {
    await approver('crm', {
      defaultResponse: { status: 200, body: { decision: 'refuse', reason: 'patient blocked' } },
    });
    const r = await push('dp', slotBooking());
    expect(r.status).toBe(409);
    expect(r.ok && (r.body as JsonObject).error_code).toBeUndefined();
    expect(await latestGate('dp')).toMatchObject({
      decision: 'refuse',
      decidedBy: 'crm',
      vendorErrorCode: null,
    });
  });

  it('one of two approvers refuses: the refusal decides at once, the slower answer is still recorded', async () => {
    const slow = await approver('billing', { defaultResponse: { status: 204, delayMs: 400 } });
    await approver('crm', { defaultResponse: { status: 422, body: { reason: 'no' } } });
    const r = await push('dp', slotBooking());
    expect(r.status).toBe(409);
    // Decided before the slow approver answered.
    expect(slow.requests[0]!.response).toBeUndefined();
    await gates.drain();
    const gate = await latestGate('dp');
    expect(gate).toMatchObject({ decision: 'refuse', decidedBy: 'crm', approvers: 2 });
    const byId = Object.fromEntries(gate.answers.map((a) => [a.subscriptionId, a]));
    expect(byId.crm).toMatchObject({ outcome: 'refuse', afterDecision: false });
    expect(byId.billing).toMatchObject({ outcome: 'approve', afterDecision: true });
  });

  it('an approver that is down gives the default (approve, and refuse where configured)', async () => {
    const down = await startRecordingSubscriber();
    const url = down.url;
    await down.close();
    await hub.subscriptions.create({
      id: 'down',
      url,
      approver: true,
      eventTypes: ['schedule.updated'],
      allowPrivateAddresses: true,
    });
    expect((await push('dp', slotBooking())).status).toBe(200);
    expect(await latestGate('dp')).toMatchObject({ decision: 'approve', reason: 'unavailable' });
    expect((await push('dp-refuse', slotBooking())).status).toBe(409);
    const gate = await latestGate('dp-refuse');
    expect(gate).toMatchObject({ decision: 'refuse', reason: 'unavailable' });
    expect(gate.answers[0]).toMatchObject({
      subscriptionId: 'down',
      outcome: 'unavailable',
      statusCode: null,
    });
  });

  it('an approver too slow for the deadline gives the default', async () => {
    await approver('slow', { defaultResponse: { status: 200, delayMs: 3000 } });
    const r = await push('dp-fast', slotBooking());
    expect(r.status).toBe(409); // dp-fast refuses by default
    await gates.drain();
    const gate = await latestGate('dp-fast');
    expect(gate).toMatchObject({ decision: 'refuse', reason: 'deadline', approvers: 1 });
    expect(gate.answers).toMatchObject([
      { subscriptionId: 'slow', outcome: 'unavailable', afterDecision: true },
    ]);
  });

  it('no approver gives the default; approver filters decide who is asked', async () => {
    const other = await approver('other-instance', {}, { sources: ['elsewhere'] });
    const moves = await approver('moves-only', {}, { events: ['appointment.reschedule_requested'] });
    expect((await push('dp-refuse', slotBooking())).status).toBe(409);
    expect(await latestGate('dp-refuse')).toMatchObject({
      decision: 'refuse',
      reason: 'no_approvers',
      approvers: 0,
    });
    expect((await push('dp', slotBooking())).status).toBe(200);
    expect(await latestGate('dp')).toMatchObject({ decision: 'approve', reason: 'no_approvers' });
    expect(other.requests).toHaveLength(0);
    expect(moves.requests).toHaveLength(0);
  });

  it('answers 50 concurrent gate requests, each decided by the approver inside the deadline', async () => {
    const a = await approver('crm', { defaultResponse: { status: 200, delayMs: 20 } });
    // Generous: these machines are shared (2 cores); the point is that no answer falls back to the default.
    await instance('dp-load', { deadlineMs: 5000, default: 'refuse' });
    const bodies = Array.from({ length: 50 }, () => slotBooking());
    const results = await Promise.all(bodies.map((b) => push('dp-load', b)));
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(a.requests).toHaveLength(50);
    const page = await gates.list({ instanceId: 'dp-load', limit: 100 });
    expect(page.items).toHaveLength(50);
    // Approved by the approver, not by a deadline fallback (the default here is refuse).
    expect(page.items.every((g) => g.decision === 'approve' && g.reason === 'approved')).toBe(true);
  });

  it('a vendor retry of the same request gets the recorded answer without asking again', async () => {
    const a = await approver('crm', { defaultResponse: { status: 409, body: { vendorErrorCode: 3 } } });
    const body = slotBooking();
    const first = await push('dp', body);
    const again = await push('dp', body);
    expect(again.status).toBe(first.status);
    expect(again.ok && again.body).toEqual({ error_code: 3 });
    expect(a.requests).toHaveLength(1);
  });
});

describe('matching the booking that follows', () => {
  it('links an approved slot-booking to the slot-booked that follows, and shows an unmatched one waiting', async () => {
    await approver('crm');
    const request = slotBooking();
    await push('dp', request);
    const gateId = (await latestGate('dp')).id;
    await push('dp', slotBooking()); // approved, but never booked
    const unbooked = await latestGate('dp');
    await push('dp', slotBookedFor(request, '99000001'));
    const gate = await eventually(async () => {
      const g = await gates.get(gateId);
      return g.booking.status === 'booked' ? g : undefined;
    });
    expect(gate.booking).toMatchObject({
      vendorType: 'slot-booked',
      subject: expect.stringMatching(/^appointment\//),
    });
    const event = await hub.events.get(gate.booking.eventId!);
    expect(event.event.type).toBe('appointment.created');
    expect((await gates.get(unbooked.id)).booking.status).toBe('waiting');
  });

  it('links a booking-moving to the booking-moved that follows', async () => {
    await approver('crm');
    const moving = fixture('booking-moving');
    const r = await push('dp', moving);
    expect(r.status).toBe(200);
    const gate = await latestGate('dp');
    expect(gate.type).toBe('appointment.reschedule_requested');
    await push('dp', fixture('booking-moved'));
    const matched = await eventually(async () => {
      const g = await gates.get(gate.id);
      return g.booking.status === 'booked' ? g : undefined;
    });
    expect(matched.booking.vendorType).toBe('booking-moved');
  });
});

describe('across processes', () => {
  it('an HTTP-only process hands the request to a worker process through the gate job', async () => {
    const front = await makeHub({ worker: false });
    try {
      const a = await approver('crm', { defaultResponse: { status: 409, body: { vendorErrorCode: 11 } } });
      const r = await push('dp', slotBooking(), front.hub);
      expect(r.status).toBe(409);
      expect(r.ok && r.body).toEqual({ error_code: 11 });
      expect(a.requests).toHaveLength(1);
      const row = await latestGate('dp');
      expect(row).toMatchObject({ decision: 'refuse', reason: 'refused', vendorErrorCode: 11 });
      const claimed = await getGateRequest(hub.internals.db, row.id);
      expect(claimed?.claimed_by).toBe(gates.workerId);
    } finally {
      await front.gates.stop();
      await front.hub.stop();
    }
  });
});

describe('admin API and CLI', () => {
  it('lists and shows gate requests over HTTP, with filters and 404s', async () => {
    await approver('crm', { defaultResponse: { status: 409, body: { reason: 'nope' } } });
    await push('dp-refuse', slotBooking());
    const app = Fastify();
    await app.register(async (scope) => gateRoutes(scope, { gates }));
    try {
      const list = await app.inject({
        method: 'GET',
        url: '/v1/gates?instanceId=dp-refuse&decision=refuse&limit=1',
      });
      expect(list.statusCode).toBe(200);
      const page = list.json() as { items: { id: string; decidedBy: string }[]; nextCursor: string | null };
      expect(page.items).toHaveLength(1);
      expect(page.items[0]!.decidedBy).toBe('crm');
      const one = await app.inject({ method: 'GET', url: `/v1/gates/${page.items[0]!.id}` });
      expect(one.statusCode).toBe(200);
      expect(one.json()).toMatchObject({
        answers: [{ subscriptionId: 'crm', outcome: 'refuse', reason: 'nope' }],
      });
      expect((one.json() as { request: JsonObject }).request.type).toBe('appointment.booking_requested');
      const bad = await app.inject({ method: 'GET', url: '/v1/gates?decision=maybe' });
      expect(bad.statusCode).toBe(400);
      const missing = await app.inject({ method: 'GET', url: '/v1/gates/nope' });
      expect(missing.statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });

  it('prints gate requests from the CLI', async () => {
    await approver('crm', { defaultResponse: { status: 409, body: { vendorErrorCode: 5 } } });
    await push('dp-refuse', slotBooking());
    const out: string[] = [];
    const io = {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: () => {} },
      env: {},
      cwd: process.cwd(),
    };
    const code = await gatesCommand.run(
      {
        values: { 'database-url': database.url(), instance: 'dp-refuse', limit: '1' },
        positionals: ['list'],
      },
      io,
    );
    expect(code).toBe(0);
    expect(out.join('')).toContain('refuse (refused by crm, code 5)');
    const id = (await latestGate('dp-refuse')).id;
    out.length = 0;
    await gatesCommand.run({ values: { 'database-url': database.url() }, positionals: ['show', id] }, io);
    expect(out.join('')).toMatch(/- crm: refuse \(HTTP 409/);
  });

  it('counts decisions in its metrics', async () => {
    const text = await gates.metrics.metrics();
    expect(text).toMatch(
      /switchyard_gate_decisions_total\{instance="dp",outcome="approve",reason="approved"\} \d+/,
    );
    expect(text).toContain('switchyard_gate_overhead_seconds_count');
  });
});
