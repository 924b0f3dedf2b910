// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config text uses ${env:...} references on purpose.
/**
 * Calendar-block commands end to end through a started hub (as commands.int.test.ts, whose setup
 * this borrows): `slot.block` → Docplanner's addCalendarBreak on the simulator's write API →
 * `command.succeeded` with the new block's hub id → the simulator's `break-created` echo normalized
 * as `slot.blocked` on that subject with `data.causedBy`; then `slot.move_block` and `slot.unblock`
 * on it, each echoed; refusals at once on a removed block; a lost answer that creates one break; a
 * block Docplanner refuses, failed with its words.
 */

import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../cli/command.ts';
import { parseConfig } from '../config/load.ts';
import { shippedConnectors } from '../connectors.ts';
import { type HubProcess, startHubProcess } from '../runtime/process.ts';

const db = useTestDatabase();
const ADMIN = 'slot-commands-admin-token-0123456789';
const PUSH_KEY = 'dp-slot-commands-push-key-9f8e7d';
const SIGNING = `whsec_${Buffer.from('slot-commands-e2e-signing-32b!!!').toString('base64')}`;
const PLACE = { facility: '90211', doctor: '182733', address: '221304' };

let sim: DocplannerSimulator;
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
    'secretKey: t-slot-commands-secret-key-012345',
    'instances:',
    '  - id: dp',
    '    connector: docplanner',
    '    mode: push',
    '    settings:',
    `      apiBaseUrl: ${sim.url}`,
    '      clientId: sim-client',
    '      clientSecret: sim-secret',
    '      releaseIntervalMinutes: 0',
    '      pushAuth:',
    '        headerName: x-api-key',
    '        apiKey: ${env:T_PUSH}',
    'subscriptions:',
    '  - id: rota',
    '    kind: webhook',
    `    url: ${subscriber.url}`,
    '    events: ["slot.*", "command.*"]',
    '    sources: [dp]',
    '    secrets: ["${env:T_SIGNING}"]',
    '    allowPrivateAddresses: true',
    '    retry: { schedule: ["0s", "1s"] }',
    '',
  ].join('\n');
}

