/**
 * Cliniko writes done without a change take no echo, through a started hub process polling the
 * Cliniko simulator over real HTTP. A presence mark (or notes) the hub already knows saves nothing
 * at Cliniko, so nothing is polled for it: the command succeeds `unchanged`, and staff's next change
 * of the same kind within the echo window is delivered without `causedBy`. Before, the no-op command
 * took it as its echo, and a CRM skipping its own echoes lost the staff's change.
 */
import type { ClinikoSimulator } from '@switchyard/connector-cliniko/simulator';
import { type RecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClinikoHub,
  causedBy,
  nextSecond,
  pollAppointment,
  startClinikoHub,
} from './cliniko-hub.test-support.ts';

const db = useTestDatabase();
let c: ClinikoHub;
let sim: ClinikoSimulator;
let subscriber: RecordingSubscriber;

beforeAll(async () => {
  c = await startClinikoHub(db.url(), ['appointment.*', 'command.*']);
  ({ sim, subscriber } = c);
});

afterAll(async () => {
  await c?.stop();
});

let nextId = 9_300;
type Flags = { patient_arrived?: boolean; did_not_arrive?: boolean; notes?: string | null };

/** An appointment Cliniko lists with `flags`, once the hub has polled it: its subject and id. */
async function polled(flags: Flags): Promise<{ subject: string; id: string }> {
  const id = String(nextId++);
  return { subject: await pollAppointment(c, id, flags), id };
}

/** Staff changing the appointment at Cliniko: the next version, once polled as `type`. */
async function staffSets(subject: string, id: string, flags: Flags, type: string, seen: Set<unknown>) {
  sim.put({ id, ...flags });
  const event = await subscriber.waitFor((r) => r.subject === subject && r.type === type && !seen.has(r));
  seen.add(event);
  await nextSecond();
  return event;
}

describe('Cliniko writes done without a change take no echo', () => {
  for (const [type, flags, eventType] of [
    ['appointment.mark_arrived', { patient_arrived: true, did_not_arrive: false }, 'appointment.arrived'],
    ['appointment.mark_no_show', { patient_arrived: false, did_not_arrive: true }, 'appointment.no_show'],
  ] as const) {
    it(`${type} on an appointment already so: unchanged; staff's next ${eventType} within the window is not marked`, async () => {
      const { subject, id } = await polled(flags);
      const sent = await c.api('POST', '/v1/commands', { type, subject, data: {} });
      expect(sent.status).toBe(202);
      expect(await c.finished(sent.json.id)).toMatchObject({
        status: 'succeeded',
        result: { unchanged: true },
      });
      // Staff undo it at the desk, then set it again, within the echo window.
      const seen = new Set<unknown>();
      await staffSets(
        subject,
        id,
        { patient_arrived: false, did_not_arrive: false },
        'appointment.status_reverted',
        seen,
      );
      const again = await staffSets(subject, id, flags, eventType, seen);
      // Before the fix the no-op command took it as its echo.
      expect(causedBy(again)).toBeUndefined();
    });

    it(`${type} that changes the flags still takes its echo (the next poll's ${eventType})`, async () => {
      const { subject } = await polled({});
      const sent = await c.api('POST', '/v1/commands', { type, subject, data: {} });
      const done = await c.finished(sent.json.id);
      expect(done.status).toBe('succeeded');
      expect(done.result.unchanged).toBeUndefined();
      const echo = await subscriber.waitFor((r) => r.subject === subject && r.type === eventType);
      expect(causedBy(echo)).toEqual({ commandId: sent.json.id });
    });
  }

  it('notes written as they already are: unchanged; staff editing the notes next is not marked', async () => {
    const { subject, id } = await polled({ notes: 'Bring the referral letter' });
    const sent = await c.api('POST', '/v1/commands', {
      type: 'appointment.update',
      subject,
      data: { comment: 'Bring the referral letter' },
    });
    expect(await c.finished(sent.json.id)).toMatchObject({
      status: 'succeeded',
      result: { unchanged: true },
    });
    const staff = await staffSets(
      subject,
      id,
      { notes: 'Referral letter received' },
      'appointment.updated',
      new Set(),
    );
    expect(causedBy(staff)).toBeUndefined();
  });
});
