// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config text uses ${env:...} references on purpose.
/**
 * Cliniko's presence and notes commands end to end through a started hub process: a command → the
 * Cliniko simulator's API over real HTTP → `command.succeeded`, then the next poll lists the changed
 * appointment and its event (appointment.arrived, no_show, status_reverted, updated) carries
 * `data.causedBy`. Cliniko has no webhooks: the echo is what the poller reads after the write.
 */
import { ClinikoSimulator } from '@switchyard/connector-cliniko/simulator';
import { fixtureSettings } from '@switchyard/connector-cliniko/testing';
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../cli/command.ts';
import { parseConfig } from '../config/load.ts';
import { shippedConnectors } from '../connectors.ts';
import { type HubProcess, startHubProcess } from '../runtime/process.ts';

const db = useTestDatabase();
const ADMIN = 'cliniko-commands-admin-token-0123';
const SIGNING = `whsec_${Buffer.from('cliniko-commands-signing-secret!').toString('base64')}`;

let sim: ClinikoSimulator;
let subscriber: RecordingSubscriber;
let hub: HubProcess;

const io = {
  stdout: { write: () => true },
  stderr: { write: () => true },
  cwd: process.cwd(),
} as unknown as CliIO;

function configText(): string {
  return [
    'version: 1',
    'server:',
    '  host: 127.0.0.1',
    '  port: 0',
    '  adminToken: ${env:T_ADMIN}',
    'database:',
    '  url: ${env:T_DB}',
    'secretKey: t-cliniko-commands-secret-0123456',
    'instances:',
    '  - id: cl',
    '    connector: cliniko',
    '    mode: pull',
    '    settings:',
    `      apiKey: ${fixtureSettings.apiKey}`,
    `      userAgent: ${fixtureSettings.userAgent}`,
    `      apiBaseUrl: ${sim.url}`,
    '    pull: { interval: 200ms }',
    'subscriptions:',
    '  - id: front-desk',
    '    kind: webhook',
    `    url: ${subscriber.url}`,
    '    events: ["appointment.*", "command.*"]',
    '    secrets: ["${env:T_SIGNING}"]',
    '    allowPrivateAddresses: true',
    '    retry: { schedule: ["0s", "1s"] }',
    '',
  ].join('\n');
}

// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field in the assertions.
async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${hub.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
}

