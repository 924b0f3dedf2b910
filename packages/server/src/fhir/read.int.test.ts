/**
 * The FHIR read endpoint against real Postgres and real HTTP: the current-state projection kept in
 * the events' commit (also out of order), read, search with every supported parameter and paging,
 * metadata, read tokens (created, rotated, scoped to the subscription's instances and types), and
 * every error answered as an OperationOutcome.
 */
import type {
  Appointment,
  Bundle,
  CapabilityStatement,
  DocumentReference,
  OperationOutcome,
} from '@medplum/fhirtypes';
import instinctiveNotes from '@switchyard/connector-instinctive-notes';
import { InstinctiveNotesSimulator } from '@switchyard/connector-instinctive-notes/simulator';
import { type EventEnvelope, getSchemas } from '@switchyard/core';
import { testPostgresAdminUrl, useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../e2e/connectors/fixtures.test-support.ts';
import { type E2e, startE2e } from '../e2e/connectors/harness.test-support.ts';
import { getCurrentEntity } from '../entities/current.ts';
import { storeHubEvents } from '../events/emit.ts';
import { setConnectionsAllowed } from '../storage/database.test-support.ts';
import { createReadToken } from './read-token.test-support.ts';
import {
  resultParameters,
  SEARCH_PARAMETERS,
  SORT_PARAMETERS,
  SUMMARY_MODES,
  TOTAL_MODES,
} from './search.ts';
import {
  jsonSchemaErrors,
  medplumErrors,
  thirdPartyErrors,
  warmValidators,
} from './validators.test-support.ts';

const ADMIN = 'e2e-admin-token';
const SECRET = 'in-fhir-secret-0123456789abcdef';

const database = useTestDatabase();
let e2e: E2e;

/** Example events of the core schemas, as the hub would store them (hub-made here: same commit path). */
function example(
  type: string,
  patch: (e: EventEnvelope & { data: Record<string, unknown> }) => void = () => {},
) {
  const schema = getSchemas().find((s) => s.$id.endsWith(`/events/${type}.json`)) as unknown as {
    examples: EventEnvelope[];
  };
  const event = structuredClone(schema.examples[0]!) as EventEnvelope & { data: Record<string, unknown> };
  delete (event as { sequence?: string }).sequence;
  patch(event);
  return event;
}

/** GET with the admin token, another token, or none (`null`), and any other headers. */
async function get(path: string, token: string | null = ADMIN, headers: Record<string, string> = {}) {
  const res = await fetch(`${e2e.baseUrl}${path}`, {
    headers: { ...headers, ...(token !== null ? { authorization: `Bearer ${token}` } : {}) },
  });
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    body: text ? JSON.parse(text) : undefined,
  };
}

function expectOutcome(
  answer: { status: number; type: string | null; body: OperationOutcome },
  status: number,
  code: string,
) {
  expect(answer.status).toBe(status);
  expect(answer.type).toMatch(/^application\/fhir\+json/);
  expect(answer.body.resourceType).toBe('OperationOutcome');
  expect(answer.body.issue?.[0]?.code).toBe(code);
  expect(thirdPartyErrors(answer.body)).toEqual([]);
}

const APPT = '6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b';

beforeAll(async () => {
  warmValidators();
  e2e = await startE2e({ databaseUrl: database.url(), connectors: [instinctiveNotes] });
  const db = e2e.hub.host.db;
  // docplanner-main: the appointment of the examples, created then cancelled; other-dp: another
  // instance's appointment of the same patient id.
  await storeHubEvents(db, [
    example('appointment.created', (e) => {
      e.id = '00000000-0000-4000-8000-000000000001';
      e.data.patient = { ...(e.data.patient as object), id: 'p-77' };
    }),
  ]);
  await storeHubEvents(db, [
    example('appointment.cancelled', (e) => {
      e.id = '00000000-0000-4000-8000-000000000002';
      e.data.patient = { ...(e.data.patient as object), id: 'p-77' };
    }),
  ]);
  for (let i = 0; i < 5; i++) {
    await storeHubEvents(db, [
      example('appointment.created', (e) => {
        e.id = `00000000-0000-4000-8000-00000000010${i}`;
        e.source = e.instance = 'other-dp';
        e.subject = `appointment/00000000-0000-4000-a000-00000000000${i}`;
        e.data.id = `00000000-0000-4000-a000-00000000000${i}`;
        e.data.vendorIds = [{ system: 'docplanner', instance: 'other-dp', value: `b${i}` }];
        e.data.patient = { id: 'p-77', name: 'Other Patient' };
        e.data.start = `2026-04-0${i + 1}T09:00:00+02:00`;
        e.data.end = `2026-04-0${i + 1}T09:30:00+02:00`;
        e.time = `2026-03-0${i + 1}T08:00:00Z`;
      }),
    ]);
  }
  await e2e.hub.instances.upsert({
    id: 'notes',
    connector: 'instinctive-notes',
    mode: 'push',
    settings: { auth: { mode: 'header', secret: SECRET } },
  });
  // The instance of other-dp's rows, so a subscription's sources may name it.
  await e2e.hub.instances.upsert({
    id: 'other-dp',
    connector: 'instinctive-notes',
    mode: 'push',
    settings: { auth: { mode: 'header', secret: SECRET } },
  });
  const sim = new InstinctiveNotesSimulator({ hookUrl: e2e.hookUrl('notes'), secret: SECRET });
  await e2e.settle('notes', () => sim.push(fixture('instinctive-notes', 'soap-note-created.json')));
}, 180_000);

afterAll(async () => {
  await e2e?.close();
});

