// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config text uses ${env:...} references on purpose.
/**
 * Commands end to end through started hub processes (the real wiring of `switchyard start`): a
 * command → the Docplanner simulator's write API → `command.succeeded` delivered signed (verified
 * with the standardwebhooks library by the recording subscriber) → the vendor's echo push normalized
 * with `data.causedBy`; idempotency; refusals; order on one subject under a transient failure;
 * per-subscription credentials. A process killed mid-command: reliability/command-crash.int.test.ts.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BookingBugSimulator } from '@switchyard/connector-bookingbug/simulator';
import { ClockwiseSimulator } from '@switchyard/connector-clockwisemd/simulator';
import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import type { JsonObject } from '@switchyard/core';
import {
  type RecordingSubscriber,
  startRecordingSubscriber,
  testPostgresAdminUrl,
  useTestDatabase,
} from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { CliIO } from '../cli/command.ts';
import { commandsCommand } from '../cli/commands/commands.ts';
import { parseConfig } from '../config/load.ts';
import { shippedConnectors } from '../connectors.ts';
import { fixture } from '../e2e/connectors/fixtures.test-support.ts';
import { type HubProcess, startHubProcess } from '../runtime/process.ts';
import { setConnectionsAllowed } from '../storage/database.test-support.ts';
import { injectSqlstate, SQLSTATE_FAULTS } from '../storage/sqlstate-fault.test-support.ts';
import { startOtlpReceiver } from '../telemetry/otlp-receiver.test-support.ts';
import { causedBy, clockwiseInstance, docplannerInstance } from './command-hub.test-support.ts';
import type { CommandsOptions } from './commands.ts';

const db = useTestDatabase();
const ADMIN = 'commands-admin-token-0123456789';
const PUSH_KEY = 'dp-commands-push-key-9f8e7d';
const SIGNING = `whsec_${Buffer.from('commands-e2e-signing-secret-32b!').toString('base64')}`;
const PLACE = { facility: '90211', doctor: '182733', address: '221304' };

/** An `appointment.book`'s data for Docplanner instance `dp`: 30 minutes at `start` with the doctor of {@link PLACE}. */
function dpBook(start: string, patient: { name: string; phone: string; email?: string }) {
  return {
    start,
    durationMinutes: 30,
    patient,
    practitioner: { id: PLACE.doctor },
    location: { id: PLACE.address },
    organization: { id: PLACE.facility },
    service: { id: '4455661' },
  };
}

/** An `appointment.book`'s data for Clockwise.MD instance `cw`: a visit at `start` in hospital 77. */
function cwBook(start: string, patient: { given: string; family: string }) {
  return { start, patient, location: { id: '77' } };
}

let sim: DocplannerSimulator;
let bbSim: BookingBugSimulator;
const BB_TOKEN = 'jrni-commands-basic-token-0123';
let cwSim: ClockwiseSimulator;
const CW_HOOK_KEY = 'cw-commands-hook-key-0123456789';
const CW_API_KEY = 'cw-commands-api-key-abcdef';
let subscriber: RecordingSubscriber;
let hub: HubProcess;
// Tracing is on for these tests (every span exported here): the commands work the same with it.
let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;

const io: CliIO = {
  stdout: { write: () => true },
  stderr: { write: () => true },
  cwd: process.cwd(),
} as unknown as CliIO;

const ENV = () => ({ T_ADMIN: ADMIN, T_DB: db.url(), T_PUSH: PUSH_KEY, T_SIGNING: SIGNING });

function configText(): string {
  return [
    'version: 1',
    'server:',
    '  host: 127.0.0.1',
    '  port: 0',
    '  adminToken: ${env:T_ADMIN}',
    'database:',
    '  url: ${env:T_DB}',
    'secretKey: t-commands-secret-key-0123456789',
    'instances:',
    // No scheduled notifications/release (docplannerInstance): the command's own calls (token included) are asserted.
    ...docplannerInstance('dp', sim.url),
    ...docplannerInstance('dp-other', sim.url),
    // BookingBug / JRNI: one instance with the admin API (commands), one that only receives.
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
    '  - id: bb-listen',
    '    connector: bookingbug',
    '    mode: push',
    '    settings:',
    `      basicToken: ${BB_TOKEN}`,
    ...clockwiseInstance('cw', { hookKey: CW_HOOK_KEY, apiKey: CW_API_KEY, apiBaseUrl: cwSim.apiBaseUrl }),
    'subscriptions:',
    '  - id: crm',
    '    kind: webhook',
    `    url: ${subscriber.url}`,
    '    events: ["appointment.*", "command.*"]',
    '    sources: [dp]',
    '    secrets: ["${env:T_SIGNING}"]',
    '    allowPrivateAddresses: true',
    '    retry: { schedule: ["0s", "1s"] }',
    '  - id: crm-bb',
    '    kind: webhook',
    `    url: ${subscriber.url}`,
    '    events: ["appointment.*", "command.*"]',
    '    sources: [bb, bb-listen]',
    '    secrets: ["${env:T_SIGNING}"]',
    '    allowPrivateAddresses: true',
    '    retry: { schedule: ["0s", "1s"] }',
    '  - id: crm-cw',
    '    kind: webhook',
    `    url: ${subscriber.url}`,
    '    events: ["appointment.*", "command.*"]',
    '    sources: [cw]',
    '    secrets: ["${env:T_SIGNING}"]',
    '    allowPrivateAddresses: true',
    '    retry: { schedule: ["0s", "1s"] }',
    'telemetry:',
    '  traces:',
    `    endpoint: ${otlp.url}`,
    '',
  ].join('\n');
}

async function startHub(
  commands: Omit<CommandsOptions, 'worker'> = {},
  logger: pino.Logger = pino({ level: 'silent' }),
): Promise<HubProcess> {
  const loaded = parseConfig(configText(), {
    file: 'commands-e2e.yaml',
    connectors: shippedConnectors,
    env: ENV(),
  });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  return startHubProcess(loaded.config, {
    io,
    logger,
    pipeline: { pollIntervalMs: 200, retention: { cron: false } },
    commands: {
      retryScheduleMs: [100, 100, 100],
      retryJitter: 0,
      sweepIntervalMs: 200,
      // Longer than any vendor call a test holds open (a booking held up to 5 s): a lease running
      // out mid-call lets another try take the command over. A lease running out is tested in
      // reliability/command-crash.int.test.ts.
      leaseMs: 10_000,
      retentionCron: false,
      ...commands,
    },
  });
}

async function api(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  // biome-ignore lint/suspicious/noExplicitAny: answers are read field by field in the assertions.
): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${hub.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text), headers: res.headers };
}

