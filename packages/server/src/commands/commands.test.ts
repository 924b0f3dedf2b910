/**
 * Which notification may be a command's echo by what it says (`fitsCommand`), beyond its type and
 * entity. The hub's side of "a command done without a change takes no echo" (the connector's
 * `unchanged`, `recentSuccesses` leaving such commands out) runs through a hub in
 * unchanged-echoes.int.test.ts.
 */
import type { EventDraft, JsonObject } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { fitsCommand } from './commands.ts';

const updated = (data: JsonObject): EventDraft => ({
  type: 'appointment.updated',
  subject: 'appointment/h1',
  time: '2026-03-10T10:05:00Z',
  data,
});

describe('fitsCommand: an appointment.update', () => {
  it('of the comment takes an appointment.updated naming `comment`, not one naming other fields', () => {
    const command = { type: 'appointment.update', data: { comment: 'Bring the X-ray' } };
    expect(fitsCommand(command, updated({ changes: ['comment'] }))).toBe(true);
    expect(fitsCommand(command, updated({ changes: ['practitioner', 'comment'] }))).toBe(true);
    expect(fitsCommand(command, updated({ changes: ['practitioner'] }))).toBe(false);
  });

  it('of custom fields takes only an appointment.updated naming `customFields`: not Clockwise.MD’s `patient`', () => {
    const command = { type: 'appointment.update', data: { customFields: { '104': 'verified' } } };
    // Clockwise.MD's demographics_update, whatever changed (the write, or staff correcting the
    // patient's name): before, taken as the update's echo, and a CRM skipping echoes lost the staff's.
    expect(fitsCommand(command, updated({ changes: ['patient'] }))).toBe(false);
    expect(fitsCommand(command, updated({ changes: ['customFields'] }))).toBe(true);
    expect(fitsCommand(command, updated({ changes: ['comment'] }))).toBe(false);
  });

  it('a notification naming no changes cannot rule it out (a version stored before they were kept)', () => {
    for (const data of [{ comment: 'x' }, { customFields: { '104': 'x' } }] as JsonObject[]) {
      const command = { type: 'appointment.update', data };
      expect(fitsCommand(command, updated({}))).toBe(true);
      expect(fitsCommand(command, updated({ changes: [] }))).toBe(true);
    }
  });
});

describe('fitsCommand: other commands', () => {
  it('a move takes a notification at the times it asked for; a presence mark any of its type', () => {
    const move = {
      type: 'slot.move_block',
      data: { start: '2026-05-14T09:00:00+02:00', end: '2026-05-14T10:00:00+02:00' },
    };
    const moved = (start: string): EventDraft => ({
      type: 'slot.block_moved',
      subject: 'slot/b1',
      time: '2026-05-14T06:00:00Z',
      data: { start, end: '2026-05-14T08:00:00Z' },
    });
    expect(fitsCommand(move, moved('2026-05-14T07:00:00Z'))).toBe(true);
    expect(fitsCommand(move, moved('2026-05-14T09:00:00Z'))).toBe(false);
    // A presence notification says only "arrived": the connector's `unchanged` keeps a no-op's
    // command from taking one (recentSuccesses), not the matching.
    const arrived: EventDraft = {
      type: 'appointment.arrived',
      subject: 'appointment/h1',
      time: 't',
      data: {},
    };
    expect(fitsCommand({ type: 'appointment.mark_arrived', data: {} }, arrived)).toBe(true);
  });
});