describe('the current-state projection', () => {
  it('holds the latest event of each entity, in the commit that stored it', async () => {
    const row = await getCurrentEntity(e2e.hub.host.db, `appointment/${APPT}`);
    expect(row).toMatchObject({
      kind: 'appointment',
      hubId: APPT,
      instanceId: 'docplanner-main',
      eventId: '00000000-0000-4000-8000-000000000002',
      eventType: 'appointment.cancelled',
    });
    expect(row?.data.status).toBe('cancelled');
  });

  it('moves to the event stored last, whatever clock dated it (the hub orders a subject, not the vendor)', async () => {
    const db = e2e.hub.host.db;
    // A BookingBug booking told by both shapes: the legacy purchase has no change time and is dated
    // when the hub received it; the JRNI no-show that follows keeps its vendor triggerTime.
    const subject = 'appointment/00000000-0000-4000-b000-000000000002';
    const make = (n: number, type: string, time: string) =>
      example(type, (e) => {
        e.id = `00000000-0000-4000-8000-00000000030${n}`;
        e.subject = subject;
        e.data.id = subject.slice('appointment/'.length);
        e.time = time;
      });
    await storeHubEvents(db, [make(1, 'appointment.updated', '2026-12-06T10:00:00Z')]);
    await storeHubEvents(db, [make(2, 'appointment.no_show', '2017-03-14T16:05:00Z')]);
    const row = await getCurrentEntity(db, subject);
    expect([row?.eventType, row?.data.status, row?.eventTime]).toEqual([
      'appointment.no_show',
      'noshow',
      '2017-03-14T16:05:00Z',
    ]);
    expect(
      ((await get(`/fhir/r4/Appointment/${subject.slice('appointment/'.length)}`)).body as Appointment)
        .status,
    ).toBe('noshow');
  });

  it('takes the last of several events of one entity stored in one statement, not the latest dated', async () => {
    const db = e2e.hub.host.db;
    const subject = 'appointment/00000000-0000-4000-b000-000000000001';
    const make = (n: number, type: string, time: string) =>
      example(type, (e) => {
        e.id = `00000000-0000-4000-8000-00000000020${n}`;
        e.subject = subject;
        e.data.id = subject.slice('appointment/'.length);
        e.time = time;
      });
    await storeHubEvents(db, [
      make(1, 'appointment.created', '2026-03-10T10:00:00Z'),
      make(2, 'appointment.cancelled', '2026-03-10T09:00:00Z'),
    ]);
    expect((await getCurrentEntity(db, subject))?.eventType).toBe('appointment.cancelled');
  });
});