async function eventually<T>(check: () => Promise<T | undefined>, what: string, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`${what}: not reached in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function finished(id: string) {
  return eventually(async () => {
    const c = (await api('GET', `/v1/commands/${id}`)).json;
    return c.status === 'succeeded' || c.status === 'failed' ? c : undefined;
  }, `command ${id} finished`);
}

/** Cliniko shows updated_at by the second: a write in the second of the last version is not newer. */
async function nextSecond(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1050 - (Date.now() % 1000)));
}

let nextId = 7_000;

/** An appointment Cliniko lists, once the hub has polled it: its subject and Cliniko id. */
async function polledAppointment(
  flags: { patient_arrived?: boolean; did_not_arrive?: boolean } = {},
): Promise<{ subject: string; id: string }> {
  const id = String(nextId++);
  sim.put({
    id,
    created_at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    starts_at: '2026-03-10T10:00:00Z',
    ends_at: '2026-03-10T10:30:00Z',
    patient_arrived: false,
    did_not_arrive: false,
    notes: null,
    cancelled_at: null,
    ...flags,
  });
  const created = await subscriber.waitFor(
    (r) => r.type === 'appointment.created' && r.text.includes(`"value":"${id}"`),
  );
  await nextSecond();
  return { subject: created.subject!, id };
}

const causedBy = (r: { json?: unknown }) => (r.json as { data: { causedBy?: unknown } }).data.causedBy;
const patches = (id: string) =>
  sim.requests
    .filter((r) => r.method === 'PATCH' && r.url === `/v1/individual_appointments/${id}`)
    .map((r) => `${r.status}${r.lostStatus === undefined ? '' : ` ${r.lostStatus}`}`);

beforeAll(async () => {
  subscriber = await startRecordingSubscriber({ secrets: SIGNING });
  sim = new ClinikoSimulator({ apiKey: fixtureSettings.apiKey });
  await sim.start();
  const loaded = parseConfig(configText(), {
    file: 'cliniko-commands.yaml',
    connectors: shippedConnectors,
    env: { T_ADMIN: ADMIN, T_DB: db.url(), T_SIGNING: SIGNING },
  });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  hub = await startHubProcess(loaded.config, {
    io,
    logger: pino({ level: 'silent' }),
    pipeline: { pollIntervalMs: 200, retention: { cron: false } },
    commands: {
      retryScheduleMs: [100, 100, 100],
      retryJitter: 0,
      sweepIntervalMs: 200,
      leaseMs: 10_000,
      retentionCron: false,
    },
  });
});

afterAll(async () => {
  await hub?.stop();
  await subscriber?.close();
  await sim?.close();
});

describe('Cliniko presence and notes commands', () => {
  for (const [type, flags, echo, before] of [
    ['appointment.mark_arrived', { patient_arrived: true, did_not_arrive: false }, 'appointment.arrived', {}],
    // A no-show after an arrival: both flags written, or the arrival would still read first.
    [
      'appointment.mark_no_show',
      { patient_arrived: false, did_not_arrive: true },
      'appointment.no_show',
      { patient_arrived: true },
    ],
    [
      'appointment.clear_presence',
      { patient_arrived: false, did_not_arrive: false },
      'appointment.status_reverted',
      { did_not_arrive: true },
    ],
  ] as const) {
    it(`${type}: PATCH at Cliniko, command.succeeded, and the next poll's ${echo} carries causedBy`, async () => {
      const { subject, id } = await polledAppointment(before);
      const sent = await api('POST', '/v1/commands', { type, subject, data: {} });
      expect(sent.status).toBe(202);
      expect(await finished(sent.json.id)).toMatchObject({ status: 'succeeded' });
      expect(sim.get(id)).toMatchObject(flags);
      expect(patches(id)).toEqual(['200']);
      const echoed = await subscriber.waitFor((r) => r.subject === subject && r.type === echo);
      expect(causedBy(echoed)).toEqual({ commandId: sent.json.id });
    });
  }

  it('appointment.update: data.comment becomes the notes, echoed as appointment.updated (changes: comment) with causedBy; custom fields refused at once', async () => {
    const { subject, id } = await polledAppointment();
    const refused = await api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject,
      data: { comment: 'x', customFields: { '1': 'y' } },
    });
    expect(refused.status).toBe(422);
    expect(refused.json.code).toBe('SY_COMMAND_UNSUPPORTED');
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject,
      data: { comment: 'Bring the referral letter' },
    });
    expect(await finished(sent.json.id)).toMatchObject({ status: 'succeeded' });
    expect(sim.get(id)).toMatchObject({ notes: 'Bring the referral letter' });
    const echoed = await subscriber.waitFor((r) => r.subject === subject && r.type === 'appointment.updated');
    expect((echoed.json as { data: { changes: string[]; comment: string } }).data).toMatchObject({
      changes: ['comment'],
      comment: 'Bring the referral letter',
    });
    expect(causedBy(echoed)).toEqual({ commandId: sent.json.id });
  });

  it("a clear_presence with nothing to clear (no new version, no echo) does not take the next notes change's echo", async () => {
    // Cliniko saves nothing when the flags already are clear: the command is done and nothing is
    // polled. The notes written next are echoed as appointment.updated: the update's echo, not the
    // clear's (which took any appointment.updated as its echo within the window).
    const { subject, id } = await polledAppointment();
    const clear = await api('POST', '/v1/commands', {
      type: 'appointment.clear_presence',
      subject,
      data: {},
    });
    expect(await finished(clear.json.id)).toMatchObject({ status: 'succeeded' });
    await nextSecond();
    const update = await api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject,
      data: { comment: 'Zadzwonić — prośba o fakturę' },
    });
    expect(await finished(update.json.id)).toMatchObject({ status: 'succeeded' });
    expect(sim.get(id)).toMatchObject({ notes: 'Zadzwonić — prośba o fakturę' });
    const echoed = await subscriber.waitFor((r) => r.subject === subject && r.type === 'appointment.updated');
    expect(causedBy(echoed)).toEqual({ commandId: update.json.id });
  });

  it('an update that writes the notes already there (no echo) does not take a practitioner change at the front desk as its echo', async () => {
    // Cliniko saves nothing for the same notes: no version, no echo. The front desk then gives the
    // appointment another practitioner: appointment.updated with changes ["practitioner"], a change
    // the CRM did not make, which it would skip if it carried the update's causedBy.
    const { subject, id } = await polledAppointment();
    sim.put({ id, notes: 'Bring the referral letter' });
    await subscriber.waitFor(
      (r) => r.subject === subject && r.type === 'appointment.updated' && r.text.includes('referral'),
    );
    await nextSecond();
    const update = await api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject,
      data: { comment: 'Bring the referral letter' },
    });
    expect(await finished(update.json.id)).toMatchObject({ status: 'succeeded' });
    await nextSecond();
    sim.put({ id, practitioner: { links: { self: 'https://api.au1.cliniko.com/v1/practitioners/77' } } });
    const staff = await subscriber.waitFor(
      (r) => r.subject === subject && r.type === 'appointment.updated' && r.text.includes('"practitioner"'),
    );
    expect((staff.json as { data: { changes: string[] } }).data.changes).toEqual(['practitioner']);
    expect(causedBy(staff)).toBeUndefined();
  });

  it('an arrival whose answer was lost (502 after Cliniko wrote it) is sent again and succeeds, one change polled, its echo marked', async () => {
    const { subject, id } = await polledAppointment();
    sim.loseAnswers(1, 502);
    const sent = await api('POST', '/v1/commands', { type: 'appointment.mark_arrived', subject, data: {} });
    const done = await finished(sent.json.id);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(patches(id)).toEqual(['502 200', '200']);
    const echoed = await subscriber.waitFor((r) => r.subject === subject && r.type === 'appointment.arrived');
    expect(causedBy(echoed)).toEqual({ commandId: sent.json.id });
    // The second write changed nothing: no other version, so nothing else told about it.
    await new Promise((r) => setTimeout(r, 1500));
    expect(subscriber.requests.filter((r) => r.subject === subject).map((r) => r.type)).toEqual([
      'appointment.created',
      'appointment.arrived',
    ]);
  });

  it('refused at once on a cancelled appointment (409), nothing sent; a Cliniko refusal fails with its words, the key scrubbed', async () => {
    const { subject, id } = await polledAppointment();
    sim.put({ id, cancelled_at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), cancellation_reason: 50 });
    await subscriber.waitFor((r) => r.subject === subject && r.type === 'appointment.cancelled');
    const refused = await api('POST', '/v1/commands', {
      type: 'appointment.mark_arrived',
      subject,
      data: {},
    });
    expect(refused.status).toBe(409);
    expect(patches(id)).toEqual([]);

    const other = await polledAppointment();
    // A refusal quoting the key (a proxy echoing the request): the hub scrubs it, as for every command.
    sim.failNextWrite(403, { message: `API key ${fixtureSettings.apiKey} may not mark attendance` });
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.mark_no_show',
      subject: other.subject,
      data: {},
    });
    const failed = await finished(sent.json.id);
    expect(failed).toMatchObject({
      status: 'failed',
      error: {
        kind: 'permanent',
        message: 'Cliniko no-show answered 403: API key [redacted] may not mark attendance',
      },
    });
    expect(JSON.stringify(failed)).not.toContain(fixtureSettings.apiKey);
  });
});
