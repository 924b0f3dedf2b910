/**
 * FHIR read end to end, per connector: each vendor's simulator pushes every fixture over real HTTP
 * (the same lists and senders as the connector's own end-to-end test), and after each push the
 * Appointment or DocumentReference of every event is read from `/fhir/r4` and checked by both
 * third-party validators, with its `meta` naming the entity's latest event. Cliniko (pull-only) is
 * polled from its simulator through the story of one appointment. Quable (a catalogue) has nothing
 * to read.
 */

import type { Appointment, Bundle } from '@medplum/fhirtypes';
import bookingbug from '@switchyard/connector-bookingbug';
import { type BookingBugPushKind, BookingBugSimulator } from '@switchyard/connector-bookingbug/simulator';
import { ClinikoSimulator } from '@switchyard/connector-cliniko/simulator';
import { clinikoConnector, fixtureSettings as clinikoSettings } from '@switchyard/connector-cliniko/testing';
import clockwisemd from '@switchyard/connector-clockwisemd';
import { ClockwiseSimulator } from '@switchyard/connector-clockwisemd/simulator';
import docplanner from '@switchyard/connector-docplanner';
import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import instinctiveNotes from '@switchyard/connector-instinctive-notes';
import { InstinctiveNotesSimulator } from '@switchyard/connector-instinctive-notes/simulator';
import quable from '@switchyard/connector-quable';
import { QuableSimulator } from '@switchyard/connector-quable/simulator';
import type { JsonObject } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HubEvent } from '../../events/api.ts';
import { thirdPartyErrors, warmValidators } from '../../fhir/validators.test-support.ts';
import { fixture } from './fixtures.test-support.ts';
import { type E2e, type Settled, startE2e } from './harness.test-support.ts';

const ADMIN = 'e2e-admin-token';
const database = useTestDatabase();
let e2e: E2e;

/**
 * The latest event seen per subject, as the projection must hold it: the last the hub stored (the
 * highest sequence), whatever its time says (a BookingBug legacy change is dated when the hub got
 * it, the JRNI no-show after it by its 2017 triggerTime).
 */
const latest = new Map<string, HubEvent>();

function isLater(a: HubEvent, b: HubEvent): boolean {
  return BigInt(a.sequence) > BigInt(b.sequence);
}

const READ_TYPE: Record<string, string> = { appointment: 'Appointment', document: 'DocumentReference' };

/** FACTS.md: the R4 status each appointment event type leaves (the others carry `data.status`). */
const APPOINTMENT_STATUS: Record<string, string> = {
  'appointment.cancelled': 'cancelled',
  'appointment.no_show': 'noshow',
  'appointment.arrived': 'arrived',
  'appointment.checked_in': 'checked-in',
  'appointment.completed': 'fulfilled',
};

/** Subjects read before the current push, to see that a move keeps its resource id. */
const seenBefore = new Set<string>();

/**
 * Reads the resource of every appointment and document event of a settled push and checks it; returns
 * how many were read.
 */
