// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config files use ${env:...} references on purpose.
/**
 * A hub process killed (`SIGKILL`, its own OS process: `switchyard start`) while a command's vendor
 * call is in flight; a new process on the same database finishes the command, as docs/commands.md
 * documents: at least once. The Docplanner simulator answers slowly and carries the first DELETE
 * out after the kill (the vendor did it, the hub never heard), so the restarted hub's repeated
 * DELETE gets Docplanner's 409 "already canceled", which the handler counts as success.
 *
 * Every call is listed on the command, the dead process's too (recorded before it went out).
 *
 * The same with Clockwise.MD, whose create has no idempotency key and no lookup call: the cancel's
 * repeated remove is refused as already done, and the booking is not sent again: the create webhook
 * Clockwise.MD pushes names the appointment, and the command succeeds with it.
 *
 * The lease is a setting (`commands.lease`, here 2s): the restarted process takes the command over
 * once the dead one's lease runs out, found by the sweep (`commands.sweepInterval`).
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClockwiseSimulator } from '@switchyard/connector-clockwisemd/simulator';
import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { clockwiseInstance, docplannerInstance } from '../commands/command-hub.test-support.ts';
import { type HubChild, startHubIn, tempDir } from '../e2e/helpers.test-support.ts';

const db = useTestDatabase();
const ADMIN = 'command-crash-admin-token-0123456789';
const PUSH_KEY = 'dp-command-crash-push-key-4c1d';
const SIGNING = `whsec_${Buffer.from('command-crash-signing-secret-32b').toString('base64')}`;
const PLACE = { facility: '90211', doctor: '182733', address: '221304' };
const BOOKING = '5100001';

let sim: DocplannerSimulator;
let cwSim: ClockwiseSimulator;
const CW_HOOK_KEY = 'cw-command-crash-hook-key-0123';
const CW_API_KEY = 'cw-command-crash-api-key-4567';
let subscriber: RecordingSubscriber;

beforeAll(async () => {
  subscriber = await startRecordingSubscriber({ secrets: SIGNING });
  sim = new DocplannerSimulator({ apiKey: PUSH_KEY, timeScale: 0.0001 });
  await sim.start();
  cwSim = new ClockwiseSimulator({ key: CW_HOOK_KEY, keyPlacement: 'header', apiKey: CW_API_KEY });
  await cwSim.start();
});

afterAll(async () => {
  await sim?.close();
  await cwSim?.close();
  await subscriber?.close();
});

function writeConfigFile(dir: string): void {
  const lines = [
    'version: 1',
    'server:',
    '  host: 127.0.0.1',
    '  adminToken: ${env:T_ADMIN}',
    'database:',
    '  url: ${env:T_DB}',
    'secretKey: t-command-crash-secret-key-0123',
    'instances:',
    ...docplannerInstance('dp', sim.url),
    ...clockwiseInstance('cw', { hookKey: CW_HOOK_KEY, apiKey: CW_API_KEY, apiBaseUrl: cwSim.apiBaseUrl }),
    'subscriptions:',
    '  - id: crm',
    '    kind: webhook',
    `    url: ${subscriber.url}`,
    '    events: ["appointment.*", "command.*"]',
    '    secrets: ["${env:T_SIGNING}"]',
    '    allowPrivateAddresses: true',
    '    retry: { schedule: ["0s", "1s"] }',
    // A short lease: the restarted process takes the dead one's command over within seconds.
    'commands:',
    '  lease: 2s',
    '  sweepInterval: 200ms',
    'logging:',
    '  level: warn',
    '',
  ];
  writeFileSync(join(dir, 'switchyard.yaml'), lines.join('\n'));
}

function startHub(dir: string): Promise<HubChild> {
  return startHubIn(dir, { T_ADMIN: ADMIN, T_DB: db.url(), T_PUSH: PUSH_KEY, T_SIGNING: SIGNING });
}

async function api(
  hub: HubChild,
  method: string,
  path: string,
  body?: unknown,
  // biome-ignore lint/suspicious/noExplicitAny: answers are read field by field in the assertions.
): Promise<{ status: number; json: any }> {
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

async function commandStatus(id: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: db.url() });
  await client.connect();
  try {
    const r = await client.query<{ status: string }>('select status from switchyard.commands where id = $1', [
      id,
    ]);
    return r.rows[0]?.status;
  } finally {
    await client.end();
  }
}

it('a hub killed while its command is at the vendor: the next process finishes it, command.succeeded once', async () => {
  const dir = tempDir('command-crash');
  writeConfigFile(dir);
  const first = await startHub(dir);
  let second: HubChild | undefined;
  try {
    // The appointment, known to the hub from Docplanner's own push.
    await sim.push(
      {
        name: 'slot-booked',
        data: {
          facility: { id: PLACE.facility },
          doctor: { id: PLACE.doctor },
          address: { id: PLACE.address },
          visit_booking: {
            id: BOOKING,
            status: 'booked',
            start_at: '2026-03-10T11:30:00+01:00',
            end_at: '2026-03-10T12:00:00+01:00',
            duration: 30,
            booked_by: 'user',
            canceled_by: '',
            booked_at: '2026-03-08T18:04:11+01:00',
            address_service: { id: '4455661', name: 'Konsultacja' },
            patient: { name: 'Anna', surname: 'Kowalska', phone: '+48500100200' },
          },
        },
        created_at: '2026-03-08T18:04:11+01:00',
      },
      { hookUrl: `${first.url}/hooks/dp` },
    );
    const created = await subscriber.waitFor(
      (r) => r.type === 'appointment.created' && r.text.includes(`"value":"${BOOKING}"`),
      20_000,
    );
    const subject = created.subject!;

    // A slow vendor: the DELETE is carried out 1.5 s after it arrives, when its caller is dead.
    sim.writes.echoes = false;
    sim.writes.delayMs = 1500;
    const arrived = new Promise<void>((resolve) => {
      sim.writes.onRequest = (method, path) => {
        if (method === 'DELETE' && path.endsWith(`/bookings/${BOOKING}`)) resolve();
      };
    });
    const sent = await api(first, 'POST', '/v1/commands', {
      type: 'appointment.cancel',
      subject,
      data: { reason: 'patient called' },
    });
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;

    await arrived;
    expect(await first.stop('SIGKILL')).toBe('SIGKILL');
    // The dead process holds the command under its lease; nothing was recorded of the call.
    expect(await commandStatus(id)).toBe('running');
    sim.writes.delayMs = 0;

    second = await startHub(dir);
    const outcome = await subscriber.waitFor(
      (r) => r.type === 'command.succeeded' && r.subject === `command/${id}`,
      30_000,
    );
    expect(outcome.signature.valid).toBe(true);
    expect((outcome.json as { data: unknown }).data).toMatchObject({
      commandId: id,
      commandType: 'appointment.cancel',
      target: subject,
      attempts: 2,
      result: { alreadyDone: true },
    });

    // The vendor got the DELETE twice (at least once): it cancelled on the first, and its 400
    // ("cannot be canceled because it is not booked") to the second, the booking re-read canceled
    // through the API, was taken as done.
    const deletes = sim.writes.log.filter(
      (w) => w.method === 'DELETE' && w.path.endsWith(`/bookings/${BOOKING}`),
    );
    expect(deletes.map((w) => w.status)).toEqual([204, 400]);
    const detail = await api(second, 'GET', `/v1/commands/${id}`);
    expect(detail.json).toMatchObject({ status: 'succeeded', attempts: 2, result: { alreadyDone: true } });
    // Both DELETEs are listed: the first, made by the process that died, with no answer recorded
    // (it was the call that cancelled; it was lost with the dead process's memory before).
    expect(
      detail.json.calls
        .filter((c: { method: string }) => c.method === 'DELETE')
        .map(
          (c: { attempt: number; statusCode: number | null; error: string | null }) =>
            `${c.attempt} ${c.statusCode ?? c.error}`,
        ),
    ).toEqual(['1 no answer recorded: the process stopped while the call was in flight', '2 400']);

    // Delivered once: give a second delivery (another run, a duplicate job) time to show up.
    await new Promise((r) => setTimeout(r, 2500));
    const outcomes = subscriber.requests.filter(
      (r) => r.type?.startsWith('command.') && r.subject === `command/${id}`,
    );
    expect(outcomes.map((r) => r.type)).toEqual(['command.succeeded']);
    expect(await commandStatus(id)).toBe('succeeded');
  } finally {
    await first.stop('SIGKILL');
    if (second) expect(await second.stop('SIGTERM')).toBe(0);
  }
}, 90_000);

it('a hub killed while Clockwise.MD carries out its cancel and its booking: the next process ends each as it happened, at the vendor once', async () => {
  const dir = tempDir('command-crash-cw');
  writeConfigFile(dir);
  const first = await startHub(dir);
  let second: HubChild | undefined;
  try {
    const appointmentId = 73_001;
    cwSim.setAppointment({ id: appointmentId, first_name: 'Maria', last_name: 'Lopez', extra_fields: [] });
    await cwSim.push(
      { appointment_id: appointmentId, event_type: 'create' },
      { hookUrl: `${first.url}/hooks/cw` },
    );
    const created = await subscriber.waitFor(
      (r) => r.type === 'appointment.created' && r.text.includes(`"value":"${appointmentId}"`),
      20_000,
    );
    // A slow vendor: both writes are carried out 1.5 s after they arrive, when their caller is dead.
    cwSim.failApi(2, { status: 0, delayMs: 1500 });
    const cancel = await api(first, 'POST', '/v1/commands', {
      type: 'appointment.cancel',
      subject: created.subject!,
      data: {},
    });
    const book = await api(first, 'POST', '/v1/commands', {
      type: 'appointment.book',
      instance: 'cw',
      data: {
        start: '2026-04-02T11:00:00-05:00',
        patient: { given: 'Killed', family: 'Midcall' },
        location: { id: '77' },
      },
    });
    expect([cancel.status, book.status]).toEqual([202, 202]);
    // Both calls are out (each recorded before it went out), neither answered; and both reached
    // Clockwise.MD (a call is recorded before its request is sent: under CI's load the kill came
    // between the two once, and the vendor never saw the writes).
    const inFlight = async (id: string) =>
      (await api(first, 'GET', `/v1/commands/${id}`)).json.calls?.length === 1;
    for (const id of [cancel.json.id, book.json.id]) {
      const until = Date.now() + 10_000;
      while (!(await inFlight(id))) {
        if (Date.now() > until) throw new Error(`command ${id}: its call never went out`);
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    const arrived = (path: string) => cwSim.received.some((r) => r.path === path);
    for (const path of ['/v1/appointments/create', `/v1/appointments/${appointmentId}/remove`]) {
      const until = Date.now() + 10_000;
      while (!arrived(path)) {
        if (Date.now() > until) throw new Error(`${path}: the call never reached Clockwise.MD`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    expect(await first.stop('SIGKILL')).toBe('SIGKILL');
    const creates = () => cwSim.writes.log.filter((w) => w.path === '/v1/appointments/create');
    const removes = () =>
      cwSim.writes.log.filter((w) => w.path === `/v1/appointments/${appointmentId}/remove`);
    // The vendor carried both out after the kill.
    const until = Date.now() + 10_000;
    while (creates().length < 1 || removes().length < 1) {
      if (Date.now() > until) throw new Error('the vendor never carried the writes out');
      await new Promise((r) => setTimeout(r, 25));
    }

    second = await startHub(dir);
    // The create webhook Clockwise.MD pushed went to the dead process: it comes to the new one.
    const made = creates()[0]!.id!;
    await cwSim.push(
      { appointment_id: Number(made), event_type: 'create' },
      { hookUrl: `${second.url}/hooks/cw` },
    );
    const cancelled = await subscriber.waitFor(
      (r) => r.type === 'command.succeeded' && r.subject === `command/${cancel.json.id}`,
      30_000,
    );
    expect((cancelled.json as { data: unknown }).data).toMatchObject({
      attempts: 2,
      result: { alreadyDone: true },
    });
    const booked = await subscriber.waitFor(
      (r) => r.type === 'command.succeeded' && r.subject === `command/${book.json.id}`,
      30_000,
    );
    // Before: failed, "outcome unknown … not sent again", the appointment made and its webhook in.
    expect((booked.json as { data: unknown }).data).toMatchObject({
      result: { alreadyDone: true, vendorIds: [made] },
    });
    // At the vendor: one create; the remove once, then its refusal (already removed).
    expect(creates()).toHaveLength(1);
    expect(removes().map((w) => w.status)).toEqual([200, 422]);
    expect(await commandStatus(cancel.json.id)).toBe('succeeded');
    expect(await commandStatus(book.json.id)).toBe('succeeded');
  } finally {
    await first.stop('SIGKILL');
    if (second) expect(await second.stop('SIGTERM')).toBe(0);
  }
}, 90_000);
