/**
 * Commands on an entity the hub made through a command, before (or without) the vendor's
 * notification of it: a Docplanner break made by `slot.block` whose `break-created` is held back
 * or lost, a booking made by `appointment.book` whose `slot-booked` is held back. The hub holds the
 * vendor id (the creating command's result) and the place (its data), so `slot.move_block`,
 * `slot.unblock`, `appointment.reschedule` and `appointment.cancel` are taken and carried out at
 * the vendor; the notifications, once in, are each marked as their command's echo. Once refused
 * 409 "try again shortly", which left a block whose push was lost stuck for good. An entity the hub
 * does not know at all is still refused 422 SY_COMMAND_UNKNOWN_TARGET. Real Postgres, the
 * simulator over HTTP (docplanner-hub.test-support.ts).
 */
import type { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockData, type DocplannerHub, PLACE, startDocplannerHub } from './docplanner-hub.test-support.ts';

const db = useTestDatabase();
let d: DocplannerHub;
let sim: DocplannerSimulator;

beforeAll(async () => {
  d = await startDocplannerHub(db.url(), ['slot.*', 'appointment.*', 'command.*']);
  sim = d.sim;
}, 60_000);

afterAll(async () => {
  await d?.stop();
});

/** The break the simulator made for a block command (its result's vendor id). */
const breakOf = (result: { vendorIds: string[] }) => sim.writes.breaks.all.get(result.vendorIds[0]!)!;

/** Runs `body` with the simulator's echoes held, then pushes them (in order). */
async function holdingEchoes<T>(body: () => Promise<T>): Promise<T> {
  sim.writes.holdEchoes = true;
  try {
    return await body();
  } finally {
    sim.writes.holdEchoes = false;
    sim.writes.releaseEchoes();
  }
}

/**
 * A block from `start` to `end` made through the hub with its break-created lost for good (the
 * simulator sends no echo): the succeeded command's outcome, the break it made, and its subject.
 */
async function blockWithoutEcho(start: string, end: string) {
  sim.writes.echoes = false;
  let blocked: Awaited<ReturnType<DocplannerHub['outcomeOf']>>;
  try {
    blocked = await d.outcomeOf(
      await d.send({ type: 'slot.block', instance: 'dp', data: blockData(start, end) }),
    );
  } finally {
    sim.writes.echoes = true;
  }
  expect(blocked.type).toBe('command.succeeded');
  return { blocked, made: breakOf(blocked.data.result), subject: `slot/${blocked.data.result.slotId}` };
}

