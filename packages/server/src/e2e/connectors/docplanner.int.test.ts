/**
 * Docplanner end to end: the simulator pushes every documented notification (the connector's
 * fixtures, in the conformance order) over real HTTP to the hub, which authenticates, stores,
 * normalizes and delivers signed CloudEvents to a recording subscriber; gates are decided by an
 * approver subscription and answered to the simulator; the pull queue is drained by the hub's poller.
 */
import docplanner from '@switchyard/connector-docplanner';
import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import type { JsonObject, JsonValue } from '@switchyard/core';
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getCurrentEntity } from '../../entities/current.ts';
import type { HubEvent } from '../../events/api.ts';
import { fixture } from './fixtures.test-support.ts';
import {
  bodies,
  type E2e,
  eventually,
  expectDelivered,
  SIGNING_SECRET,
  startE2e,
} from './harness.test-support.ts';

const API_KEY = 'dp-e2e-push-key-5b1d';
const PUSH = 'dp-push';
const PULL = 'dp-pull';
const PULL_MULTI = 'dp-pull-multi';
const PUSH_RELEASE = 'dp-push-release';

/** Every push fixture with what it must produce, in an order where each booking's story holds. */
const FIXTURES: Array<{ file: string; expect: string[] | 'ignored' }> = [
  { file: 'address-assigned.json', expect: ['schedule.activated'] },
  { file: 'address-service-created.json', expect: ['schedule.updated'] },
  { file: 'address-service-changed.json', expect: ['schedule.updated'] },
  { file: 'address-service-deleted.json', expect: ['schedule.updated'] },
  { file: 'address-commercial-type-changed.json', expect: ['schedule.updated'] },
  { file: 'slot-booking.json', expect: ['appointment.booking_requested'] },
  { file: 'slot-booked.json', expect: ['appointment.created'] },
  { file: 'booking-confirmed.json', expect: ['appointment.confirmed'] },
  { file: 'slot-changed.json', expect: ['slot.changed'] },
  { file: 'slot-overbooked.json', expect: ['appointment.created'] },
  { file: 'booking-moving.json', expect: ['appointment.reschedule_requested'] },
  { file: 'booking-moved.json', expect: ['appointment.rescheduled'] },
  { file: 'slot-booked-paid.json', expect: ['appointment.created'] },
  { file: 'booking-payment-status-changed.json', expect: ['appointment.updated'] },
  { file: 'slot-booked-by-doctor.json', expect: ['appointment.created'] },
  { file: 'booking-moved-address-change.json', expect: ['appointment.rescheduled'] },
  { file: 'slot-booked-by-integration.json', expect: ['appointment.created'] },
  { file: 'booking-canceled-by-integration.json', expect: ['appointment.cancelled'] },
  { file: 'slot-booked-videocall.json', expect: ['appointment.created'] },
  { file: 'booking-moving-canceling-by-no-patient.json', expect: ['appointment.reschedule_requested'] },
  { file: 'break-created.json', expect: ['slot.blocked'] },
  { file: 'break-moved.json', expect: ['slot.block_moved'] },
  { file: 'break-removed.json', expect: ['slot.unblocked'] },
  { file: 'booking-canceled.json', expect: ['appointment.cancelled'] },
  { file: 'presence-marked-absent.json', expect: ['appointment.no_show'] },
  { file: 'presence-marked-present.json', expect: ['appointment.arrived'] },
  { file: 'unknown-name.json', expect: 'ignored' },
  { file: 'address-unassigned.json', expect: ['schedule.deactivated'] },
];

type Body = Record<string, JsonValue> & { type: string; subject: string; data: JsonObject };

const database = useTestDatabase();
let e2e: E2e;
let approver: RecordingSubscriber;
let sim: DocplannerSimulator;
let refusals = 0;

