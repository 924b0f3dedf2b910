/**
 * FHIR subscriptions end to end (docs/fhir.md, "Delivery formats"): every shipped push connector's
 * simulator POSTs its vendor fixtures (real vendor payloads) to a real hub over HTTP; beside the
 * `*` CloudEvents subscription of the harness, a `fhir-r4` and a `fhir-r4-notification`
 * subscription receive each event with a FHIR meaning. Every body is checked with both third-party
 * validators (@medplum/core with all R4 definitions, and the official fhir.schema.json), and each
 * notification is read by a Subscriptions Backport receiver written from the guide's examples.
 */
import type { Bundle, Parameters, Resource } from '@medplum/fhirtypes';
import bookingbug from '@switchyard/connector-bookingbug';
import { BookingBugSimulator } from '@switchyard/connector-bookingbug/simulator';
import clockwisemd from '@switchyard/connector-clockwisemd';
import { ClockwiseSimulator } from '@switchyard/connector-clockwisemd/simulator';
import docplanner from '@switchyard/connector-docplanner';
import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import instinctiveNotes from '@switchyard/connector-instinctive-notes';
import { InstinctiveNotesSimulator } from '@switchyard/connector-instinctive-notes/simulator';
import quable from '@switchyard/connector-quable';
import { QuableSimulator } from '@switchyard/connector-quable/simulator';
import type { JsonObject } from '@switchyard/core';
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../e2e/connectors/fixtures.test-support.ts';
import { type E2e, eventually, SIGNING_SECRET, startE2e } from '../e2e/connectors/harness.test-support.ts';
import type { HubEvent } from '../events/api.ts';
import { hookConnector } from '../http/app.test-support.ts';
import { BackportReceiver } from './backport-receiver.test-support.ts';
import { toFhir } from './map.ts';
import { validateFhir } from './validate.ts';
import { thirdPartyErrors } from './validators.test-support.ts';

const database = useTestDatabase();
let e2e: E2e;
let ehr: RecordingSubscriber;
const receiver = new BackportReceiver();
const closers: Array<() => Promise<void>> = [];
/** Events with a FHIR meaning, and those without, over all connectors. */
const fhirEvents: HubEvent[] = [];
const otherEvents: HubEvent[] = [];

interface Source {
  connector: string;
  instance: string;
  /** Pushes one fixture file through the vendor's simulator. */
  push(file: string): Promise<unknown>;
  fixtures: string[];
}
const sources: Source[] = [];