async function eventually<T>(
  check: () => Promise<T | undefined | false>,
  what: string,
  ms = 15_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`${what}: not reached in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let nextBooking = 5_000_000;

/** Pushes a slot-booked for a fresh booking and returns the appointment's subject once delivered. */
/**
 * Holds the simulator's next write request until `release()`: `reached` resolves once the hub's
 * call is there (the command is in its vendor call, its transaction not yet finished).
 */
function holdNextVendorWrite(): { reached: Promise<void>; release: () => void } {
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let called!: () => void;
  const reached = new Promise<void>((resolve) => {
    called = resolve;
  });
  sim.writes.onRequest = () => {
    sim.writes.onRequest = undefined;
    called();
    return held;
  };
  return { reached, release };
}

/** A command once it has finished (succeeded or failed), read through the API. */
function finished(id: string, what = `command ${id} finished`, timeoutMs?: number) {
  return eventually(
    async () => {
      const c = (await api('GET', `/v1/commands/${id}`)).json;
      return c.status === 'succeeded' || c.status === 'failed' ? c : undefined;
    },
    what,
    timeoutMs,
  );
}

/** `start`: another start than the default's (a confirm needs a visit to come: Docplanner refuses a past one). */
async function bookedAppointment(start?: string): Promise<{ subject: string; bookingId: string }> {
  const bookingId = String(nextBooking++);
  const booking = {
    id: bookingId,
    status: 'booked',
    start_at: start ?? '2026-03-10T11:30:00+01:00',
    end_at: start ? dpTime(Date.parse(start) + 30 * 60_000) : '2026-03-10T12:00:00+01:00',
    duration: 30,
    booked_by: 'user',
    canceled_by: '',
    booked_at: '2026-03-08T18:04:11+01:00',
    address_service: { id: '4455661', name: 'Konsultacja' },
    patient: { name: 'Anna', surname: 'Kowalska', phone: '+48500100200' },
  };
  await sim.push(
    {
      name: 'slot-booked',
      data: {
        facility: { id: PLACE.facility },
        doctor: { id: PLACE.doctor },
        address: { id: PLACE.address },
        visit_booking: booking,
      },
      created_at: '2026-03-08T18:04:11+01:00',
    },
    { hookUrl: `${hub.url}/hooks/dp` },
  );
  const delivered = await subscriber.waitFor(
    (r) => r.type === 'appointment.created' && r.text.includes(`"value":"${bookingId}"`),
  );
  return { subject: delivered.subject!, bookingId };
}

/** A Docplanner notification about a booking at {@link PLACE}, as Docplanner pushes it. */
function bookingNotification(
  name: string,
  booking: JsonObject,
  createdAt: string,
  extra: JsonObject = {},
): JsonObject {
  return {
    name,
    data: {
      facility: { id: PLACE.facility },
      doctor: { id: PLACE.doctor },
      address: { id: PLACE.address },
      visit_booking: booking,
      ...extra,
    },
    created_at: createdAt,
  };
}

/** Docplanner's time format: seconds and an offset. */
const dpTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+00:00');

beforeAll(async () => {
  subscriber = await startRecordingSubscriber({ secrets: SIGNING });
  otlp = await startOtlpReceiver();
  sim = new DocplannerSimulator({ apiKey: PUSH_KEY, timeScale: 0.0001 });
  await sim.start();
  bbSim = new BookingBugSimulator({ auth: { kind: 'basic-token', token: BB_TOKEN } });
  await bbSim.start();
  cwSim = new ClockwiseSimulator({ key: CW_HOOK_KEY, keyPlacement: 'header', apiKey: CW_API_KEY });
  await cwSim.start();
  hub = await startHub();
  sim.writes.hookUrl = `${hub.url}/hooks/dp`;
}, 60_000);

afterAll(async () => {
  await hub?.stop();
  await sim?.close();
  await bbSim?.close();
  await cwSim?.close();
  await subscriber?.close();
  await otlp?.close();
});

describe('commands through a started hub', () => {
  it('cancel: vendor call, command.succeeded signed, then the echo carries causedBy; the same key again is one call', async () => {
    const { subject, bookingId } = await bookedAppointment();
    const sent = await api(
      'POST',
      '/v1/commands',
      {
        type: 'appointment.cancel',
        subject,
        data: { reason: 'patient called', actor: { kind: 'practitioner' } },
      },
      { 'idempotency-key': 'crm-7781-cancel' },
    );
    expect(sent.status).toBe(202);
    expect(sent.json).toMatchObject({
      type: 'appointment.cancel',
      status: 'pending',
      subject,
      sentBy: 'admin',
    });
    const id = sent.json.id as string;

    const outcome = await subscriber.waitFor(
      (r) => r.type === 'command.succeeded' && r.subject === `command/${id}`,
    );
    expect(outcome.signature.valid).toBe(true);
    expect((outcome.json as { data: unknown }).data).toMatchObject({
      commandId: id,
      commandType: 'appointment.cancel',
      target: subject,
      instance: 'dp',
      attempts: 1,
      sentBy: 'admin',
      idempotencyKey: 'crm-7781-cancel',
    });
    const deletes = () =>
      sim.writes.log.filter((w) => w.method === 'DELETE' && w.path.endsWith(`/bookings/${bookingId}`));
    expect(deletes()).toHaveLength(1);
    expect(deletes()[0]!.body).toEqual({ reason: 'patient called' });

    // The simulator pushes Docplanner's booking-canceled (canceled_by: integration): the echo.
    const echo = await subscriber.waitFor((r) => r.type === 'appointment.cancelled' && r.subject === subject);
    expect(echo.signature.valid).toBe(true);
    expect((echo.json as { data: { causedBy?: unknown } }).data.causedBy).toEqual({ commandId: id });

    const detail = await api('GET', `/v1/commands/${id}`);
    expect(detail.json).toMatchObject({ status: 'succeeded', attempts: 1, result: { vendorIds: [] } });
    // Every vendor call, the OAuth2 token request included.
    expect(
      detail.json.calls.map(
        (c: { method: string; url: string; statusCode: number }) =>
          `${c.method} ${new URL(c.url).pathname.split('/').slice(-2).join('/')} ${c.statusCode}`,
      ),
    ).toEqual(['POST v2/token 200', `DELETE bookings/${bookingId} 204`]);

    // The same key and body: the first command, no second vendor call. Another body: 409.
    const again = await api(
      'POST',
      '/v1/commands',
      {
        type: 'appointment.cancel',
        subject,
        data: { reason: 'patient called', actor: { kind: 'practitioner' } },
      },
      { 'idempotency-key': 'crm-7781-cancel' },
    );
    expect(again.status).toBe(200);
    expect(again.json.id).toBe(id);
    const conflict = await api(
      'POST',
      '/v1/commands',
      { type: 'appointment.cancel', subject, data: { reason: 'other' } },
      { 'idempotency-key': 'crm-7781-cancel' },
    );
    expect(conflict.status).toBe(409);
    expect(conflict.json).toMatchObject({
      code: 'SY_COMMAND_IDEMPOTENCY_CONFLICT',
      details: { commandId: id },
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(deletes()).toHaveLength(1);

    // Now cancelled: a further command is refused at once.
    const late = await api('POST', '/v1/commands', { type: 'appointment.mark_arrived', subject, data: {} });
    expect(late.status).toBe(409);
    expect(late.json.code).toBe('SY_COMMAND_TARGET_STATE');
  });

  it('mark_no_show: Docplanner DELETE presence (its markPatientAbsence), echoed as presence-marked ABSENT with causedBy', async () => {
    // integrations.docplanner.com/guide/api-objects/patient-presence.html: "POST: Marks the patient
    // as present for the visit. DELETE: Marks the patient as non-present (no-show)."
    const { subject, bookingId } = await bookedAppointment();
    const sent = await api('POST', '/v1/commands', { type: 'appointment.mark_no_show', subject, data: {} });
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;
    await subscriber.waitFor((r) => r.type === 'command.succeeded' && r.subject === `command/${id}`);
    expect(
      sim.writes.log
        .filter((w) => w.path.includes(`/bookings/${bookingId}/`))
        .map((w) => `${w.method} ${w.path.split('/').slice(-3).join('/')} ${w.status}`),
    ).toEqual([`DELETE ${bookingId}/presence/patient 204`]);
    expect(sim.writes.presence.get(bookingId)).toBe('ABSENT');
    const echo = await subscriber.waitFor((r) => r.type === 'appointment.no_show' && r.subject === subject);
    expect(causedBy(echo)).toEqual({ commandId: id });
    expect((echo.json as { data: { status?: unknown } }).data.status).toBe('noshow');
  });

  it('refuses at once, nothing queued: unknown type, schema, unknown subject, unsupported, no vendor id', async () => {
    const { subject } = await bookedAppointment();
    const before = (await api('GET', '/v1/commands?limit=500')).json.items.length;
    // Paged like every admin list (docs/api.md): 1..1000, capped at 500 (it was 400 past 500).
    const large = await api('GET', '/v1/commands?limit=1000');
    expect(large.status).toBe(200);
    expect(large.json.items.length).toBe(before);
    expect((await api('GET', '/v1/commands?limit=1001')).status).toBe(400);
    const cases: [unknown, number, string][] = [
      [{ type: 'appointment.teleport', subject, data: {} }, 422, 'SY_COMMAND_UNKNOWN_TYPE'],
      [{ type: 'appointment.reschedule', subject, data: { start: 'tomorrow' } }, 422, 'SY_COMMAND_INVALID'],
      [{ type: 'appointment.cancel', instance: 'dp', data: {} }, 422, 'SY_COMMAND_INVALID'],
      [
        { type: 'appointment.cancel', subject: 'appointment/nope', data: {} },
        422,
        'SY_COMMAND_UNKNOWN_TARGET',
      ],
      // Docplanner's presence calls mark present or absent; none clears a mark.
      [{ type: 'appointment.clear_presence', subject, data: {} }, 422, 'SY_COMMAND_UNSUPPORTED'],
      // Docplanner's bookSlot requires a duration and the patient's phone.
      [
        {
          type: 'appointment.book',
          instance: 'dp',
          data: {
            start: '2026-03-10T11:30:00+01:00',
            patient: { name: 'Jan' },
            practitioner: { id: PLACE.doctor },
            location: { id: PLACE.address },
            organization: { id: PLACE.facility },
            service: { id: '4455661' },
          },
        },
        422,
        'SY_COMMAND_UNSUPPORTED',
      ],

      [{ type: 'appointment.update', subject, data: { comment: 'x' } }, 422, 'SY_COMMAND_UNSUPPORTED'],
      [
        {
          type: 'appointment.book',
          instance: 'nowhere',
          data: { start: '2026-03-10T11:30:00+01:00', patient: {} },
        },
        422,
        'SY_COMMAND_UNKNOWN_TARGET',
      ],
      // A booking that does not name the slot's doctor (Docplanner) or hospital (Clockwise.MD):
      // accepted (202) before, then failed without a call.
      [
        {
          type: 'appointment.book',
          instance: 'dp',
          data: {
            start: '2026-03-10T11:30:00+01:00',
            patient: { name: 'Jan' },
            organization: { id: PLACE.facility },
            location: { id: PLACE.address },
            service: { id: '4455661' },
          },
        },
        422,
        'SY_COMMAND_UNSUPPORTED',
      ],
      [
        {
          type: 'appointment.book',
          instance: 'cw',
          data: { start: '2026-03-10T11:30:00-05:00', patient: { given: 'Maria' }, service: { id: '2' } },
        },
        422,
        'SY_COMMAND_UNSUPPORTED',
      ],
    ];
    for (const [body, status, code] of cases) {
      const r = await api('POST', '/v1/commands', body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(r.json.code, JSON.stringify(body)).toBe(code);
      if ((body as { type: string }).type === 'appointment.book' && code === 'SY_COMMAND_UNSUPPORTED') {
        const book = body as { instance: string; data: { practitioner?: unknown } };
        // The reason names what the vendor lacks: every field Docplanner's bookSlot requires.
        expect(r.json.details.reason).toBe(
          book.instance === 'cw'
            ? 'Clockwise.MD needs location.id (the hospital id) to book'
            : book.data.practitioner === undefined
              ? 'Docplanner books a slot only with practitioner.id (doctor), durationMinutes (duration), patient.phone (phone)'
              : 'Docplanner books a slot only with durationMinutes (duration), patient.phone (phone)',
        );
      }
    }
    // Data that is not an object is the type's schema's to refuse, as documented: it was the
    // route's generic 400 SY_HTTP_VALIDATION.
    for (const data of [null, 'x', [], 5]) {
      const r = await api('POST', '/v1/commands', { type: 'appointment.cancel', subject, data });
      expect(r.status, JSON.stringify(data)).toBe(422);
      expect(r.json).toMatchObject({
        code: 'SY_COMMAND_INVALID',
        errors: [{ in: 'body', pointer: '/data', message: 'must be object' }],
        details: { errors: [{ path: '/data', message: 'must be object' }] },
      });
    }
    // Data deeper than the request hash's recursion could walk (valid JSON, sent as text: the
    // test's own JSON.stringify could not write it either): it answered 500.
    const deep = await fetch(`${hub.url}/v1/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: `{"type":"appointment.cancel","subject":${JSON.stringify(subject)},"data":{"reason":${'['.repeat(50_000)}${']'.repeat(50_000)}}}`,
    });
    expect(deep.status).toBe(422);
    expect(((await deep.json()) as { code: string }).code).toBe('SY_COMMAND_INVALID');
    const invalid = await api('POST', '/v1/commands', {
      type: 'appointment.reschedule',
      subject,
      data: { start: 'x' },
    });
    expect(invalid.json.details.errors).toEqual([
      { path: '/data/start', message: 'must match format "date-time"' },
    ]);
    // In the shape of every validation problem too (SY_HTTP_VALIDATION's): one parser for clients.
    expect(invalid.json.errors).toEqual([
      { in: 'body', pointer: '/data/start', message: 'must match format "date-time"' },
    ]);
    expect((await api('GET', '/v1/commands?limit=500')).json.items.length).toBe(before);
  });

  it('keeps order on one subject under a transient failure: the cancel waits for the retried reschedule', async () => {
    const { subject, bookingId } = await bookedAppointment();
    sim.writes.log.length = 0;
    sim.failNext(1, 503, undefined, new RegExp(`/bookings/${bookingId}/move$`));
    const move = await api('POST', '/v1/commands', {
      type: 'appointment.reschedule',
      subject,
      data: { start: '2026-03-11T09:00:00+01:00' },
    });
    const cancel = await api('POST', '/v1/commands', { type: 'appointment.cancel', subject, data: {} });
    expect([move.status, cancel.status]).toEqual([202, 202]);
    const done = await finished(cancel.json.id, 'the cancel finished');
    const moved = (await api('GET', `/v1/commands/${move.json.id}`)).json;
    expect(moved).toMatchObject({ status: 'succeeded', attempts: 2 });
    // A bare 503 does not prove the move was not made (a proxy may answer so after it reached
    // Docplanner): the retry re-reads the booking (200) before it moves.
    // (A token fetched first when the test runs alone is left out.)
    const booking = moved.calls.filter((c: { url: string }) => !c.url.includes('/oauth/'));
    expect(booking.map((c: { statusCode: number }) => c.statusCode)).toEqual([503, 200, 201]);
    expect(done.status).toBe('succeeded');
    // The vendor saw the move (after its failed try) before the cancel, and the cancel went to the
    // moved booking's new id: the same appointment, aliased.
    const newId = moved.result.vendorIds[0] as string;
    expect(
      sim.writes.log.map((w) => `${w.method} ${w.path.split('/').slice(8).join('/')} ${w.status}`),
    ).toEqual([`POST ${bookingId}/move 201`, `DELETE ${newId} 204`]);
    const echo = await subscriber.waitFor(
      (r) => r.type === 'appointment.rescheduled' && r.subject === subject,
    );
    expect((echo.json as { data: { causedBy?: unknown } }).data.causedBy).toEqual({
      commandId: move.json.id,
    });
  });

  it('a slow vendor call holds back no command on another subject: B is called and succeeds while A is held', async () => {
    const a = await bookedAppointment();
    const b = await bookedAppointment();
    sim.writes.log.length = 0;
    const arrived: string[] = [];
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    // A's vendor call stays open until the test releases it; every other call is answered at once.
    sim.writes.onRequest = (_method, path) => {
      const booking = /\/bookings\/([^/]+)\//.exec(path)?.[1];
      arrived.push(booking === a.bookingId ? 'A' : booking === b.bookingId ? 'B' : path);
      return booking === a.bookingId ? held : undefined;
    };
    try {
      const sentA = await api('POST', '/v1/commands', {
        type: 'appointment.mark_arrived',
        subject: a.subject,
        data: {},
      });
      expect(sentA.status).toBe(202);
      await eventually(async () => arrived.includes('A'), "A's vendor call arrived");
      const sentB = await api('POST', '/v1/commands', {
        type: 'appointment.mark_arrived',
        subject: b.subject,
        data: {},
      });
      expect(sentB.status).toBe(202);
      // Before the fix the worker waited for its whole batch (A) before fetching B's job.
      const doneB = await finished(sentB.json.id, 'B finished while A is held');
      expect(doneB.status).toBe('succeeded');
      // A is still at its first vendor call: none of its calls has ended (before the fix B ran only
      // after A's call had timed out and been recorded as a transient failure).
      expect((await api('GET', `/v1/commands/${sentA.json.id}`)).json).toMatchObject({
        status: 'running',
        calls: [{ statusCode: null, latencyMs: null, error: 'in flight: no answer yet' }],
      });
      expect(arrived[0]).toBe('A');
      expect(arrived).toContain('B');
      // Only B has been answered so far.
      expect(sim.writes.log.map((w) => w.path.split('/')[8])).toEqual([b.bookingId]);
      release();
      const doneA = await finished(sentA.json.id, 'A finished after its release');
      expect(doneA.status).toBe('succeeded');
    } finally {
      release();
      sim.writes.onRequest = undefined;
    }
  });

  it('a booking held at the vendor holds back no notification about other appointments of its instance; its own echo, overtaking the answer, is still marked', async () => {
    const start = '2026-04-03T09:00:00+02:00';
    const bookPath = `/slots/${encodeURIComponent(start)}/book`;
    let bookArrived = false;
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let releasedBy: 'deliveries' | 'fallback' | undefined;
    // The booking's call stays open until the other notifications are delivered, or for 5 s at
    // most. Before the fix each of them waited for the running booking (3 s at most, one after
    // another: a facility's notifications are normalized in order), so the third could only be
    // delivered after this fallback had let the booking go.
    const fallback = setTimeout(() => {
      releasedBy ??= 'fallback';
      release();
    }, 5000);
    sim.writes.onRequest = (_method, path) => {
      if (!path.endsWith(bookPath)) return undefined;
      bookArrived = true;
      return held;
    };
    // Once carried out, Docplanner's slot-booked reaches the hub a second before the answer does.
    sim.writes.echoDelayMs = 0;
    sim.writes.answerDelayMs = 1000;
    try {
      const sent = await api('POST', '/v1/commands', {
        type: 'appointment.book',
        instance: 'dp',
        data: dpBook(start, { name: 'Iga', phone: '+48500100204' }),
      });
      expect(sent.status).toBe(202);
      await eventually(async () => bookArrived, "the booking's call arrived");

      // Patients booking other slots of the same doctor meanwhile (the front desk, the portal).
      const others = [0, 1, 2].map((i) => ({
        id: String(nextBooking++),
        status: 'booked',
        start_at: `2026-04-03T1${i}:00:00+02:00`,
        end_at: `2026-04-03T1${i}:30:00+02:00`,
        duration: 30,
        booked_by: 'user',
        canceled_by: '',
        booked_at: '2026-04-01T08:00:00+02:00',
        address_service: { id: '4455661', name: 'Konsultacja' },
        patient: { name: `Patient ${i}`, phone: `+4850010030${i}` },
      }));
      for (const booking of others) {
        await sim.push(bookingNotification('slot-booked', booking, '2026-04-01T08:00:00+02:00'), {
          hookUrl: `${hub.url}/hooks/dp`,
        });
      }
      const delivered = await Promise.all(
        others.map((b) =>
          subscriber.waitFor((r) => r.type === 'appointment.created' && r.text.includes(`"value":"${b.id}"`)),
        ),
      );
      releasedBy ??= 'deliveries';
      expect(releasedBy).toBe('deliveries');
      // Still held at the vendor: none of its calls has ended.
      expect((await api('GET', `/v1/commands/${sent.json.id}`)).json).toMatchObject({
        status: 'running',
        calls: [{ statusCode: null, latencyMs: null, error: 'in flight: no answer yet' }],
      });
      for (const d of delivered) expect(causedBy(d)).toBeUndefined();

      release();
      const succeeded = await subscriber.waitFor(
        (r) => r.type === 'command.succeeded' && r.subject === `command/${sent.json.id}`,
      );
      const appointmentId = (succeeded.json as { data: { result: { appointmentId: string } } }).data.result
        .appointmentId;
      const echo = await subscriber.waitFor(
        (r) => r.type === 'appointment.created' && r.subject === `appointment/${appointmentId}`,
      );
      expect(causedBy(echo)).toEqual({ commandId: sent.json.id });
    } finally {
      clearTimeout(fallback);
      release();
      sim.writes.onRequest = undefined;
      sim.writes.echoDelayMs = 100;
      sim.writes.answerDelayMs = 0;
    }
  });

  it('a permanent vendor refusal becomes command.failed with the vendor answer; retry runs it again', async () => {
    sim.writes.takeSlot(PLACE.doctor, PLACE.address, '2026-04-01T10:00:00+02:00');
    const data = {
      start: '2026-04-01T10:00:00+02:00',
      durationMinutes: 30,
      patient: { name: 'Jan', phone: '+48500100201', email: 'jan@example.com' },
      practitioner: { id: PLACE.doctor },
      location: { id: PLACE.address },
      organization: { id: PLACE.facility },
      service: { id: '4455661' },
    };
    const sent = await api('POST', '/v1/commands', { type: 'appointment.book', instance: 'dp', data });
    expect(sent.status).toBe(202);
    const failed = await subscriber.waitFor(
      (r) => r.type === 'command.failed' && r.subject === `command/${sent.json.id}`,
    );
    expect((failed.json as { data: unknown }).data).toMatchObject({
      error: {
        kind: 'permanent',
        vendor: {
          status: 404,
          body: {
            message: 'Unable to perform booking. Requested target slot (2026-04-01T10:00:00+02:00) not found',
          },
        },
      },
    });
    // Another slot: a booking gives a new appointment whose hub id the outcome names. The echo is
    // pushed the moment the vendor answers, so it can arrive before the hub has recorded the answer:
    // it must still be marked.
    sim.writes.echoDelayMs = 0;
    const ok = await api('POST', '/v1/commands', {
      type: 'appointment.book',
      instance: 'dp',
      data: { ...data, start: '2026-04-01T11:00:00+02:00' },
    });
    const succeeded = await subscriber.waitFor(
      (r) => r.type === 'command.succeeded' && r.subject === `command/${ok.json.id}`,
    );
    const appointmentId = (succeeded.json as { data: { result: { appointmentId: string } } }).data.result
      .appointmentId;
    expect(appointmentId).toBeTruthy();
    const created = await subscriber.waitFor(
      (r) => r.type === 'appointment.created' && r.subject === `appointment/${appointmentId}`,
    );
    expect((created.json as { data: { causedBy?: unknown } }).data.causedBy).toEqual({
      commandId: ok.json.id,
    });
    sim.writes.echoDelayMs = 100;
    const retried = await api('POST', `/v1/commands/${sent.json.id}/retry`);
    expect(retried.status).toBe(202);
    expect((await api('POST', `/v1/commands/${ok.json.id}/retry`)).status).toBe(409);
  });

  it('a subscription credential acts only on its instances and sees only its commands', async () => {
    const cred = await api('POST', '/v1/subscriptions/crm/command-credentials');
    expect(cred.status).toBe(201);
    const token = cred.json.token as string;
    const as = { authorization: `Bearer ${token}` };
    const { subject } = await bookedAppointment();
    const mine = await api(
      'POST',
      '/v1/commands',
      { type: 'appointment.mark_arrived', subject, data: {} },
      as,
    );
    expect(mine.status).toBe(202);
    expect(mine.json.sentBy).toBe('subscription:crm');
    // crm covers dp only: dp-other is refused like an unknown target.
    const foreign = await api(
      'POST',
      '/v1/commands',
      {
        type: 'appointment.book',
        instance: 'dp-other',
        data: { start: '2026-03-10T11:30:00+01:00', patient: { name: 'x' } },
      },
      as,
    );
    expect(foreign.status).toBe(422);
    expect(foreign.json.code).toBe('SY_COMMAND_UNKNOWN_TARGET');
    const listed = await api('GET', '/v1/commands', undefined, as);
    expect(listed.json.items.map((c: { sentBy: string }) => c.sentBy)).toEqual(['subscription:crm']);
    expect(
      (await api('GET', '/v1/commands', undefined, { authorization: 'Bearer sycmd_wrong' })).status,
    ).toBe(401);
    expect((await api('POST', '/v1/subscriptions/crm/command-credentials', undefined, as)).status).toBe(401);
  });

  it('refuses every command route without a credential, or with a token that is neither, and queues nothing', async () => {
    const { subject } = await bookedAppointment();
    const ofSubject = `/v1/commands?subject=${encodeURIComponent(subject)}`;
    const sent = await api('POST', '/v1/commands', { type: 'appointment.mark_arrived', subject, data: {} });
    expect(sent.status).toBe(202);
    for (const authorization of ['', 'Bearer not-the-admin-token', `Basic ${ADMIN}`]) {
      const as = { authorization };
      const post = await api('POST', '/v1/commands', { type: 'appointment.cancel', subject, data: {} }, as);
      expect(post.status).toBe(401);
      expect(post.headers.get('content-type')).toContain('application/problem+json');
      expect((await api('GET', '/v1/commands', undefined, as)).status).toBe(401);
      expect((await api('GET', `/v1/commands/${sent.json.id}`, undefined, as)).status).toBe(401);
      expect((await api('POST', `/v1/commands/${sent.json.id}/retry`, undefined, as)).status).toBe(401);
      expect((await api('POST', '/v1/subscriptions/crm/command-credentials', undefined, as)).status).toBe(
        401,
      );
    }
    expect((await api('GET', ofSubject)).json.items.map((c: { id: string }) => c.id)).toEqual([sent.json.id]);
  });

  it('the OpenAPI document describes the command routes, their credential and the Idempotency-Key', async () => {
    const doc = (await api('GET', '/v1/openapi.json')).json;
    const post = doc.paths['/v1/commands'].post;
    expect(post.parameters).toContainEqual(
      expect.objectContaining({ name: 'idempotency-key', in: 'header', required: false }),
    );
    expect(post.security).toEqual([{ adminToken: [] }, { commandCredential: [] }]);
    expect(Object.keys(post.responses)).toEqual(expect.arrayContaining(['200', '202', '401', '409', '422']));
    expect(post.responses['422'].description).toMatch(/SY_COMMAND_INVALID/);
    expect(post.responses['200'].headers['Idempotent-Replayed']).toMatchObject({
      schema: { enum: ['true'] },
    });
    expect(doc.paths['/v1/commands/{id}'].get.responses['200']).toBeDefined();
    expect(doc.paths['/v1/subscriptions/{id}/command-credentials'].post.security).toEqual([
      { adminToken: [] },
    ]);
    expect(doc.components.securitySchemes.commandCredential).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    });
  });

  it('purges finished commands past their retention, keeping unfinished ones', async () => {
    const before = (await api('GET', '/v1/commands?limit=500')).json.items as {
      id: string;
      status: string;
    }[];
    const finished = new Set(
      before.filter((c) => c.status === 'succeeded' || c.status === 'failed').map((c) => c.id),
    );
    const unfinished = before.filter((c) => !finished.has(c.id)).map((c) => c.id);
    expect(finished.size).toBeGreaterThan(0);
    expect(await hub.commands.purge(new Date())).toBe(0);
    // Commands of earlier tests may still finish meanwhile (a retry, a held call): those may be purged
    // too, so the count is at least the finished ones seen before.
    expect(await hub.commands.purge(new Date(Date.now() + 31 * 24 * 3_600_000))).toBeGreaterThanOrEqual(
      finished.size,
    );
    const after = (await api('GET', '/v1/commands?limit=500')).json.items as { id: string; status: string }[];
    const left = new Set(after.map((c) => c.id));
    expect([...finished].filter((id) => left.has(id))).toEqual([]);
    // What is left is only what was unfinished before the purge.
    expect(after.filter((c) => !unfinished.includes(c.id))).toEqual([]);
  });

  it('switchyard commands list|show|send work on the same database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-commands-cli-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'switchyard.yaml');
    writeFileSync(file, configText());
    const out: string[] = [];
    const cliIo: CliIO = {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: () => true },
      env: ENV(),
      cwd: dir,
    };
    const { subject } = await bookedAppointment();
    out.length = 0;
    expect(
      await commandsCommand.run(
        {
          values: { config: file, type: 'appointment.mark_arrived', subject, 'idempotency-key': 'cli-1' },
          positionals: ['send'],
        },
        cliIo,
      ),
    ).toBe(0);
    const id = /queued {2}\S+ {2}([0-9a-f-]{36})/.exec(out.join(''))?.[1];
    expect(id).toBeDefined();
    await eventually(
      async () => (await api('GET', `/v1/commands/${id}`)).json.status === 'succeeded',
      'done',
    );
    out.length = 0;
    expect(await commandsCommand.run({ values: { config: file }, positionals: ['show', id!] }, cliIo)).toBe(
      0,
    );
    expect(out.join('')).toMatch(/appointment\.mark_arrived {2}succeeded \(1 attempt\)/);
    expect(out.join('')).toMatch(/attempt 1 {2}POST \S+\/presence\/patient {2}204/);
    out.length = 0;
    expect(
      await commandsCommand.run({ values: { config: file, limit: '1' }, positionals: ['list'] }, cliIo),
    ).toBe(0);
    expect(out.join('')).toContain(id!);
    await expect(
      commandsCommand.run(
        { values: { config: file, type: 'appointment.teleport', subject }, positionals: ['send'] },
        cliIo,
      ),
    ).rejects.toMatchObject({ code: 'SY_COMMAND_UNKNOWN_TYPE' });
  }, 60_000);
  it('traced: the API request, the command run continuing its trace, and the vendor calls under the run', async () => {
    const { subject } = await bookedAppointment();
    // The caller sends a tracestate with its traceparent: the job carries both to the run.
    const sent = await api(
      'POST',
      '/v1/commands',
      { type: 'appointment.cancel', subject, data: { reason: 'traced', actor: { kind: 'practitioner' } } },
      { traceparent: `00-${'4'.repeat(32)}-${'5'.repeat(16)}-01`, tracestate: 'vendor=abc' },
    );
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;
    await subscriber.waitFor((r) => r.type === 'command.succeeded' && r.subject === `command/${id}`);
    const spans = await otlp.waitFor(
      (all) =>
        all.some((s) => s.name === 'switchyard.command' && s.attributes['messaging.message.id'] === id),
      20_000,
    );
    const run = spans.find(
      (s) => s.name === 'switchyard.command' && s.attributes['messaging.message.id'] === id,
    )!;
    expect(run.attributes).toMatchObject({
      'switchyard.command.type': 'appointment.cancel',
      'switchyard.instance': 'dp',
      'switchyard.command.outcome': 'done',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
    });
    // Its parent is the API request's SERVER span (the job carried the request's traceparent).
    const request = spans.find((s) => s.spanId === run.parentSpanId);
    expect(request?.name).toBe('POST /v1/commands');
    expect(request?.traceId).toBe(run.traceId);
    // The vendor calls (token, cancel) are CLIENT spans under the run.
    const calls = await otlp.waitFor(
      (all) => all.filter((s) => s.parentSpanId === run.spanId && s.kind === 3).length > 0,
      20_000,
    );
    const vendor = calls.filter((s) => s.parentSpanId === run.spanId && s.kind === 3);
    expect(vendor.every((s) => String(s.attributes['url.full']).startsWith(sim.url))).toBe(true);
    // The caller's tracestate went through the job with the traceparent: the run and its vendor
    // calls carry it (and so send it to the vendor).
    expect(run.traceState).toBe('vendor=abc');
    expect(vendor.map((s) => s.traceState)).toEqual(vendor.map(() => 'vendor=abc'));
  });
});

