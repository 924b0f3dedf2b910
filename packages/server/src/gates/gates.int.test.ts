import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JsonObject } from '@switchyard/core';
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import Fastify from 'fastify';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { gatesCommand } from '../cli/commands/gates.ts';
import { DELIVERY_SOCKETS_PER_ORIGIN } from '../delivery/http-post.ts';
import { generateSecret } from '../delivery/sign.ts';
import type { Hub } from '../pipeline/hub.ts';
import { sessionApplicationName } from '../storage/db.ts';
import type { Gates, GatesOptions } from './gates.ts';
import {
  API_KEY,
  addApprover,
  dpFixture,
  pushTo,
  SECRET_KEY,
  startGatesHub,
} from './gates-hub.test-support.ts';
import { gateRoutes } from './http.ts';
import { getGateRequest, insertGateAnswers, insertGateRequest, type NewGateAnswer } from './store.ts';
import type { GateRequestDetail } from './views.ts';

const database = useTestDatabase();

let hub: Hub;
let gates: Gates;
const subscribers: RecordingSubscriber[] = [];
let counter = 0;

async function makeHub(
  opts: { worker?: boolean; gates?: GatesOptions } = {},
): Promise<{ hub: Hub; gates: Gates }> {
  return startGatesHub(database.url(), {
    gates: { worker: opts.worker ?? true, ...opts.gates },
    // Small batches, so the purge and the sweep below go through several.
    options: { retention: { cron: false, batchSize: 2 }, workers: opts.worker ?? true },
  });
}