async function checkReads(settled: Settled, file: string): Promise<number> {
  let read = 0;
  for (const event of settled.events) {
    const prior = latest.get(event.subject);
    if (!prior || isLater(event, prior)) latest.set(event.subject, event);
  }
  for (const event of settled.events) {
    const [kind, hubId] = [event.subject.split('/')[0]!, event.subject.slice(event.subject.indexOf('/') + 1)];
    const type = READ_TYPE[kind];
    if (!type) continue;
    const res = await fetch(`${e2e.baseUrl}/fhir/r4/${type}/${hubId}`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    const body = (await res.json()) as { resourceType: string; meta?: { versionId?: string }; id?: string };
    if ((event.data as JsonObject).domain === 'catalog') {
      expect(res.status, `${file}: a catalog document has no FHIR form`).toBe(404);
      continue;
    }
    expect(res.status, `${file} ${event.type}: ${JSON.stringify(body)}`).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    expect([body.resourceType, body.id]).toEqual([type, hubId]);
    expect(body.meta?.versionId, `${file}: the entity's latest event`).toBe(latest.get(event.subject)!.id);
    expect(thirdPartyErrors(body as never), `${file} ${event.type}`).toEqual([]);
    // A move is told about an appointment already read: it keeps its resource id.
    if (event.type === 'appointment.rescheduled') expect(seenBefore.has(event.subject), file).toBe(true);
    const current = latest.get(event.subject)!;
    const status = (body as { status?: string }).status;
    if (type === 'Appointment') {
      // The statuses of FACTS.md's FHIR section: a move stays booked (R4 has no "rescheduled").
      const expected = APPOINTMENT_STATUS[current.type] ?? (current.data as JsonObject).status;
      expect(status, `${file} ${current.type}`).toBe(expected);
    } else {
      const data = current.data as JsonObject;
      expect([status, (body as { docStatus?: string }).docStatus], `${file} ${current.type}`).toEqual([
        current.type === 'document.deleted' ? 'entered-in-error' : 'current',
        data.docStatus,
      ]);
    }
    read++;
  }
  for (const event of settled.events) seenBefore.add(event.subject);
  return read;
}

beforeAll(async () => {
  warmValidators();
  e2e = await startE2e({
    databaseUrl: database.url(),
    connectors: [bookingbug, clinikoConnector, clockwisemd, docplanner, instinctiveNotes, quable],
    gates: true,
  });
}, 180_000);

afterAll(async () => {
  await e2e?.close();
});

describe('FHIR read of every connector fixture pushed through the hub', () => {
  it('docplanner', async () => {
    const API_KEY = 'dp-fhir-push-key-5b1d';
    await e2e.hub.instances.upsert({
      id: 'dp',
      connector: 'docplanner',
      mode: 'push',
      settings: { domain: 'znanylekarz.pl', pushAuth: { headerName: 'X-Docplanner-Key', apiKey: API_KEY } },
      gate: { deadlineMs: 200, default: 'approve' },
    });
    const sim = new DocplannerSimulator({
      hookUrl: e2e.hookUrl('dp'),
      apiKey: API_KEY,
      apiKeyHeader: 'X-Docplanner-Key',
      timeScale: 0.0001,
    });
    await sim.start();
    let read = 0;
    try {
      for (const file of [
        'address-assigned.json',
        'slot-booking.json',
        'slot-booked.json',
        'booking-confirmed.json',
        'slot-changed.json',
        'slot-overbooked.json',
        'booking-moving.json',
        'booking-moved.json',
        'slot-booked-paid.json',
        'booking-payment-status-changed-partial.json',
        'booking-payment-status-changed.json',
        'slot-booked-by-doctor.json',
        'booking-moved-address-change.json',
        'slot-booked-by-integration.json',
        'booking-canceled-by-integration.json',
        'slot-booked-videocall.json',
        'break-created.json',
        'booking-canceled.json',
        'presence-marked-absent.json',
        'presence-marked-present.json',
      ]) {
        const settled = await e2e.settle('dp', () => sim.push(fixture('docplanner', file)));
        read += await checkReads(settled, file);
      }
    } finally {
      await sim.close();
    }
    expect(read).toBeGreaterThanOrEqual(14);
  });

  it('clockwisemd', async () => {
    const KEY = 'cw-fhir-hook-key-0123456789';
    const API_KEY = 'cw-fhir-api-key-abcdef';
    const sim = new ClockwiseSimulator({
      hookUrl: e2e.hookUrl('cw'),
      key: KEY,
      keyPlacement: 'header',
      apiKey: API_KEY,
    });
    await sim.start();
    for (const id of [12345, 12346, 12347]) {
      sim.setAppointment(
        fixture('clockwisemd', `appointment-${id}.json`, 'src/__api__') as JsonObject & { id: number },
      );
    }
    await e2e.hub.instances.upsert({
      id: 'cw',
      connector: 'clockwisemd',
      mode: 'push',
      settings: { auth: { mode: 'either', key: KEY }, apiKey: API_KEY, apiBaseUrl: sim.apiBaseUrl },
    });
    let read = 0;
    try {
      for (const file of [
        'create.json',
        'reschedule.json',
        'demographics-update.json',
        'checkin.json',
        'ready.json',
        'callback.json',
        'discharge.json',
        'undo-discharge.json',
        'undo-callback.json',
        'undo-ready.json',
        'undo-checkin.json',
        'legacy-action-create.json',
        'legacy-action-checkin.json',
        'legacy-action-remove-after-checkin.json',
        'legacy-action-undo-remove.json',
        'remove-before-checkin.json',
      ]) {
        const settled = await e2e.settle('cw', () => sim.push(fixture('clockwisemd', file)));
        read += await checkReads(settled, file);
      }
    } finally {
      await sim.close();
    }
    expect(read).toBe(16);
  });

  it('bookingbug / JRNI', async () => {
    const [USERNAME, PASSWORD, BASIC_TOKEN] = [
      'bb-fhir',
      'bb-fhir-password-0123456789',
      'jrni-fhir-basic-token-0123456789',
    ];
    const [CLIENT_ID, CLIENT_SECRET] = ['jrni-fhir-client', 'jrni-fhir-client-secret-0123456789abcdef'];
    await e2e.hub.instances.upsert({
      id: 'bb',
      connector: 'bookingbug',
      mode: 'push',
      settings: {
        basicAuth: { username: USERNAME, password: PASSWORD },
        basicToken: BASIC_TOKEN,
        oauth2: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
      },
    });
    const senders = {
      legacy: new BookingBugSimulator({
        bookingUrl: e2e.hookUrl('bb'),
        cancellationUrl: e2e.hookUrl('bb', 'cancellation'),
        username: USERNAME,
        password: PASSWORD,
      }),
      oauth2: new BookingBugSimulator({
        bookingUrl: e2e.hookUrl('bb'),
        auth: {
          kind: 'oauth2',
          accessTokenUrl: e2e.hookUrl('bb', 'oauth/token'),
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
        },
      }),
      token: new BookingBugSimulator({
        bookingUrl: e2e.hookUrl('bb'),
        auth: { kind: 'basic-token', token: BASIC_TOKEN },
      }),
    };
    const fixtures: Array<{ file: string; kind?: BookingBugPushKind; by?: keyof typeof senders }> = [
      { file: 'created.json' },
      { file: 'amended-time.json', kind: 'modify' },
      { file: 'amended-other.json', kind: 'modify' },
      { file: 'jrni-legacy-booking-no-show.json', by: 'oauth2' },
      { file: 'jrni-legacy-booking-no-show-undone.json', by: 'token' },
      { file: 'cancelled-via-cancellation-url.json', kind: 'cancelled' },
      { file: 'two-bookings.json' },
      { file: 'moved-new-booking-id.json', kind: 'modify' },
      { file: 'cancelled-via-is-cancelled.json', kind: 'modify' },
      { file: 'jrni-data-create.json', by: 'oauth2' },
      { file: 'jrni-data-modify-time.json', by: 'oauth2' },
      { file: 'jrni-data-checked-in.json', by: 'oauth2' },
      { file: 'jrni-data-being-seen.json', by: 'oauth2' },
      { file: 'jrni-data-completed.json', by: 'oauth2' },
      { file: 'jrni-notification-created.json', by: 'token' },
      { file: 'jrni-notification-confirmed.json', by: 'token' },
      { file: 'jrni-notification-cancelled.json', by: 'token' },
    ];
    let read = 0;
    for (const f of fixtures) {
      const sender = senders[f.by ?? 'legacy'];
      const settled = await e2e.settle('bb', () =>
        sender.push(fixture('bookingbug', f.file), f.kind ? { kind: f.kind } : {}),
      );
      read += await checkReads(settled, f.file);
    }
    expect(read).toBe(18);
  });

  it('cliniko (pulled): one appointment booked, moved, not arrived, arrived, cancelled keeps its id', async () => {
    const sim = new ClinikoSimulator({ apiKey: clinikoSettings.apiKey });
    await sim.start();
    // The vendor's own example appointment (fixtures/page-booked.json), as the pull lists it.
    const page = fixture('cliniko', 'page-booked.json') as { individual_appointments: JsonObject[] };
    const example = page.individual_appointments[0]!;
    const statuses: string[] = [];
    let hubId: string | undefined;
    const step = async (changes: JsonObject, type: string) => {
      // Cliniko stamps updated_at by the second: a change must be later than the last version.
      if (hubId) await new Promise((resolve) => setTimeout(resolve, 1100));
      sim.put({ ...changes, id: example.id! });
      const settled = await e2e.settleNew('cl', 1);
      expect(settled.events.map((e) => e.type)).toEqual([type]);
      const subject = settled.events[0]!.subject;
      hubId ??= subject.slice(subject.indexOf('/') + 1);
      expect(subject, 'a moved or changed appointment keeps its id').toBe(`appointment/${hubId}`);
      expect(await checkReads(settled, type)).toBe(1);
      const res = await fetch(`${e2e.baseUrl}/fhir/r4/Appointment/${hubId}`, {
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      const appointment = (await res.json()) as Appointment;
      statuses.push(`${appointment.status} ${appointment.start}`);
      return appointment;
    };
    try {
      const booked = { ...example, starts_at: '2026-03-10T10:00:00Z', ends_at: '2026-03-10T10:45:00Z' };
      sim.put(booked);
      await e2e.hub.instances.upsert({
        id: 'cl',
        connector: 'cliniko',
        mode: 'pull',
        settings: { ...clinikoSettings, apiBaseUrl: sim.url },
        pull: { intervalMs: 200 },
      });
      const created = await e2e.settleNew('cl', 1);
      hubId = created.events[0]!.subject.slice('appointment/'.length);
      expect(await checkReads(created, 'page-booked.json')).toBe(1);
      const first = (await (
        await fetch(`${e2e.baseUrl}/fhir/r4/Appointment/${hubId}`, {
          headers: { authorization: `Bearer ${ADMIN}` },
        })
      ).json()) as Appointment;
      expect(first.participant.map((p) => [p.actor?.type, p.actor?.identifier?.value, p.status])).toEqual([
        ['Patient', '82', 'accepted'],
        ['Practitioner', '1', 'accepted'],
        ['Location', '1', 'accepted'],
      ]);
      statuses.push(`${first.status} ${first.start}`);
      await step(
        { starts_at: '2026-03-11T10:00:00Z', ends_at: '2026-03-11T10:45:00Z' },
        'appointment.rescheduled',
      );
      await step({ did_not_arrive: true }, 'appointment.no_show');
      await step({ did_not_arrive: false, patient_arrived: true }, 'appointment.arrived');
      await step(
        { cancelled_at: new Date().toISOString(), cancellation_reason: 50 },
        'appointment.cancelled',
      );
    } finally {
      await sim.close();
    }
    expect(statuses).toEqual([
      'booked 2026-03-10T10:00:00Z',
      'booked 2026-03-11T10:00:00Z',
      'noshow 2026-03-11T10:00:00Z',
      'arrived 2026-03-11T10:00:00Z',
      'cancelled 2026-03-11T10:00:00Z',
    ]);
    // The patient's Cliniko id is searchable in the instance's system.
    const search = await fetch(
      `${e2e.baseUrl}/fhir/r4/Appointment?patient-identifier=urn:switchyard:cl:patient|82`,
      { headers: { authorization: `Bearer ${ADMIN}` } },
    );
    const bundle = (await search.json()) as Bundle;
    expect(bundle.entry?.map((e) => e.resource?.id)).toEqual([hubId]);
  });

  it('instinctive notes', async () => {
    const SECRET = 'in-fhir-secret-0123456789abcdef';
    await e2e.hub.instances.upsert({
      id: 'notes',
      connector: 'instinctive-notes',
      mode: 'push',
      settings: { auth: { mode: 'header', secret: SECRET } },
    });
    const sim = new InstinctiveNotesSimulator({ hookUrl: e2e.hookUrl('notes'), secret: SECRET });
    let read = 0;
    for (const file of [
      'soap-note-created.json',
      'soap-note-updated.json',
      'soap-note-draft.json',
      'soap-note-without-exercises.json',
      'send-test-soap-note-created.json',
    ]) {
      const settled = await e2e.settle('notes', () => sim.push(fixture('instinctive-notes', file)));
      read += await checkReads(settled, file);
    }
    expect(read).toBe(5);
  });

  it('quable: catalogue documents have no FHIR form', async () => {
    const AUTHORIZATION = 'Bearer qb-fhir-0123456789abcdef';
    await e2e.hub.instances.upsert({
      id: 'qb',
      connector: 'quable',
      mode: 'push',
      settings: { authorization: AUTHORIZATION },
    });
    const sim = new QuableSimulator({ hookUrl: e2e.hookUrl('qb'), authorization: AUTHORIZATION });
    let read = 0;
    for (const file of ['document-create.json', 'document-update.json', 'document-delete.json']) {
      const settled = await e2e.settle('qb', () => sim.push(fixture('quable', file)));
      expect(settled.events.length, file).toBe(1);
      read += await checkReads(settled, file);
    }
    expect(read).toBe(0);
  });
});