describe('BookingBug / JRNI commands through a started hub', () => {
  /** Pushes JRNI's data webhook sample as booking `id` to the instance bb: its subject, once delivered. */
  async function jrniBooking(id: number): Promise<string> {
    const webhook = fixture('bookingbug', 'jrni-data-create.json');
    (webhook.appointment as { bookingId: number }).bookingId = id;
    await bbSim.push(webhook, { bookingUrl: `${hub.url}/hooks/bb` });
    const created = await subscriber.waitFor(
      (r) =>
        r.type === 'appointment.created' &&
        (r.json as { source?: string } | undefined)?.source === 'bb' &&
        r.text.includes(`"${id}"`),
    );
    return created.subject!;
  }

  it('cancel: admin login and cancel at the vendor, command.succeeded signed, the JRNI echo carries causedBy', async () => {
    const hook = `${hub.url}/hooks/bb`;
    bbSim.writes.hookUrl = hook;
    await bbSim.push(fixture('bookingbug', 'jrni-data-create.json'), { bookingUrl: hook });
    const created = await subscriber.waitFor(
      (r) =>
        r.type === 'appointment.created' &&
        r.json !== undefined &&
        (r.json as { source?: string }).source === 'bb',
    );
    const subject = created.subject!;
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.cancel',
      subject,
      data: { reason: 'patient called' },
    });
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;
    const outcome = await subscriber.waitFor(
      (r) => r.type === 'command.succeeded' && r.subject === `command/${id}`,
    );
    expect(outcome.signature.valid).toBe(true);
    expect((outcome.json as { data: unknown }).data).toMatchObject({
      commandId: id,
      commandType: 'appointment.cancel',
      target: subject,
      instance: 'bb',
    });
    // The booking's company (37011) comes from what JRNI said about it.
    expect(bbSim.writes.log.map((c) => `${c.method} ${c.path} ${c.status}`)).toEqual([
      'POST /api/v1/login 201',
      'POST /api/v1/admin/37011/bookings/1294/cancel 200',
    ]);
    expect(bbSim.writes.log[1]!.body).toEqual({ notify: true, cancel_reason: 'patient called' });

    // The simulator pushes JRNI's cancelled webhook: normalized as the command's echo.
    const echo = await subscriber.waitFor((r) => r.type === 'appointment.cancelled' && r.subject === subject);
    expect(echo.signature.valid).toBe(true);
    expect((echo.json as { data: { causedBy?: unknown } }).data.causedBy).toEqual({ commandId: id });

    const detail = await api('GET', `/v1/commands/${id}`);
    expect(detail.json).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(
      detail.json.calls.map((c: { method: string; statusCode: number }) => `${c.method} ${c.statusCode}`),
    ).toEqual(['POST 201', 'POST 200']);
    // The Auth-Token the login answered is a credential: not in the recorded answer snippets.
    const token = bbSim.writes.log[1]!.authToken!;
    expect(JSON.stringify(detail.json)).not.toContain(token);
    expect(detail.json.calls[0].responseSnippet).toContain('"auth_token":"[redacted]"');
    // Nor in the instance's stored state: the hub keeps it in memory only.
    const stored = await sql<{ key: string; value: unknown }>`
      select key, value from switchyard.entity_state where instance_id = 'bb'`.execute(hub.hub.host.db);
    expect(stored.rows.length).toBeGreaterThan(0);
    expect(JSON.stringify(stored.rows)).not.toContain(token);
  });

  it('reschedule: PUT { datetime } at the vendor, command.succeeded, the legacy echo is appointment.rescheduled with causedBy; what the API cannot do is refused at once', async () => {
    const hook = `${hub.url}/hooks/bb`;
    bbSim.writes.hookUrl = hook;
    // The vendor's sample purchase: booking 13477736 of company 50666, at 2017-03-10T11:30:00+00:00.
    await bbSim.push(fixture('bookingbug', 'created.json'), { bookingUrl: hook });
    const created = await subscriber.waitFor(
      (r) =>
        r.type === 'appointment.created' &&
        (r.json as { source?: string } | undefined)?.source === 'bb' &&
        r.text.includes('13477736'),
    );
    const subject = created.subject!;
    const before = (await api('GET', '/v1/commands?limit=500')).json.items.length;
    const seen = bbSim.writes.log.length;
    // No documented call: refused at once, nothing queued, nothing sent.
    for (const body of [
      { type: 'appointment.clear_presence', subject, data: {} },
      { type: 'appointment.update', subject, data: { customFields: { '104': 'x' } } },
      {
        type: 'appointment.reschedule',
        subject,
        data: { start: '2017-03-11T10:00:00+01:00', durationMinutes: 45 },
      },
    ]) {
      const refused = await api('POST', '/v1/commands', body);
      expect(refused.status, body.type).toBe(422);
      expect(refused.json).toMatchObject({
        code: 'SY_COMMAND_UNSUPPORTED',
        details: { connector: 'bookingbug' },
      });
    }
    expect((await api('GET', '/v1/commands?limit=500')).json.items.length).toBe(before);
    expect(bbSim.writes.log.length).toBe(seen);

    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.reschedule',
      subject,
      data: { start: '2017-03-11T10:00:00+01:00' },
    });
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;
    const outcome = await subscriber.waitFor(
      (r) => r.type === 'command.succeeded' && r.subject === `command/${id}`,
    );
    expect((outcome.json as { data: unknown }).data).toMatchObject({
      commandType: 'appointment.reschedule',
      target: subject,
    });
    const calls = bbSim.writes.log.slice(seen);
    expect(calls.map((c) => `${c.method} ${c.path} ${c.status}`).filter((c) => !c.includes('login'))).toEqual(
      ['PUT /api/v1/admin/50666/bookings/13477736 200'],
    );
    expect(calls.at(-1)!.body).toEqual({ datetime: '2017-03-11T10:00:00+01:00' });

    // The simulator pushes the purchase with the booking's new time: the command's echo.
    const echo = await subscriber.waitFor(
      (r) => r.type === 'appointment.rescheduled' && r.subject === subject,
    );
    const data = (echo.json as { data: { causedBy?: unknown; start?: string } }).data;
    expect(data.causedBy).toEqual({ commandId: id });
    expect(Date.parse(data.start!)).toBe(Date.parse('2017-03-11T09:00:00Z'));
  });

  it('reschedule of a booking JRNI told by data webhook: its modify webhook with the new times is the echo, with causedBy', async () => {
    bbSim.writes.hookUrl = `${hub.url}/hooks/bb`;
    // JRNI's data webhook sample under another booking id (1294 is cancelled above).
    const subject = await jrniBooking(1295);
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.reschedule',
      subject,
      data: { start: '2023-02-18T10:00:00-05:00' },
    });
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;
    await subscriber.waitFor((r) => r.type === 'command.succeeded' && r.subject === `command/${id}`);
    expect(bbSim.writes.log.at(-1)).toMatchObject({
      method: 'PUT',
      path: '/api/v1/admin/37011/bookings/1295',
      status: 200,
      body: { datetime: '2023-02-18T10:00:00-05:00' },
    });
    const echo = await subscriber.waitFor(
      (r) => r.type === 'appointment.rescheduled' && r.subject === subject,
    );
    const data = (echo.json as { data: { causedBy?: unknown; start?: string } }).data;
    expect(data.causedBy).toEqual({ commandId: id });
    expect(Date.parse(data.start!)).toBe(Date.parse('2023-02-18T15:00:00Z'));
  });

  it('mark_arrived: the check-in status at the vendor, then JRNI’s webhook with "Checked in" is appointment.arrived with causedBy', async () => {
    bbSim.writes.hookUrl = `${hub.url}/hooks/bb`;
    const subject = await jrniBooking(1296);
    const sent = await api('POST', '/v1/commands', { type: 'appointment.mark_arrived', subject, data: {} });
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;
    await subscriber.waitFor((r) => r.type === 'command.succeeded' && r.subject === `command/${id}`);
    expect(bbSim.writes.log.at(-1)).toMatchObject({
      method: 'PUT',
      path: '/api/v3/admin/37011/bookings/1296',
      status: 200,
      body: { current_multi_status: 'checked_in' },
    });
    const echo = await subscriber.waitFor((r) => r.type === 'appointment.arrived' && r.subject === subject);
    expect((echo.json as { data: { causedBy?: unknown } }).data.causedBy).toEqual({ commandId: id });
  });

  it('update: data.comment becomes a private note on the booking', async () => {
    const subject = await jrniBooking(1297);
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject,
      data: { comment: 'insurance verified' },
    });
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;
    await subscriber.waitFor((r) => r.type === 'command.succeeded' && r.subject === `command/${id}`);
    expect(bbSim.writes.log.at(-1)).toMatchObject({
      method: 'PUT',
      path: '/api/v1/admin/37011/bookings/1297/private_notes',
      status: 200,
      body: { note: 'insurance verified' },
    });
    expect(bbSim.writes.privateNotes(1297)).toEqual(['insurance verified']);
  });

  it('book: New Booking at the vendor, command.succeeded names the new appointment, the purchase echo is appointment.created with causedBy; what New Booking needs is refused at once', async () => {
    bbSim.writes.hookUrl = `${hub.url}/hooks/bb`;
    const data = {
      start: '2017-03-17T13:00:00+02:00',
      patient: { given: 'Jamie', family: 'Oliver', email: 'j.oliver@test.com' },
      organization: { id: '50666' },
      service: { id: '104747' },
      practitioner: { id: '30553' },
      vendor: { resource_id: 43049 },
    };
    const seen = bbSim.writes.log.length;
    const lacking = await api('POST', '/v1/commands', {
      type: 'appointment.book',
      instance: 'bb',
      data: { ...data, service: undefined, organization: undefined },
    });
    expect(lacking.status).toBe(422);
    expect(lacking.json).toMatchObject({
      code: 'SY_COMMAND_UNSUPPORTED',
      details: {
        connector: 'bookingbug',
        reason:
          'BookingBug books only with organization.id (the BookingBug company; or set adminApi.companyId), service.id (the BookingBug service)',
      },
    });
    expect(bbSim.writes.log.length).toBe(seen);

    const sent = await api('POST', '/v1/commands', { type: 'appointment.book', instance: 'bb', data });
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;
    const succeeded = await subscriber.waitFor(
      (r) => r.type === 'command.succeeded' && r.subject === `command/${id}`,
    );
    const result = (succeeded.json as { data: { result: { appointmentId: string; vendorIds: string[] } } })
      .data.result;
    expect(result.appointmentId).toBeTruthy();
    const post = bbSim.writes.log
      .slice(seen)
      .find((c) => c.method === 'POST' && c.path.endsWith('/bookings'))!;
    expect(post).toMatchObject({
      path: '/api/v1/admin/50666/bookings',
      status: 201,
      body: { datetime: data.start, service_id: 104747, person_id: 30553, resource_id: 43049 },
    });
    // BookingBug notifies the new booking (the purchase): the command's echo, the same appointment.
    const created = await subscriber.waitFor(
      (r) => r.type === 'appointment.created' && r.subject === `appointment/${result.appointmentId}`,
    );
    expect(created.signature.valid).toBe(true);
    const echo = (created.json as { data: { causedBy?: unknown; start?: string } }).data;
    expect(echo.causedBy).toEqual({ commandId: id });
    expect(Date.parse(echo.start!)).toBe(Date.parse(data.start));
  });

  it('refuses at once, nothing queued, a command on an instance without adminApi', async () => {
    const hook = `${hub.url}/hooks/bb-listen`;
    await bbSim.push(fixture('bookingbug', 'jrni-notification-created.json'), { bookingUrl: hook });
    const created = await subscriber.waitFor(
      (r) =>
        r.type === 'appointment.created' &&
        (r.json as { source?: string } | undefined)?.source === 'bb-listen',
    );
    const before = (await api('GET', '/v1/commands?limit=500')).json.items.length;
    const calls = bbSim.writes.log.length;
    const refused = await api('POST', '/v1/commands', {
      type: 'appointment.cancel',
      subject: created.subject,
      data: {},
    });
    expect(refused.status).toBe(422);
    expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(refused.json).toMatchObject({
      code: 'SY_COMMAND_UNSUPPORTED',
      details: { connector: 'bookingbug', reason: expect.stringContaining('adminApi') },
    });
    expect((await api('GET', '/v1/commands?limit=500')).json.items.length).toBe(before);
    expect(bbSim.writes.log.length).toBe(calls);
  });
});