describe('GET /fhir/r4', () => {
  it('reads an Appointment by hub id as application/fhir+json, valid for both validators', async () => {
    const answer = await get(`/fhir/r4/Appointment/${APPT}`);
    expect(answer.status).toBe(200);
    expect(answer.type).toMatch(/^application\/fhir\+json/);
    const a = answer.body as Appointment;
    expect([a.id, a.status, a.meta?.versionId]).toEqual([
      APPT,
      'cancelled',
      '00000000-0000-4000-8000-000000000002',
    ]);
    expect(thirdPartyErrors(a)).toEqual([]);
  });

  it('answers a read with ETag W/"<versionId>" and Last-Modified, and 304 to a conditional read that matches', async () => {
    const res = await fetch(`${e2e.baseUrl}/fhir/r4/Appointment/${APPT}`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    const body = (await res.json()) as Appointment;
    const etag = res.headers.get('etag');
    const lastModified = res.headers.get('last-modified');
    expect(etag).toBe(`W/"${body.meta?.versionId}"`);
    expect(lastModified).toBe(new Date(body.meta!.lastUpdated!).toUTCString());
    const conditional = async (headers: Record<string, string>) => {
      const r = await fetch(`${e2e.baseUrl}/fhir/r4/Appointment/${APPT}`, {
        headers: { authorization: `Bearer ${ADMIN}`, ...headers },
      });
      return [r.status, r.headers.get('etag'), (await r.text()).length > 0];
    };
    expect(await conditional({ 'if-none-match': etag! })).toEqual([304, etag, false]);
    expect(await conditional({ 'if-none-match': `"other", ${etag!.slice(2)}` })).toEqual([304, etag, false]);
    expect(await conditional({ 'if-none-match': 'W/"00000000-0000-4000-8000-000000000001"' })).toEqual([
      200,
      etag,
      true,
    ]);
    expect(await conditional({ 'if-modified-since': lastModified! })).toEqual([304, etag, false]);
    const before = new Date(Date.parse(lastModified!) - 1000).toUTCString();
    expect(await conditional({ 'if-modified-since': before })).toEqual([200, etag, true]);
    const cs = (await get('/fhir/r4/metadata', null)).body as CapabilityStatement;
    expect(cs.rest?.[0]?.resource?.map((r) => r.conditionalRead)).toEqual(['full-support', 'full-support']);
  });

  it('tells caches to ask before each use and shared ones not to keep answers: Cache-Control private, no-cache', async () => {
    // With Last-Modified and no directive a cache may reuse a read unasked for a tenth of its age
    // (RFC 9111 §4.2.2): a browser's, keyed by URL, then answers a later cancellation's reader, or
    // another token, with the old copy.
    const cacheControl = async (path: string, token: string | null, headers: Record<string, string> = {}) => {
      const r = await fetch(`${e2e.baseUrl}${path}`, {
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
      });
      await r.arrayBuffer();
      return [r.status, r.headers.get('cache-control')];
    };
    const read = await fetch(`${e2e.baseUrl}/fhir/r4/Appointment/${APPT}`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect([read.status, read.headers.get('cache-control'), read.headers.get('last-modified')]).toEqual([
      200,
      'private, no-cache',
      expect.any(String),
    ]);
    const etag = read.headers.get('etag')!;
    expect(await cacheControl(`/fhir/r4/Appointment/${APPT}`, ADMIN, { 'if-none-match': etag })).toEqual([
      304,
      'private, no-cache',
    ]);
    expect(await cacheControl('/fhir/r4/Appointment?patient-identifier=p-77', ADMIN)).toEqual([
      200,
      'private, no-cache',
    ]);
    expect(await cacheControl('/fhir/r4/metadata', null)).toEqual([200, 'private, no-cache']);
    expect(await cacheControl(`/fhir/r4/Appointment/${APPT}`, null)).toEqual([401, 'private, no-cache']);
    expect(await cacheControl('/fhir/r4/Appointment/no-such', ADMIN)).toEqual([404, 'private, no-cache']);
    expect(await cacheControl('/fhir/r4/Nope/1/2', ADMIN)).toEqual([404, 'private, no-cache']);
  });

  it('reads the clinical note pushed through the hub as a DocumentReference', async () => {
    const search = await get('/fhir/r4/DocumentReference?patient-identifier=urn:switchyard:notes:patient|50');
    const bundle = search.body as Bundle;
    expect(bundle.entry).toHaveLength(1);
    const id = bundle.entry![0]!.resource!.id!;
    const answer = await get(`/fhir/r4/DocumentReference/${id}`);
    expect(answer.status).toBe(200);
    const d = answer.body as DocumentReference;
    expect(d.status).toBe('current');
    // Searched by its status (a deleted note's, entered-in-error, is entities/search-cost.int's).
    const byStatus = async (q: string) =>
      (((await get(`/fhir/r4/DocumentReference?patient-identifier=50&${q}`)).body as Bundle).entry ?? []).map(
        (e) => e.resource!.id,
      );
    expect(await byStatus('status=current')).toEqual([id]);
    expect(await byStatus('status=http://hl7.org/fhir/document-reference-status%7Ccurrent')).toEqual([id]);
    expect(await byStatus('status=entered-in-error,superseded')).toEqual([]);
    expect(await byStatus('status:not=current')).toEqual([]);
    expect(Buffer.from(d.content[0]!.attachment.data!, 'base64').toString()).toContain('Get more sleep');
    expect(thirdPartyErrors(d)).toEqual([]);
    expect(thirdPartyErrors(bundle)).toEqual([]);
  });

  it('searches by patient identifier (with and without system), date prefixes and _lastUpdated', async () => {
    const ids = async (q: string) => {
      const answer = await get(`/fhir/r4/Appointment?${q}`);
      expect(answer.status, q).toBe(200);
      expect(thirdPartyErrors(answer.body), q).toEqual([]);
      return ((answer.body as Bundle).entry ?? []).map((e) => e.resource!.id);
    };
    const others = [0, 1, 2, 3, 4].map((i) => `00000000-0000-4000-a000-00000000000${i}`);
    expect(await ids('patient-identifier=urn:switchyard:docplanner-main:patient|p-77')).toEqual([APPT]);
    expect(await ids('patient-identifier=urn:switchyard:other-dp:patient|p-77&_count=100')).toEqual(others);
    expect((await ids('patient-identifier=p-77&_count=100')).sort()).toEqual([...others, APPT].sort());
    expect(await ids('patient-identifier=urn:switchyard:nowhere:patient|p-77')).toEqual([]);
    expect(await ids('patient-identifier=urn:switchyard:other-dp:patient|p-77&date=2026-04-02')).toEqual([
      others[1],
    ]);
    expect(await ids('patient-identifier=urn:switchyard:other-dp:patient|p-77&date=ge2026-04-04')).toEqual(
      others.slice(3),
    );
    expect(await ids('patient-identifier=urn:switchyard:other-dp:patient|p-77&date=lt2026-04-02')).toEqual([
      others[0],
    ]);
    expect(
      await ids(
        'patient-identifier=urn:switchyard:other-dp:patient|p-77&date=gt2026-04-02&date=le2026-04-04',
      ),
    ).toEqual([others[2], others[3]]);
    // With a time and a zone (the five start at 09:00+02:00, 07:00Z): the instant compared, not the
    // wall clock; a value without a zone is UTC; eq at minute precision is that minute.
    const q = 'patient-identifier=urn:switchyard:other-dp:patient|p-77&_count=100&date=';
    expect(await ids(`${q}ge2026-04-02T09:00:00%2B02:00`)).toEqual(others.slice(1));
    expect(await ids(`${q}lt2026-04-02T09:00:00%2B02:00`)).toEqual([others[0]]);
    expect(await ids(`${q}le2026-04-02T09:00:00%2B02:00`)).toEqual(others.slice(0, 2));
    expect(await ids(`${q}gt2026-04-02T07:00:00Z`)).toEqual(others.slice(2));
    expect(await ids(`${q}ge2026-04-02T07:00:00`)).toEqual(others.slice(1));
    expect(await ids(`${q}ge2026-04-02T08:00:00`)).toEqual(others.slice(2));
    expect(await ids(`${q}2026-04-02T03:00-04:00`)).toEqual([others[1]]);
    expect(await ids(`${q}2026-04-02T09:00Z`)).toEqual([]);
    // The bounds of FHIR's date range (years 0001 to 9999) are searchable, as clients write an open
    // end: their edges (10000-01-01, or before 0001 by a zone) are beyond what Postgres' timestamps
    // take, and were a 500.
    expect(await ids(`${q}le9999-12-31`)).toEqual(others);
    expect(await ids(`${q}lt9999-12-31T23:59:59Z`)).toEqual(others);
    expect(await ids(`${q}gt9999-12-31`)).toEqual([]);
    expect(await ids(`${q}9999`)).toEqual([]);
    expect(await ids(`${q}ge0001-01-01`)).toEqual(others);
    expect(await ids(`${q}ge0001-01-01T00:00:00%2B14:00`)).toEqual(others);
    expect(await ids(`${q}lt0001-01-01T00:00:00%2B14:00`)).toEqual([]);
    // _lastUpdated reads the hub's clock: the five were stored in this run, whatever their event time.
    expect(
      await ids('patient-identifier=urn:switchyard:other-dp:patient|p-77&_lastUpdated=le2026-03-02'),
    ).toEqual([]);
    expect(
      await ids(
        'patient-identifier=urn:switchyard:other-dp:patient|p-77&_lastUpdated=gt2026-03-02&_count=100',
      ),
    ).toEqual(others);
  });

  it('_lastUpdated finds a change whose notification arrived late with an old event time', async () => {
    const db = e2e.hub.host.db;
    const late = '00000000-0000-4000-a000-0000000000f1';
    const search = async (q: string) => {
      const answer = await get(
        `/fhir/r4/Appointment?patient-identifier=urn:switchyard:late-dp:patient|p-late&${q}`,
      );
      expect(answer.status, q).toBe(200);
      return ((answer.body as Bundle).entry ?? []).map((e) => e.resource as Appointment);
    };
    // A client's last poll: the newest meta.lastUpdated it has read so far.
    const polled = (await get(`/fhir/r4/Appointment/${APPT}`)).body as Appointment;
    const lastRead = polled.meta!.lastUpdated!;
    expect(Date.parse(lastRead)).toBeGreaterThan(Date.parse('2026-03-09T19:45:30+01:00')); // not the event time
    await new Promise((r) => setTimeout(r, 5)); // past the millisecond the client read
    // Stored now, with the vendor's time of three days earlier (a pull catching up after an outage).
    await storeHubEvents(db, [
      example('appointment.created', (e) => {
        e.id = '00000000-0000-4000-8000-0000000000f1';
        e.source = e.instance = 'late-dp';
        e.subject = `appointment/${late}`;
        e.data.id = late;
        e.data.vendorIds = [{ system: 'docplanner', instance: 'late-dp', value: 'late-1' }];
        e.data.patient = { id: 'p-late', name: 'Late Patient' };
        e.time = '2020-01-01T08:00:00Z';
      }),
    ]);
    const found = await search(`_lastUpdated=gt${lastRead}`);
    expect(found.map((a) => a.id)).toEqual([late]);
    const stamp = found[0]!.meta!.lastUpdated!;
    expect(stamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(Date.parse(stamp)).toBeGreaterThan(Date.parse(lastRead));
    // Asking after what it just read gives nothing again (milliseconds both ways), and a read agrees.
    expect(await search(`_lastUpdated=gt${stamp}`)).toEqual([]);
    expect(((await get(`/fhir/r4/Appointment/${late}`)).body as Appointment).meta?.lastUpdated).toBe(stamp);
    // A later event dated still earlier (another clock, or a change the connector applies late on
    // purpose) moves the state and its time.
    await new Promise((r) => setTimeout(r, 5));
    await storeHubEvents(db, [
      example('appointment.cancelled', (e) => {
        e.id = '00000000-0000-4000-8000-0000000000f2';
        e.source = e.instance = 'late-dp';
        e.subject = `appointment/${late}`;
        e.data.id = late;
        e.data.patient = { id: 'p-late', name: 'Late Patient' };
        e.time = '2019-12-31T08:00:00Z';
      }),
    ]);
    expect((await search(`_lastUpdated=gt${stamp}`)).map((a) => [a.id, a.status])).toEqual([
      [late, 'cancelled'],
    ]);
  });

  it('pages with _count and a next link until the last page', async () => {
    const seen: string[] = [];
    let url: string | undefined = '/fhir/r4/Appointment?patient-identifier=p-77&_count=2';
    let pages = 0;
    while (url) {
      const answer = await get(url);
      const bundle = answer.body as Bundle;
      expect(bundle.type).toBe('searchset');
      expect(thirdPartyErrors(bundle)).toEqual([]);
      seen.push(...(bundle.entry ?? []).map((e) => e.resource!.id!));
      const next = bundle.link?.find((l) => l.relation === 'next')?.url;
      url = next ? next.slice(e2e.baseUrl.length) : undefined;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toHaveLength(6);
    expect(new Set(seen).size).toBe(6);
  });

  it.each([[''], ['&_sort=-date']])(
    'pages back with previous links to the first page, and links first (R4 http.html#paging)%s',
    async (sort) => {
      const first = `/fhir/r4/Appointment?patient-identifier=p-77&_count=2${sort}`;
      const link = (bundle: Bundle, relation: string) =>
        bundle.link?.find((l) => l.relation === relation)?.url?.slice(e2e.baseUrl.length);
      const ids = (bundle: Bundle) => (bundle.entry ?? []).map((e) => e.resource!.id!);
      const forward: Bundle[] = [];
      for (let url: string | undefined = first; url; url = link(forward[forward.length - 1]!, 'next'))
        forward.push((await get(url)).body as Bundle);
      expect(forward.flatMap(ids)).toHaveLength(6);
      expect(forward.map((b) => link(b, 'first'))).toEqual(Array(3).fill(link(forward[0]!, 'self')));
      expect(link(forward[0]!, 'previous')).toBeUndefined();

      const backward: Bundle[] = [forward[2]!];
      for (
        let url = link(forward[2]!, 'previous');
        url;
        url = link(backward[backward.length - 1]!, 'previous')
      )
        backward.push((await get(url)).body as Bundle);
      expect(backward.map(ids)).toEqual(forward.map(ids).reverse());
      for (const bundle of backward) expect(thirdPartyErrors(bundle)).toEqual([]);
      // A page reached backward links forward again: its next page is the one it was reached from.
      expect(ids((await get(link(backward[2]!, 'next')!)).body as Bundle)).toEqual(ids(forward[1]!));
    },
  );

  it('answers a _count above the maximum with a full page of the maximum, its links saying 100 (R4: fewer, never an error)', async () => {
    const answer = await get('/fhir/r4/Appointment?patient-identifier=p-77&_count=500');
    expect(answer.status).toBe(200);
    const bundle = answer.body as Bundle;
    expect(bundle.entry).toHaveLength(6);
    expect(bundle.link?.find((l) => l.relation === 'self')?.url).toBe(
      `${e2e.baseUrl}/fhir/r4/Appointment?patient-identifier=p-77&_count=100`,
    );
  });

  it('under Prefer: handling=lenient ignores what it does not support, says so in an outcome entry and its self link', async () => {
    const strict = await get('/fhir/r4/Appointment?patient-identifier=p-77&_elements=status&_sort=status');
    expect(strict.status).toBe(400);
    const answer = await get(
      '/fhir/r4/Appointment?patient-identifier=p-77&_elements=status&_sort=status',
      ADMIN,
      {
        prefer: 'handling=lenient',
      },
    );
    expect(answer.status).toBe(200);
    const bundle = answer.body as Bundle;
    expect(thirdPartyErrors(bundle)).toEqual([]);
    expect(bundle.link?.find((l) => l.relation === 'self')?.url).toBe(
      `${e2e.baseUrl}/fhir/r4/Appointment?patient-identifier=p-77`,
    );
    const outcome = bundle.entry?.find((e) => e.search?.mode === 'outcome')?.resource as OperationOutcome;
    expect(outcome.issue.map((i) => [i.severity, i.code, i.diagnostics?.split(':')[2]])).toEqual([
      ['warning', 'not-supported', ' _elements=status'],
      ['warning', 'not-supported', ' _sort=status'],
    ]);
    const matches = bundle.entry?.filter((e) => e.search?.mode === 'match').map((e) => e.resource?.id);
    const plain = (await get('/fhir/r4/Appointment?patient-identifier=p-77')).body as Bundle;
    expect(matches).toEqual(plain.entry?.map((e) => e.resource?.id));
    // A read, too, ignores parameters it does not take when asked to be lenient.
    const read = await get(`/fhir/r4/Appointment/${APPT}?_elements=status`, ADMIN, {
      prefer: 'handling=lenient',
    });
    expect([read.status, read.body.id]).toEqual([200, APPT]);
    // Lenient is about support: a value it cannot read is still refused.
    expectOutcome(
      await get('/fhir/r4/Appointment?date=yesterday', ADMIN, { prefer: 'handling=lenient' }),
      400,
      'invalid',
    );
  });

  it('pages in a stable order while appointments are added and changed between pages: each one that existed is seen once', async () => {
    const db = e2e.hub.host.db;
    const appointment = (n: string, eventId: string, start: string) =>
      example('appointment.created', (e) => {
        e.id = eventId;
        e.source = e.instance = 'paging-dp';
        e.subject = `appointment/00000000-0000-4000-c000-0000000000${n}`;
        e.data.id = `00000000-0000-4000-c000-0000000000${n}`;
        e.data.vendorIds = [{ system: 'docplanner', instance: 'paging-dp', value: `pg${n}` }];
        e.data.patient = { id: 'p-88', name: 'Paging Patient' };
        e.data.start = start;
        e.data.end = start.replace('T09:00', 'T09:30');
        e.time = '2026-03-01T08:00:00Z';
      });
    for (const n of ['01', '02', '03', '04']) {
      await storeHubEvents(db, [
        appointment(n, `00000000-0000-4000-8000-0000000007${n}`, '2026-05-01T09:00:00Z'),
      ]);
    }
    const ids = (b: Bundle) => (b.entry ?? []).map((e) => e.resource!.id!.slice(-2));
    const first = (await get('/fhir/r4/Appointment?patient-identifier=p-88&_count=2')).body as Bundle;
    expect(ids(first)).toEqual(['01', '02']);
    // Between pages: one added before the cursor, one after, one already read moved, one not yet read moved.
    await storeHubEvents(db, [
      appointment('00', '00000000-0000-4000-8000-000000000800', '2026-05-02T09:00:00Z'),
      appointment('05', '00000000-0000-4000-8000-000000000805', '2026-05-02T09:00:00Z'),
    ]);
    for (const n of ['01', '03']) {
      const moved = appointment(n, `00000000-0000-4000-8000-0000000009${n}`, '2026-05-03T09:00:00Z');
      moved.type = 'appointment.rescheduled';
      (moved.data as Record<string, unknown>).previous = { start: '2026-05-01T09:00:00Z' };
      moved.time = '2026-03-02T08:00:00Z';
      await storeHubEvents(db, [moved]);
    }
    const seen = ids(first);
    const starts = new Map<string, string>();
    let next = first.link?.find((l) => l.relation === 'next')?.url;
    while (next) {
      const page = (await get(next.slice(e2e.baseUrl.length))).body as Bundle;
      seen.push(...ids(page));
      for (const e of page.entry ?? [])
        starts.set(e.resource!.id!.slice(-2), (e.resource as Appointment).start!);
      next = page.link?.find((l) => l.relation === 'next')?.url;
    }
    expect(seen).toEqual(['01', '02', '03', '04', '05']);
    // The later pages show the current state: the one moved before it was read is read moved.
    expect(starts.get('03')).toBe('2026-05-03T09:00:00Z');
  });

  describe('status, _id, _sort, _total and _summary', () => {
    // Seven appointments of one patient (instance sort-dp): starts shared by 01-03 and by 04-05, 07
    // without a start; stored in three commits (01-03, 04-05, 06-07), so each commit's share one
    // meta.lastUpdated.
    const hub = (n: string) => `00000000-0000-4000-d000-0000000000${n}`;
    const q = 'patient-identifier=urn:switchyard:sort-dp:patient|p-99';
    const plan: [string, string | undefined, string][] = [
      ['01', '2026-06-01T09:00:00Z', 'booked'],
      ['02', '2026-06-01T09:00:00Z', 'cancelled'],
      ['03', '2026-06-01T09:00:00Z', 'booked'],
      ['04', '2026-06-02T09:00:00Z', 'noshow'],
      ['05', '2026-06-02T09:00:00Z', 'booked'],
      ['06', '2026-05-30T09:00:00Z', 'booked'],
      ['07', undefined, 'cancelled'],
    ];
    const appointment = ([n, start, status]: [string, string | undefined, string]) =>
      example('appointment.created', (e) => {
        e.id = `00000000-0000-4000-8000-000000000a${n}`;
        e.source = e.instance = 'sort-dp';
        e.subject = `appointment/${hub(n)}`;
        e.data.id = hub(n);
        e.data.vendorIds = [{ system: 'docplanner', instance: 'sort-dp', value: `s${n}` }];
        e.data.patient = { id: 'p-99', name: 'Sorted Patient' };
        e.data.status = status;
        if (start) {
          e.data.start = start;
          e.data.end = start.replace('T09:00', 'T09:30');
        } else {
          delete e.data.start;
          delete e.data.end;
          delete e.data.durationMinutes;
        }
      });

    beforeAll(async () => {
      const db = e2e.hub.host.db;
      for (const batch of [plan.slice(0, 3), plan.slice(3, 5), plan.slice(5)]) {
        await storeHubEvents(db, batch.map(appointment));
        await new Promise((r) => setTimeout(r, 5)); // the next commit gets a later millisecond
      }
    });

    /** Every page of a search, following `next`, each Bundle checked by both validators. */
    async function walk(query: string): Promise<{ ids: string[]; pages: Bundle[] }> {
      const pages: Bundle[] = [];
      let url: string | undefined = `/fhir/r4/Appointment?${query}`;
      while (url) {
        const answer = await get(url);
        expect(answer.status, url).toBe(200);
        const bundle = answer.body as Bundle;
        expect(thirdPartyErrors(bundle), url).toEqual([]);
        pages.push(bundle);
        const next = bundle.link?.find((l) => l.relation === 'next')?.url;
        url = next ? next.slice(e2e.baseUrl.length) : undefined;
        expect(pages.length).toBeLessThan(20);
      }
      const ids = pages.flatMap((b) => (b.entry ?? []).map((e) => e.resource!.id!.slice(-2)));
      return { ids, pages };
    }

    it.each([
      ['date', ['06', '01', '02', '03', '04', '05', '07']],
      ['-date', ['07', '05', '04', '03', '02', '01', '06']],
      ['date,_id', ['06', '01', '02', '03', '04', '05', '07']],
      ['-date,-_id', ['07', '05', '04', '03', '02', '01', '06']],
      ['_lastUpdated', ['01', '02', '03', '04', '05', '06', '07']],
      ['-_lastUpdated', ['07', '06', '05', '04', '03', '02', '01']],
      ['_id', ['01', '02', '03', '04', '05', '06', '07']],
      ['-_id', ['07', '06', '05', '04', '03', '02', '01']],
    ])(
      '_sort=%s pages through rows sharing a sort value without skipping or repeating any',
      async (sort, expected) => {
        for (const count of [1, 2, 3, 100]) {
          const { ids, pages } = await walk(`${q}&_sort=${sort}&_count=${count}`);
          expect(ids, `_count=${count}`).toEqual(expected);
          expect(pages).toHaveLength(Math.ceil(expected.length / count));
          for (const page of pages.slice(1)) {
            const self = page.link?.find((l) => l.relation === 'self')?.url ?? '';
            expect(new URL(self).searchParams.get('_sort')).toBe(sort);
          }
        }
        // The sort agrees with the resources: Appointment.start in order, the one without last (first descending).
        const { pages } = await walk(`${q}&_sort=${sort}`);
        const resources = (pages[0]!.entry ?? []).map((e) => e.resource as Appointment);
        if (sort === 'date')
          expect(resources.map((a) => a.start ?? 'none')).toEqual(
            [...resources.map((a) => a.start ?? 'none')].sort((a, b) =>
              a === 'none' ? 1 : b === 'none' ? -1 : Date.parse(a) - Date.parse(b),
            ),
          );
        if (sort === '-_lastUpdated')
          expect(resources.map((a) => a.meta!.lastUpdated!)).toEqual(
            resources
              .map((a) => a.meta!.lastUpdated!)
              .sort()
              .reverse(),
          );
      },
    );

    it('a _cursor of one _sort is refused under another (400 invalid), not read as a position in it', async () => {
      const first = (await get(`/fhir/r4/Appointment?${q}&_sort=date&_count=2`)).body as Bundle;
      const cursor = new URL(first.link!.find((l) => l.relation === 'next')!.url).searchParams.get(
        '_cursor',
      )!;
      expectOutcome(await get(`/fhir/r4/Appointment?${q}&_sort=-date&_cursor=${cursor}`), 400, 'invalid');
      expectOutcome(await get(`/fhir/r4/Appointment?${q}&_cursor=${cursor}`), 400, 'invalid');
    });

    it('filters by status (with or without its system, :not), and by _id (:not)', async () => {
      const ids = async (query: string) => (await walk(`${q}&${query}`)).ids;
      expect(await ids('status=booked')).toEqual(['01', '03', '05', '06']);
      expect(await ids('status=http://hl7.org/fhir/appointmentstatus%7Cnoshow,cancelled')).toEqual([
        '02',
        '04',
        '07',
      ]);
      expect(await ids('status:not=booked')).toEqual(['02', '04', '07']);
      expect(await ids('status:not=booked,cancelled&_sort=-date')).toEqual(['04']);
      expect(await ids('status=http://other%7Cbooked')).toEqual([]);
      expect(await ids('status=unknown-code')).toEqual([]);
      expect(await ids(`_id=${hub('04')},${hub('01')},no-such`)).toEqual(['01', '04']);
      expect(await ids(`_id:not=${hub('04')},${hub('01')}&status=booked`)).toEqual(['03', '05', '06']);
      expect(await ids(`_id=${hub('04')}&status=booked`)).toEqual([]);
      // Without a patient: the statuses the mapping gives are the resources' own.
      const all = (await get(`/fhir/r4/Appointment?status=noshow&_count=100`)).body as Bundle;
      expect((all.entry ?? []).map((e) => (e.resource as Appointment).status)).toEqual(
        (all.entry ?? []).map(() => 'noshow'),
      );
      expect((all.entry ?? []).map((e) => e.resource!.id)).toContain(hub('04'));
      expect(thirdPartyErrors(all)).toEqual([]);
    });

    it('_total=accurate|estimate gives the count on every page, _total=none and no _total none; _summary=count the total only', async () => {
      const paged = await walk(`${q}&_total=accurate&_count=3`);
      expect(paged.pages.map((b) => b.total)).toEqual([7, 7, 7]);
      expect(paged.ids).toHaveLength(7);
      expect((await walk(`${q}&_total=estimate&status=booked`)).pages.map((b) => b.total)).toEqual([4]);
      expect((await walk(`${q}&_total=none`)).pages.map((b) => b.total)).toEqual([undefined]);
      expect((await walk(q)).pages.map((b) => b.total)).toEqual([undefined]);
      const count = await walk(`${q}&status:not=booked&_summary=count`);
      expect(count.pages).toHaveLength(1);
      expect(count.pages[0]).toEqual({
        resourceType: 'Bundle',
        type: 'searchset',
        total: 3,
        link: [
          {
            relation: 'self',
            url: `${e2e.baseUrl}/fhir/r4/Appointment?${new URLSearchParams(`${q}&status:not=booked&_summary=count`)}`,
          },
        ],
      });
      // R4 search.html#count: _count=0 is _summary=count.
      const zero = await walk(`${q}&status:not=booked&_count=0`);
      expect(zero.pages.map((b) => [b.total, b.entry, b.link?.map((l) => l.relation)])).toEqual([
        [3, undefined, ['self']],
      ]);
      const notes = (await get('/fhir/r4/DocumentReference?patient-identifier=50&_summary=count'))
        .body as Bundle;
      expect([notes.total, notes.entry]).toEqual([1, undefined]);
      expect(thirdPartyErrors(notes)).toEqual([]);
      // A read token counts only what it may read.
      await e2e.hub.subscriptions.create({
        id: 'ehr-sorted',
        url: 'http://127.0.0.1:9/none',
        eventTypes: ['appointment.*'],
        sources: ['other-dp'],
        allowPrivateAddresses: true,
      });
      const { token } = (await createReadToken(e2e.baseUrl, ADMIN, 'ehr-sorted')).body;
      expect(((await get(`/fhir/r4/Appointment?${q}&_summary=count`, token)).body as Bundle).total).toBe(0);
      expect(
        ((await get('/fhir/r4/Appointment?patient-identifier=p-77&_summary=count', token)).body as Bundle)
          .total,
      ).toBe(5);
    });
  });

  it('serves a CapabilityStatement generated from the supported search parameters, without a token', async () => {
    const answer = await get('/fhir/r4/metadata', null);
    expect(answer.status).toBe(200);
    const cs = answer.body as CapabilityStatement;
    expect(cs.fhirVersion).toBe('4.0.1');
    expect(medplumErrors(cs)).toEqual([]);
    // The fhir.schema.json on npm is R4 4.0.0's, whose fhirVersion enum ends at 4.0.0; the hub
    // speaks 4.0.1 (R4 with its technical correction). Everything else must pass it.
    expect(jsonSchemaErrors(cs).some((e) => e.startsWith('.fhirVersion'))).toBe(true);
    expect(jsonSchemaErrors({ ...cs, fhirVersion: '4.0.0' })).toEqual([]);
    const resources = cs.rest?.[0]?.resource ?? [];
    expect(resources.map((r) => r.type)).toEqual(['Appointment', 'DocumentReference']);
    for (const r of resources) {
      expect(r.searchParam?.map((p) => p.name)).toEqual(
        SEARCH_PARAMETERS[r.type as keyof typeof SEARCH_PARAMETERS].map((p) => p.name),
      );
      // Each listed parameter is accepted by the search (the statement does not lie), and so is
      // each result parameter its documentation names, from the same tables.
      for (const p of r.searchParam ?? []) {
        const value = p.type === 'date' ? 'ge2026-01-01' : 'p-77';
        expect((await get(`/fhir/r4/${r.type}?${p.name}=${value}`)).status, `${r.type} ${p.name}`).toBe(200);
        if (p.documentation?.includes(`\`${p.name}:not\``))
          expect((await get(`/fhir/r4/${r.type}?${p.name}:not=${value}`)).status, `${p.name}:not`).toBe(200);
      }
      const type = r.type as keyof typeof SORT_PARAMETERS;
      expect(r.documentation).toBe(resultParameters(type));
      const results = [
        ...Object.keys(SORT_PARAMETERS[type]).flatMap((k) => [`_sort=${k}`, `_sort=-${k}`]),
        ...TOTAL_MODES.map((m) => `_total=${m}`),
        ...SUMMARY_MODES.map((m) => `_summary=${m}`),
      ];
      for (const q of results) {
        expect(r.documentation, q).toContain(q.slice(q.indexOf('=') + 1).replace(/^-/, ''));
        const answer = await get(`/fhir/r4/${r.type}?${q}`);
        expect(answer.status, `${r.type} ${q}`).toBe(200);
        expect(thirdPartyErrors(answer.body), q).toEqual([]);
      }
    }
  });
});

describe('read tokens', () => {
  const createToken = (subscriptionId: string) => createReadToken(e2e.baseUrl, ADMIN, subscriptionId);

  it('are created through the subscriptions API, shown once and stored hashed', async () => {
    await e2e.hub.subscriptions.create({
      id: 'ehr-other',
      url: 'http://127.0.0.1:9/none',
      eventTypes: ['appointment.*'],
      sources: ['other-dp'],
      allowPrivateAddresses: true,
    });
    const created = await createToken('ehr-other');
    expect(created.status).toBe(201);
    expect(created.body.token).toMatch(/^syfhir_/);
    const stored = await sql<{ token_hash: string }>`select token_hash from switchyard.fhir_read_tokens
      where subscription_id = 'ehr-other'`.execute(e2e.hub.host.db);
    expect(stored.rows[0]?.token_hash).not.toContain(created.body.token);
    expect(JSON.stringify(stored.rows)).not.toContain(created.body.token.slice(7));
    expect((await createToken('no-such-subscription')).status).toBe(404);
  });

  it("see only the instances and types their subscription covers; another instance's entity is 404", async () => {
    const { body } = await createToken('ehr-other');
    const own = '00000000-0000-4000-a000-000000000001';
    const read = await get(`/fhir/r4/Appointment/${own}`, body.token);
    expect(read.status).toBe(200);
    // The docplanner-main appointment exists, but not for this token: the same 404 as an unknown id.
    const foreign = await get(`/fhir/r4/Appointment/${APPT}`, body.token);
    expectOutcome(foreign, 404, 'not-found');
    expect(JSON.stringify(foreign.body)).not.toContain('docplanner-main');
    const search = await get('/fhir/r4/Appointment?patient-identifier=p-77&_count=100', body.token);
    expect(((search.body as Bundle).entry ?? []).map((e) => e.resource!.id)).not.toContain(APPT);
    expect((search.body as Bundle).entry).toHaveLength(5);
    // Its filter has no document type: clinical notes are not its to read, and it is told so (403),
    // not answered an empty searchset that reads as "this patient has no notes".
    const notes = await get('/fhir/r4/DocumentReference?patient-identifier=50', body.token);
    expectOutcome(notes, 403, 'forbidden');
    expect(notes.body.issue[0].diagnostics).toMatch(
      /ehr-other covers no event type that maps to DocumentReference/,
    );
    const note = await get(`/fhir/r4/DocumentReference/${APPT}`, body.token);
    expectOutcome(note, 403, 'forbidden');
  });

  it('answer a conditional read of what they cannot read as they answer the read: never a 304, nothing of its version', async () => {
    const { body } = await createToken('ehr-other');
    const admin = await fetch(`${e2e.baseUrl}/fhir/r4/Appointment/${APPT}`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    const etag = admin.headers.get('etag')!;
    const lastModified = admin.headers.get('last-modified')!;
    // The token knows (or guesses) the version of another instance's appointment, or asks with `*`.
    const conditional = async (path: string, token: string | null, headers: Record<string, string>) => {
      const r = await fetch(`${e2e.baseUrl}${path}`, {
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
      });
      return [r.status, r.headers.get('etag'), r.headers.get('last-modified')];
    };
    const asks: Record<string, string>[] = [
      { 'if-none-match': etag },
      { 'if-none-match': '*' },
      { 'if-modified-since': lastModified },
    ];
    for (const headers of asks) {
      expect(await conditional(`/fhir/r4/Appointment/${APPT}`, body.token, headers)).toEqual([
        404,
        null,
        null,
      ]);
      expect(await conditional(`/fhir/r4/DocumentReference/${APPT}`, body.token, headers)).toEqual([
        403,
        null,
        null,
      ]);
      expect(await conditional(`/fhir/r4/Appointment/${APPT}`, null, headers)).toEqual([401, null, null]);
      expect(await conditional(`/fhir/r4/Appointment/${APPT}`, 'syfhir_wrong', headers)).toEqual([
        401,
        null,
        null,
      ]);
      // An unknown id answers the same as another instance's.
      expect(
        await conditional('/fhir/r4/Appointment/00000000-0000-4000-8000-0000000000ff', body.token, headers),
      ).toEqual([404, null, null]);
    }
  });

  it('stop working when rotated or revoked', async () => {
    const first = (await createToken('ehr-other')).body.token;
    const second = (await createToken('ehr-other')).body.token;
    const own = '00000000-0000-4000-a000-000000000001';
    expectOutcome(await get(`/fhir/r4/Appointment/${own}`, first), 401, 'login');
    expect((await get(`/fhir/r4/Appointment/${own}`, second)).status).toBe(200);
    const res = await fetch(`${e2e.baseUrl}/v1/subscriptions/ehr-other/fhir-read-token`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(res.status).toBe(204);
    expectOutcome(await get(`/fhir/r4/Appointment/${own}`, second), 401, 'login');
  });

  it('stop working while their subscription is disabled, and work again once it is enabled', async () => {
    const token = (await createToken('ehr-other')).body.token;
    const own = '00000000-0000-4000-a000-000000000001';
    expect((await get(`/fhir/r4/Appointment/${own}`, token)).status).toBe(200);
    await e2e.hub.subscriptions.disable('ehr-other');
    expectOutcome(await get(`/fhir/r4/Appointment/${own}`, token), 401, 'login');
    await e2e.hub.subscriptions.enable('ehr-other');
    expect((await get(`/fhir/r4/Appointment/${own}`, token)).status).toBe(200);
  });
});

describe('errors are OperationOutcomes', () => {
  it('401 without a token or with a wrong one', async () => {
    expectOutcome(await get(`/fhir/r4/Appointment/${APPT}`, null), 401, 'login');
    expectOutcome(await get(`/fhir/r4/Appointment/${APPT}`, 'syfhir_wrong'), 401, 'login');
    expectOutcome(await get('/fhir/r4/Appointment?date=2026', 'not-a-token'), 401, 'login');
  });

  it('404 for an unknown id, an unknown resource type and an unknown path', async () => {
    expectOutcome(await get('/fhir/r4/Appointment/00000000-0000-4000-8000-0000000000ff'), 404, 'not-found');
    expectOutcome(await get('/fhir/r4/Observation/1'), 404, 'not-found');
    expectOutcome(await get('/fhir/r4/Appointment/1/_history/2'), 404, 'not-found');
  });

  it('405 with Allow: GET, HEAD for a write or a POST search on a path it reads', async () => {
    for (const [method, path] of [
      ['POST', '/fhir/r4/Appointment'],
      ['PUT', `/fhir/r4/Appointment/${APPT}`],
      ['DELETE', `/fhir/r4/Appointment/${APPT}`],
      ['PATCH', `/fhir/r4/DocumentReference/${APPT}`],
      ['POST', '/fhir/r4/Appointment/_search'],
      ['POST', '/fhir/r4/metadata'],
    ] as const) {
      const res = await fetch(`${e2e.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/fhir+json' },
        body: '{"resourceType":"Appointment"}',
      });
      const answer = {
        status: res.status,
        type: res.headers.get('content-type'),
        body: (await res.json()) as OperationOutcome,
      };
      expectOutcome(answer, 405, 'not-supported');
      expect(res.headers.get('allow'), `${method} ${path}`).toBe('GET, HEAD');
    }
    expectOutcome(
      await (async () => {
        const res = await fetch(`${e2e.baseUrl}/fhir/r4/Observation`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN}` },
        });
        return {
          status: res.status,
          type: res.headers.get('content-type'),
          body: (await res.json()) as OperationOutcome,
        };
      })(),
      404,
      'not-found',
    );
  });

  it('400 not-supported for an unknown search parameter, a modifier, a prefix or a read parameter', async () => {
    expectOutcome(await get('/fhir/r4/Appointment?_include=Appointment:patient'), 400, 'not-supported');
    expectOutcome(await get('/fhir/r4/Appointment?status:missing=true'), 400, 'not-supported');
    expectOutcome(await get('/fhir/r4/Appointment?_summary=true'), 400, 'not-supported');
    expectOutcome(await get('/fhir/r4/Appointment?_sort=status'), 400, 'not-supported');
    expectOutcome(await get('/fhir/r4/DocumentReference?status:missing=true'), 400, 'not-supported');
    expectOutcome(await get('/fhir/r4/Appointment?date:missing=true'), 400, 'not-supported');
    expectOutcome(await get('/fhir/r4/Appointment?date=sa2026-01-01'), 400, 'not-supported');
    expectOutcome(await get('/fhir/r4/DocumentReference?date=2026-01-01'), 400, 'not-supported');
    expectOutcome(await get(`/fhir/r4/Appointment/${APPT}?_pretty=true`), 400, 'not-supported');
    // The capabilities interaction: mode=full is what it answers; a TerminologyCapabilities or a
    // normative subset is not served, so asking for one is refused rather than answered otherwise.
    expectOutcome(await get('/fhir/r4/metadata?mode=terminology', null), 400, 'not-supported');
    expectOutcome(await get('/fhir/r4/metadata?mode=normative', null), 400, 'not-supported');
    expect((await get('/fhir/r4/metadata?mode=full&_format=json', null)).body.resourceType).toBe(
      'CapabilityStatement',
    );
  });

  it('406 for a _format or an Accept that takes no JSON; JSON asked either way is answered', async () => {
    for (const format of ['xml', 'application/fhir%2Bxml', 'ttl', 'html']) {
      expectOutcome(await get(`/fhir/r4/Appointment/${APPT}?_format=${format}`), 406, 'not-supported');
      expectOutcome(await get(`/fhir/r4/Appointment?_format=${format}`), 406, 'not-supported');
    }
    for (const accept of [
      'application/fhir+xml',
      'application/xml, text/xml',
      'text/html',
      'application/fhir+json; fhirVersion=3.0',
      'application/fhir+json;fhirVersion=5.0, application/json;fhirVersion=4.3',
      // q=0 is "not acceptable" (RFC 9110 §12.5.1), and the specific range wins over */*.
      'application/fhir+xml, application/json;q=0',
      'application/fhir+xml, application/fhir+json; q=0.0',
      '*/*, application/fhir+json;q=0',
    ]) {
      expectOutcome(await get(`/fhir/r4/Appointment/${APPT}`, ADMIN, { accept }), 406, 'not-supported');
      expectOutcome(await get('/fhir/r4/metadata', null, { accept }), 406, 'not-supported');
    }
    // _format overrides Accept (R4 http.html); an unescaped + arrives as a space and is read as one.
    for (const format of ['json', 'application/json', 'application/fhir%2Bjson', 'application/fhir+json']) {
      const read = await get(`/fhir/r4/Appointment/${APPT}?_format=${format}`, ADMIN, {
        accept: 'application/fhir+xml',
      });
      expect([read.status, read.body.id], format).toEqual([200, APPT]);
      const search = await get(`/fhir/r4/Appointment?patient-identifier=p-77&_format=${format}`);
      expect([search.status, search.body.resourceType], format).toEqual([200, 'Bundle']);
    }
    for (const accept of [
      'application/fhir+json',
      'application/fhir+json; fhirVersion=4.0',
      'application/fhir+json; fhirVersion=4.0.1',
      'application/fhir+json; fhirVersion=3.0, application/fhir+json; fhirVersion=4.0',
      'application/json+fhir',
      'application/json',
      'text/html,application/xhtml+xml,*/*;q=0.8',
      'application/*',
      'application/fhir+json;q=0.5, application/fhir+xml',
    ]) {
      expect((await get(`/fhir/r4/Appointment/${APPT}`, ADMIN, { accept })).status, accept).toBe(200);
    }
  });

  it('400 invalid for a value it cannot read', async () => {
    expectOutcome(await get('/fhir/r4/Appointment?date=yesterday'), 400, 'invalid');
    // FHIR's dates start at year 0001 (R4 datatypes.html#date).
    expectOutcome(await get('/fhir/r4/Appointment?date=0000-01-01'), 400, 'invalid');
    expectOutcome(await get('/fhir/r4/Appointment?_count=-1'), 400, 'invalid');
    expectOutcome(await get('/fhir/r4/Appointment?_cursor=%25%25'), 400, 'invalid');
    // A path fastify cannot decode is refused before any route: still an OperationOutcome here.
    expectOutcome(await get('/fhir/r4/Appointment/%zz'), 400, 'invalid');
  });

  it('503 transient while the database is unreachable, and answers again once it is back', async () => {
    // The database refuses connections (SQLSTATE 55000) and the hub's sessions are cut.
    const admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
    await admin.connect();
    const name = database.name();
    try {
      await setConnectionsAllowed(admin, name, false);
      const answer = await get(`/fhir/r4/Appointment/${APPT}`);
      expectOutcome(answer, 503, 'transient');
      // Nothing of the database (its name, address, user or driver message) reaches the client.
      const text = JSON.stringify(answer.body);
      for (const secret of [name, '5432', 'postgres', 'SQLSTATE', '55000', 'ECONNREFUSED']) {
        expect(text, secret).not.toContain(secret);
      }
    } finally {
      await setConnectionsAllowed(admin, name, true);
      await admin.end();
    }
    // pg_terminate_backend does not wait for the backends to exit, so a pooled session may only
    // now be found cut (one more 503); the hub must recover by itself within a few reads. The
    // next test also needs a database that answers (CI once read its 401s as 503s here).
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      status = (await get(`/fhir/r4/Appointment/${APPT}`)).status;
    }
    expect(status).toBe(200);
  });

  it('429 throttled after too many refused tokens from one address (the app-wide limiter, answered as FHIR)', async () => {
    // Last: it locks this address out of /fhir for a minute.
    let answer = await get('/fhir/r4/Appointment?date=2026', 'syfhir_guess');
    for (let i = 0; i < 30 && answer.status === 401; i++)
      answer = await get('/fhir/r4/Appointment?date=2026', 'syfhir_guess');
    expectOutcome(answer, 429, 'throttled');
  });
});