async function api(
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

/** A `slot.block`'s data at {@link PLACE}. */
const blockData = (start: string, end: string, reason?: string) => ({
  start,
  end,
  practitioner: { id: PLACE.doctor },
  location: { id: PLACE.address },
  organization: { id: PLACE.facility },
  ...(reason === undefined ? {} : { reason }),
});

/** Sends a command (202 expected) and returns its id. */
async function send(body: object): Promise<string> {
  const r = await api('POST', '/v1/commands', body);
  expect(r.status, JSON.stringify(r.json)).toBe(202);
  return r.json.id as string;
}

/** An event's `data`, read field by field in the assertions. */
// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field in the assertions.
type Data = Record<string, any>;

/** The command's outcome event (`command.succeeded` / `command.failed`) as delivered. */
async function outcomeOf(id: string) {
  const r = await subscriber.waitFor(
    (x) => (x.type === 'command.succeeded' || x.type === 'command.failed') && x.subject === `command/${id}`,
    15_000,
  );
  return { type: r.type, data: (r.json as { data: Data }).data };
}

/** The delivered event of `type` on `subject`, once there. */
async function delivered(type: string, subject: string) {
  const r = await subscriber.waitFor((x) => x.type === type && x.subject === subject, 15_000);
  return (r.json as { data: Data }).data;
}

/** The breaks the simulator holds at {@link PLACE} in place (not removed) that start at `start`. */
const breaksAt = (start: string) =>
  [...sim.writes.breaks.all.values()].filter((b) => !b.removed && Date.parse(b.since) === Date.parse(start));

/** The simulator's write log for the breaks route of {@link PLACE}. */
const breakWrites = () => sim.writes.log.filter((w) => /\/breaks(\/|$)/.test(w.path));

beforeAll(async () => {
  subscriber = await startRecordingSubscriber({ secrets: SIGNING });
  sim = new DocplannerSimulator({ apiKey: PUSH_KEY, timeScale: 0.0001 });
  await sim.start();
  const loaded = parseConfig(configText(), {
    file: 'slot-commands-e2e.yaml',
    connectors: shippedConnectors,
    env: { T_ADMIN: ADMIN, T_DB: db.url(), T_PUSH: PUSH_KEY, T_SIGNING: SIGNING },
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
  sim.writes.hookUrl = `${hub.url}/hooks/dp`;
}, 60_000);

afterAll(async () => {
  await hub?.stop();
  await sim?.close();
  await subscriber?.close();
});

describe('calendar-block commands through a started hub (Docplanner breaks)', () => {
  it('block → slot.blocked echo with causedBy → move → slot.block_moved echo → unblock → slot.unblocked echo; then refused at once', async () => {
    const start = '2026-05-04T09:00:00+02:00';
    const end = '2026-05-04T13:00:00+02:00';
    const blockId = await send({
      type: 'slot.block',
      instance: 'dp',
      data: blockData(start, end, 'annual leave'),
    });
    const blocked = await outcomeOf(blockId);
    expect(blocked.type).toBe('command.succeeded');
    const [made] = breaksAt(start);
    expect(made).toMatchObject({ since: start, till: end, description: 'annual leave' });
    const slotId = blocked.data.result.slotId as string;
    const subject = `slot/${slotId}`;
    expect(blocked.data).toMatchObject({
      commandType: 'slot.block',
      target: subject,
      result: { slotId, vendorIds: [made!.id] },
    });

    // Docplanner's break-created: the same subject, marked as this command's echo.
    const echo = await delivered('slot.blocked', subject);
    expect(echo).toMatchObject({
      id: slotId,
      status: 'busy-unavailable',
      start,
      end,
      practitioner: { id: PLACE.doctor },
      causedBy: { commandId: blockId },
    });

    const to = { start: '2026-05-05T09:00:00+02:00', end: '2026-05-05T13:00:00+02:00' };
    const moveId = await send({ type: 'slot.move_block', subject, data: to });
    expect((await outcomeOf(moveId)).type).toBe('command.succeeded');
    expect(made).toMatchObject({ since: to.start, till: to.end });
    const moved = await delivered('slot.block_moved', subject);
    expect(moved).toMatchObject({
      start: to.start,
      end: to.end,
      previous: { start, end },
      causedBy: { commandId: moveId },
    });

    const unblockId = await send({ type: 'slot.unblock', subject, data: {} });
    expect((await outcomeOf(unblockId)).type).toBe('command.succeeded');
    expect(made!.removed).toBe(true);
    const removed = await delivered('slot.unblocked', subject);
    expect(removed).toMatchObject({ causedBy: { commandId: unblockId } });

    expect(breakWrites().map((w) => `${w.method} ${w.status}`)).toEqual([
      'POST 201',
      'PATCH 204',
      'DELETE 204',
    ]);

    // Removed: a further move or unblock is refused at once, nothing queued.
    for (const late of [
      { type: 'slot.unblock', subject, data: {} },
      { type: 'slot.move_block', subject, data: to },
    ]) {
      const r = await api('POST', '/v1/commands', late);
      expect(r.status).toBe(409);
      expect(r.json).toMatchObject({
        code: 'SY_COMMAND_TARGET_STATE',
        details: { subject, status: 'removed' },
      });
    }
  });

  it("Docplanner's break-created overtaking the answer to the block is still marked as its echo", async () => {
    // The echo is pushed right after the write, the answer half a second later: the echo's
    // normalization waits for the running block (its span and place match the draft's).
    const start = '2026-05-13T09:00:00+02:00';
    sim.writes.answerDelayMs = 500;
    sim.writes.echoDelayMs = 0;
    try {
      const id = await send({
        type: 'slot.block',
        instance: 'dp',
        data: blockData(start, '2026-05-13T10:00:00+02:00'),
      });
      const { data } = await outcomeOf(id);
      const echo = await delivered('slot.blocked', `slot/${data.result.slotId}`);
      expect(echo.causedBy).toEqual({ commandId: id });
    } finally {
      sim.writes.answerDelayMs = 0;
      sim.writes.echoDelayMs = 100;
    }
  });

  it('a move sent before the block is known (its echo not in yet) is refused, naming the block command and slot.blocked', async () => {
    const start = '2026-05-06T09:00:00+02:00';
    sim.writes.holdEchoes = true;
    try {
      const blockId = await send({
        type: 'slot.block',
        instance: 'dp',
        data: blockData(start, '2026-05-06T10:00:00+02:00'),
      });
      const { data } = await outcomeOf(blockId);
      const subject = `slot/${data.result.slotId}`;
      const early = await api('POST', '/v1/commands', { type: 'slot.unblock', subject, data: {} });
      expect(early.status).toBe(409);
      expect(early.json).toMatchObject({
        code: 'SY_COMMAND_TARGET_STATE',
        details: { subject, bookedBy: blockId, awaiting: 'slot.blocked' },
      });
    } finally {
      sim.writes.holdEchoes = false;
      sim.writes.releaseEchoes();
    }
  });

  it('a block whose answer was lost creates one break: the retry finds it among the address breaks', async () => {
    const start = '2026-05-07T09:00:00+02:00';
    const end = '2026-05-07T09:30:00+02:00';
    const before = breakWrites().length;
    sim.writes.loseAnswers(1, 502, /\/breaks$/);
    const id = await send({ type: 'slot.block', instance: 'dp', data: blockData(start, end) });
    const outcome = await outcomeOf(id);
    expect(outcome.type).toBe('command.succeeded');
    expect(breaksAt(start)).toHaveLength(1);
    expect(outcome.data).toMatchObject({
      attempts: 2,
      result: { alreadyDone: true, vendorIds: [breaksAt(start)[0]!.id] },
    });
    // One POST (its answer lost), none after it: the second try listed the breaks.
    expect(
      breakWrites()
        .slice(before)
        .map((w) => `${w.method} ${w.status}`),
    ).toEqual(['POST 502']);
    const calls = (await api('GET', `/v1/commands/${id}`)).json.calls as { method: string; url: string }[];
    expect(calls.some((c) => c.method === 'GET' && new URL(c.url).pathname.endsWith('/breaks'))).toBe(true);
    const echo = await delivered('slot.blocked', `slot/${outcome.data.result.slotId}`);
    expect(echo.causedBy).toEqual({ commandId: id });
  });

  it("a block Docplanner refuses (the same span and description is there) fails with Docplanner's words", async () => {
    const start = '2026-05-08T09:00:00+02:00';
    const end = '2026-05-08T10:00:00+02:00';
    sim.writes.breaks.add(PLACE, start, end, 'training');
    const id = await send({ type: 'slot.block', instance: 'dp', data: blockData(start, end, 'training') });
    const outcome = await outcomeOf(id);
    expect(outcome.type).toBe('command.failed');
    expect(outcome.data).toMatchObject({
      attempts: 1,
      error: {
        kind: 'permanent',
        message: expect.stringContaining('Break for given address, date range and description exists'),
        vendor: { status: 409 },
      },
    });
    expect(breaksAt(start)).toHaveLength(1);
  });

  it('an unblock of a break Docplanner already deleted (the hub not told yet) is done', async () => {
    const start = '2026-05-11T09:00:00+02:00';
    const id = await send({
      type: 'slot.block',
      instance: 'dp',
      data: blockData(start, '2026-05-11T10:00:00+02:00'),
    });
    const subject = `slot/${(await outcomeOf(id)).data.result.slotId}`;
    await delivered('slot.blocked', subject);
    // Deleted in Docplanner's calendar, its break-removed not pushed (yet).
    breaksAt(start)[0]!.removed = true;
    const unblockId = await send({ type: 'slot.unblock', subject, data: {} });
    const outcome = await outcomeOf(unblockId);
    expect(outcome).toMatchObject({ type: 'command.succeeded', data: { result: { alreadyDone: true } } });
  });

  it("a move to the block's own times (done, no notification) does not take the next move's echo", async () => {
    // Docplanner refuses the no-op move 422 "Same Date Range" and notifies nothing: the command is
    // done already. The next move's break-moved is that move's echo, not the no-op's (it took it
    // while still in the echo window, and every later move's echo went to the move before it).
    const start = '2026-05-14T09:00:00+02:00';
    const end = '2026-05-14T10:00:00+02:00';
    const blockId = await send({ type: 'slot.block', instance: 'dp', data: blockData(start, end) });
    const subject = `slot/${(await outcomeOf(blockId)).data.result.slotId}`;
    await delivered('slot.blocked', subject);
    const sameId = await send({ type: 'slot.move_block', subject, data: { start, end } });
    expect(await outcomeOf(sameId)).toMatchObject({
      type: 'command.succeeded',
      data: { result: { alreadyDone: true } },
    });
    const to = { start: '2026-05-14T11:00:00+02:00', end: '2026-05-14T12:00:00+02:00' };
    const moveId = await send({ type: 'slot.move_block', subject, data: to });
    expect((await outcomeOf(moveId)).type).toBe('command.succeeded');
    const moved = await delivered('slot.block_moved', subject);
    expect(moved).toMatchObject({ start: to.start, causedBy: { commandId: moveId } });
    // A move by staff at Docplanner afterwards, within the echo window, is nobody's echo.
    const [made] = breaksAt(to.start);
    made!.since = '2026-05-14T15:00:00+02:00';
    made!.till = '2026-05-14T16:00:00+02:00';
    await sim.push(
      {
        name: 'break-moved',
        data: {
          facility: { id: PLACE.facility },
          doctor: { id: PLACE.doctor },
          address: { id: PLACE.address },
          break: { id: made!.id, since: made!.since, till: made!.till },
        },
        created_at: new Date().toISOString().replace('Z', '+00:00'),
      },
      { hookUrl: `${hub.url}/hooks/dp` },
    );
    const byStaff = await subscriber.waitFor(
      (x) => x.type === 'slot.block_moved' && x.subject === subject && x.text.includes('15:00:00+02:00'),
      15_000,
    );
    expect((byStaff.json as { data: Data }).data.causedBy).toBeUndefined();
  });

  it('a block without its place is refused at once (422 SY_COMMAND_UNSUPPORTED); one ending before it starts, or when it starts, as invalid at /data/end', async () => {
    const r = await api('POST', '/v1/commands', {
      type: 'slot.block',
      instance: 'dp',
      data: { start: '2026-05-12T09:00:00+02:00', end: '2026-05-12T10:00:00+02:00' },
    });
    expect(r.status).toBe(422);
    expect(r.json.code).toBe('SY_COMMAND_UNSUPPORTED');
    const cases = [
      {
        type: 'slot.block',
        instance: 'dp',
        data: blockData('2026-05-12T10:00:00+02:00', '2026-05-12T09:00:00+02:00'),
      },
      // The same instant in two offsets: zero length.
      {
        type: 'slot.block',
        instance: 'dp',
        data: blockData('2026-05-12T10:00:00+02:00', '2026-05-12T08:00:00Z'),
      },
      {
        type: 'slot.move_block',
        subject: 'slot/3e2d1c0b-9a8f-4e7d-b6c5-a4b3c2d1e0f9',
        data: { start: '2026-05-12T10:00:00+02:00', end: '2026-05-12T09:59:00+02:00' },
      },
    ];
    const before = breakWrites().length;
    for (const body of cases) {
      const bad = await api('POST', '/v1/commands', body);
      expect(bad.status, JSON.stringify(bad.json)).toBe(422);
      expect(bad.json).toMatchObject({
        code: 'SY_COMMAND_INVALID',
        errors: [
          { in: 'body', pointer: '/data/end', message: expect.stringContaining('must be after /data/start') },
        ],
      });
    }
    expect(breakWrites().length).toBe(before);
  });
});