describe('Clockwise.MD commands through a started hub', () => {
  let nextAppointment = 71_000;

  /** Pushes Clockwise.MD's create for a fresh appointment and returns its subject once delivered. */
  async function cwAppointment(): Promise<{ subject: string; id: number }> {
    const id = nextAppointment++;
    cwSim.setAppointment({ id, first_name: 'Maria', last_name: 'Lopez', extra_fields: [] });
    await cwSim.push({ appointment_id: id, event_type: 'create' }, { hookUrl: `${hub.url}/hooks/cw` });
    const created = await subscriber.waitFor(
      (r) =>
        r.type === 'appointment.created' &&
        (r.json as { source?: string } | undefined)?.source === 'cw' &&
        r.text.includes(`"value":"${id}"`),
    );
    return { subject: created.subject!, id };
  }

  const outcomeOf = (id: string, run: number) =>
    eventually(async () => {
      const c = (await api('GET', `/v1/commands/${id}`)).json;
      return c.run === run && (c.status === 'failed' || c.status === 'succeeded') ? c : undefined;
    }, `command ${id} run ${run} finished`);

  it('refuses at once, nothing queued, an update with a comment (Clockwise.MD has none to write)', async () => {
    const { subject } = await cwAppointment();
    const before = (await api('GET', '/v1/commands?limit=500')).json.items.length;
    const writes = cwSim.writes.log.length;
    const refused = await api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject,
      data: { comment: 'insurance verified', customFields: { '104': 'verified' } },
    });
    expect(refused.status).toBe(422);
    expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(refused.json).toMatchObject({
      code: 'SY_COMMAND_UNSUPPORTED',
      details: {
        connector: 'clockwisemd',
        type: 'appointment.update',
        reason: expect.stringContaining('no writable comment'),
      },
    });
    expect((await api('GET', '/v1/commands?limit=500')).json.items.length).toBe(before);
    expect(cwSim.writes.log.length).toBe(writes);
    // Custom fields alone are written.
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject,
      data: { customFields: { '104': 'verified' } },
    });
    expect(sent.status).toBe(202);
    expect(await outcomeOf(sent.json.id, 1)).toMatchObject({ status: 'succeeded' });
  });

  /** Runs `body` with Clockwise.MD's webhooks after each write pushed to the hub (echoes). */
  async function withEchoes(body: () => Promise<void>): Promise<void> {
    cwSim.writes.hookUrl = `${hub.url}/hooks/cw`;
    try {
      await body();
    } finally {
      cwSim.writes.hookUrl = undefined;
    }
  }

  const writesTo = (path: string) =>
    cwSim.writes.log.filter((w) => w.path === path).map((w) => `${w.status} ${w.lostStatus ?? ''}`.trim());

  for (const lost of [502, 503, 504, 0]) {
    it(`a cancel whose answer was lost (${lost || 'the connection cut'} after Clockwise.MD removed it): succeeded once, and the remove webhook is its cancellation, with causedBy`, async () => {
      await withEchoes(async () => {
        const { subject, id } = await cwAppointment();
        cwSim.writes.loseAnswers(1, lost);
        const sent = await api('POST', '/v1/commands', { type: 'appointment.cancel', subject, data: {} });
        expect(sent.status).toBe(202);
        expect(await outcomeOf(sent.json.id, 1)).toMatchObject({
          status: 'succeeded',
          result: { alreadyDone: true },
        });
        expect(writesTo(`/v1/appointments/${id}/remove`)).toEqual([`${lost} 200`, '422']);
        const echo = await subscriber.waitFor(
          (r) =>
            r.subject === subject && (r.type === 'appointment.cancelled' || r.type === 'appointment.no_show'),
        );
        expect(echo.type).toBe('appointment.cancelled');
        expect(causedBy(echo)).toEqual({ commandId: sent.json.id });
      });
    });
  }

  it('an update whose answer was lost (502 after Clockwise.MD wrote it): succeeded, the same fields written again, the webhook not marked (a custom-field update takes no echo)', async () => {
    await withEchoes(async () => {
      const { subject, id } = await cwAppointment();
      cwSim.writes.loseAnswers(1, 502);
      const sent = await api('POST', '/v1/commands', {
        type: 'appointment.update',
        subject,
        data: { customFields: { '104': 'verified' } },
      });
      expect(await outcomeOf(sent.json.id, 1)).toMatchObject({ status: 'succeeded' });
      expect(writesTo(`/v1/appointments/${id}/update`)).toEqual(['502 200', '200']);
      const echo = await subscriber.waitFor((r) => r.type === 'appointment.updated' && r.subject === subject);
      // Clockwise.MD's demographics_update cannot tell the write from staff's change of the
      // patient: not marked (unchanged-echoes.int.test.ts).
      expect(causedBy(echo)).toBeUndefined();
    });
  });

  it('book: created once, command.succeeded names the new appointment, and the create webhook is its appointment.created with causedBy', async () => {
    await withEchoes(async () => {
      const sent = await api('POST', '/v1/commands', {
        type: 'appointment.book',
        instance: 'cw',
        data: cwBook('2026-04-02T10:00:00-05:00', { given: 'Booked', family: 'Once' }),
      });
      const done = await outcomeOf(sent.json.id, 1);
      expect(done).toMatchObject({
        status: 'succeeded',
        result: { vendorIds: [expect.stringMatching(/^\d+$/)], appointmentId: expect.any(String) },
      });
      const echo = await subscriber.waitFor(
        (r) => r.type === 'appointment.created' && r.subject === `appointment/${done.result.appointmentId}`,
      );
      expect(causedBy(echo)).toEqual({ commandId: sent.json.id });
    });
  });

  // A booking whose answer was lost (502, 503 with or without Retry-After, the connection cut):
  // lost-create.int.test.ts, with a retry schedule long enough for the create webhook that names it.

  it('a booking Clockwise.MD made while the database was cut succeeds with it once the database is back, created once', async () => {
    const before = cwSim.writes.log.filter((w) => w.path === '/v1/appointments/create').length;
    // The create is answered 1.5 s late: the database is cut meanwhile.
    cwSim.failApi(1, { status: 0, delayMs: 1500 });
    const admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
    await admin.connect();
    try {
      const sent = await api('POST', '/v1/commands', {
        type: 'appointment.book',
        instance: 'cw',
        data: cwBook('2026-04-03T09:30:00-05:00', { given: 'Cut', family: 'Short' }),
      });
      expect(sent.status).toBe(202);
      // The create is at Clockwise.MD (recorded before it went out), its answer not yet back.
      await eventually(
        async () => (await api('GET', `/v1/commands/${sent.json.id}`)).json.calls?.length === 1,
        'the create sent',
      );
      await setConnectionsAllowed(admin, db.name(), false);
      await eventually(
        async () => cwSim.writes.log.filter((w) => w.path === '/v1/appointments/create').length > before,
        'the appointment created at Clockwise.MD',
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      await setConnectionsAllowed(admin, db.name(), true);
      const done = await outcomeOf(sent.json.id, 1);
      // Before: failed, "outcome unknown … not sent again", the appointment booked and its id in hand.
      expect(done).toMatchObject({
        status: 'succeeded',
        result: { vendorIds: [expect.stringMatching(/^\d+$/)], appointmentId: expect.any(String) },
      });
      expect(cwSim.writes.log.filter((w) => w.path === '/v1/appointments/create').slice(before)).toHaveLength(
        1,
      );
    } finally {
      await setConnectionsAllowed(admin, db.name(), true).catch(() => {});
      await admin.end();
    }
  });

  it('the same Idempotency-Key from 20 clients at once is one command and one remove; another body on it is a 409 problem', async () => {
    const { subject, id } = await cwAppointment();
    const key = `crm-cw-cancel-${id}`;
    const body = { type: 'appointment.cancel', subject, data: { reason: 'patient called' } };
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => api('POST', '/v1/commands', body, { 'idempotency-key': key })),
    );
    const ids = new Set(answers.map((a) => a.json.id));
    expect(ids.size).toBe(1);
    expect(answers.map((a) => a.status).sort()).toEqual([...Array(19).fill(200), 202]);
    expect(answers.filter((a) => a.headers.get('idempotent-replayed') === 'true')).toHaveLength(19);
    const [commandId] = [...ids];
    expect(await outcomeOf(commandId, 1)).toMatchObject({ status: 'succeeded' });
    expect(writesTo(`/v1/appointments/${id}/remove`)).toEqual(['200']);
    const other = await api(
      'POST',
      '/v1/commands',
      { ...body, data: { reason: 'another' } },
      { 'idempotency-key': key },
    );
    expect(other.status).toBe(409);
    expect(other.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(other.json).toMatchObject({ code: 'SY_COMMAND_IDEMPOTENCY_CONFLICT', details: { commandId } });
    expect(writesTo(`/v1/appointments/${id}/remove`)).toEqual(['200']);
  });

  it('a cancel the vendor refused fails again on a manual retry: its own refused remove is no proof it was done', async () => {
    const { subject, id } = await cwAppointment();
    // Removed at the clinic meanwhile (the hub did not hear of it): Clockwise.MD refuses the remove.
    cwSim.setAppointment({ id, first_name: 'Maria', last_name: 'Lopez', extra_fields: [], removed: true });
    const sent = await api('POST', '/v1/commands', { type: 'appointment.cancel', subject, data: {} });
    expect(sent.status).toBe(202);
    const commandId = sent.json.id as string;
    expect(await outcomeOf(commandId, 1)).toMatchObject({
      status: 'failed',
      error: { kind: 'permanent', vendor: { status: 422 } },
    });
    expect((await api('POST', `/v1/commands/${commandId}/retry`)).status).toBe(202);
    // Before the fix the run 1 refusal had left the command's remove-sent mark: succeeded, alreadyDone.
    expect(await outcomeOf(commandId, 2)).toMatchObject({
      status: 'failed',
      error: { kind: 'permanent', vendor: { status: 422 } },
    });
    const removes = cwSim.writes.log.filter((w) => w.path === `/v1/appointments/${id}/remove`);
    expect(removes.map((w) => w.status)).toEqual([422, 422]);
  });

  it('a vendor refusal whose words Postgres refuses (a NUL, an emoji the cut splits) fails the command once, stored with U+FFFD', async () => {
    // The vendor's JSON error text quoting a NUL; and one whose 2,000-character cut (the stored
    // vendor body) ends inside an emoji's surrogate pair: `{"error":"` is 10 characters.
    const bodies = [
      { error: 'custom field 104: bad value "a\u0000b"' },
      { error: `${'x'.repeat(1989)}😀😀` },
    ];
    for (const body of bodies) {
      const { subject, id } = await cwAppointment();
      cwSim.failApi(1, { status: 422, body });
      const sent = await api('POST', '/v1/commands', {
        type: 'appointment.update',
        subject,
        data: { customFields: { '104': 'verified' } },
      });
      expect(sent.status).toBe(202);
      // Before the fix the outcome's write failed: 'running' until the lease ran out (10 s here),
      // then the update was sent again, and succeeded.
      const done = await outcomeOf(sent.json.id, 1);
      expect(done).toMatchObject({
        status: 'failed',
        attempts: 1,
        error: { kind: 'permanent', vendor: { status: 422 } },
      });
      expect(JSON.stringify(done.error.vendor.body)).toContain('\uFFFD');
      const failed = await subscriber.waitFor(
        (r) => r.type === 'command.failed' && r.subject === `command/${sent.json.id}`,
      );
      expect((failed.json as { data: { error: { kind: string } } }).data.error.kind).toBe('permanent');
      expect(cwSim.writes.log.filter((w) => w.path === `/v1/appointments/${id}/update`)).toHaveLength(0);
    }
  });

  it("a vendor answer quoting the instance's API key or a token keeps them out of the command, its calls and command.failed", async () => {
    const { subject } = await cwAppointment();
    cwSim.failApi(1, {
      status: 401,
      body: { error: `Invalid Authtoken ${CW_API_KEY}`, session_token: 'vendor-session-0123456789' },
    });
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject,
      data: { customFields: { '104': 'verified' } },
    });
    const done = await outcomeOf(sent.json.id, 1);
    expect(done).toMatchObject({
      status: 'failed',
      error: {
        kind: 'permanent',
        // The vendor's words end the message (Clockwise.MD's connector quotes them), scrubbed alike.
        message: 'Clockwise.MD update answered 401: Invalid Authtoken [redacted]',
        vendor: { status: 401, body: { error: 'Invalid Authtoken [redacted]', session_token: '[redacted]' } },
      },
    });
    expect(done.calls).toHaveLength(1);
    const failed = await subscriber.waitFor(
      (r) => r.type === 'command.failed' && r.subject === `command/${sent.json.id}`,
    );
    // Before the fix the key was in all three: stored, shown by the API, delivered to subscribers.
    for (const text of [JSON.stringify(done), failed.text]) {
      expect(text).not.toContain(CW_API_KEY);
      expect(text).not.toContain('vendor-session-0123456789');
    }
  });

  it('a vendor answer whose JSON comes labelled text/plain keeps its token fields out of the command, its calls and command.failed', async () => {
    // A body is parsed only under a JSON content type: as text, its token fields were kept whole
    // (the call's snippet, the error, command.failed), where the same answer labelled JSON had them
    // redacted. A token endpoint or login answering so handed its live token to the sender.
    const { subject } = await cwAppointment();
    cwSim.failApi(1, {
      status: 401,
      contentType: 'text/plain; charset=utf-8',
      body: { error: 'Session expired', session_token: 'vendor-session-text-0123456789' },
    });
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject,
      data: { customFields: { '104': 'verified' } },
    });
    const done = await outcomeOf(sent.json.id, 1);
    expect(done).toMatchObject({ status: 'failed', error: { kind: 'permanent', vendor: { status: 401 } } });
    expect(done.error.vendor.body).toBe('{"error":"Session expired","session_token":"[redacted]"}');
    // The connector quotes a text answer whole: the token scrubbed there too.
    expect(done.error.message).toBe(
      'Clockwise.MD update answered 401: {"error":"Session expired","session_token":"[redacted]"}',
    );
    expect(done.calls[0].responseSnippet).toBe('{"error":"Session expired","session_token":"[redacted]"}');
    const failed = await subscriber.waitFor(
      (r) => r.type === 'command.failed' && r.subject === `command/${sent.json.id}`,
    );
    for (const text of [JSON.stringify(done), failed.text]) {
      expect(text).not.toContain('vendor-session-text-0123456789');
    }
  });

  it("a vendor answer echoing the instance's API key base64-encoded (a Basic header quoted back) keeps it out of the command, its calls and command.failed", async () => {
    const { subject } = await cwAppointment();
    const echoed = Buffer.from(`${CW_API_KEY}:`).toString('base64');
    cwSim.failApi(1, { status: 401, body: { error: `Unauthorized: Basic ${echoed}` } });
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject,
      data: { customFields: { '104': 'verified' } },
    });
    const done = await outcomeOf(sent.json.id, 1);
    expect(done).toMatchObject({ status: 'failed', error: { vendor: { status: 401 } } });
    expect(done.error.vendor.body.error).toContain('[redacted]');
    const failed = await subscriber.waitFor(
      (r) => r.type === 'command.failed' && r.subject === `command/${sent.json.id}`,
    );
    // Before the fix the base64 text was stored, shown and delivered whole: it decodes to the key.
    const run = Buffer.from(CW_API_KEY).toString('base64').slice(4, -4);
    for (const text of [JSON.stringify(done), failed.text]) expect(text).not.toContain(run);
  });

  it('an instance the file no longer declares (disabled) carries out no command: refused at once, one waiting for its retry fails unsent', async () => {
    const { subject, id } = await cwAppointment();
    // Waiting for its retry (Retry-After: 2 s) when the instance is retired.
    cwSim.failApi(1, { status: 429, retryAfterSeconds: 2 });
    const waiting = await api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject,
      data: { customFields: { '104': 'verified' } },
    });
    expect(waiting.status).toBe(202);
    await eventually(async () => {
      const c = (await api('GET', `/v1/commands/${waiting.json.id}`)).json;
      return c.status === 'pending' && c.attempts === 1;
    }, 'the update waiting for its retry');
    await hub.hub.instances.retire('cw');
    try {
      const refused = await api('POST', '/v1/commands', {
        type: 'appointment.update',
        subject,
        data: { customFields: { '104': 'again' } },
      });
      // Before the fix: 202, and the update went to Clockwise.MD.
      expect(refused.status).toBe(422);
      expect(refused.json).toMatchObject({
        code: 'SY_COMMAND_UNSUPPORTED',
        details: { reason: expect.stringContaining('it is disabled (') },
      });
      expect(await outcomeOf(waiting.json.id, 1)).toMatchObject({
        status: 'failed',
        error: { kind: 'permanent', message: expect.stringContaining('it is disabled (') },
      });
      expect(cwSim.writes.log.filter((w) => w.path === `/v1/appointments/${id}/update`)).toHaveLength(0);
    } finally {
      await hub.hub.instances.reinstate('cw');
    }
  });
  it('a command whose earlier try wrote without a refusing answer, failed unsent by a retired instance, says the write may have been carried out', async () => {
    const { subject } = await cwAppointment();
    // A 503 with Retry-After proves nothing (docs/commands.md): the update may have been written.
    cwSim.failApi(1, { status: 503, retryAfterSeconds: 2 });
    const waiting = await api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject,
      data: { customFields: { '104': 'maybe' } },
    });
    expect(waiting.status).toBe(202);
    await eventually(async () => {
      const c = (await api('GET', `/v1/commands/${waiting.json.id}`)).json;
      return c.status === 'pending' && c.attempts === 1;
    }, 'the update waiting for its retry');
    await hub.hub.instances.retire('cw');
    try {
      // Before: "… it is disabled (…); not sent", read by the sender as nothing done.
      expect(await outcomeOf(waiting.json.id, 1)).toMatchObject({
        status: 'failed',
        error: {
          kind: 'permanent',
          message: expect.stringMatching(/not sent; an earlier try wrote .* it may have been carried out$/),
        },
      });
    } finally {
      await hub.hub.instances.reinstate('cw');
    }
  });
});