beforeAll(async () => {
  // Approvers read at every request: each test replaces the approvers, and the cache is dropped by
  // a NOTIFY that may arrive after the next push on a loaded machine (the previous test's approver
  // then answered: a flake in CI). The cache itself is tested with a hub of its own below.
  ({ hub, gates } = await makeHub({ gates: { approverCacheMs: 0 } }));
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
  const body = dpFixture('slot-booking');
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
  const body = dpFixture('slot-booked');
  const asked = (request.data as JsonObject).visit_booking_request as JsonObject;
  const booking = (body.data as JsonObject).visit_booking as JsonObject;
  booking.id = bookingId;
  booking.start_at = asked.start_at!;
  booking.end_at = asked.end_at!;
  booking.patient = asked.patient!;
  return body;
}

const push = (instanceId: string, body: JsonObject, via = hub) => pushTo(via, instanceId, body);

async function approver(
  id: string,
  answer: Parameters<typeof startRecordingSubscriber>[0] = {},
  filters?: JsonObject,
): Promise<RecordingSubscriber> {
  const sub = await addApprover(hub, id, answer, filters);
  subscribers.push(sub);
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

  it('decides a request whose patient comment Postgres refuses as it is (a NUL, a lone surrogate): the approver is asked, the request recorded', async () => {
    const a = await approver('crm', { defaultResponse: { status: 200, body: { decision: 'approve' } } });
    const body = slotBooking();
    ((body.data as JsonObject).visit_booking_request as JsonObject).comment = 'call me\u0000 first \ud83d';
    // Before: 400 'the payload cannot be stored', which Docplanner takes as a refusal of the booking.
    const r = await push('dp', body);
    expect(r.status).toBe(200);
    expect(a.requests).toHaveLength(1);
    expect(a.requests[0]!.text).toContain('call me\uFFFD first \uFFFD');
    expect(await latestGate('dp')).toMatchObject({
      decision: 'approve',
      reason: 'approved',
      status: 'decided',
      error: null,
    });
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

  it('an approver too slow for the deadline gives the default; its late answer is recorded as it came', async () => {
    const slow = await approver('slow', {
      defaultResponse: { status: 409, delayMs: 2500, body: { reason: 'slot taken', vendorErrorCode: 3 } },
    });
    // A deadline the call surely starts within, even on a busy machine; the approver answers later.
    await instance('dp-late', { deadlineMs: 1000, default: 'approve' });
    const r = await push('dp-late', slotBooking());
    expect(r.status).toBe(200); // the default: approve
    // The vendor had its answer at the deadline, before the approver answered (on a loaded machine
    // the approver may not even have received the request yet).
    expect(slow.requests[0]?.response).toBeUndefined();
    await gates.drain();
    const gate = await latestGate('dp-late');
    // What the vendor got is unchanged by the late refusal.
    expect(gate).toMatchObject({
      decision: 'approve',
      reason: 'deadline',
      approvers: 1,
      responseStatus: 200,
      decidedBy: null,
    });
    expect(gate.answers).toMatchObject([
      {
        subscriptionId: 'slow',
        outcome: 'refuse',
        reason: 'slot taken',
        vendorErrorCode: 3,
        statusCode: 409,
        afterDecision: true,
      },
    ]);
    const late = gate.answers[0]!;
    expect(late.latencyMs).toBeGreaterThanOrEqual(2500);
    expect(late.answeredAt!.getTime()).toBeGreaterThan(gate.decidedAt!.getTime());
  });

  it('a request stored only after its deadline (its insert waited on a lock) records the default the vendor got, reason deadline', async () => {
    const a = await approver('behind-lock');
    await instance('dp-locked', { deadlineMs: 300, default: 'refuse' });
    const locker = new pg.Client({ connectionString: database.url() });
    await locker.connect();
    try {
      await locker.query('begin');
      // Reads go on; the request's insert waits until the commit, long after its 300 ms deadline.
      await locker.query('lock table switchyard.gate_requests in exclusive mode');
      expect((await push('dp-locked', slotBooking())).status).toBe(409); // the default: refuse
      await locker.query('commit');
    } finally {
      await locker.end();
    }
    const gate = await eventually(async () => {
      const [g] = (await gates.list({ instanceId: 'dp-locked', limit: 1 })).items;
      return g?.status === 'decided' ? gates.get(g.id) : undefined;
    });
    await gates.drain();
    // Before, the row stored late was then decided as usual, with no time left: recorded as the
    // approver `unavailable` ("no time left before the deadline"), an answer nobody got.
    expect(gate).toMatchObject({ decision: 'refuse', reason: 'deadline', responseStatus: 409 });
    expect(gate.answers).toEqual([]);
    expect(a.requests).toHaveLength(0);
  });

  it("a decision whose write waits on a lock past the deadline gives the vendor the approvers' answer, recorded once the lock goes", async () => {
    // The same rule as a database unreachable while approvers decide (db-outage.int.test.ts): the
    // approvers decided in time, so the vendor gets their answer; recording it follows.
    const a = await approver('crm', {
      defaultResponse: { status: 409, body: { reason: 'slot taken', vendorErrorCode: 5 } },
    });
    await instance('dp-slow-record', { deadlineMs: 1000, default: 'approve' });
    const locker = new pg.Client({ connectionString: database.url() });
    await locker.connect();
    const body = slotBooking();
    try {
      await locker.query('begin');
      // The request's insert goes through; the decision's statement (it writes the answers too) waits.
      await locker.query('lock table switchyard.gate_answers in exclusive mode');
      // Before: 200, the default (approve) at the deadline, though the approver had refused, and the
      // row then recorded the refusal (responseStatus 409): an answer the vendor never got.
      expect(await push('dp-slow-record', body)).toMatchObject({ status: 409, body: { error_code: 5 } });
      // The vendor asks again while the write still waits: the same answer, the approver not asked again.
      expect(await push('dp-slow-record', body)).toMatchObject({ status: 409, body: { error_code: 5 } });
      await locker.query('commit');
    } finally {
      await locker.end();
    }
    const gate = await eventually(async () => {
      const [g] = (await gates.list({ instanceId: 'dp-slow-record', limit: 1 })).items;
      return g?.status === 'decided' ? gates.get(g.id) : undefined;
    });
    await gates.drain();
    expect(gate).toMatchObject({
      decision: 'refuse',
      reason: 'refused',
      decidedBy: 'crm',
      vendorErrorCode: 5,
      responseStatus: 409,
    });
    expect(gate.answers).toMatchObject([{ subscriptionId: 'crm', outcome: 'refuse', afterDecision: false }]);
    expect(a.requests).toHaveLength(1);
  });

  it("a decision made by a gate job whose write waits on a lock past the deadline reaches the waiting process: the approvers' answer", async () => {
    // The same rule as above, on the hand-off path: the front process (no gate worker) stores the
    // request and waits; this process's gate job decides. Before: the waiting process heard of the
    // decision only from the write's NOTIFY, after the lock went, so the vendor got the default.
    const a = await approver('crm-handoff', {
      defaultResponse: { status: 409, body: { reason: 'slot taken', vendorErrorCode: 6 } },
    });
    await instance('dp-slow-handoff', { deadlineMs: 2000, default: 'approve' });
    const front = await makeHub({ worker: false });
    const locker = new pg.Client({ connectionString: database.url() });
    await locker.connect();
    try {
      await locker.query('begin');
      await locker.query('lock table switchyard.gate_answers in exclusive mode');
      expect(await push('dp-slow-handoff', slotBooking(), front.hub)).toMatchObject({
        status: 409,
        body: { error_code: 6 },
      });
      await locker.query('commit');
    } finally {
      await locker.end();
      await front.gates.stop();
      await front.hub.stop();
    }
    const gate = await eventually(async () => {
      const [g] = (await gates.list({ instanceId: 'dp-slow-handoff', limit: 1 })).items;
      return g?.status === 'decided' ? gates.get(g.id) : undefined;
    });
    await gates.drain();
    expect(gate).toMatchObject({ decision: 'refuse', decidedBy: 'crm-handoff', vendorErrorCode: 6 });
    expect(a.requests).toHaveLength(1);
  });

  it('drain (and stop) waits for the late answers of a decision that was still being recorded when it began', async () => {
    await approver('slow-drained', { defaultResponse: { status: 409, delayMs: 2500 } });
    // A deadline the call surely starts within, even on a busy machine; the approver answers later.
    await instance('dp-drained', { deadlineMs: 1000, default: 'refuse' });
    const locker = new pg.Client({ connectionString: database.url() });
    await locker.connect();
    let drained: Promise<void>;
    try {
      await locker.query('begin');
      // The decision's statement (it writes the answers too) waits here; the deadline answers the vendor.
      await locker.query('lock table switchyard.gate_answers in exclusive mode');
      expect((await push('dp-drained', slotBooking())).status).toBe(409);
      drained = gates.drain();
      await locker.query('commit');
    } finally {
      await locker.end();
    }
    await drained;
    // Before, drain waited only for what ran when it began: the decision, not the recording of the
    // answer that came after it (nor did stop, whose host then closed under it).
    const gate = await latestGate('dp-drained');
    expect(gate.answers).toMatchObject([
      { subscriptionId: 'slow-drained', statusCode: 409, afterDecision: true },
    ]);
  });

  it('an approver whose refusal status comes in time but whose body trickles refuses in time', async () => {
    // The status line and part of the body, then nothing: the body was read to the subscription's
    // timeout, and the vendor got the default (approve) at the deadline though the refusal was known.
    const server = createServer((socket) => {
      socket.once('data', () =>
        socket.write(
          'HTTP/1.1 409 Conflict\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"reason":"slot',
        ),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await hub.subscriptions.create({
        id: 'trickle',
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
        approver: true,
        eventTypes: ['schedule.updated'],
        allowPrivateAddresses: true,
        timeoutMs: 10_000,
      });
      await instance('dp-trickle', { deadlineMs: 1500, default: 'approve' });
      expect((await push('dp-trickle', slotBooking())).status).toBe(409);
      expect(await latestGate('dp-trickle')).toMatchObject({ decision: 'refuse', reason: 'refused' });
    } finally {
      server.close();
    }
  });

  it('does not ask a FHIR subscription stored as an approver before the rule refused one', async () => {
    // The approval request is a CloudEvent: a FHIR approver got it at its FHIR endpoint, whose 4xx
    // refused the booking. The input rule refuses one now; a row stored before is not asked.
    const fhir = await approver('fhir-approver', { defaultResponse: 422 });
    await sql`update switchyard.subscriptions set format = 'fhir-r4' where id = 'fhir-approver'`.execute(
      hub.host.db,
    );
    expect((await push('dp', slotBooking())).status).toBe(200);
    expect(await latestGate('dp')).toMatchObject({
      decision: 'approve',
      reason: 'no_approvers',
      approvers: 0,
    });
    expect(fhir.requests).toHaveLength(0);
  });

  it('no approver gives the default; approver filters decide who is asked', async () => {
    await instance('elsewhere', { deadlineMs: 5000, default: 'approve' });
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

  it('asks the approver while deliveries to the same origin hold every delivery connection', async () => {
    // A subscriber taking both ordinary events and approval requests (one host, two paths), slow on
    // the events: its deliveries held every pooled connection, the approval request waited behind
    // them, and the vendor got the default at the deadline though the approver refuses at once.
    const secret = generateSecret();
    let release!: () => void;
    const released = new Promise<undefined>((r) => {
      release = () => r(undefined);
    });
    const crm = await startRecordingSubscriber({
      secrets: secret,
      handler: async (req) =>
        req.path.startsWith('/events')
          ? released
          : { status: 409, body: { reason: 'calendar full', vendorErrorCode: 2 } },
    });
    subscribers.push(crm);
    try {
      await hub.subscriptions.create({
        id: 'crm-events',
        url: `${crm.url}events`,
        eventTypes: ['appointment.*'],
        secrets: [secret],
        allowPrivateAddresses: true,
      });
      await hub.subscriptions.create({
        id: 'crm',
        url: `${crm.url}approve`,
        eventTypes: ['schedule.updated'],
        approver: true,
        secrets: [secret],
        allowPrivateAddresses: true,
      });
      for (let i = 0; i < DELIVERY_SOCKETS_PER_ORIGIN; i++) {
        const booked = dpFixture('slot-booked');
        ((booked.data as JsonObject).visit_booking as JsonObject).id = String(700000 + i);
        await push('dp', booked);
      }
      const held = () => crm.requests.filter((r) => r.path.startsWith('/events')).length;
      await crm.waitFor(() => held() >= DELIVERY_SOCKETS_PER_ORIGIN, 30_000);
      const r = await push('dp', slotBooking());
      expect(r.status).toBe(409);
      expect(await latestGate('dp')).toMatchObject({
        decision: 'refuse',
        reason: 'refused',
        decidedBy: 'crm',
      });
    } finally {
      release();
    }
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

  it('links two bookings of one slot to two requests of that slot, each request once', async () => {
    await approver('crm');
    const n = ++counter;
    const older = slotBooking(n);
    const newer = slotBooking(n);
    // The same slot and patient asked again (another notification): the same match key.
    newer.created_at = '2026-03-20T11:59:59+01:00';
    await push('dp', older);
    const olderId = (await latestGate('dp')).id;
    await push('dp', newer);
    const newerId = (await latestGate('dp')).id;
    expect(newerId).not.toBe(olderId);
    // Pushed together: normalized in one run, their matches asked in one batch.
    await Promise.all([
      push('dp', slotBookedFor(older, '99000011')),
      push('dp', slotBookedFor(older, '99000012')),
    ]);
    const both = await eventually(async () => {
      const gs = await Promise.all([gates.get(olderId), gates.get(newerId)]);
      return gs.every((g) => g.booking.status === 'booked') ? gs : undefined;
    });
    const inbound = both.map((g) => g.booking.inboundMessageId);
    expect(new Set(inbound).size).toBe(2);
  });

  it('matches a booking normalized by another process than the one that stored its gate request', async () => {
    await instance('dp-two', { deadlineMs: 5000, default: 'approve' });
    const front = await makeHub({ worker: false });
    try {
      await approver('crm');
      // A booking with no request before it: the normalizing process learns none is waiting.
      const lone = await push('dp-two', slotBookedFor(slotBooking(), '99000021'), front.hub);
      const loneId = lone.ok ? lone.stored[0]! : '';
      await eventually(async () =>
        (await hub.inbound.get(loneId)).status === 'normalized' ? true : undefined,
      );
      // Stored by the front process; the other one hears of it (NOTIFY), not by asking.
      const request = slotBooking();
      await push('dp-two', request, front.hub);
      const gateId = (await latestGate('dp-two')).id;
      await push('dp-two', slotBookedFor(request, '99000022'), front.hub);
      const gate = await eventually(async () => {
        const g = await gates.get(gateId);
        return g.booking.status === 'booked' ? g : undefined;
      });
      expect(gate.booking.vendorType).toBe('slot-booked');
    } finally {
      await front.gates.stop();
      await front.hub.stop();
    }
  });

  it('links a booking-moving to the booking-moved that follows', async () => {
    await approver('crm');
    const moving = dpFixture('booking-moving');
    const r = await push('dp', moving);
    expect(r.status).toBe(200);
    const gate = await latestGate('dp');
    expect(gate.type).toBe('appointment.reschedule_requested');
    await push('dp', dpFixture('booking-moved'));
    const matched = await eventually(async () => {
      const g = await gates.get(gate.id);
      return g.booking.status === 'booked' ? g : undefined;
    });
    expect(matched.booking.vendorType).toBe('booking-moved');
  });

  it('links a move without any patient, as in Docplanner’s own examples, by the moved booking id', async () => {
    await approver('crm');
    const strip = (body: JsonObject) => {
      for (const booking of Object.values(body.data as JsonObject)) {
        if (booking && typeof booking === 'object' && !Array.isArray(booking)) delete booking.patient;
      }
      return body;
    };
    const moving = strip(dpFixture('booking-moving'));
    const moved = strip(dpFixture('booking-moved'));
    // Another booking of the same moment: its own move, not this one.
    (moving.data as JsonObject).canceling_booking = {
      ...((moving.data as JsonObject).canceling_booking as JsonObject),
      id: '210045999',
    };
    (moved.data as JsonObject).old_visit_booking = {
      ...((moved.data as JsonObject).old_visit_booking as JsonObject),
      id: '210045999',
    };
    (moved.data as JsonObject).new_visit_booking = {
      ...((moved.data as JsonObject).new_visit_booking as JsonObject),
      id: '210047000',
    };
    expect(JSON.stringify([moving, moved])).not.toContain('patient');
    expect((await push('dp', moving)).status).toBe(200);
    const gate = await latestGate('dp');
    expect(gate).toMatchObject({ type: 'appointment.reschedule_requested', decision: 'approve' });
    await push('dp', moved);
    const matched = await eventually(async () => {
      const g = await gates.get(gate.id);
      return g.booking.status === 'booked' ? g : undefined;
    });
    expect(matched.booking).toMatchObject({
      vendorType: 'booking-moved',
      subject: expect.stringMatching(/^appointment\//),
    });
    expect((await hub.events.get(matched.booking.eventId!)).event.type).toBe('appointment.rescheduled');
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
      const claimed = await getGateRequest(hub.host.db, row.id);
      expect(claimed?.claimed_by).toBe(gates.workerId);
    } finally {
      await front.gates.stop();
      await front.hub.stop();
    }
  });

  it('a retry waiting in another process gets the decision announced while its LISTEN connection was down', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const a = await approver('crm', {
      handler: async () => {
        await released;
        return { status: 409, body: { vendorErrorCode: 12 } };
      },
    });
    const other = await makeHub();
    // Its sessions told apart in pg_stat_activity by its session tag (storage/db.ts).
    const name = sessionApplicationName(other.hub.host.sessionTag);
    const admin = new pg.Client({ connectionString: database.url() });
    await admin.connect();
    try {
      const body = slotBooking();
      const first = push('dp', body);
      await a.waitFor(1);
      // The vendor's retry reaches the other process, which finds the request undecided and waits.
      const retry = push('dp', body, other.hub);
      // Its read of the request is the connection's last statement while it waits, unless the
      // connection has run another since (CI once waited out the whole time for it): after 3 s the
      // retry has read it or reads it after the drop, and either way must end with the decision.
      const asked = Date.now();
      await eventually(async () => {
        if (Date.now() - asked > 3000) return true;
        const r = await admin.query(
          `select 1 from pg_stat_activity where application_name = $1 and state = 'idle'
             and query like 'select * from switchyard.gate_requests where %'`,
          [name],
        );
        return r.rowCount ? true : undefined;
      });
      // Its LISTEN connection drops (it reconnects a second later); the decision is announced meanwhile.
      await admin.query(
        `select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and query like 'LISTEN%'`,
        [name],
      );
      await eventually(async () => (other.hub.host.listener.listening ? undefined : true));
      release();
      expect(await first).toMatchObject({ status: 409, body: { error_code: 12 } });
      // Before, the waiting retry heard nothing and answered the default (approve) at its 5 s deadline.
      expect(await retry).toMatchObject({ status: 409, body: { error_code: 12 } });
      expect(a.requests).toHaveLength(1);
    } finally {
      release();
      await admin.end();
      await other.gates.stop();
      await other.hub.stop();
    }
  });
});

/** A hub process with the gates (gate-process.test-support.ts), to kill while it decides a request. */
async function spawnGateProcess(): Promise<{ child: ChildProcess; base: string; workerId: string }> {
  const child = fork(new URL('./gate-process.test-support.ts', import.meta.url), [
    JSON.stringify({ databaseUrl: database.url(), secretKey: SECRET_KEY }),
  ]);
  const ready = await new Promise<{ port: number; workerId: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gate process not ready in 30 s')), 30_000);
    child.on('message', (m: { type?: string; port?: number; workerId?: string }) => {
      if (m.type !== 'ready') return;
      clearTimeout(timer);
      resolve({ port: m.port!, workerId: m.workerId! });
    });
    child.once('exit', (code) => reject(new Error(`gate process exited with ${code} before ready`)));
  });
  return { child, base: `http://127.0.0.1:${ready.port}`, workerId: ready.workerId };
}

describe('a retry after the deciding process died', () => {
  /**
   * The vendor's request reaches the gate process, whose approver call hangs; the process is killed
   * (the vendor's connection breaks); `meanwhile` runs; the vendor sends the same request again to
   * this process. The approver refuses every later call at once.
   */
  async function retryAfterKill(meanwhile: (gateId: string) => Promise<void> = async () => {}) {
    let calls = 0;
    const a = await approver('crm', {
      handler: async () => {
        if (++calls === 1) await new Promise((r) => setTimeout(r, 60_000));
        return { status: 409, body: { vendorErrorCode: 14 } };
      },
    });
    const gate = await spawnGateProcess();
    const exited = new Promise((resolve) => gate.child.once('exit', resolve));
    const body = slotBooking();
    const first = fetch(`${gate.base}/hooks/dp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify(body),
    }).then(
      (r) => r.status,
      () => 'broken',
    );
    await a.waitFor(1);
    const row = await latestGate('dp');
    expect(row).toMatchObject({ status: 'deciding', decision: null });
    gate.child.kill('SIGKILL');
    await exited;
    expect(await first).toBe('broken');
    await meanwhile(row.id);
    const started = Date.now();
    const retry = await push('dp', body);
    return { retry, waitedMs: Date.now() - started, row: await gates.get(row.id), approver: a };
  }

  it('a retry on this host takes up at once a request whose deciding process is gone, and asks the approvers again', async () => {
    const { retry, waitedMs, row, approver: a } = await retryAfterKill();
    // Before: the retry waited for a decision nobody was making, 5 s, and answered the default (approve).
    expect(retry).toMatchObject({ status: 409, body: { error_code: 14 } });
    expect(waitedMs).toBeLessThan(2500);
    expect(a.requests).toHaveLength(2);
    expect(row).toMatchObject({
      decision: 'refuse',
      reason: 'refused',
      decidedBy: 'crm',
      vendorErrorCode: 14,
      responseStatus: 409,
    });
    expect((await getGateRequest(hub.host.db, row.id))?.claimed_by).toBe(gates.workerId);
  });

  it('a request claimed on another host is taken up once its deadline has passed undecided', async () => {
    const { retry, waitedMs, row } = await retryAfterKill(async (id) => {
      // As a process on another machine leaves it: its liveness cannot be told from here, so the
      // retry waits until the request's own deadline (the latest its process would decide by).
      await sql`update switchyard.gate_requests set claimed_by = 'another-host/4242/0badcafe',
        deadline_at = now() + interval '800 milliseconds' where id = ${id}`.execute(hub.host.db);
    });
    expect(retry).toMatchObject({ status: 409, body: { error_code: 14 } });
    expect(waitedMs).toBeGreaterThanOrEqual(700);
    expect(waitedMs).toBeLessThan(3500);
    expect(row).toMatchObject({ decision: 'refuse', reason: 'refused', vendorErrorCode: 14 });
  });
});

describe('a retry while the deciding process is on another host', () => {
  /** Its claim as a process of another host leaves it: the same worker id with another host part. */
  const onAnotherHost = (id: string, deadline?: string) =>
    sql`update switchyard.gate_requests
      set claimed_by = regexp_replace(claimed_by, '^[^/]*', 'another-host#0123456789ab.4026531999'),
        deadline_at = coalesce(${deadline ?? null}::timestamptz, deadline_at)
      where id = ${id}`.execute(hub.host.db);

  it('takes up at once a request whose decider on another host was killed (its database sessions are gone)', async () => {
    let calls = 0;
    const a = await approver('crm', {
      handler: async () => {
        if (++calls === 1) await new Promise((r) => setTimeout(r, 60_000));
        return { status: 409, body: { vendorErrorCode: 14 } };
      },
    });
    const gate = await spawnGateProcess();
    const tag = gate.workerId.slice(gate.workerId.lastIndexOf('.') + 1);
    const exited = new Promise((resolve) => gate.child.once('exit', resolve));
    const body = slotBooking();
    const first = fetch(`${gate.base}/hooks/dp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify(body),
    }).catch(() => undefined);
    await a.waitFor(1);
    const row = await latestGate('dp');
    expect(row).toMatchObject({ status: 'deciding', decision: null });
    gate.child.kill('SIGKILL');
    await exited;
    await first;
    // Its deadline an hour away, as a long one would be: the retry could never wait for it and
    // answered the default (approve) at its own deadline on the old code.
    await onAnotherHost(row.id, new Date(Date.now() + 3600_000).toISOString());
    // Postgres ends a killed process's sessions once it reads their closed sockets.
    await eventually(async () => {
      const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
        where application_name = ${`switchyard ${tag}`}`.execute(hub.host.db);
      return r.rows[0]!.n === 0 ? true : undefined;
    });
    const retry = await push('dp', body);
    expect(retry).toMatchObject({ status: 409, body: { error_code: 14 } });
    expect(a.requests).toHaveLength(2);
    expect(await gates.get(row.id)).toMatchObject({
      decision: 'refuse',
      decidedBy: 'crm',
      vendorErrorCode: 14,
    });
    expect((await getGateRequest(hub.host.db, row.id))?.claimed_by).toBe(gates.workerId);
  });

  it('never takes up the request of a living decider on another host (its sessions are connected)', async () => {
    let calls = 0;
    const a = await approver('crm', {
      handler: async () => {
        // The living process's call: slow, then a refusal. Any second call would approve.
        if (++calls === 1) {
          await new Promise((r) => setTimeout(r, 1500));
          return { status: 409, body: { vendorErrorCode: 14 } };
        }
        return { status: 200, body: { decision: 'approve' } };
      },
    });
    const gate = await spawnGateProcess();
    try {
      const body = slotBooking();
      const first = fetch(`${gate.base}/hooks/dp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: await r.json() }));
      await a.waitFor(1);
      const row = await latestGate('dp');
      await onAnotherHost(row.id);
      const retry = await push('dp', body);
      expect(await first).toMatchObject({ status: 409, body: { error_code: 14 } });
      expect(retry).toMatchObject({ status: 409, body: { error_code: 14 } });
      expect(a.requests).toHaveLength(1);
    } finally {
      const exited = new Promise((resolve) => gate.child.once('exit', resolve));
      gate.child.kill('SIGKILL');
      await exited;
    }
  });
});

/**
 * Whether this machine lets an unprivileged test run a process in a pid namespace of its own (a
 * container's view: the same hostname, pids of its own), with a pid this namespace does not run.
 */
const canUnshare = (() => {
  try {
    execFileSync('unshare', ['-Urpf', '--mount-proc', 'true'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
})();

/**
 * The gate process of {@link spawnGateProcess} in a pid namespace of its own, as a second container
 * on this host started with the host's hostname (`--network host`, or `hostname:` in a compose file
 * with replicas) runs: its pid is one that no process of this namespace has.
 */
async function spawnGateProcessInOwnPidNamespace(): Promise<{
  child: ChildProcess;
  base: string;
  workerId: string;
}> {
  let pid = 31_000;
  while (existsSync(`/proc/${pid}`)) pid--;
  const dir = mkdtempSync(join(tmpdir(), 'sy-gate-ns-'));
  const wrapper = join(dir, 'node-in-pid-ns.sh');
  // `node` in a fresh pid namespace (same hostname, same network), forked by its pid 1 after
  // ns_last_pid is set, so its pid is `pid`; killed with the unshare process fork() holds.
  writeFileSync(
    wrapper,
    `#!/bin/sh\nexec unshare -Urpf --kill-child --mount-proc sh -c 'echo ${pid - 1} > /proc/sys/kernel/ns_last_pid; "$0" "$@"' ${process.execPath} "$@"\n`,
    { mode: 0o755 },
  );
  const child = fork(
    new URL('./gate-process.test-support.ts', import.meta.url),
    [JSON.stringify({ databaseUrl: database.url(), secretKey: SECRET_KEY })],
    { execPath: wrapper },
  );
  child.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const ready = await new Promise<{ port: number; workerId: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gate process not ready in 30 s')), 30_000);
    child.on('message', (m: { type?: string; port?: number; workerId?: string }) => {
      if (m.type !== 'ready') return;
      clearTimeout(timer);
      resolve({ port: m.port!, workerId: m.workerId! });
    });
    child.once('exit', (code) => reject(new Error(`gate process exited with ${code} before ready`)));
  });
  return { child, base: `http://127.0.0.1:${ready.port}`, workerId: ready.workerId };
}

describe('a retry while another process with this hostname decides', () => {
  it.skipIf(!canUnshare)(
    'waits for the living decider of another pid namespace: the approvers are not asked twice, the vendor not answered two ways',
    async () => {
      let calls = 0;
      const a = await approver('crm', {
        handler: async () => {
          // The living process's call: slow, then a refusal. Any second call would approve.
          if (++calls === 1) {
            await new Promise((r) => setTimeout(r, 1500));
            return { status: 409, body: { vendorErrorCode: 14 } };
          }
          return { status: 200, body: { decision: 'approve' } };
        },
      });
      const gate = await spawnGateProcessInOwnPidNamespace();
      try {
        // Its claim names this host (the same hostname) and a pid that runs nowhere here.
        expect(gate.workerId.split('/')[0]!.split('#')[0]).toBe(hostname());
        const body = slotBooking();
        const first = fetch(`${gate.base}/hooks/dp`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
          body: JSON.stringify(body),
        }).then(async (r) => ({ status: r.status, body: await r.json() }));
        await a.waitFor(1);
        expect(await latestGate('dp')).toMatchObject({ status: 'deciding', decision: null });
        // The vendor's retry (its own timeout was shorter than the approver's call) reaches this process.
        const retry = await push('dp', body);
        const answered = await first;
        // On the old code the retry took the request up at once as "gone": the approver was asked
        // again and approved, while the living process answered its vendor connection 409.
        expect(a.requests).toHaveLength(1);
        expect(answered).toMatchObject({ status: 409, body: { error_code: 14 } });
        expect(retry).toMatchObject({ status: 409, body: { error_code: 14 } });
        expect(await latestGate('dp')).toMatchObject({ decision: 'refuse', vendorErrorCode: 14 });
      } finally {
        const exited = new Promise((resolve) => gate.child.once('exit', resolve));
        gate.child.kill('SIGKILL');
        await exited;
      }
    },
  );
});

describe('admin API and CLI', () => {
  it('lists and shows gate requests over HTTP, with filters and 404s', async () => {
    await approver('crm', { defaultResponse: { status: 409, body: { reason: 'nope' } } });
    await push('dp-refuse', slotBooking());
    // The route schemas carry the hub's annotations (a cursor's own message): the app's ajv knows them.
    const app = Fastify({ ajv: { customOptions: { keywords: ['x-message', 'x-secret'] } } });
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
      // Paged like every admin list (docs/api.md): limit 1..1000, capped at 500. It was 400 past 500.
      const large = await app.inject({ method: 'GET', url: '/v1/gates?limit=1000' });
      expect(large.statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/v1/gates?limit=1001' })).statusCode).toBe(400);
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
    // Like `events list` and `commands list`: past the hub's page of 500 is a usage error, not a
    // silently shorter list.
    await expect(
      gatesCommand.run(
        { values: { 'database-url': database.url(), limit: '501' }, positionals: ['list'] },
        io,
      ),
    ).rejects.toThrow('--limit must be an integer 1..500');
  });

  it('counts decisions in its metrics', async () => {
    const text = await hub.host.metrics.metrics();
    expect(text).toMatch(
      /switchyard_gate_decisions_total\{instance="dp",outcome="approve",reason="approved"\} \d+/,
    );
    // The defaults the vendor got because approvers were slow, down or missing ("deciding" above):
    // what docs/operations.md's SwitchyardGateDefaulting alerts on, by instance.
    for (const reason of ['deadline', 'unavailable', 'no_approvers'])
      expect(text).toMatch(
        new RegExp(
          `switchyard_gate_decisions_total\\{instance="[\\w-]+",outcome="\\w+",reason="${reason}"\\} [1-9]`,
        ),
      );
    expect(text).toContain('switchyard_gate_overhead_seconds_count');
  });
});

describe('maintenance', () => {
  const DAY = 24 * 3600 * 1000;

  /** A gate request row as a process leaves it (no HTTP involved). */
  async function storedRequest(
    r: {
      receivedAt?: Date;
      deadlineAt?: Date;
      claimedBy?: string | null;
      defaultOutcome?: 'approve' | 'refuse';
    } = {},
  ): Promise<string> {
    const id = `stored-${++counter}`;
    const { row, synchronousCommit } = await insertGateRequest(hub.host.db, {
      id,
      instanceId: 'dp',
      connector: 'docplanner',
      inboundMessageId: null,
      dedupeKey: id,
      vendorType: 'slot-booking',
      type: 'appointment.booking_requested',
      eventId: null,
      envelope: null,
      matchKey: null,
      deadlineMs: 2000,
      defaultOutcome: r.defaultOutcome ?? 'approve',
      deadlineAt: r.deadlineAt ?? new Date(Date.now() + 2000),
      receivedAt: r.receivedAt ?? new Date(),
      claimedBy: r.claimedBy === undefined ? 'worker-that-died' : r.claimedBy,
    });
    expect(row?.id).toBe(id);
    const claimed = r.claimedBy !== null;
    expect([row?.status, row?.claimed_at instanceof Date, row?.deadline_ms]).toEqual([
      claimed ? 'deciding' : 'pending',
      claimed,
      2000,
    ]);
    // Its commit does not wait for the flush (the vendor's answer waits for a later one that does).
    expect(synchronousCommit).toBe('off');
    return id;
  }

  const answer = (subscriptionId: string): NewGateAnswer => ({
    subscriptionId,
    startedAt: new Date(),
    latencyMs: 12,
    statusCode: 200,
    outcome: 'approve',
    reason: null,
    vendorErrorCode: null,
    responseSnippet: null,
    error: null,
    afterDecision: false,
  });

  async function count(table: 'gate_requests' | 'gate_answers', ids: string[]): Promise<number> {
    const column = sql.ref(table === 'gate_requests' ? 'id' : 'gate_request_id');
    const r = await sql<{ n: string }>`
      select count(*) as n from ${sql.table(`switchyard.${table}`)} where ${column} = any(${ids}::text[])`.execute(
      hub.host.db,
    );
    return Number(r.rows[0]!.n);
  }

  it('purges gate requests and their answers older than the events retention, in batches', async () => {
    // The hub keeps events 90 days (the default, config/schema.ts) and purges 2 rows per statement.
    const old = new Date(Date.now() - 91 * DAY);
    const oldIds: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = await storedRequest({ receivedAt: old, deadlineAt: old, claimedBy: null });
      await insertGateAnswers(hub.host.db, id, [answer('a'), answer('b'), answer('c')]);
      oldIds.push(id);
    }
    const recent = await storedRequest({ receivedAt: new Date(Date.now() - 89 * DAY), claimedBy: null });
    await insertGateAnswers(hub.host.db, recent, [answer('a')]);

    const purged = await gates.purge();
    expect(purged).toEqual({ requests: 5, answers: 15 });
    expect(await count('gate_requests', oldIds)).toBe(0);
    expect(await count('gate_answers', oldIds)).toBe(0);
    expect(await count('gate_requests', [recent])).toBe(1);
    expect(await count('gate_answers', [recent])).toBe(1);
    expect(await gates.purge()).toEqual({ requests: 0, answers: 0 });
  });

  it('closes requests left deciding (or pending) well past their deadline as abandoned, with the default', async () => {
    const longAgo = new Date(Date.now() - 5 * 60_000);
    const dead = await storedRequest({ deadlineAt: longAgo, defaultOutcome: 'refuse' });
    const dead2 = await storedRequest({ deadlineAt: longAgo });
    const neverClaimed = await storedRequest({ deadlineAt: longAgo, claimedBy: null });
    // Within the grace period (60 s by default): its process may still record it.
    const justLate = await storedRequest({ deadlineAt: new Date(Date.now() - 1000) });
    const before = await hub.host.metrics.getSingleMetricAsString('switchyard_gate_abandoned_total');

    expect(await gates.sweep()).toBe(3);
    expect(await gates.get(dead)).toMatchObject({
      status: 'decided',
      decision: 'refuse',
      reason: 'abandoned',
      responseStatus: null,
      error: expect.stringContaining('abandoned'),
    });
    expect(await gates.get(dead2)).toMatchObject({ decision: 'approve', reason: 'abandoned' });
    expect(await gates.get(neverClaimed)).toMatchObject({ decision: 'approve', reason: 'abandoned' });
    expect(await gates.get(justLate)).toMatchObject({ status: 'deciding', decision: null });
    expect(await gates.sweep()).toBe(0);
    const page = await gates.list({ reason: 'abandoned', limit: 10 });
    expect(page.items.map((g) => g.id).sort()).toEqual([dead, dead2, neverClaimed].sort());
    const after = await hub.host.metrics.getSingleMetricAsString('switchyard_gate_abandoned_total');
    expect(before).not.toContain('outcome="refuse"');
    expect(after).toMatch(/switchyard_gate_abandoned_total\{instance="dp",outcome="refuse"\} 1/);
    expect(after).toMatch(/switchyard_gate_abandoned_total\{instance="dp",outcome="approve"\} 2/);
  });

  it('a worker process sweeps on its own timer', async () => {
    const other = await makeHub({ gates: { sweepIntervalMs: 50, abandonAfterMs: 100 } });
    try {
      const id = await storedRequest({ deadlineAt: new Date(Date.now() - 1000) });
      const closed = await eventually(async () => {
        const g = await gates.get(id);
        return g.reason === 'abandoned' ? g : undefined;
      });
      expect(closed).toMatchObject({ status: 'decided', decision: 'approve' });
    } finally {
      await other.gates.stop();
      await other.hub.stop();
    }
  });

  it('reads the approver list once while it is cached, and again as soon as an approver changes', async () => {
    // A long cache, so only the change notification can explain a fresh read.
    const cached = await makeHub({ gates: { approverCacheMs: 60_000 } });
    const query = pg.Client.prototype.query;
    let reads = 0;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text;
      if (text?.includes('where approver and kind')) reads++;
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof query;
    try {
      const first = await approver('crm');
      for (let i = 0; i < 4; i++) expect((await push('dp', slotBooking(), cached.hub)).status).toBe(200);
      expect(first.requests).toHaveLength(4);
      expect(reads).toBe(1);
      // A new approver refuses: once its creation is heard, requests are refused.
      await approver('strict', { defaultResponse: { status: 409, body: { vendorErrorCode: 2 } } });
      const refused = await eventually(async () => {
        const r = await push('dp', slotBooking(), cached.hub);
        return r.status === 409 ? r : undefined;
      });
      expect(refused.ok && refused.body).toEqual({ error_code: 2 });
      expect(reads).toBeGreaterThanOrEqual(2);
    } finally {
      pg.Client.prototype.query = query;
      await cached.gates.drain();
      await cached.gates.stop();
      await cached.hub.stop();
    }
  });
});