describe('commands on a block or booking the hub made, before its notification arrives', () => {
  it("a block whose break-created is held back: move and unblock are taken and done at Docplanner; the notifications, once in, are each command's echo", async () => {
    const start = '2026-06-01T09:00:00+02:00';
    const to = { start: '2026-06-02T09:00:00+02:00', end: '2026-06-02T10:00:00+02:00' };
    const ids = await holdingEchoes(async () => {
      const blockId = await d.send({
        type: 'slot.block',
        instance: 'dp',
        data: blockData(start, '2026-06-01T10:00:00+02:00', 'audit'),
      });
      const blocked = await d.outcomeOf(blockId);
      expect(blocked.type).toBe('command.succeeded');
      const made = breakOf(blocked.data.result);
      const subject = `slot/${blocked.data.result.slotId}`;

      const moveId = await d.send({ type: 'slot.move_block', subject, data: to });
      expect(await d.outcomeOf(moveId)).toMatchObject({ type: 'command.succeeded' });
      expect(made).toMatchObject({ since: to.start, till: to.end });
      expect(made.removed).toBeFalsy();

      const unblockId = await d.send({ type: 'slot.unblock', subject, data: {} });
      const unblocked = await d.outcomeOf(unblockId);
      expect(unblocked.type).toBe('command.succeeded');
      expect(unblocked.data.result.alreadyDone).toBeUndefined();
      expect(made.removed).toBe(true);
      // Each call went to the break's own path (the place the block command named).
      const path = `/facilities/${PLACE.facility}/doctors/${PLACE.doctor}/addresses/${PLACE.address}/breaks/${made.id}`;
      expect(sim.writes.log.filter((w) => w.path === path).map((w) => `${w.method} ${w.status}`)).toEqual([
        'PATCH 204',
        'DELETE 204',
      ]);
      return { blockId, moveId, unblockId, subject };
    });

    // The held notifications arrive: each is its own command's echo, on the block's subject.
    expect((await d.delivered('slot.blocked', ids.subject)).causedBy).toEqual({ commandId: ids.blockId });
    expect((await d.delivered('slot.block_moved', ids.subject)).causedBy).toEqual({
      commandId: ids.moveId,
    });
    expect((await d.delivered('slot.unblocked', ids.subject)).causedBy).toEqual({
      commandId: ids.unblockId,
    });
    // Known as removed now: refused at once, as for any removed block.
    const late = await d.api('POST', '/v1/commands', {
      type: 'slot.unblock',
      subject: ids.subject,
      data: {},
    });
    expect(late.status).toBe(409);
    expect(late.json).toMatchObject({
      code: 'SY_COMMAND_TARGET_STATE',
      details: { subject: ids.subject, status: 'removed' },
    });
  });

  it('a block whose break-created is lost for good: moved and removed through the hub all the same', async () => {
    const start = '2026-06-03T09:00:00+02:00';
    const { made, subject } = await blockWithoutEcho(start, '2026-06-03T10:00:00+02:00');

    const to = { start: '2026-06-03T11:00:00+02:00', end: '2026-06-03T12:00:00+02:00' };
    const moveId = await d.send({ type: 'slot.move_block', subject, data: to });
    expect((await d.outcomeOf(moveId)).type).toBe('command.succeeded');
    expect(made).toMatchObject({ since: to.start, till: to.end });
    // The move's break-moved is the first the hub hears of the block: its echo, on its subject.
    const moved = await d.delivered('slot.block_moved', subject);
    expect(moved).toMatchObject({ start: to.start, end: to.end, causedBy: { commandId: moveId } });

    const unblockId = await d.send({ type: 'slot.unblock', subject, data: {} });
    expect((await d.outcomeOf(unblockId)).type).toBe('command.succeeded');
    expect(made.removed).toBe(true);
    expect((await d.delivered('slot.unblocked', subject)).causedBy).toEqual({ commandId: unblockId });
  });

  it("a booking whose slot-booked is held back: rescheduled and cancelled at Docplanner before it arrives; each notification its command's echo", async () => {
    const ids = await holdingEchoes(async () => {
      const bookId = await d.send({
        type: 'appointment.book',
        instance: 'dp',
        data: {
          start: '2026-06-04T09:00:00+02:00',
          durationMinutes: 30,
          patient: { name: 'Ola', phone: '+48500100399' },
          practitioner: { id: PLACE.doctor },
          location: { id: PLACE.address },
          organization: { id: PLACE.facility },
          service: { id: '4455661' },
        },
      });
      const booked = await d.outcomeOf(bookId);
      expect(booked.type).toBe('command.succeeded');
      const first = booked.data.result.vendorIds[0] as string;
      const subject = `appointment/${booked.data.result.appointmentId}`;

      const rescheduleId = await d.send({
        type: 'appointment.reschedule',
        subject,
        data: { start: '2026-06-04T11:00:00+02:00' },
      });
      const rescheduled = await d.outcomeOf(rescheduleId);
      expect(rescheduled.type).toBe('command.succeeded');
      const second = rescheduled.data.result.vendorIds.at(-1) as string;
      expect(second).not.toBe(first);
      expect(sim.bookings.get(second)?.booking).toMatchObject({ status: 'booked' });

      const cancelId = await d.send({ type: 'appointment.cancel', subject, data: {} });
      expect((await d.outcomeOf(cancelId)).type).toBe('command.succeeded');
      expect(sim.bookings.get(second)?.booking).toMatchObject({ status: 'canceled' });
      return { bookId, rescheduleId, cancelId, subject };
    });
    expect((await d.delivered('appointment.created', ids.subject)).causedBy).toEqual({
      commandId: ids.bookId,
    });
    expect((await d.delivered('appointment.rescheduled', ids.subject)).causedBy).toEqual({
      commandId: ids.rescheduleId,
    });
    expect((await d.delivered('appointment.cancelled', ids.subject)).causedBy).toEqual({
      commandId: ids.cancelId,
    });
  });

  it('an entity the hub does not know at all is still refused at once: 422 SY_COMMAND_UNKNOWN_TARGET', async () => {
    for (const body of [
      { type: 'slot.unblock', subject: 'slot/3e2d1c0b-9a8f-4e7d-b6c5-a4b3c2d1e0f9', data: {} },
      { type: 'appointment.cancel', subject: 'appointment/6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b', data: {} },
    ]) {
      const r = await d.api('POST', '/v1/commands', body);
      expect(r.status).toBe(422);
      expect(r.json).toMatchObject({ code: 'SY_COMMAND_UNKNOWN_TARGET', details: { subject: body.subject } });
    }
  });
  it('a block whose break-created is lost is still known once commands.retention purged the other commands: unblocked at Docplanner, not refused 422', async () => {
    const start = '2026-06-05T09:00:00+02:00';
    const { blocked, made, subject } = await blockWithoutEcho(start, '2026-06-05T10:00:00+02:00');

    // A leave planned months ahead: the retention purge (default 30 days) runs before it is moved or
    // removed. The block command is the hub's only knowledge of the block (no event of it came):
    // purged, the block was beyond the hub's reach (422 SY_COMMAND_UNKNOWN_TARGET) while it stood
    // in Docplanner's calendar.
    await d.hub.commands.purge(new Date(Date.now() + 31 * 24 * 3_600_000));

    const unblockId = await d.send({ type: 'slot.unblock', subject, data: {} });
    expect((await d.outcomeOf(unblockId)).type).toBe('command.succeeded');
    expect(made.removed).toBe(true);
    expect((await d.delivered('slot.unblocked', subject)).causedBy).toEqual({ commandId: unblockId });
    // Once the block has an event, the block command is purged as any other.
    await d.hub.commands.purge(new Date(Date.now() + 31 * 24 * 3_600_000));
    const left = await d.api('GET', `/v1/commands?type=slot.block&limit=500`);
    expect(left.json.items.map((c: { id: string }) => c.id)).not.toContain(blocked.data.commandId);
  });
});