describe('credentials, retries and the known state', () => {
  const as = (token: string) => ({ authorization: `Bearer ${token}` });

  it('command credentials: listed without their tokens, revoked (401 from then on), refused while their subscription is disabled', async () => {
    expect(
      (await api('POST', '/v1/subscriptions', { id: 'revocable', kind: 'pull', sources: ['dp'] })).status,
    ).toBe(201);
    const a = (await api('POST', '/v1/subscriptions/revocable/command-credentials')).json;
    const b = (await api('POST', '/v1/subscriptions/revocable/command-credentials')).json;
    const listed = await api('GET', '/v1/subscriptions/revocable/command-credentials');
    expect(listed.status).toBe(200);
    expect(listed.json.items).toEqual([
      { id: a.id, subscriptionId: 'revocable', hint: a.hint, createdAt: expect.any(String) },
      { id: b.id, subscriptionId: 'revocable', hint: b.hint, createdAt: expect.any(String) },
    ]);
    expect(JSON.stringify(listed.json)).not.toContain(a.token);
    expect(JSON.stringify(listed.json)).not.toContain(b.token);

    const { subject } = await bookedAppointment();
    // Each accepted command is awaited at the end: left running, its presence calls met a later
    // test's failures (fresh-clone CI: that test's four 503s taken by two of these).
    const accepted: string[] = [];
    const send = async (token: string) => {
      const r = await api(
        'POST',
        '/v1/commands',
        { type: 'appointment.mark_arrived', subject, data: {} },
        as(token),
      );
      if (r.status === 202) accepted.push(r.json.id);
      return r;
    };
    expect((await send(a.token)).status).toBe(202);
    // Admin only: a credential neither lists nor revokes credentials.
    const credentialsPath = '/v1/subscriptions/revocable/command-credentials';
    expect((await api('GET', credentialsPath, undefined, as(b.token))).status).toBe(401);
    expect((await api('DELETE', `${credentialsPath}/${a.id}`, undefined, as(b.token))).status).toBe(401);

    const revoked = await api('DELETE', `${credentialsPath}/${a.id}`);
    expect(revoked.status).toBe(204);
    const refused = await send(a.token);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect((await send(b.token)).status).toBe(202);
    expect((await api('GET', credentialsPath)).json.items.map((c: { id: string }) => c.id)).toEqual([b.id]);

    const unknown = await api('DELETE', `${credentialsPath}/${a.id}`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toContain('application/problem+json');
    expect(unknown.json.code).toBe('SY_PIPELINE_NOT_FOUND');
    // A credential is revoked through its own subscription only.
    expect((await api('DELETE', `/v1/subscriptions/crm/command-credentials/${b.id}`)).status).toBe(404);
    expect((await api('GET', '/v1/subscriptions/nowhere/command-credentials')).status).toBe(404);

    // A disabled subscription's credentials are refused until it is enabled again.
    expect((await api('POST', '/v1/subscriptions/revocable/disable', { reason: 'offboarded' })).status).toBe(
      200,
    );
    expect((await send(b.token)).status).toBe(401);
    expect((await api('POST', '/v1/subscriptions/revocable/enable', {})).status).toBe(200);
    expect((await send(b.token)).status).toBe(202);

    const doc = (await api('GET', '/v1/openapi.json')).json;
    const list = doc.paths['/v1/subscriptions/{id}/command-credentials'].get;
    const remove = doc.paths['/v1/subscriptions/{id}/command-credentials/{credentialId}'].delete;
    expect(list.security).toEqual([{ adminToken: [] }]);
    expect(remove.security).toEqual([{ adminToken: [] }]);
    expect(Object.keys(remove.responses)).toEqual(expect.arrayContaining(['204', '401']));
    expect(accepted).toHaveLength(3);
    for (const id of accepted) expect((await finished(id)).status).toBe('succeeded');
  });

  it('a database failure after Docplanner booked does not book again: the retry answers the recorded booking', async () => {
    const db = hub.hub.host.db;
    // The first alias written for dp-other fails, as a database error would, after the vendor's answer.
    await sql`create sequence test_alias_failures`.execute(db);
    await sql`create function test_fail_one_alias() returns trigger language plpgsql as $$
      begin
        if new.instance_id = 'dp-other' and nextval('test_alias_failures') = 1 then
          raise exception 'test: the database failed after the vendor answered';
        end if;
        return new;
      end $$`.execute(db);
    await sql`create trigger test_fail_one_alias before insert on switchyard.aliases
      for each row execute function test_fail_one_alias()`.execute(db);
    sim.writes.echoes = false;
    try {
      const start = '2026-04-02T10:00:00+02:00';
      const sent = await api('POST', '/v1/commands', {
        type: 'appointment.book',
        instance: 'dp-other',
        data: dpBook(start, { name: 'Ewa', phone: '+48500100202' }),
      });
      expect(sent.status).toBe(202);
      const done = await finished(sent.json.id);
      const books = sim.writes.log.filter((w) => w.path.endsWith(`/slots/${encodeURIComponent(start)}/book`));
      expect(books.map((w) => w.status)).toEqual([200]);
      const booked = [...sim.bookings.entries()].filter(([, b]) => b.booking.start_at === start);
      expect(booked).toHaveLength(1);
      expect(done).toMatchObject({
        status: 'succeeded',
        attempts: 2,
        subject: expect.stringMatching(/^appointment\//),
        result: { vendorIds: [booked[0]![0]], appointmentId: expect.any(String) },
      });
      // The second try called no vendor: the connector answered its recorded booking.
      expect(done.calls.filter((c: { attempt: number }) => c.attempt === 2)).toEqual([]);
      // The record lives in the command's row (purged with it), not in the instance state for good.
      const row = await sql<{ handler_state: unknown }>`select handler_state from switchyard.commands
        where id = ${sent.json.id}`.execute(db);
      expect(row.rows[0]?.handler_state).toEqual({
        [`docplanner:command:${sent.json.id}`]: { done: { vendorIds: [booked[0]![0]] } },
      });
      const instanceRecords = await sql<{ key: string }>`select key from switchyard.entity_state
        where key like '%:command:%'`.execute(db);
      expect(instanceRecords.rows).toEqual([]);
    } finally {
      sim.writes.echoes = true;
      await sql`drop trigger test_fail_one_alias on switchyard.aliases`.execute(db);
      await sql`drop function test_fail_one_alias()`.execute(db);
      await sql`drop sequence test_alias_failures`.execute(db);
    }
  });

  it('a full disk after Docplanner booked, past every attempt: not failed; succeeded with the recorded booking once it clears, booked once', async () => {
    // Postgres out of disk space for dp-other's aliases (a real 53100, raised by Postgres), for
    // longer than the command's four attempts (retryScheduleMs: three retries).
    const admin = new pg.Pool({ connectionString: db.url(), max: 1 });
    const full = await injectSqlstate(admin, SQLSTATE_FAULTS.diskFull, {
      table: 'aliases',
      on: ['insert'],
      when: "new.instance_id = 'dp-other'",
    });
    sim.writes.echoes = false;
    try {
      const start = '2026-04-03T10:00:00+02:00';
      const sent = await api('POST', '/v1/commands', {
        type: 'appointment.book',
        instance: 'dp-other',
        data: dpBook(start, { name: 'Olga', phone: '+48500100303' }),
      });
      expect(sent.status).toBe(202);
      const id = sent.json.id as string;
      // Before: failed after its fourth attempt ("exhausted"), command.failed sent to the CRM for a
      // booking Docplanner had made.
      const during = await eventually(async () => {
        const c = (await api('GET', `/v1/commands/${id}`)).json;
        return (await full.raised()) >= 6 || (c.status !== 'pending' && c.status !== 'running')
          ? c
          : undefined;
      }, 'six tries, or the command ended');
      expect(during.status).not.toBe('failed');
      // The tries the database failed are given back: none of the four is spent (before: 6 and more).
      expect(during.attempts).toBeLessThanOrEqual(1);
      await full.clear();
      const done = await finished(id);
      expect(done.attempts).toBe(1);
      const books = sim.writes.log.filter((w) => w.path.endsWith(`/slots/${encodeURIComponent(start)}/book`));
      expect(books.map((w) => w.status)).toEqual([200]);
      expect(done).toMatchObject({ status: 'succeeded', result: { appointmentId: expect.any(String) } });
      // Every try ran as attempt 1. The booking's call (and a token's, unless one was cached) was
      // made by a try the database failed, and says so (before: no mark, told from the try that
      // succeeded by nothing); the try that succeeded answered the recorded booking without a call.
      const calls = done.calls as Array<{
        attempt: number;
        givenBack: boolean;
        url: string;
        statusCode: number;
      }>;
      expect(calls.filter((c) => c.url.endsWith('/book'))).toEqual([
        expect.objectContaining({ attempt: 1, givenBack: true, statusCode: 200 }),
      ]);
      expect(calls.map((c) => [c.attempt, c.givenBack])).toEqual(calls.map(() => [1, true]));
      expect(
        subscriber.requests.filter((r) => r.type === 'command.failed' && r.subject === `command/${id}`),
      ).toEqual([]);
    } finally {
      sim.writes.echoes = true;
      await full.clear();
      await admin.end();
    }
  });

  it('a full disk at the job that carries the command (pg-boss): 503 with Retry-After, nothing half-stored; the same request stored once it clears', async () => {
    const admin = new pg.Pool({ connectionString: db.url(), max: 1 });
    // The command's row, its idempotency key and its pg-boss job commit together: the job's
    // insert fails (a real 53100 on pg-boss's own table).
    const full = await injectSqlstate(admin, SQLSTATE_FAULTS.diskFull, {
      schema: 'switchyard_queue',
      table: 'job',
      on: ['insert'],
    });
    const start = '2026-04-03T11:00:00+02:00';
    const body = {
      type: 'appointment.book',
      instance: 'dp-other',
      data: dpBook(start, { name: 'Zofia', phone: '+48500100304' }),
    };
    const key = { 'idempotency-key': 'crm-full-disk-job' };
    try {
      const refused = await api('POST', '/v1/commands', body, key);
      expect(refused.status, JSON.stringify(refused.json)).toBe(503);
      expect(refused.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
      expect(refused.json).toMatchObject({ code: 'SY_STORAGE_UNAVAILABLE' });
      expect(await full.raised()).toBe(1);
      // Nothing of it stored: no command, so no key answering with one that never runs.
      const stored = await admin.query(
        `select count(*)::int as n from switchyard.commands where idempotency_key = 'crm-full-disk-job'`,
      );
      expect(stored.rows[0].n).toBe(0);
    } finally {
      await full.clear();
    }
    // The sender's retry with the same key: a new command, run.
    const sent = await api('POST', '/v1/commands', body, key);
    expect(sent.status).toBe(202);
    const done = await finished(sent.json.id as string);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 1 });
    await admin.end();
  });

  it("a cancel whose answer was lost (502 after Docplanner cancelled): the vendor's notification, arriving while the cancel waits for its retry, is still its echo", async () => {
    const { subject, bookingId } = await bookedAppointment();
    sim.writes.loseAnswers(1, 502, new RegExp(`/bookings/${bookingId}$`));
    sim.writes.echoDelayMs = 0;
    try {
      const sent = await api('POST', '/v1/commands', { type: 'appointment.cancel', subject, data: {} });
      expect(await finished(sent.json.id)).toMatchObject({
        status: 'succeeded',
        attempts: 2,
        result: { alreadyDone: true },
      });
      const echo = await subscriber.waitFor(
        (r) => r.type === 'appointment.cancelled' && r.subject === subject,
      );
      // Before the fix: no causedBy (normalized while the command waited for its retry, which then
      // found the booking cancelled by the integration: done), so the CRM took it for another's.
      expect(causedBy(echo)).toEqual({ commandId: sent.json.id });
    } finally {
      sim.writes.echoDelayMs = 100;
    }
  });

  it("a move whose answer was lost, found done by its next try without the new id: Docplanner's booking-moved after it is still its echo", async () => {
    const { subject, bookingId } = await bookedAppointment();
    sim.writes.loseAnswers(1, 502, new RegExp(`/bookings/${bookingId}/move$`));
    // A booking without a move chain (moving: null, made before Docplanner kept chains): the
    // re-read shows the old booking cancelled by the move, not the new id.
    sim.writes.movingChains = false;
    // After the retry (100 ms here) has found the old booking cancelled by the move: done.
    sim.writes.echoDelayMs = 600;
    try {
      const sent = await api('POST', '/v1/commands', {
        type: 'appointment.reschedule',
        subject,
        data: { start: '2026-03-12T09:00:00+01:00' },
      });
      expect(await finished(sent.json.id)).toMatchObject({
        status: 'succeeded',
        result: { alreadyDone: true, vendorIds: [] },
      });
      const echo = await subscriber.waitFor(
        (r) => r.type === 'appointment.rescheduled' && r.subject === subject,
      );
      // Before the fix: no causedBy (the command knew only the old booking, the echo's current id
      // is the new one).
      expect(causedBy(echo)).toEqual({ commandId: sent.json.id });
      expect((echo.json as { data: { vendorIds: unknown } }).data.vendorIds).toContainEqual(
        expect.objectContaining({ value: bookingId, current: false }),
      );
    } finally {
      sim.writes.echoDelayMs = 100;
      sim.writes.movingChains = true;
    }
  });

  it("a booking whose answer was lost (502 after booking) is found by its next try: succeeded with the booking, booked once, and Docplanner's slot-booked is its echo", async () => {
    const start = '2026-04-02T11:00:00+02:00';
    // This booking's answer only: fresh-clone CI once saw another write (a straggler of an earlier
    // test, under load) take the lost answer, and this booking answered normally (attempts 1).
    sim.writes.loseAnswers(1, 502, new RegExp(`/slots/${encodeURIComponent(start)}/book$`));
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.book',
      instance: 'dp',
      data: dpBook(start, { name: 'Olga', phone: '+48500100203' }),
    });
    expect(sent.status).toBe(202);
    // Before: failed, "outcome unknown, not sent again", though Docplanner had booked it.
    const done = await finished(sent.json.id);
    const booked = [...sim.bookings.entries()].filter(([, b]) => b.booking.start_at === start);
    expect(booked).toHaveLength(1);
    expect(done).toMatchObject({
      status: 'succeeded',
      attempts: 2,
      result: { vendorIds: [booked[0]![0]], alreadyDone: true, appointmentId: expect.any(String) },
    });
    // The second try listed the slot's bookings (getBookings) and booked nothing.
    expect(
      done.calls
        .filter((c: { attempt: number }) => c.attempt === 2)
        .map((c: { method: string; url: string }) => `${c.method} ${c.url.split('/').at(-1)}`),
    ).toEqual(['GET bookings']);
    const books = sim.writes.log.filter((w) => w.path.endsWith(`/slots/${encodeURIComponent(start)}/book`));
    expect(books.map((w) => `${w.status} ${w.lostStatus}`)).toEqual(['502 200']);
    const echo = await subscriber.waitFor(
      (r) => r.type === 'appointment.created' && r.subject === `appointment/${done.result.appointmentId}`,
    );
    // Before: no causedBy, so the CRM could not tie the appointment to its command.
    expect(causedBy(echo)).toEqual({ commandId: sent.json.id });
  });

  it('a command has one echo: a later change of the same type on its appointment is not marked, the echo normalized again still is', async () => {
    const { subject, bookingId } = await bookedAppointment();
    const sent = await api('POST', '/v1/commands', { type: 'appointment.mark_arrived', subject, data: {} });
    expect(sent.status).toBe(202);
    // Docplanner's presence-marked for the command's call: its echo.
    const echo = await subscriber.waitFor((r) => r.type === 'appointment.arrived' && r.subject === subject);
    expect(causedBy(echo)).toEqual({ commandId: sent.json.id });

    // Staff mark the patient present again at the front desk a minute later, within the echo
    // window: a change of their own, not the command's (before the fix it was marked as its echo).
    const booking = sim.bookings.get(bookingId)!.booking;
    await sim.push(
      bookingNotification('presence-marked', booking, dpTime(Date.now() + 60_000), { presence: 'PRESENT' }),
      { hookUrl: `${hub.url}/hooks/dp` },
    );
    const later = await subscriber.waitFor(
      (r) => r.type === 'appointment.arrived' && r.subject === subject && r !== echo,
    );
    expect(causedBy(later)).toBeUndefined();

    // The command records which notification was its echo (not in the API's result), so the hook
    // answers from the database, as another process would: the echo normalized again (its commit
    // refused, say) is marked again; the later change is not.
    const draftOf = (r: { json?: unknown }) => {
      const event = r.json as { type: string; subject: string; time: string; data: Record<string, unknown> };
      const { causedBy: _mark, ...data } = event.data;
      return { type: event.type, subject: event.subject, time: event.time, data: data as JsonObject };
    };
    const again = [draftOf(echo), draftOf(later)];
    await hub.commands.hooks.markEchoes('dp', again);
    expect(again.map((d) => d.data.causedBy)).toEqual([{ commandId: sent.json.id }, undefined]);
    expect((await api('GET', `/v1/commands/${sent.json.id}`)).json.result).toEqual({ vendorIds: [] });
  });

  it('a manual retry of an exhausted command gets a fresh set of tries, its earlier calls kept', async () => {
    const presenceCalls = (c: {
      calls: { url: string; run: number; attempt: number; statusCode: number }[];
    }) =>
      c.calls
        .filter((x) => x.url.endsWith('/presence/patient'))
        .map((x) => `${x.run}.${x.attempt} ${x.statusCode}`);
    // Exhausted: four tries (the schedule's three retries), each answered 503.
    const { subject, bookingId } = await bookedAppointment();
    // Only this test's presence calls fail (its own booking's): a stray call of an earlier test's
    // command used some up under load.
    const presence = new RegExp(`/bookings/${bookingId}/presence/patient$`);
    sim.failNext(4, 503, undefined, presence);
    const sent = await api('POST', '/v1/commands', { type: 'appointment.mark_arrived', subject, data: {} });
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;
    const failed = await finished(id);
    expect(failed).toMatchObject({ status: 'failed', run: 1, attempts: 4, error: { kind: 'exhausted' } });

    // Retried by hand while Docplanner is still unwell: one more 503, then it answers.
    sim.failNext(1, 503, undefined, presence);
    const retried = await api('POST', `/v1/commands/${id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.json).toMatchObject({ status: 'pending', run: 2, attempts: 0 });
    const done = await finished(id);
    // Before the fix the retry was attempt 5 of 4: its 503 failed the command at once.
    expect(done).toMatchObject({ status: 'succeeded', run: 2, attempts: 2 });
    // Every call of both runs is kept, each naming its run and its attempt within it.
    expect(presenceCalls(done)).toEqual(['1.1 503', '1.2 503', '1.3 503', '1.4 503', '2.1 503', '2.2 204']);
  });

  it('a manual retry is checked again as a new command is: refused for a target cancelled since, or by a sender no longer covering it', async () => {
    // A cancel that failed (Docplanner refused it), for an appointment the patient has cancelled
    // since: refused as a new cancel would be (409), nothing queued, no vendor call.
    const other = await bookedAppointment();
    sim.failNext(1, 400, undefined, new RegExp(`/bookings/${other.bookingId}$`));
    const cancel = await api('POST', '/v1/commands', {
      type: 'appointment.cancel',
      subject: other.subject,
      data: {},
    });
    expect((await finished(cancel.json.id)).status).toBe('failed');
    const booking = sim.bookings.get(other.bookingId)!.booking;
    await sim.push(
      bookingNotification(
        'booking-canceled',
        { ...booking, status: 'canceled', canceled_by: 'patient', canceled_at: dpTime(Date.now()) },
        dpTime(Date.now()),
      ),
      { hookUrl: `${hub.url}/hooks/dp` },
    );
    await subscriber.waitFor((r) => r.type === 'appointment.cancelled' && r.subject === other.subject);
    const writes = sim.writes.log.length;
    const refused = await api('POST', `/v1/commands/${cancel.json.id}/retry`);
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({
      code: 'SY_COMMAND_TARGET_STATE',
      details: { subject: other.subject, status: 'cancelled' },
    });
    expect((await api('GET', `/v1/commands/${cancel.json.id}`)).json).toMatchObject({
      status: 'failed',
      attempts: 1,
    });

    // A credential whose subscription no longer covers the instance: refused as a new command
    // would be (422, like an unknown target).
    expect(
      (await api('POST', '/v1/subscriptions', { id: 'narrowed', kind: 'pull', sources: ['dp'] })).status,
    ).toBe(201);
    const cred = (await api('POST', '/v1/subscriptions/narrowed/command-credentials')).json;
    const as = { authorization: `Bearer ${cred.token}` };
    const third = await bookedAppointment();
    sim.failNext(1, 400, undefined, new RegExp(`/bookings/${third.bookingId}/presence/patient$`));
    const mine = await api(
      'POST',
      '/v1/commands',
      { type: 'appointment.mark_arrived', subject: third.subject, data: {} },
      as,
    );
    expect(mine.status).toBe(202);
    expect((await finished(mine.json.id)).status).toBe('failed');
    expect((await api('PATCH', '/v1/subscriptions/narrowed', { sources: ['dp-other'] })).status).toBe(200);
    const foreign = await api('POST', `/v1/commands/${mine.json.id}/retry`, undefined, as);
    expect(foreign.status).toBe(422);
    expect(foreign.json.code).toBe('SY_COMMAND_UNKNOWN_TARGET');
    await new Promise((r) => setTimeout(r, 300));
    expect(sim.writes.log.length).toBe(writes);
  });

  it('a cancel right after a move to another address goes to the new address, before Docplanner notified the move', async () => {
    const { subject, bookingId } = await bookedAppointment();
    const db = hub.hub.host.db;
    // Docplanner's notifications of the move and the cancel come only at the end.
    sim.writes.holdEchoes = true;
    try {
      const move = await api('POST', '/v1/commands', {
        type: 'appointment.reschedule',
        subject,
        data: { start: '2026-06-01T09:00:00+02:00', location: { id: '221399' }, durationMinutes: 20 },
      });
      const moved = await finished(move.json.id);
      expect(moved.status).toBe('succeeded');
      const newId = moved.result.vendorIds[0] as string;
      const cancel = await api('POST', '/v1/commands', { type: 'appointment.cancel', subject, data: {} });
      expect(cancel.status).toBe(202);
      const done = await finished(cancel.json.id);
      // Before the fix: DELETE …/addresses/221304/bookings/<new id> → 404, and the cancel failed.
      expect(done).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect(
        sim.writes.log
          .filter((w) => w.path.includes(`/bookings/${bookingId}/`) || w.path.endsWith(`/bookings/${newId}`))
          .map((w) => `${w.method} ${w.path.split('/').slice(6).join('/')} ${w.status}`),
      ).toEqual([`POST 221304/bookings/${bookingId}/move 201`, `DELETE 221399/bookings/${newId} 204`]);
      const noted = sql<{ n: number }>`select count(*)::int as n from switchyard.entity_state
        where instance_id = 'dp' and key = ${`docplanner:moved-place:${newId}`}`;
      expect((await noted.execute(db)).rows[0]!.n).toBe(1);
      // Docplanner's notifications arrive: the move's makes the noted place the known one, and drops the note.
      sim.writes.releaseEchoes();
      await subscriber.waitFor((r) => r.type === 'appointment.cancelled' && r.subject === subject);
      expect((await noted.execute(db)).rows[0]!.n).toBe(0);
    } finally {
      sim.writes.holdEchoes = false;
      sim.writes.releaseEchoes();
    }
  });

  it("a cancel right after a move to another doctor's address goes to that doctor's path (the move answer's Location), before Docplanner notified the move", async () => {
    // moveBooking, API 1.13.0: an address of another doctor in the facility reassigns the booking,
    // and the answer's Location header names that doctor.
    sim.writes.addAddress({ facility: PLACE.facility, doctor: '182799', address: '221420' });
    const { subject } = await bookedAppointment();
    sim.writes.holdEchoes = true;
    try {
      const move = await api('POST', '/v1/commands', {
        type: 'appointment.reschedule',
        subject,
        data: { start: '2026-06-03T09:00:00+02:00', location: { id: '221420' }, durationMinutes: 20 },
      });
      const moved = await finished(move.json.id);
      expect(moved.status).toBe('succeeded');
      const newId = moved.result.vendorIds[0] as string;
      const cancel = await api('POST', '/v1/commands', { type: 'appointment.cancel', subject, data: {} });
      const done = await finished(cancel.json.id);
      // Before the fix: DELETE …/doctors/182733/addresses/221420/bookings/<new id> → 404, and the cancel failed.
      expect(done).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect(
        sim.writes.log
          .filter((w) => w.path.endsWith(`/bookings/${newId}`))
          .map((w) => `${w.method} ${w.path.split('/').slice(3, 7).join('/')} ${w.status}`),
      ).toEqual(['DELETE doctors/182799/addresses/221420 204']);
      sim.writes.releaseEchoes();
      await subscriber.waitFor((r) => r.type === 'appointment.cancelled' && r.subject === subject);
    } finally {
      sim.writes.holdEchoes = false;
      sim.writes.releaseEchoes();
    }
  });

  it("a move whose answer was lost: the retry takes the new booking from Docplanner's move chain, and a cancel goes to it before any notification", async () => {
    const { subject, bookingId } = await bookedAppointment();
    sim.writes.holdEchoes = true;
    try {
      sim.writes.loseAnswers(1, 502, new RegExp(`/bookings/${bookingId}/move$`));
      const move = await api('POST', '/v1/commands', {
        type: 'appointment.reschedule',
        subject,
        data: { start: '2026-06-04T09:00:00+02:00' },
      });
      const newId = () =>
        [...sim.bookings.entries()].find(([, b]) => b.booking.start_at === '2026-06-04T09:00:00+02:00')?.[0];
      // Before the fix: done without the new id, and the cancel below waited for the notification.
      expect(await finished(move.json.id)).toMatchObject({
        status: 'succeeded',
        result: { vendorIds: [newId()], alreadyDone: true },
      });
      const cancel = await api('POST', '/v1/commands', { type: 'appointment.cancel', subject, data: {} });
      expect(await finished(cancel.json.id)).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect(
        sim.writes.log
          .filter((w) => w.method === 'DELETE')
          .map((w) => w.path.split('/').at(-1))
          .filter((id) => id === bookingId || id === newId()),
      ).toEqual([newId()]);
    } finally {
      sim.writes.holdEchoes = false;
      sim.writes.releaseEchoes();
    }
  });

  it('a cancel after a move whose answer was lost waits for the move to be notified, then cancels the new booking (a booking Docplanner has no move chain for)', async () => {
    const { subject, bookingId } = await bookedAppointment();
    sim.writes.holdEchoes = true;
    // Bookings created before 2 April 2025: getBooking's booking.moving answers null.
    sim.writes.movingChains = false;
    try {
      // Docplanner moves the booking but the answer is lost (502): the retry finds the old booking
      // canceled by the move and is done without the new id.
      sim.writes.loseAnswers(1, 502, new RegExp(`/bookings/${bookingId}/move$`));
      const move = await api('POST', '/v1/commands', {
        type: 'appointment.reschedule',
        subject,
        data: { start: '2026-06-02T09:00:00+02:00' },
      });
      expect(await finished(move.json.id)).toMatchObject({
        status: 'succeeded',
        result: { vendorIds: [], alreadyDone: true },
      });
      const newId = [...sim.bookings.entries()].find(
        ([, b]) => b.booking.start_at === '2026-06-02T09:00:00+02:00',
      )![0];
      const cancel = await api('POST', '/v1/commands', { type: 'appointment.cancel', subject, data: {} });
      expect(cancel.status).toBe(202);
      // Before the fix: DELETE of the old booking → 409, re-read canceled, succeeded alreadyDone,
      // the new booking still booked. Now every try waits (no vendor call) until the tries run out.
      const waited = await finished(cancel.json.id);
      expect(waited).toMatchObject({
        status: 'failed',
        attempts: 4,
        error: { kind: 'exhausted', message: expect.stringMatching(/booking-moved notification/) },
      });
      expect(waited.calls).toEqual([]);
      expect(sim.bookings.get(newId)!.booking.status).toBe('booked');
      // Docplanner's booking-moved arrives and aliases the new booking: the cancel, retried, cancels it.
      sim.writes.releaseEchoes();
      await subscriber.waitFor((r) => r.type === 'appointment.rescheduled' && r.subject === subject);
      expect((await api('POST', `/v1/commands/${cancel.json.id}/retry`)).status).toBe(202);
      expect(await finished(cancel.json.id)).toMatchObject({
        status: 'succeeded',
        result: { vendorIds: [] },
      });
      expect(
        sim.writes.log
          .filter((w) => w.method === 'DELETE')
          .map((w) => w.path.split('/').at(-1))
          .filter((id) => id === bookingId || id === newId),
      ).toEqual([newId]);
      expect(sim.bookings.get(newId)!.booking.status).toBe('canceled');
    } finally {
      sim.writes.movingChains = true;
      sim.writes.holdEchoes = false;
      sim.writes.releaseEchoes();
    }
  });

  it("Docplanner's OAuth2 token is kept in memory, never in a stored row", async () => {
    const { subject } = await bookedAppointment();
    const sent = await api('POST', '/v1/commands', { type: 'appointment.mark_arrived', subject, data: {} });
    expect((await finished(sent.json.id)).status).toBe('succeeded');
    // The command called Docplanner with a token (this process's, fetched by an earlier command or now).
    const stored = await sql<{ key: string }>`select key from switchyard.entity_state
      where instance_id in ('dp', 'dp-other') and (key like '%token%' or value::text ilike '%token%')`.execute(
      hub.hub.host.db,
    );
    expect(stored.rows).toEqual([]);
  });

  it('an appointment whose events were purged (retention) is still known: it can be cancelled', async () => {
    const { subject, bookingId } = await bookedAppointment();
    const db = hub.hub.host.db;
    // Its events reach the events' retention age (90 days) and the hub's own purge deletes them.
    await sql`update switchyard.events set created_at = now() - interval '91 days'
      where subject = ${subject}`.execute(db);
    // The pull subscriptions earlier tests made have read every event: retention keeps an enabled
    // pull subscription's unread events (`retention.unreadEvents`).
    await sql`insert into switchyard.feed_cursors (subscription_id, cursor)
      select id, (select max(sequence) from switchyard.events) from switchyard.subscriptions where kind = 'pull'
      on conflict (subscription_id) do update set cursor = excluded.cursor`.execute(db);
    // (An event stays while a delivery of it is unfinished: the subscriber's answer may still be on its way.)
    await eventually(async () => {
      await hub.hub.retention.purge();
      const left = await sql<{ n: number }>`select count(*)::int as n from switchyard.events
        where subject = ${subject}`.execute(db);
      return left.rows[0]!.n === 0;
    }, 'the appointment’s events purged');

    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.cancel',
      subject,
      data: { reason: 'after the retention period' },
    });
    expect(sent.status).toBe(202);
    const done = await finished(sent.json.id);
    expect(done.status).toBe('succeeded');
    expect(
      sim.writes.log.filter((w) => w.method === 'DELETE' && w.path.endsWith(`/bookings/${bookingId}`)),
    ).toHaveLength(1);
    // Its cancellation is known from the current state too: a further command is refused at once.
    await subscriber.waitFor((r) => r.type === 'appointment.cancelled' && r.subject === subject);
    const late = await api('POST', '/v1/commands', { type: 'appointment.cancel', subject, data: {} });
    expect(late.status).toBe(409);
    expect(late.json.code).toBe('SY_COMMAND_TARGET_STATE');
  });
});

describe('a command waiting for its retry', () => {
  it('is not sent once its appointment was cancelled meanwhile: failed, saying so, without a vendor call', async () => {
    const { subject, bookingId } = await bookedAppointment();
    // The first try answered 503 with Retry-After: 2: the retry waits 2 s, and the patient
    // cancels in Docplanner meanwhile.
    sim.failNext(1, 503, 2, new RegExp(`/bookings/${bookingId}/presence/patient$`));
    const sent = await api('POST', '/v1/commands', { type: 'appointment.mark_arrived', subject, data: {} });
    expect(sent.status).toBe(202);
    await eventually(async () => {
      const c = (await api('GET', `/v1/commands/${sent.json.id}`)).json;
      return c.status === 'pending' && c.attempts === 1 ? c : undefined;
    }, 'the first try failed and the retry waits');
    const booking = sim.bookings.get(bookingId)!.booking;
    await sim.push(
      bookingNotification(
        'booking-canceled',
        { ...booking, status: 'canceled', canceled_by: 'patient', canceled_at: dpTime(Date.now()) },
        dpTime(Date.now()),
      ),
      { hookUrl: `${hub.url}/hooks/dp` },
    );
    await subscriber.waitFor((r) => r.type === 'appointment.cancelled' && r.subject === subject);
    const done = await finished(sent.json.id, 'the command finished');
    // Before: the retry called Docplanner's presence endpoint on the cancelled booking.
    expect(done).toMatchObject({
      status: 'failed',
      attempts: 2,
      error: {
        kind: 'permanent',
        // The first try's write was answered 503: it may have been carried out, and is said so.
        message: `${subject} was cancelled since the command was accepted; not sent; an earlier try wrote to the vendor without an answer that refused it (see calls): it may have been carried out`,
      },
    });
    const presence = (done.calls as { url: string; attempt: number }[]).filter((c) =>
      c.url.endsWith('/presence/patient'),
    );
    expect(presence.map((c) => c.attempt)).toEqual([1]);
  });

  it('a move whose answer was lost, its appointment cancelled meanwhile: failed unsent, saying the earlier move may have been carried out', async () => {
    const { subject, bookingId } = await bookedAppointment();
    // The move reached Docplanner and was made; the gateway answered 503 with Retry-After: 2.
    sim.failNext(1, 503, 2, new RegExp(`/bookings/${bookingId}/move$`));
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.reschedule',
      subject,
      data: { start: '2026-03-11T09:00:00+01:00' },
    });
    expect(sent.status).toBe(202);
    await eventually(async () => {
      const c = (await api('GET', `/v1/commands/${sent.json.id}`)).json;
      return c.status === 'pending' && c.attempts === 1 ? c : undefined;
    }, 'the first try failed and the retry waits');
    const booking = sim.bookings.get(bookingId)!.booking;
    await sim.push(
      bookingNotification(
        'booking-canceled',
        { ...booking, status: 'canceled', canceled_by: 'patient', canceled_at: dpTime(Date.now()) },
        dpTime(Date.now()),
      ),
      { hookUrl: `${hub.url}/hooks/dp` },
    );
    await subscriber.waitFor((r) => r.type === 'appointment.cancelled' && r.subject === subject);
    // Before: "… was cancelled since the command was accepted; not sent", read by the sender as
    // no move made, while the first try's move may have been.
    expect(await finished(sent.json.id, 'the command finished')).toMatchObject({
      status: 'failed',
      attempts: 2,
      error: {
        kind: 'permanent',
        message: expect.stringMatching(
          /was cancelled since the command was accepted; not sent; an earlier try wrote .* it may have been carried out$/,
        ),
      },
    });
  });
});

describe("a command's outcome event and the pull feed", () => {
  it("is stored last in its transaction: a wait for the next command's job does not hold its sequence uncommitted", async () => {
    // The pull feed serves past an uncommitted sequence once the event after it is 3 s old
    // (FEED_COMMIT_WINDOW_S): an outcome event stored before a statement that then waited (here
    // for the job table, locked by this test as pg-boss's own work can) committed after its
    // readers had moved on. The command's transaction is caught waiting on that lock, and must not
    // have written an event yet (a fault-injection audit: a pull reader never got the event).
    const { subject } = await bookedAppointment();
    sim.writes.echoes = false;
    const { reached, release } = holdNextVendorWrite();
    const locker = new pg.Client({ connectionString: db.url() });
    await locker.connect();
    const observer = new pg.Client({ connectionString: db.url() });
    await observer.connect();
    try {
      const first = await api('POST', '/v1/commands', {
        type: 'appointment.mark_arrived',
        subject,
        data: {},
      });
      await reached;
      // Queued behind the first: its job is sent by the first one's finishing transaction.
      const second = await api('POST', '/v1/commands', { type: 'appointment.cancel', subject, data: {} });
      expect([first.status, second.status]).toEqual([202, 202]);
      await locker.query('begin');
      await locker.query('lock table switchyard_queue.job in share mode');
      release();
      const waiting = await eventually(async () => {
        // Not on the locker's connection: pg_stat_activity is read once per transaction.
        const r = await observer.query<{ pid: number }>(
          `select a.pid from pg_stat_activity a
            where a.wait_event_type = 'Lock' and a.pid <> pg_backend_pid()
              and a.query ilike '%insert into%job%'`,
        );
        return r.rows[0];
      }, "the first command's transaction waiting to queue the second");
      const wrote = await observer.query(
        `select 1 from pg_locks where pid = $1 and relation = 'switchyard.events'::regclass
            and mode = 'RowExclusiveLock'`,
        [waiting.pid],
      );
      // Before: the outcome event was inserted (its sequence drawn) before the job.
      expect(wrote.rows).toEqual([]);
      await locker.query('commit');
      const done = await finished(second.json.id, 'the second command finished');
      expect(done.status).toBe('succeeded');
      expect((await api('GET', `/v1/commands/${first.json.id}`)).json.status).toBe('succeeded');
      await subscriber.waitFor(
        (r) => r.type === 'command.succeeded' && r.text.includes(first.json.id as string),
      );
    } finally {
      await locker.query('rollback').catch(() => {});
      await locker.end();
      await observer.end();
      sim.writes.onRequest = undefined;
      sim.writes.echoes = true;
    }
  });
});

/**
 * A hub restarted with a lease of 10 minutes, no sweep and its log lines kept, whose
 * appointment.mark_arrived the vendor carries out while the database refuses the hub: the run ends
 * without storing its outcome. The database is left refusing; the caller lets it in again (and ends
 * `admin`, and clears `sim.writes.onRequest`).
 */
async function markArrivedCutShort() {
  await hub.stop();
  const lines: { msg: string; command?: string; leaseEndsAt?: string }[] = [];
  hub = await startHub(
    { sweepIntervalMs: 0, leaseMs: 600_000 },
    pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) }),
  );
  sim.writes.hookUrl = `${hub.url}/hooks/dp`;
  const { subject } = await bookedAppointment();
  const { reached, release } = holdNextVendorWrite();
  const admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await admin.connect();
  try {
    const sent = await api('POST', '/v1/commands', { type: 'appointment.mark_arrived', subject, data: {} });
    expect(sent.status).toBe(202);
    await reached;
    // The vendor carries the call out while the hub cannot store its outcome.
    await setConnectionsAllowed(admin, db.name(), false);
    release();
    // The run ended without storing its outcome (logged once the job gave up on it).
    await eventually(
      async () => lines.some((l) => /command job failed|a command cut short/.test(l.msg)),
      'the outcome not stored while the database refuses',
    );
    return { lines, admin, sent };
  } catch (error) {
    await setConnectionsAllowed(admin, db.name(), true).catch(() => {});
    await admin.end();
    sim.writes.onRequest = undefined;
    throw error;
  }
}

describe('a command cut short by a database outage', () => {
  it('is given back once the database answers again, not when its lease runs out', async () => {
    // A lease of 10 minutes and no sweep: only the process giving the command back can run it
    // again within this test (before: \`running\` until the lease ran out, then the sweep).
    const { admin, sent } = await markArrivedCutShort();
    try {
      await setConnectionsAllowed(admin, db.name(), true);
      const done = await finished(sent.json.id, 'the command run again and finished', 30_000);
      // The try the database cut short is given back: it spends none of the command's tries
      // (before: attempts 2).
      expect(done).toMatchObject({ status: 'succeeded', attempts: 1 });
    } finally {
      await setConnectionsAllowed(admin, db.name(), true).catch(() => {});
      await admin.end();
      sim.writes.onRequest = undefined;
    }
  });

  it("a booking Docplanner made while the database was cut is found by the run after: succeeded with it, booked once, and its slot-booked is the command's echo", async () => {
    const start = '2026-04-03T09:30:00+02:00';
    const { reached, release } = holdNextVendorWrite();
    // The echo comes after the command has finished: the audit's case, where it had failed.
    sim.writes.holdEchoes = true;
    const admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
    await admin.connect();
    try {
      const sent = await api('POST', '/v1/commands', {
        type: 'appointment.book',
        instance: 'dp',
        data: dpBook(start, { name: 'Pola', phone: '+48500100207', email: 'pola@example.com' }),
      });
      expect(sent.status).toBe(202);
      await reached;
      // Docplanner books while the hub cannot store the answer (nor the connector its record of it).
      await setConnectionsAllowed(admin, db.name(), false);
      release();
      await eventually(
        async () => sim.writes.log.some((w) => w.path.endsWith(`/slots/${encodeURIComponent(start)}/book`)),
        'the booking made at Docplanner',
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      await setConnectionsAllowed(admin, db.name(), true);
      const done = await finished(sent.json.id, 'the command run again and finished', 30_000);
      const booked = [...sim.bookings.entries()].filter(([, b]) => b.booking.start_at === start);
      expect(booked).toHaveLength(1);
      // Before: failed, "outcome unknown, not sent again".
      expect(done).toMatchObject({
        status: 'succeeded',
        result: { vendorIds: [booked[0]![0]], alreadyDone: true },
      });
      expect(
        sim.writes.log.filter((w) => w.path.endsWith(`/slots/${encodeURIComponent(start)}/book`)),
      ).toHaveLength(1);
      sim.writes.releaseEchoes();
      const echo = await subscriber.waitFor(
        (r) => r.type === 'appointment.created' && r.subject === `appointment/${done.result.appointmentId}`,
      );
      expect(causedBy(echo)).toEqual({ commandId: sent.json.id });
    } finally {
      await setConnectionsAllowed(admin, db.name(), true).catch(() => {});
      await admin.end();
      sim.writes.onRequest = undefined;
      sim.writes.holdEchoes = false;
      sim.writes.releaseEchoes();
    }
  });
});

describe('a graceful stop while the database is away', () => {
  it('says which command it leaves running, and until when, when the database cut its run short', async () => {
    const { lines, admin, sent } = await markArrivedCutShort();
    try {
      // The commands stop while the database still refuses: the command cannot be given back.
      await hub.commands.stop();
      // Before: nothing said; the command sat running for its lease (here 10 minutes).
      const said = lines.find(
        (l) => l.command === sent.json.id && /stays running until its lease ends/.test(l.msg),
      );
      expect(said).toBeDefined();
      expect(Date.parse(said!.leaseEndsAt!)).toBeGreaterThan(Date.now() + 500_000);
    } finally {
      await setConnectionsAllowed(admin, db.name(), true).catch(() => {});
      await admin.end();
      sim.writes.onRequest = undefined;
    }
  });
});

describe('a retry at its time', () => {
  it("runs a delayed retry when it comes due, not at the queue's backstop poll or the sweep", async () => {
    // No sweep, and a retry a second after the failure: only the retry's own wake-up can run it
    // before the worker's 30 s backstop poll (a 1 s retry ran after 5-20 s: a commands audit).
    await hub.stop();
    hub = await startHub({ sweepIntervalMs: 0, retryScheduleMs: [1000] });
    sim.writes.hookUrl = `${hub.url}/hooks/dp`;
    const { subject, bookingId } = await bookedAppointment();
    sim.failNext(1, 503, undefined, new RegExp(`/bookings/${bookingId}/presence/patient$`));
    const sent = await api('POST', '/v1/commands', { type: 'appointment.mark_arrived', subject, data: {} });
    expect(sent.status).toBe(202);
    const done = await finished(sent.json.id, 'the retried command finished', 20_000);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 2 });
    const [first, second] = (done.calls as { url: string; startedAt: string; statusCode: number }[]).filter(
      (c) => c.url.endsWith('/presence/patient'),
    );
    expect([first?.statusCode, second?.statusCode]).toEqual([503, 204]);
    const gapMs = Date.parse(second!.startedAt) - Date.parse(first!.startedAt);
    expect(gapMs).toBeGreaterThanOrEqual(1000);
    expect(gapMs).toBeLessThan(10_000);
  });
});

describe('a run longer than its lease', () => {
  it('keeps its lease while the vendor takes its time: the sweep does not run the command again beside it', async () => {
    // A 1 s lease and a sweep every 200 ms, and a vendor call held 3 s: before, the lease ran out
    // mid-call, the sweep sent the job again and a second run called the vendor beside the first
    // (a commands audit: a 5 s lease and a 15 s answer ran a command twice).
    await hub.stop();
    hub = await startHub({ sweepIntervalMs: 200, leaseMs: 1_000 });
    sim.writes.hookUrl = `${hub.url}/hooks/dp`;
    const { subject } = await bookedAppointment();
    const { reached, release } = holdNextVendorWrite();
    try {
      const sent = await api('POST', '/v1/commands', { type: 'appointment.mark_arrived', subject, data: {} });
      expect(sent.status).toBe(202);
      await reached;
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      release();
      const done = await finished(sent.json.id, 'the command finished', 20_000);
      expect(done).toMatchObject({ status: 'succeeded', attempts: 1 });
      const presence = (done.calls as { url: string }[]).filter((c) => c.url.endsWith('/presence/patient'));
      expect(presence).toHaveLength(1);
    } finally {
      sim.writes.onRequest = undefined;
    }
  });

  it('taken over mid-call when its renewals fail, a booking is checked by the next run, not sent again: one booking', async () => {
    // What makes a lease shorter than a vendor call safe (commands.lease, 30 s by default): the
    // run's renewals refused (its process cut from the database while other processes are not),
    // a 1 s lease runs out while Docplanner holds the book, and the sweep hands the command to
    // another run. That run finds the first one's `sent` mark and lists the slot's bookings
    // instead of booking again (docs/operations.md, "Command leases").
    await hub.stop();
    hub = await startHub({ sweepIntervalMs: 200, leaseMs: 1_000 });
    sim.writes.hookUrl = `${hub.url}/hooks/dp`;
    const admin = new pg.Client({ connectionString: db.url() });
    await admin.connect();
    await admin.query(`create function public.refuse_renewal() returns trigger language plpgsql as $$
      begin
        if old.status = 'running' and new.status = 'running' and new.attempts = old.attempts
           and new.locked_until is distinct from old.locked_until then
          raise exception 'renewal refused (test)';
        end if;
        return new;
      end $$`);
    await admin.query(`create trigger refuse_renewal before update on switchyard.commands
      for each row execute function public.refuse_renewal()`);
    const { reached, release } = holdNextVendorWrite();
    try {
      const sent = await api('POST', '/v1/commands', {
        type: 'appointment.book',
        instance: 'dp',
        data: dpBook('2026-04-07T10:00:00+02:00', { name: 'Ola', phone: '+48500100299' }),
      });
      expect(sent.status).toBe(202);
      await reached;
      // Taken over while the book is still open at Docplanner.
      await eventually(
        async () => (await api('GET', `/v1/commands/${sent.json.id}`)).json.attempts >= 2,
        'a second run took the command over',
      );
      release();
      await admin.query('drop trigger refuse_renewal on switchyard.commands');
      const done = await finished(sent.json.id, 'the booking finished', 20_000);
      expect(done.status).toBe('succeeded');
      const calls = done.calls as { method: string; url: string }[];
      expect(calls.filter((c) => c.method === 'POST' && c.url.endsWith('/book'))).toHaveLength(1);
      expect(calls.some((c) => c.method === 'GET' && c.url.endsWith('/bookings'))).toBe(true);
      // Its jobs' pg-boss expiry is not the lease: the handler holds a job only until the command
      // has a slot, and expired there pg-boss fails the batch and stops fetching (it was the lease).
      const expiry = await admin.query<{ s: number }>(
        `select distinct expire_seconds as s from switchyard_queue.job where name = 'switchyard-command' and data->>'id' = $1`,
        [sent.json.id],
      );
      expect(expiry.rows).toEqual([{ s: 120 }]);
    } finally {
      release();
      sim.writes.onRequest = undefined;
      await admin.query('drop trigger if exists refuse_renewal on switchyard.commands');
      await admin.query('drop function if exists public.refuse_renewal()');
      await admin.end();
    }
  });

  it('renews its lease one statement at a time: a renewal the database holds up is not joined by another every third of the lease', async () => {
    await hub.stop();
    hub = await startHub({ sweepIntervalMs: 200, leaseMs: 1_000 });
    sim.writes.hookUrl = `${hub.url}/hooks/dp`;
    const { subject } = await bookedAppointment();
    const { reached, release } = holdNextVendorWrite();
    const locker = new pg.Client({ connectionString: db.url() });
    await locker.connect();
    try {
      const sent = await api('POST', '/v1/commands', { type: 'appointment.mark_arrived', subject, data: {} });
      expect(sent.status).toBe(202);
      await reached;
      // The command's row locked for 2 s while its vendor call runs: each renewal waits for it.
      await locker.query('begin');
      await locker.query('select 1 from switchyard.commands where id = $1 for update', [sent.json.id]);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const waiting = await locker.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and query like '%set locked_until = now()%'`,
      );
      // Before: a renewal every 333 ms, each waiting on its own pooled connection (6 here).
      expect(waiting.rows[0]!.n).toBeLessThanOrEqual(1);
      await locker.query('rollback');
      release();
      const done = await finished(sent.json.id, 'the command finished', 20_000);
      // Held past its lease, the command may have been taken over (attempts 2): it still ends.
      expect(done.status).toBe('succeeded');
    } finally {
      sim.writes.onRequest = undefined;
      await locker.query('rollback').catch(() => {});
      await locker.end();
    }
  });
});