beforeAll(async () => {
  e2e = await startE2e({ databaseUrl: database.url(), connectors: [docplanner], gates: true });
  // The approver refuses the first move it is asked about (with a Docplanner error code) and
  // approves everything else.
  approver = await startRecordingSubscriber({
    secrets: SIGNING_SECRET,
    handler: (req) => {
      if (req.type === 'appointment.reschedule_requested' && refusals++ === 0) {
        return { status: 200, body: { decision: 'refuse', reason: 'calendar conflict', vendorErrorCode: 7 } };
      }
      return { status: 200, body: { decision: 'approve' } };
    },
  });
  // An instance nothing pushes to: the approver's event stream comes from it alone.
  await e2e.hub.instances.upsert({
    id: 'nobody',
    connector: 'docplanner',
    mode: 'push',
    settings: {
      domain: 'znanylekarz.pl',
      pushAuth: { headerName: 'X-Docplanner-Key', apiKey: `${API_KEY}-nobody` },
    },
  });
  await e2e.hub.instances.upsert({
    id: PUSH,
    connector: 'docplanner',
    mode: 'push',
    settings: { domain: 'znanylekarz.pl', pushAuth: { headerName: 'X-Docplanner-Key', apiKey: API_KEY } },
    gate: { deadlineMs: 5000, default: 'approve' },
  });
  await e2e.hub.subscriptions.create({
    id: 'e2e-approver',
    url: `${approver.url}approve`,
    secrets: [SIGNING_SECRET],
    approver: true,
    approverFilters: { sources: [PUSH] },
    // It approves; it does not take the event stream.
    sources: ['nobody'],
    allowPrivateAddresses: true,
  });
  sim = new DocplannerSimulator({
    hookUrl: e2e.hookUrl(PUSH),
    apiKey: API_KEY,
    apiKeyHeader: 'X-Docplanner-Key',
    timeScale: 0.0001,
  });
  await sim.start();
});

afterAll(async () => {
  await sim?.close();
  await approver?.close();
  await e2e?.close();
});