beforeAll(async () => {
  e2e = await startE2e({
    databaseUrl: database.url(),
    connectors: [docplanner, clockwisemd, bookingbug, instinctiveNotes, quable, hookConnector as never],
  });
  ehr = await startRecordingSubscriber({ secrets: SIGNING_SECRET });
  closers.push(() => ehr.close());
  await e2e.hub.instances.upsert({
    id: 'dp',
    connector: 'docplanner',
    mode: 'push',
    settings: {
      domain: 'znanylekarz.pl',
      pushAuth: { headerName: 'X-Docplanner-Key', apiKey: 'dp-fhir-key-5b1d' },
    },
  });
  const dp = new DocplannerSimulator({
    hookUrl: e2e.hookUrl('dp'),
    apiKey: 'dp-fhir-key-5b1d',
    apiKeyHeader: 'X-Docplanner-Key',
    timeScale: 0.0001,
  });
  await dp.start();
  closers.push(() => dp.close());
  sources.push({
    connector: 'docplanner',
    instance: 'dp',
    push: (file) => dp.push(fixture('docplanner', file)),
    // The documented pushes in the connector's e2e order, without the two approval requests
    // (gates are not wired here; approval requests have no FHIR meaning either way).
    fixtures: [
      'address-assigned.json',
      'address-service-created.json',
      'address-service-changed.json',
      'slot-booked.json',
      'booking-confirmed.json',
      'slot-changed.json',
      'slot-overbooked.json',
      'booking-moved.json',
      'slot-booked-paid.json',
      'booking-payment-status-changed.json',
      'slot-booked-videocall.json',
      'break-created.json',
      'break-moved.json',
      'break-removed.json',
      'booking-canceled.json',
      'presence-marked-absent.json',
      'presence-marked-present.json',
      'address-unassigned.json',
    ],
  });

  const cw = new ClockwiseSimulator({
    hookUrl: e2e.hookUrl('cw'),
    key: 'cw-fhir-hook-key-0123456789',
    keyPlacement: 'header',
    apiKey: 'cw-fhir-api-key-abcdef',
  });
  await cw.start();
  closers.push(() => cw.close());
  for (const id of [12345, 12346, 12347]) {
    cw.setAppointment(
      fixture('clockwisemd', `appointment-${id}.json`, 'src/__api__') as JsonObject & { id: number },
    );
  }
  await e2e.hub.instances.upsert({
    id: 'cw',
    connector: 'clockwisemd',
    mode: 'push',
    settings: {
      auth: { mode: 'either', key: 'cw-fhir-hook-key-0123456789' },
      apiKey: 'cw-fhir-api-key-abcdef',
      apiBaseUrl: cw.apiBaseUrl,
    },
  });
  sources.push({
    connector: 'clockwisemd',
    instance: 'cw',
    push: (file) => cw.push(fixture('clockwisemd', file)),
    fixtures: [
      'create.json',
      'reschedule.json',
      'demographics-update.json',
      'checkin.json',
      'ready.json',
      'callback.json',
      'discharge.json',
      'undo-discharge.json',
      'legacy-action-remove-after-checkin.json',
      'legacy-action-undo-remove.json',
      'remove-before-checkin.json',
    ],
  });

  await e2e.hub.instances.upsert({
    id: 'bb',
    connector: 'bookingbug',
    mode: 'push',
    settings: {
      basicAuth: { username: 'switchyard-bb-fhir', password: 'bb-fhir-password-0123456789' },
      basicToken: 'jrni-fhir-basic-token-0123456789',
    },
  });
  const bb = new BookingBugSimulator({
    bookingUrl: e2e.hookUrl('bb'),
    cancellationUrl: e2e.hookUrl('bb', 'cancellation'),
    username: 'switchyard-bb-fhir',
    password: 'bb-fhir-password-0123456789',
  });
  const jrni = new BookingBugSimulator({
    bookingUrl: e2e.hookUrl('bb'),
    auth: { kind: 'basic-token', token: 'jrni-fhir-basic-token-0123456789' },
  });
  const bbKinds: Record<string, 'modify' | 'cancelled'> = {
    'amended-time.json': 'modify',
    'amended-other.json': 'modify',
    'cancelled-via-cancellation-url.json': 'cancelled',
  };
  sources.push({
    connector: 'bookingbug',
    instance: 'bb',
    push: (file) =>
      file.startsWith('jrni-')
        ? jrni.push(fixture('bookingbug', file))
        : bb.push(fixture('bookingbug', file), bbKinds[file] ? { kind: bbKinds[file] } : {}),
    fixtures: [
      'created.json',
      'amended-time.json',
      'amended-other.json',
      'cancelled-via-cancellation-url.json',
      'two-bookings.json',
      'jrni-notification-created.json',
      'jrni-notification-confirmed.json',
      'jrni-notification-cancelled.json',
    ],
  });

  await e2e.hub.instances.upsert({
    id: 'in',
    connector: 'instinctive-notes',
    mode: 'push',
    settings: { auth: { mode: 'header', secret: 'in-fhir-secret-0123456789abcdef' } },
  });
  const notes = new InstinctiveNotesSimulator({
    hookUrl: e2e.hookUrl('in'),
    secret: 'in-fhir-secret-0123456789abcdef',
    secretIn: 'header',
  });
  sources.push({
    connector: 'instinctive-notes',
    instance: 'in',
    push: (file) => notes.push(fixture('instinctive-notes', file)),
    fixtures: [
      'soap-note-created.json',
      'soap-note-updated.json',
      'soap-note-draft.json',
      'soap-note-without-exercises.json',
    ],
  });

  await e2e.hub.instances.upsert({
    id: 'qb',
    connector: 'quable',
    mode: 'push',
    settings: { authorization: 'Bearer qb-fhir-0123456789abcdef' },
  });
  const qb = new QuableSimulator({
    hookUrl: e2e.hookUrl('qb'),
    authorization: 'Bearer qb-fhir-0123456789abcdef',
  });
  sources.push({
    connector: 'quable',
    instance: 'qb',
    push: (file) => qb.push(fixture('quable', file)),
    // Catalog documents, assets and processes: nothing with a FHIR meaning.
    fixtures: ['document-create.json', 'media-create.json', 'document-update.json', 'import-finish.json'],
  });
  // After the instances: a subscription's sources name instances that exist.
  for (const [id, format] of [
    ['ehr-r4', 'fhir-r4'],
    ['ehr-notify', 'fhir-r4-notification'],
  ] as const) {
    await e2e.hub.subscriptions.create({
      id,
      url: `${ehr.url}${id}`,
      format,
      eventTypes: ['*'],
      sources: ['dp', 'cw', 'bb', 'in', 'qb'],
      secrets: [SIGNING_SECRET],
      allowPrivateAddresses: true,
    });
  }
}, 60_000);