describe('appointment.confirm (Docplanner confirmBooking) through a started hub', () => {
  /** A Docplanner appointment whose visit is `days` ahead (Docplanner refuses to confirm a past visit). */
  const upcoming = (days = 7) => bookedAppointment(dpTime(Date.now() + days * 86_400_000));
  const confirmsOf = (bookingId: string) =>
    sim.writes.log
      .filter((w) => w.path.endsWith(`/bookings/${bookingId}/confirm`))
      .map((w) => ({ method: w.method, body: w.body, status: w.lostStatus ?? w.status }));

  it("PUT …/confirm at Docplanner, command.succeeded, and Docplanner's booking-confirmed is appointment.confirmed with causedBy; a second confirm is done already", async () => {
    const { subject, bookingId } = await upcoming();
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.confirm',
      subject,
      data: { actor: { kind: 'patient' } },
    });
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;
    const outcome = await subscriber.waitFor(
      (r) => r.type === 'command.succeeded' && r.subject === `command/${id}`,
    );
    expect((outcome.json as { data: unknown }).data).toMatchObject({
      commandType: 'appointment.confirm',
      target: subject,
      instance: 'dp',
      attempts: 1,
    });
    // The patient confirmed: Docplanner's `user`.
    expect(confirmsOf(bookingId)).toEqual([{ method: 'PUT', body: { confirmed_by: 'user' }, status: 204 }]);
    const echo = await subscriber.waitFor((r) => r.type === 'appointment.confirmed' && r.subject === subject);
    expect(causedBy(echo)).toEqual({ commandId: id });

    // Confirming again (the front desk's second call): Docplanner's 409 "already confirmed" is success.
    const again = await api('POST', '/v1/commands', { type: 'appointment.confirm', subject, data: {} });
    expect(await finished(again.json.id)).toMatchObject({
      status: 'succeeded',
      attempts: 1,
      result: { alreadyDone: true },
    });
    expect(confirmsOf(bookingId).map((c) => c.status)).toEqual([204, 409]);
    expect(confirmsOf(bookingId)[1]!.body).toEqual({ confirmed_by: 'admin' });
  });

  it('refused at once, nothing sent: a cancelled appointment (409), an unknown one or a wrong shape (422), a BookingBug or Clockwise.MD appointment (unsupported)', async () => {
    const { subject, bookingId } = await upcoming();
    const writes = sim.writes.log.length;
    const cases: [unknown, number, string][] = [
      [
        { type: 'appointment.confirm', subject: 'appointment/nope', data: {} },
        422,
        'SY_COMMAND_UNKNOWN_TARGET',
      ],
      [{ type: 'appointment.confirm', instance: 'dp', data: {} }, 422, 'SY_COMMAND_INVALID'],
      [
        { type: 'appointment.confirm', subject, data: { actor: { kind: 'robot' } } },
        422,
        'SY_COMMAND_INVALID',
      ],
      [{ type: 'appointment.confirm', subject, data: { reason: 'called' } }, 422, 'SY_COMMAND_INVALID'],
    ];
    for (const [body, status, code] of cases) {
      const res = await api('POST', '/v1/commands', body);
      expect([res.status, res.json.code], JSON.stringify(body)).toEqual([status, code]);
    }
    // Cancelled in Docplanner (the hub has its notification): refused as the other commands are.
    const known = sim.bookings.get(bookingId);
    await sim.push(
      bookingNotification(
        'booking-canceled',
        { ...(known?.booking ?? { id: bookingId }), id: bookingId, status: 'canceled', canceled_by: 'user' },
        dpTime(Date.now()),
      ),
      { hookUrl: `${hub.url}/hooks/dp` },
    );
    await subscriber.waitFor((r) => r.type === 'appointment.cancelled' && r.subject === subject);
    const cancelled = await api('POST', '/v1/commands', { type: 'appointment.confirm', subject, data: {} });
    expect(cancelled.status).toBe(409);
    expect(cancelled.json).toMatchObject({
      code: 'SY_COMMAND_TARGET_STATE',
      details: { status: 'cancelled' },
    });
    expect(sim.writes.log.length).toBe(writes);

    // Neither BookingBug / JRNI nor Clockwise.MD publishes a confirm call.
    const bbId = 88_000 + (nextBooking % 1000);
    const jrni = fixture('bookingbug', 'jrni-data-create.json');
    (jrni.appointment as { bookingId: number }).bookingId = bbId;
    await bbSim.push(jrni, { bookingUrl: `${hub.url}/hooks/bb` });
    const bb = await subscriber.waitFor(
      (r) =>
        r.type === 'appointment.created' &&
        (r.json as { source?: string } | undefined)?.source === 'bb' &&
        r.text.includes(`"${bbId}"`),
    );
    const cwId = 79_000 + (nextBooking % 1000);
    cwSim.setAppointment({ id: cwId, first_name: 'Maria', last_name: 'Lopez', extra_fields: [] });
    await cwSim.push({ appointment_id: cwId, event_type: 'create' }, { hookUrl: `${hub.url}/hooks/cw` });
    const cw = await subscriber.waitFor(
      (r) =>
        r.type === 'appointment.created' &&
        (r.json as { source?: string } | undefined)?.source === 'cw' &&
        r.text.includes(`"value":"${cwId}"`),
    );
    const before = (await api('GET', '/v1/commands?limit=500')).json.items.length;
    for (const [created, connector] of [
      [bb, 'bookingbug'],
      [cw, 'clockwisemd'],
    ] as const) {
      const refused = await api('POST', '/v1/commands', {
        type: 'appointment.confirm',
        subject: created.subject,
        data: {},
      });
      expect([refused.status, refused.json.code]).toEqual([422, 'SY_COMMAND_UNSUPPORTED']);
      expect(refused.json.details).toMatchObject({ connector, type: 'appointment.confirm' });
    }
    expect((await api('GET', '/v1/commands?limit=500')).json.items.length).toBe(before);
  });

  it("after a move through the hub the confirm goes to the new booking id, and Docplanner's booking-confirmed about it is the confirm's echo", async () => {
    const { subject, bookingId } = await upcoming();
    const moved = await api('POST', '/v1/commands', {
      type: 'appointment.reschedule',
      subject,
      data: { start: dpTime(Date.now() + 8 * 86_400_000), durationMinutes: 30 },
    });
    const move = await finished(moved.json.id);
    expect(move.status).toBe('succeeded');
    const newId = move.result.vendorIds[0] as string;
    expect(newId).not.toBe(bookingId);
    const sent = await api('POST', '/v1/commands', { type: 'appointment.confirm', subject, data: {} });
    expect(await finished(sent.json.id)).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(confirmsOf(bookingId)).toEqual([]);
    expect(confirmsOf(newId)).toEqual([{ method: 'PUT', body: { confirmed_by: 'admin' }, status: 204 }]);
    const echo = await subscriber.waitFor(
      (r) =>
        r.type === 'appointment.confirmed' && r.subject === subject && r.text.includes(`"value":"${newId}"`),
    );
    expect(causedBy(echo)).toEqual({ commandId: sent.json.id });
  });

  it('a confirm whose answer was lost (502 after Docplanner confirmed) is sent again and succeeds, confirmed once; a 503 that did nothing is retried', async () => {
    const { subject, bookingId } = await upcoming();
    const mine = new RegExp(`/bookings/${bookingId}/confirm$`);
    sim.writes.loseAnswers(1, 502, mine);
    sim.writes.echoDelayMs = 0;
    try {
      const sent = await api('POST', '/v1/commands', { type: 'appointment.confirm', subject, data: {} });
      expect(await finished(sent.json.id)).toMatchObject({
        status: 'succeeded',
        attempts: 2,
        result: { alreadyDone: true },
      });
      expect(confirmsOf(bookingId).map((c) => c.status)).toEqual([204, 409]);
      const echo = await subscriber.waitFor(
        (r) => r.type === 'appointment.confirmed' && r.subject === subject,
      );
      expect(causedBy(echo)).toEqual({ commandId: sent.json.id });
    } finally {
      sim.writes.echoDelayMs = 100;
    }
    const other = await upcoming();
    sim.failNext(1, 503, undefined, new RegExp(`/bookings/${other.bookingId}/confirm$`));
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.confirm',
      subject: other.subject,
      data: {},
    });
    const done = await finished(sent.json.id);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(done.result.alreadyDone).toBeUndefined();
    expect(sim.writes.confirmed.get(other.bookingId)).toBe('admin');
  });
});