describe('docplanner end to end', () => {
  const delivered = new Map<string, Body[]>();

  it('delivers every documented notification as signed, valid CloudEvents and stores the unknown one as ignored', async () => {
    for (const f of FIXTURES) {
      const settled = await e2e.settle(PUSH, () => sim.push(fixture('docplanner', f.file)));
      const record = sim.pushes[sim.pushes.length - 1]!;
      expect(record.attempts[0]!.status, f.file).toBeLessThan(500);
      expect(settled.messages, f.file).toHaveLength(1);
      const message = settled.messages[0]!;
      if (f.expect === 'ignored') {
        expect(message.status, f.file).toBe('ignored');
        expect(message.reason, f.file).toBeTruthy();
        expect(settled.events).toEqual([]);
        continue;
      }
      expect(message.status, `${f.file}: ${message.reason ?? ''}`).toBe('normalized');
      expect(
        settled.deliveries.map((d) => d.type),
        f.file,
      ).toEqual(f.expect);
      settled.deliveries.forEach((d, i) => {
        expectDelivered(d, settled.events[i]!, { instanceId: PUSH, connector: 'docplanner' });
      });
      expect(bodies(settled).map((b) => b.vendortype)).toEqual(
        settled.events.map(() => record.notification.name),
      );
      delivered.set(f.file, bodies(settled) as Body[]);
    }
    // Delivered once each, in the order pushed: the subscriber saw exactly the documented sequence.
    const expected = FIXTURES.flatMap((f) => (f.expect === 'ignored' ? [] : f.expect));
    const accepted = e2e.subscriber.requests.filter((r) => r.response && r.response.status < 300);
    expect(accepted.map((r) => r.type)).toEqual(expected);
    expect(new Set(accepted.map((r) => r.webhookId)).size).toBe(expected.length);
  });

  it('keeps one hub id for a booking through its gate, confirmation, move and cancellation', () => {
    const one = (file: string) => delivered.get(file)![0]!;
    const requested = one('slot-booking.json');
    const created = one('slot-booked.json');
    const moved = one('booking-moved.json');
    const proposed = requested.data.proposed as JsonObject;
    expect(created.subject).toBe(`appointment/${String(proposed.id)}`);
    expect(created.data.id).toBe(proposed.id);
    for (const file of ['booking-confirmed.json', 'booking-moved.json', 'booking-canceled.json']) {
      expect(one(file).subject, file).toBe(created.subject);
      expect(one(file).data.id, file).toBe(created.data.id);
    }
    // The move gave the booking a new Docplanner id: both are listed, the new one current.
    const ids = (moved.data.vendorIds as JsonObject[]).map((v) => [v.value, v.current]);
    expect(ids).toEqual(
      expect.arrayContaining([
        ['210045781', false],
        ['210046990', true],
      ]),
    );
    expect(moved.data.previous).toMatchObject({ start: '2026-03-10T11:30:00+01:00' });
    expect(moved.data.start).toBe('2026-03-12T15:00:00+01:00');
    expect(one('booking-canceled.json').data.status).toBe('cancelled');
    // A moved break's previous times come from the state the hub stored (in Postgres) for it.
    const blocked = one('break-created.json');
    expect(one('break-moved.json').subject).toBe(blocked.subject);
    expect(one('break-removed.json').subject).toBe(blocked.subject);
    expect(one('break-moved.json').data.previous).toMatchObject({
      start: '2026-03-11T12:00:00+01:00',
      end: '2026-03-11T13:00:00+01:00',
    });
    // A different booking is a different subject.
    expect(one('slot-booked-paid.json').subject).not.toBe(created.subject);
    expect(one('presence-marked-absent.json').subject).toBe(one('slot-booked-paid.json').subject);
  });

  it('lists the vendor ids of a move seen first old then new, whatever their text order (commands act on the last)', async () => {
    // Both booking ids unseen: the move links them in one statement. The old id sorts after the new
    // one as text, which decided their order before the link order did.
    const move = fixture('docplanner', 'booking-moved.json');
    const data = move.data as JsonObject;
    (data.old_visit_booking as JsonObject).id = '99999999';
    (data.new_visit_booking as JsonObject).id = '100000001';
    move.created_at = '2026-03-12T09:00:01+01:00';
    const settled = await e2e.settle(PUSH, () => sim.push(move));
    expect(settled.events.map((e) => e.type)).toEqual(['appointment.rescheduled']);
    const hubId = settled.events[0]!.subject.slice('appointment/'.length);
    const ids = await e2e.hub.host.aliases(PUSH).vendorIds('appointment', hubId);
    expect(ids).toEqual(['99999999', '100000001']);
  });

  it("holds a presence mark applied after a later payment change as the appointment's current state", async () => {
    // The visit at 11:30: the patient is marked present at 11:31, pays at 11:40; Docplanner retries
    // the presence push, which arrives after the payment's. The connector applies it (a payment
    // change is no later status: docs/connectors/docplanner.md), so the appointment is arrived;
    // the current state, kept by event time until 2026-12-06, stayed at the payment change (booked).
    const booking = (body: JsonObject, createdAt: string) => {
      const b = structuredClone(body);
      b.created_at = createdAt;
      const visit = (b.data as JsonObject).visit_booking as JsonObject;
      Object.assign(visit, {
        id: '310000001',
        start_at: '2026-05-20T11:30:00+02:00',
        end_at: '2026-05-20T11:50:00+02:00',
      });
      return b;
    };
    const paid = booking(
      fixture('docplanner', 'booking-payment-status-changed.json'),
      '2026-05-20T11:40:01+02:00',
    );
    (paid.data as JsonObject).visit_payment_status = {
      status_from: 'not-paid',
      status_to: 'paid',
      changed_at: '2026-05-20T11:40:00+02:00',
    };
    const steps: Array<[JsonObject, string]> = [
      [
        booking(fixture('docplanner', 'slot-booked.json'), '2026-05-04T09:00:00+02:00'),
        'appointment.created',
      ],
      [paid, 'appointment.updated'],
      [
        booking(fixture('docplanner', 'presence-marked-present.json'), '2026-05-20T11:31:00+02:00'),
        'appointment.arrived',
      ],
    ];
    let last: HubEvent | undefined;
    for (const [body, type] of steps) {
      const settled = await e2e.settle(PUSH, () => sim.push(body));
      expect(settled.events.map((e) => e.type)).toEqual([type]);
      last = settled.events[0]!;
    }
    const current = await getCurrentEntity(e2e.hub.host.db, last!.subject);
    expect([current?.eventId, current?.data.status, current?.data.payment]).toEqual([
      last!.id,
      'arrived',
      expect.objectContaining({ status: 'paid' }),
    ]);
  });

  it('answers each gate with the approver decision, in the shape Docplanner expects', async () => {
    expect(sim.gateAnswers.map((a) => [a.notification.name, a.status, a.json])).toEqual([
      ['slot-booking', 200, {}],
      ['booking-moving', 409, { error_code: 7 }],
      ['booking-moving', 200, {}],
    ]);
    expect(sim.gateAnswers.map((a) => a.approved)).toEqual([true, false, true]);
    // The approver was asked with signed requests carrying the same event the stream delivered.
    const asked = approver.requests;
    expect(asked.map((r) => r.type)).toEqual([
      'appointment.booking_requested',
      'appointment.reschedule_requested',
      'appointment.reschedule_requested',
    ]);
    expect(asked.every((r) => r.signature.valid)).toBe(true);
    expect(asked[0]!.webhookId).toBe(delivered.get('slot-booking.json')![0]!.id);
    expect(asked[1]!.webhookId).toBe(delivered.get('booking-moving.json')![0]!.id);
    const { items } = await e2e.gates!.list({ instanceId: PUSH });
    const byType = items
      .slice()
      .sort((a, b) => a.receivedAt.getTime() - b.receivedAt.getTime())
      .map((g) => [g.vendorType, g.decision, g.responseStatus]);
    expect(byType).toEqual([
      ['slot-booking', 'approve', 200],
      ['booking-moving', 'refuse', 409],
      ['booking-moving', 'approve', 200],
    ]);
    // The booking that followed the approved slot-booking was matched to it.
    const slotGate = items.find((g) => g.vendorType === 'slot-booking')!;
    expect(slotGate.booking.status).toBe('booked');
    expect(slotGate.booking.subject).toBe(delivered.get('slot-booked.json')![0]!.subject);
    // Stored like every notification, marked as gates.
    const gateMessages = (await e2e.hub.inbound.list({ instanceId: PUSH, limit: 100 })).items.filter(
      (m) => m.gate,
    );
    expect(gateMessages.map((m) => m.vendorType).sort()).toEqual([
      'booking-moving',
      'booking-moving',
      'slot-booking',
    ]);
  });

  it('refuses a push with the wrong key: nothing stored, Docplanner buries it after its retries', async () => {
    const before = (await e2e.hub.inbound.list({ instanceId: PUSH, limit: 500 })).items.length;
    const wrong = new DocplannerSimulator({
      hookUrl: e2e.hookUrl(PUSH),
      apiKey: 'not-the-key-at-all',
      apiKeyHeader: 'X-Docplanner-Key',
      retryDelaysMs: [10, 10],
    });
    const record = await wrong.push(fixture('docplanner', 'slot-booked-videocall.json'));
    expect(record.attempts.map((a) => a.status)).toEqual([401, 401, 401]);
    expect(record.buried).toBe(true);
    expect(JSON.parse(record.attempts[0]!.body)).toMatchObject({ status: 401 });
    expect((await e2e.hub.inbound.list({ instanceId: PUSH, limit: 500 })).items).toHaveLength(before);
  });

  it('drains the pull queue one notification at a time into deliveries (single mode)', async () => {
    const names = [
      'slot-booked-paid.json',
      'booking-payment-status-changed.json',
      'presence-marked-absent.json',
      'break-created.json',
      'unknown-name.json',
    ];
    sim.enqueue(...names.map((f) => fixture('docplanner', f)));
    expect(sim.queueLength).toBe(5);
    await e2e.hub.instances.upsert({
      id: PULL,
      connector: 'docplanner',
      mode: 'pull',
      settings: {
        apiBaseUrl: sim.url,
        clientId: 'sim-client',
        clientSecret: 'sim-secret',
        pullMode: 'single',
      },
      pull: { intervalMs: 60_000 },
    });
    const settled = await e2e.settleNew(PULL, 5);
    expect(sim.queueLength).toBe(0);
    expect(sim.tokensIssued).toBeGreaterThanOrEqual(1);
    expect(settled.messages.map((m) => [m.origin, m.vendorType, m.status])).toEqual([
      ['pull', 'slot-booked', 'normalized'],
      ['pull', 'booking-payment-status-changed', 'normalized'],
      ['pull', 'presence-marked', 'normalized'],
      ['pull', 'break-created', 'normalized'],
      ['pull', 'calendar-synchronized', 'ignored'],
    ]);
    expect(settled.deliveries.map((d) => d.type)).toEqual([
      'appointment.created',
      'appointment.updated',
      'appointment.no_show',
      'slot.blocked',
    ]);
    settled.deliveries.forEach((d, i) => {
      expectDelivered(d, settled.events[i]!, { instanceId: PULL, connector: 'docplanner' });
    });
    const subjects = bodies(settled).map((b) => b.subject);
    expect(new Set(subjects.slice(0, 3)).size).toBe(1);
    // Each instance keeps its own ids: the same booking pushed to dp-push is another subject here.
    expect(subjects[0]).not.toBe(delivered.get('slot-booked-paid.json')![0]!.subject);
    const served = sim.served.filter((s) => s.path === '/api/v3/integration/notifications');
    expect(served.filter((s) => s.status === 200)).toHaveLength(5);
    const health = await e2e.hub.instances.health(PULL);
    expect(health.pull?.consecutiveFailures).toBe(0);
    // The turn ends on the empty queue's 404, and only then is this instance's next turn a minute
    // away. The next test fills the same simulator's queue: a sixth GET still on its way would take
    // its notifications into this instance (seen once in CI, reproduced by delaying that answer).
    await eventually(
      async () => sim.served.some((s) => s.path === '/api/v3/integration/notifications' && s.status === 404),
      `${PULL}'s turn ending on the empty queue`,
    );
  });

  it('drains the pull queue in batches (multiple mode)', async () => {
    const batch = fixture('docplanner', 'notifications-multiple.json', 'fixtures-pull');
    sim.enqueue(...(batch.notifications as JsonObject[]));
    await e2e.hub.instances.upsert({
      id: PULL_MULTI,
      connector: 'docplanner',
      mode: 'pull',
      settings: {
        apiBaseUrl: sim.url,
        clientId: 'sim-client',
        clientSecret: 'sim-secret',
        pullMode: 'multiple',
        pullLimit: 10,
      },
      pull: { intervalMs: 60_000 },
    });
    const settled = await e2e.settleNew(PULL_MULTI, 3);
    expect(sim.queueLength).toBe(0);
    expect(settled.deliveries.map((d) => d.type)).toEqual([
      'appointment.created',
      'appointment.cancelled',
      'slot.blocked',
    ]);
    settled.deliveries.forEach((d, i) => {
      expectDelivered(d, settled.events[i]!, { instanceId: PULL_MULTI, connector: 'docplanner' });
    });
    expect(
      sim.served.some((s) => s.path.startsWith('/api/v3/integration/notifications/multiple?limit=10')),
    ).toBe(true);
  });

  it('push mode: calls release on its schedule, so a push Docplanner buried arrives, and shows when it ran', {
    timeout: 30_000,
  }, async () => {
    const vendor = new DocplannerSimulator({
      hookUrl: e2e.hookUrl(PUSH_RELEASE),
      apiKey: API_KEY,
      apiKeyHeader: 'X-Docplanner-Key',
      retryDelaysMs: [10, 10],
    });
    try {
      await vendor.start();
      // Pushed while the hub has no such instance: 404 on every try, and Docplanner buries it.
      const lost = await vendor.push(fixture('docplanner', 'break-created.json'));
      expect(lost.attempts.map((a) => a.status)).toEqual([404, 404, 404]);
      expect(vendor.buried).toHaveLength(1);

      await e2e.hub.instances.upsert({
        id: PUSH_RELEASE,
        connector: 'docplanner',
        mode: 'push',
        settings: {
          apiBaseUrl: vendor.url,
          clientId: 'sim-client',
          clientSecret: 'sim-secret',
          pushAuth: { headerName: 'X-Docplanner-Key', apiKey: API_KEY },
        },
      });
      // A new push instance is reconciled at the poller's next turn: release re-pushes the buried one.
      const arrived = await eventually(async () => {
        const page = await e2e.hub.inbound.list({ instanceId: PUSH_RELEASE });
        return page.items.length === 1 && page.items[0]!.status === 'normalized' ? page.items : undefined;
      }, 'the released push stored and normalized');
      expect(arrived.map((m) => [m.origin, m.vendorType])).toEqual([['push', 'break-created']]);
      const releases = () =>
        vendor.served.filter(
          (r) => r.method === 'POST' && r.path === '/api/v3/integration/notifications/release',
        );
      expect(releases().map((r) => r.status)).toEqual([202]);
      const first = await e2e.hub.instances.health(PUSH_RELEASE);
      expect(first.reconcile).toMatchObject({ lastResult: 'released 1', lastError: null });
      expect(first.reconcile!.lastRunAt).toEqual(first.reconcile!.lastSuccessAt);
      // Next one an hour later (the default releaseIntervalMinutes: 60).
      const inMs = first.reconcile!.nextAt!.getTime() - first.reconcile!.lastRunAt!.getTime();
      expect(inMs).toBeGreaterThan(59 * 60_000);
      expect(inMs).toBeLessThanOrEqual(60 * 60_000 + 1000);

      // Due again before Docplanner's hour is over: its 429 and Retry-After are recorded and obeyed.
      await sql`update switchyard.connector_instances set reconcile_next_at = now() where id = ${PUSH_RELEASE}`.execute(
        e2e.hub.host.db,
      );
      await eventually(async () => releases().length === 2, 'a second release call');
      const second = await eventually(async () => {
        const h = await e2e.hub.instances.health(PUSH_RELEASE);
        return h.reconcile?.lastError ? h : undefined;
      }, 'the refused release recorded');
      expect(releases().map((r) => r.status)).toEqual([202, 429]);
      expect(second.reconcile!.lastError).toMatch(/429/);
      expect(second.reconcile!.lastSuccessAt).toEqual(first.reconcile!.lastSuccessAt);
      expect(second.reconcile!.lastResult).toBe('released 1');
      const retryIn = second.reconcile!.nextAt!.getTime() - second.reconcile!.lastRunAt!.getTime();
      expect(retryIn).toBeGreaterThan(50 * 60_000);

      // The dashboard and the admin API show it (the health answer is the instance page's data).
      expect(Object.keys(second.reconcile!).sort()).toEqual([
        'lastError',
        'lastResult',
        'lastRunAt',
        'lastSuccessAt',
        'nextAt',
      ]);
      // An instance without API credentials is not reconciled (nothing to call release with).
      expect((await e2e.hub.instances.health(PUSH)).reconcile).toBeNull();
    } finally {
      await vendor.close();
    }
  });
});
