/**
 * Calendar-block commands end to end through a started hub (docplanner-hub.test-support.ts):
 * `slot.block` → Docplanner's addCalendarBreak on the simulator's write API → `command.succeeded`
 * with the new block's hub id → the simulator's `break-created` echo normalized as `slot.blocked`
 * on that subject with `data.causedBy`; then `slot.move_block` and `slot.unblock` on it, each
 * echoed; refusals at once on a removed block; a lost answer that creates one break; a block
 * Docplanner refuses, failed with its words. Commands on a block before its echo arrives:
 * block-before-echo.int.test.ts.
 */

import type { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import { type RecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  blockData,
  type Data,
  type DocplannerHub,
  PLACE,
  startDocplannerHub,
} from './docplanner-hub.test-support.ts';

const db = useTestDatabase();

let d: DocplannerHub;
let sim: DocplannerSimulator;
let subscriber: RecordingSubscriber;
let hub: DocplannerHub['hub'];
const api: DocplannerHub['api'] = (method, path, body) => d.api(method, path, body);
const send = (body: object) => d.send(body);
const outcomeOf = (id: string) => d.outcomeOf(id);
const delivered = (type: string, subject: string) => d.delivered(type, subject);

/** The breaks the simulator holds at {@link PLACE} in place (not removed) that start at `start`. */
const breaksAt = (start: string) =>
  [...sim.writes.breaks.all.values()].filter((b) => !b.removed && Date.parse(b.since) === Date.parse(start));

/** The simulator's write log for the breaks route of {@link PLACE}. */
const breakWrites = () => sim.writes.log.filter((w) => /\/breaks(\/|$)/.test(w.path));

beforeAll(async () => {
  d = await startDocplannerHub(db.url(), ['slot.*', 'command.*']);
  ({ sim, subscriber, hub } = d);
}, 60_000);

afterAll(async () => {
  await d?.stop();
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
  it("a move or unblock of a slot that is no calendar block (Docplanner's slot-changed availability) is refused at once (409 SY_COMMAND_TARGET_STATE, details.kind), nothing queued", async () => {
    // A legacy slot-changed at the place: a `slot/…` of kind `availability`, which no break call
    // addresses. Accepted, it ran and failed at the connector ("not a calendar block").
    await sim.push(
      {
        name: 'slot-changed',
        data: {
          facility: { id: PLACE.facility, name: 'Centrum Medyczne Mokotów' },
          doctor: { id: PLACE.doctor, name: 'Jan', surname: 'Nowak' },
          address: { id: PLACE.address, name: 'Gabinet', street: 'ul. Puławska 145', post_code: '02-715' },
        },
        created_at: '2026-05-13T08:00:00+02:00',
      },
      { hookUrl: sim.writes.hookUrl },
    );
    const changed = await subscriber.waitFor((x) => x.type === 'slot.changed', 15_000);
    const subject = changed.subject!;
    expect((changed.json as { data: Data }).data.kind).toBe('availability');
    const before = breakWrites().length;
    for (const body of [
      { type: 'slot.unblock', subject, data: {} },
      {
        type: 'slot.move_block',
        subject,
        data: { start: '2026-05-13T10:00:00+02:00', end: '2026-05-13T11:00:00+02:00' },
      },
    ]) {
      const r = await api('POST', '/v1/commands', body);
      expect(r.status, JSON.stringify(r.json)).toBe(409);
      expect(r.json).toMatchObject({
        code: 'SY_COMMAND_TARGET_STATE',
        details: { subject, kind: 'availability' },
      });
      expect(r.json.detail).toContain('not a calendar block');
    }
    const listed = await api('GET', `/v1/commands?subject=${encodeURIComponent(subject)}`);
    expect(listed.status).toBe(200);
    expect(listed.json.items).toEqual([]);
    expect(breakWrites().length).toBe(before);
  });
});