/**
 * Restarts the hub with its log lines collected at `level`, and has Clockwise.MD announce
 * appointment `id` through it: the lines, and the created event whose subject a command targets.
 */
async function loggedHubWithCwAppointment(level: string, id: number, first: string, last: string) {
  await hub.stop();
  const lines: Record<string, unknown>[] = [];
  hub = await startHub({}, pino({ level }, { write: (line: string) => lines.push(JSON.parse(line)) }));
  cwSim.setAppointment({ id, first_name: first, last_name: last, extra_fields: [] });
  await cwSim.push({ appointment_id: id, event_type: 'create' }, { hookUrl: `${hub.url}/hooks/cw` });
  const created = await subscriber.waitFor(
    (r) => r.type === 'appointment.created' && r.text.includes(`"value":"${id}"`),
  );
  cwSim.writes.hookUrl = `${hub.url}/hooks/cw`;
  return { lines, created };
}

describe('a command that fails', () => {
  it('is a warning naming the command, its instance and the vendor answer, and is counted per instance', async () => {
    // Before: `command failed` at info level with neither reason nor vendor status (each retry
    // before it was a warning), and switchyard_commands_total said which type failed, not where.
    const { lines, created } = await loggedHubWithCwAppointment('info', 72_000, 'Maria', 'Lopez');
    cwSim.failApi(1, { status: 401, body: { error: 'Unauthorized' } });
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject: created.subject,
      data: { customFields: { '104': 'verified' } },
    });
    expect(sent.status).toBe(202);
    const done = await finished(sent.json.id);
    expect(done.status).toBe('failed');
    const line = lines.find((l) => l.command === sent.json.id && /^command failed/.test(String(l.msg)));
    expect(line).toMatchObject({
      level: 40,
      instance: 'cw',
      type: 'appointment.update',
      status: 'failed',
      kind: 'permanent',
      vendorStatus: 401,
    });
    expect(String(line!.reason)).toMatch(/401/);
    expect(JSON.stringify(lines)).not.toContain(CW_API_KEY);
    const metrics = await (await fetch(`${hub.url}/metrics`)).text();
    expect(metrics).toMatch(
      /^switchyard_commands_total\{instance="cw",type="appointment.update",outcome="failed"\} 1$/m,
    );
  });
});

