/**
 * A command done without a change takes no echo, through a started hub process and the vendor
 * simulators over real HTTP. A presence mark on an appointment the hub already knows in that status
 * changes nothing at Docplanner, which then notifies nothing of it: the command succeeds
 * `unchanged`, and the next notification of its type within the echo window (staff marking the
 * patient again) is delivered without `causedBy`. Before, the no-op command took it as its echo, and
 * a CRM skipping its own echoes lost the staff's change. A mark that changes the status still takes
 * its echo. The same for a BookingBug check-in status the hub knows already (JRNI's data webhooks). A Clockwise.MD custom-field update takes none: its webhook says only
 * `demographics_update`, whatever changed (docs/events.md, "Echoes of commands").
 */
import { BookingBugSimulator } from '@switchyard/connector-bookingbug/simulator';
import { ClockwiseSimulator } from '@switchyard/connector-clockwisemd/simulator';
import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import type { JsonObject } from '@switchyard/core';
import { type RecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../e2e/connectors/fixtures.test-support.ts';
import type { HubProcess } from '../runtime/process.ts';
import {
  type CommandHub,
  causedBy,
  clockwiseInstance,
  docplannerInstance,
  startCommandHub,
} from './command-hub.test-support.ts';

const db = useTestDatabase();
const PUSH_KEY = 'dp-unchanged-push-key-0123';
const CW_HOOK_KEY = 'cw-unchanged-hook-key-0123456';
const CW_API_KEY = 'cw-unchanged-api-key-abcdef';
const BB_TOKEN = 'jrni-unchanged-basic-token-0123';
const PLACE = { facility: '90211', doctor: '182733', address: '221304' };

let sim: DocplannerSimulator;
let cwSim: ClockwiseSimulator;
let bbSim: BookingBugSimulator;
let c: CommandHub;
let subscriber: RecordingSubscriber;
let hub: HubProcess;

/** The three push instances, each against its simulator. */
const instances = () => [
  ...docplannerInstance('dp', sim.url),
  ...clockwiseInstance('cw', { hookKey: CW_HOOK_KEY, apiKey: CW_API_KEY, apiBaseUrl: cwSim.apiBaseUrl }),
  '  - id: bb',
  '    connector: bookingbug',
  '    mode: push',
  '    settings:',
  `      basicToken: ${BB_TOKEN}`,
  '      adminApi:',
  `        baseUrl: ${bbSim.url}`,
  '        appId: sim-app-id',
  '        appKey: sim-app-key',
  '        email: admin@clinic.example',
  '        password: sim-admin-password',
];

const api = (method: string, path: string, body?: unknown) => c.api(method, path, body);
const finished = (id: string) => c.finished(id);

/** Docplanner's time format: seconds and an offset. */
const dpTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+00:00');

let nextBooking = 8_100_000;
let clock = Date.now();
/** A notification time later than any before it (Docplanner's `created_at`, by the second). */
const later = () => {
  clock += 60_000;
  return dpTime(clock);
};

function notification(name: string, booking: JsonObject, extra: JsonObject = {}): JsonObject {
  return {
    name,
    data: {
      facility: { id: PLACE.facility },
      doctor: { id: PLACE.doctor },
      address: { id: PLACE.address },
      visit_booking: booking,
      ...extra,
    },
    created_at: later(),
  };
}

/** A booking Docplanner notified (`slot-booked`), once delivered: its subject and the booking. */
async function booked(): Promise<{ subject: string; booking: JsonObject }> {
  const booking: JsonObject = {
    id: String(nextBooking++),
    status: 'booked',
    start_at: '2026-03-10T11:30:00+01:00',
    end_at: '2026-03-10T12:00:00+01:00',
    duration: 30,
    booked_by: 'user',
    canceled_by: '',
    booked_at: '2026-03-08T18:04:11+01:00',
    address_service: { id: '4455661', name: 'Konsultacja' },
    patient: { name: 'Anna', surname: 'Kowalska', phone: '+48500100200' },
  };
  await sim.push(notification('slot-booked', booking), { hookUrl: `${hub.url}/hooks/dp` });
  const created = await subscriber.waitFor(
    (r) => r.type === 'appointment.created' && r.text.includes(`"value":"${booking.id}"`),
  );
  return { subject: created.subject!, booking };
}

/** Staff marking presence at Docplanner: its `presence-marked`, once delivered as `type`. */
async function staffMarks(
  subject: string,
  booking: JsonObject,
  presence: 'PRESENT' | 'ABSENT',
  seen: Set<unknown>,
) {
  await sim.push(notification('presence-marked', booking, { presence }), { hookUrl: `${hub.url}/hooks/dp` });
  const type = presence === 'PRESENT' ? 'appointment.arrived' : 'appointment.no_show';
  const event = await subscriber.waitFor((r) => r.type === type && r.subject === subject && !seen.has(r));
  seen.add(event);
  return event;
}

beforeAll(async () => {
  sim = new DocplannerSimulator({ apiKey: PUSH_KEY, timeScale: 0.0001 });
  await sim.start();
  cwSim = new ClockwiseSimulator({ key: CW_HOOK_KEY, keyPlacement: 'header', apiKey: CW_API_KEY });
  await cwSim.start();
  bbSim = new BookingBugSimulator({ auth: { kind: 'basic-token', token: BB_TOKEN } });
  await bbSim.start();
  c = await startCommandHub(db.url(), {
    file: 'unchanged-echoes.yaml',
    instances: instances(),
    subscription: { id: 'crm', events: ['appointment.*', 'command.*'] },
    env: { T_PUSH: PUSH_KEY },
    commands: { retryScheduleMs: [100], retryJitter: 0, sweepIntervalMs: 200, retentionCron: false },
  });
  hub = c.hub;
  subscriber = c.subscriber;
}, 60_000);

afterAll(async () => {
  await c?.stop();
  await sim?.close();
  await cwSim?.close();
  await bbSim?.close();
});

describe('a Docplanner presence mark done without a change takes no echo', () => {
  for (const [type, presence, eventType] of [
    ['appointment.mark_arrived', 'PRESENT', 'appointment.arrived'],
    ['appointment.mark_no_show', 'ABSENT', 'appointment.no_show'],
  ] as const) {
    it(`${type} on an appointment already so: unchanged, and staff's next ${eventType} within the window is not marked`, async () => {
      const { subject, booking } = await booked();
      const seen = new Set<unknown>();
      await staffMarks(subject, booking, presence, seen);
      // Docplanner notifies nothing of a mark that changes nothing (no echo pushed for it here).
      sim.writes.hookUrl = undefined;
      const sent = await api('POST', '/v1/commands', { type, subject, data: {} });
      expect(sent.status).toBe(202);
      const done = await finished(sent.json.id);
      expect(done).toMatchObject({ status: 'succeeded', result: { unchanged: true } });
      expect(
        sim.writes.log.filter((w) => w.path.endsWith(`/bookings/${booking.id}/presence/patient`)),
      ).toHaveLength(1);
      const outcome = await subscriber.waitFor(
        (r) => r.type === 'command.succeeded' && r.subject === `command/${sent.json.id}`,
      );
      expect((outcome.json as { data: { result: unknown } }).data.result).toMatchObject({ unchanged: true });
      // Staff mark it again (after undoing it at the desk, say), within the echo window: their
      // change. Before the fix the no-op command took it as its echo (causedBy).
      const staff = await staffMarks(subject, booking, presence, seen);
      expect(causedBy(staff)).toBeUndefined();
    });

    it(`${type} that changes the status still takes its echo, and only that one`, async () => {
      sim.writes.hookUrl = `${hub.url}/hooks/dp`;
      try {
        const { subject, booking } = await booked();
        const sent = await api('POST', '/v1/commands', { type, subject, data: {} });
        const done = await finished(sent.json.id);
        expect(done.status).toBe('succeeded');
        expect(done.result.unchanged).toBeUndefined();
        const echo = await subscriber.waitFor((r) => r.type === eventType && r.subject === subject);
        expect(causedBy(echo)).toEqual({ commandId: sent.json.id });
        const staff = await staffMarks(subject, booking, presence, new Set([echo]));
        expect(causedBy(staff)).toBeUndefined();
      } finally {
        sim.writes.hookUrl = undefined;
      }
    });
  }
});

describe('a Clockwise.MD custom-field update', () => {
  it("takes no echo: its webhook (demographics_update, `patient`) cannot tell the write from staff's change", async () => {
    const id = 91_000;
    cwSim.setAppointment({ id, first_name: 'Maria', last_name: 'Lopez', extra_fields: [] });
    await cwSim.push({ appointment_id: id, event_type: 'create' }, { hookUrl: `${hub.url}/hooks/cw` });
    const created = await subscriber.waitFor(
      (r) => r.type === 'appointment.created' && r.text.includes(`"value":"${id}"`),
    );
    const subject = created.subject!;
    // Clockwise.MD's simulator notifies the write; whether the vendor does is not documented.
    cwSim.writes.hookUrl = `${hub.url}/hooks/cw`;
    try {
      const sent = await api('POST', '/v1/commands', {
        type: 'appointment.update',
        subject,
        data: { customFields: { '104': 'verified' } },
      });
      expect(await finished(sent.json.id)).toMatchObject({ status: 'succeeded' });
      const first = await subscriber.waitFor(
        (r) => r.type === 'appointment.updated' && r.subject === subject,
      );
      // Staff correct the patient's name at the front desk within the window: the same webhook
      // (a second later: within one, the hub takes it for a redelivery of the first).
      await new Promise((r) => setTimeout(r, 1100));
      cwSim.setAppointment({ id, first_name: 'María', last_name: 'Lopez', extra_fields: [] });
      await cwSim.push(
        { appointment_id: id, event_type: 'demographics_update' },
        { hookUrl: `${hub.url}/hooks/cw` },
      );
      const staff = await subscriber.waitFor(
        (r) => r.type === 'appointment.updated' && r.subject === subject && r !== first,
      );
      // Before, the first demographics_update in the window was the update's echo, whichever it
      // was: with no webhook for the write, staff's correction was marked and a CRM lost it.
      expect([causedBy(first), causedBy(staff)]).toEqual([undefined, undefined]);
    } finally {
      cwSim.writes.hookUrl = undefined;
    }
  });
});

describe('a BookingBug check-in status set without a change takes no echo', () => {
  let triggerTime = Date.parse('2026-03-01T09:00:00Z');
  /** JRNI's data webhook of booking `id` (its sample, re-numbered) with this check-in status. */
  async function jrni(id: number, trigger: 'create' | 'modify', checkInStatus: string) {
    const webhook = fixture('bookingbug', 'jrni-data-create.json');
    const appointment = webhook.appointment as JsonObject;
    appointment.bookingId = id;
    appointment.checkInStatus = checkInStatus;
    webhook.triggerName = trigger;
    triggerTime += 60_000;
    webhook.triggerTime = new Date(triggerTime).toISOString().replace(/\.\d{3}Z$/, 'Z');
    await bbSim.push(webhook, { bookingUrl: `${hub.url}/hooks/bb` });
  }
  const bbEvent = (id: number, type: string, seen: Set<unknown>) =>
    subscriber.waitFor(
      (r) =>
        r.type === type &&
        (r.json as { source?: string } | undefined)?.source === 'bb' &&
        r.text.includes(`"${id}"`) &&
        !seen.has(r),
    );

  it('mark_arrived on a booking already checked in: unchanged; staff checking it in again is not marked', async () => {
    const id = 7_401;
    const seen = new Set<unknown>();
    await jrni(id, 'create', '');
    seen.add(await bbEvent(id, 'appointment.created', seen));
    await jrni(id, 'modify', 'Checked in');
    const arrived = await bbEvent(id, 'appointment.arrived', seen);
    seen.add(arrived);
    const subject = arrived.subject!;
    const sent = await api('POST', '/v1/commands', { type: 'appointment.mark_arrived', subject, data: {} });
    expect(await finished(sent.json.id)).toMatchObject({ status: 'succeeded', result: { unchanged: true } });
    // Staff clear the check-in at the desk, then check the patient in again, within the window.
    await jrni(id, 'modify', '');
    seen.add(await bbEvent(id, 'appointment.status_reverted', seen));
    await jrni(id, 'modify', 'Checked in');
    const again = await bbEvent(id, 'appointment.arrived', seen);
    // Before the fix the no-op command took it as its echo.
    expect(causedBy(again)).toBeUndefined();
  });
});