afterAll(async () => {
  for (const close of closers) await close().catch(() => {});
  await e2e?.close();
});

function isBundle(resource: Resource): resource is Bundle {
  return resource.resourceType === 'Bundle';
}

describe('FHIR deliveries of every connector’s fixtures', () => {
  it.each(['docplanner', 'clockwisemd', 'bookingbug', 'instinctive-notes', 'quable'])(
    '%s: each event with a FHIR meaning arrives as a valid FHIR resource and a Backport notification, signed',
    async (name) => {
      const source = sources.find((s) => s.connector === name)!;
      let mapped = 0;
      for (const file of source.fixtures) {
        const settled = await e2e.settle(source.instance, () => source.push(file), 20_000);
        expect(settled.events.length, `${name} ${file}`).toBeGreaterThan(0);
        for (const event of settled.events) {
          const expected = toFhir(event);
          if (!expected) {
            otherEvents.push(event);
            continue;
          }
          mapped++;
          fhirEvents.push(event);
          const byId = (path: string) =>
            ehr.waitFor(
              (r) => r.path === path && r.webhookId === event.id && (r.response?.status ?? 500) < 300,
              20_000,
            );

          const plain = await byId('/ehr-r4');
          expect(plain.signature.valid, plain.signature.error).toBe(true);
          expect(plain.headers['content-type']).toMatch(/^application\/fhir\+json/);
          const resource = plain.json as Resource;
          expect(resource).toEqual(JSON.parse(JSON.stringify(expected.resource)));
          expect(resource.meta?.versionId).toBe(event.id);
          expect(thirdPartyErrors(resource), `${file} ${event.type}`).toEqual([]);

          const notified = await byId('/ehr-notify');
          expect(notified.signature.valid, notified.signature.error).toBe(true);
          expect(notified.headers['content-type']).toMatch(/^application\/fhir\+json/);
          const bundle = notified.json as Bundle;
          expect(thirdPartyErrors(bundle), `${file} ${event.type} notification`).toEqual([]);
          const [received, ...more] = receiver.accept(bundle);
          expect(more).toEqual([]);
          expect(received!.subscription).toBe('Subscription/ehr-notify');
          expect(received!.focus).toEqual(isBundle(resource) ? resource.entry?.[0]?.resource : resource);
        }
      }
      if (name === 'quable') expect(mapped).toBe(0);
      else expect(mapped, `${name}: events with a FHIR meaning`).toBeGreaterThan(0);
    },
    120_000,
  );

  it('fans nothing without a FHIR meaning out to the FHIR subscriptions, and numbers notifications without gaps', async () => {
    expect(otherEvents.length).toBeGreaterThan(0);
    for (const sub of ['ehr-r4', 'ehr-notify']) {
      const events = new Set<string>();
      let cursor: string | undefined;
      do {
        const page = await e2e.hub.deliveries.list({
          subscriptionId: sub,
          limit: 500,
          ...(cursor ? { cursor } : {}),
        });
        for (const d of page.items) {
          expect(d.status, `${sub} ${d.eventId}`).toBe('succeeded');
          events.add(d.eventId);
        }
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      expect([...events].sort()).toEqual(fhirEvents.map((e) => e.id).sort());
    }
    // The CloudEvents subscription got everything.
    const all = await e2e.hub.deliveries.list({ subscriptionId: e2e.subscriptionId, limit: 500 });
    expect(all.items.length).toBe(fhirEvents.length + otherEvents.length);
    // Numbers 1..N, each once: the receiver saw no gap.
    expect(receiver.missing('Subscription/ehr-notify')).toEqual([]);
    const sub = await e2e.hub.subscriptions.get('ehr-notify');
    expect(sub.format).toBe('fhir-r4-notification');
  });
});

describe('replays of FHIR deliveries', () => {
  it('keep a notification’s event number; replay-since sends only events with a FHIR meaning', async () => {
    const eventNumber = (bundle: Bundle) => {
      const status = bundle.entry?.[0]?.resource as Parameters | undefined;
      const event = status?.parameter?.find((p) => p.name === 'notification-event');
      return event?.part?.find((p) => p.name === 'event-number')?.valueString;
    };
    const first = fhirEvents[0]!;
    const original = ehr.requests.find((r) => r.path === '/ehr-notify' && r.webhookId === first.id)!;
    const [delivery] = (await e2e.hub.deliveries.list({ subscriptionId: 'ehr-notify', eventId: first.id }))
      .items;
    const before = ehr.requests.length;
    await e2e.hub.deliveries.replay(delivery!.id);
    const again = await ehr.waitFor(
      (r) => r.index >= before && r.path === '/ehr-notify' && r.webhookId === first.id,
      20_000,
    );
    expect(eventNumber(again.json as Bundle)).toBe(eventNumber(original.json as Bundle));

    // Every event since the start, again: the FHIR subscription gets the FHIR events only (not the
    // Quable catalog documents, whose type can map), each with its first event number.
    const { replayed } = await e2e.hub.deliveries.replaySince('ehr-notify', new Date(0));
    expect(replayed).toBe(fhirEvents.length);
    const replays = await eventually(
      async () => {
        const page = await e2e.hub.deliveries.list({ subscriptionId: 'ehr-notify', limit: 500 });
        const mine = page.items.filter((d) => d.reason === 'replay');
        return mine.length === fhirEvents.length + 1 && mine.every((d) => d.status === 'succeeded')
          ? mine
          : undefined;
      },
      'the replays delivered',
      60_000,
    );
    expect(new Set(replays.map((d) => d.eventId))).toEqual(new Set(fhirEvents.map((e) => e.id)));
    for (const event of fhirEvents) {
      const sent = ehr.requests.filter((r) => r.path === '/ehr-notify' && r.webhookId === event.id);
      expect(new Set(sent.map((r) => eventNumber(r.json as Bundle))).size, event.type).toBe(1);
    }
    expect(receiver.missing('Subscription/ehr-notify')).toEqual([]);
  }, 90_000);
});

describe('a resource that fails validation at delivery time', () => {
  it('makes the FHIR delivery dead with the validator’s message; nothing is sent, the subscription stays enabled', async () => {
    await e2e.hub.instances.upsert({
      id: 'shop',
      connector: 'hooktest',
      mode: 'push',
      settings: { apiKey: 'shop-key-0123456789' },
    });
    await e2e.hub.subscriptions.create({
      id: 'ehr-strict',
      url: `${ehr.url}ehr-strict`,
      format: 'fhir-r4',
      eventTypes: ['appointment.*'],
      sources: ['shop'],
      secrets: [SIGNING_SECRET],
      allowPrivateAddresses: true,
      disableAfterConsecutiveDead: 1,
    });
    // A service id with two spaces in a row: an R4 code has no such whitespace.
    const settled = await e2e.settle('shop', async () => {
      const r = await fetch(e2e.hookUrl('shop'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'shop-key-0123456789' },
        body: JSON.stringify({ id: 'b-1', type: 'created', service: 'consult  30' }),
      });
      expect(r.status).toBe(202);
    });
    const [event] = settled.events;
    const problems = validateFhir(toFhir(event!)!.resource);
    expect(problems.map((p) => p.path)).toContain('Appointment.serviceType[0].coding[0].code');

    const dead = await eventually(async () => {
      const page = await e2e.hub.deliveries.list({ subscriptionId: 'ehr-strict', status: 'dead' });
      return page.items[0];
    }, 'the FHIR delivery dead');
    expect(dead.eventId).toBe(event!.id);
    expect(dead.lastError).toMatch(/^Appointment failed FHIR R4 validation: .*Appointment\.serviceType/);
    const detail = await e2e.hub.deliveries.get(dead.id);
    expect(detail.attemptLog).toHaveLength(1);
    expect(detail.attemptLog[0]).toMatchObject({ outcome: 'dead', statusCode: null });
    expect(ehr.requests.filter((r) => r.path === '/ehr-strict')).toEqual([]);
    // The hub's own failure says nothing about the endpoint: no dead count, not disabled.
    expect(await e2e.hub.subscriptions.get('ehr-strict')).toMatchObject({
      consecutiveDead: 0,
      disabledAt: null,
    });
  });
});