describe('commands retried while their vendor fails', () => {
  it('are warned about once per instance, not once per command and attempt', async () => {
    // Before: "command will be retried" was a warning for every command and every attempt, so a
    // vendor down through a backlog of commands wrote one per attempt, without bound.
    const { lines, created } = await loggedHubWithCwAppointment('debug', 72_100, 'Ana', 'Ruiz');
    cwSim.failApi(2, { status: 503, body: { error: 'Service Unavailable' } });
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject: created.subject,
      data: { customFields: { '104': 'checked' } },
    });
    expect(sent.status).toBe(202);
    const done = await finished(sent.json.id);
    expect(done.attempts).toBeGreaterThanOrEqual(3);
    const said = lines.filter((l) => l.msg !== undefined && /^command will be retried/.test(String(l.msg)));
    expect(said.length).toBeGreaterThanOrEqual(2);
    const warnings = said.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ instance: 'cw', suppressed: 0 });
  });
});

describe("pg-boss's own job table out of disk space", () => {
  it('while commands are sent: every command runs once the disk has room, each booked once; said without a stack', async () => {
    await hub.stop();
    const lines: Array<{ level: number; msg: string }> = [];
    hub = await startHub(
      {},
      pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) }),
    );
    sim.writes.hookUrl = `${hub.url}/hooks/dp`;
    const admin = new pg.Pool({ connectionString: db.url(), max: 1 });
    // pg-boss's fetch (a job taken: `update … set state = 'active'`) and its completion are updates
    // of its job table: a real 53100 on each. The commands' jobs are still inserted (202).
    const full = await injectSqlstate(admin, SQLSTATE_FAULTS.diskFull, {
      schema: 'switchyard_queue',
      table: 'job',
      on: ['update'],
    });
    const starts = ['2026-04-04T10:00:00+02:00', '2026-04-04T10:30:00+02:00', '2026-04-04T11:00:00+02:00'];
    const from = lines.length;
    let ids: string[];
    let during: unknown[];
    try {
      ids = [];
      for (const [i, start] of starts.entries()) {
        const sent = await api('POST', '/v1/commands', {
          type: 'appointment.book',
          instance: 'dp-other',
          data: dpBook(start, { name: `Boss ${i}`, phone: `+4850010040${i}` }),
        });
        expect(sent.status).toBe(202);
        ids.push(sent.json.id);
      }
      await eventually(async () => (await full.raised()) >= 3, 'pg-boss refused three times');
      during = await Promise.all(ids.map(async (id) => (await api('GET', `/v1/commands/${id}`)).json.status));
    } finally {
      await full.clear();
    }
    const done = await Promise.all(ids.map((id) => finished(id, `command ${id} after the clear`, 30_000)));
    console.info("disk full at pg-boss's job updates (commands)", {
      during,
      done: done.map((d) => [d.status, d.attempts]),
      warnings: lines.slice(from).filter((l) => l.level >= 40).length,
    });
    // Waiting while pg-boss could not hand their jobs over, none failed, none spent a try.
    expect(during).toEqual(['pending', 'pending', 'pending']);
    expect(done.map((d) => [d.status, d.attempts])).toEqual([
      ['succeeded', 1],
      ['succeeded', 1],
      ['succeeded', 1],
    ]);
    for (const start of starts)
      expect(
        sim.writes.log
          .filter((w) => w.path.endsWith(`/slots/${encodeURIComponent(start)}/book`))
          .map((w) => w.status),
      ).toEqual([200]);
    const logged = lines.slice(from);
    expect(logged.filter((l) => l.level >= 50)).toEqual([]);
    expect(logged.filter((l) => JSON.stringify(l).includes('"stack"'))).toEqual([]);
    expect(logged.some((l) => /Postgres is out of disk space/.test(l.msg))).toBe(true);
    await admin.end();
  });
});
