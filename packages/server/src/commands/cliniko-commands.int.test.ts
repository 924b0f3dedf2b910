/**
 * Cliniko's presence and notes commands end to end through a started hub process: a command → the
 * Cliniko simulator's API over real HTTP → `command.succeeded`, then the next poll lists the changed
 * appointment and its event (appointment.arrived, no_show, status_reverted, updated) carries
 * `data.causedBy`. Cliniko has no webhooks: the echo is what the poller reads after the write.
 */
import type { ClinikoSimulator } from '@switchyard/connector-cliniko/simulator';
import { fixtureSettings } from '@switchyard/connector-cliniko/testing';
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
const api: ClinikoHub['api'] = (method, path, body) => c.api(method, path, body);
const finished = (id: string) => c.finished(id);

beforeAll(async () => {
  c = await startClinikoHub(db.url(), ['appointment.*', 'command.*']);
  ({ sim, subscriber } = c);
});

afterAll(async () => {
  await c?.stop();
});

let nextId = 7_000;

/** An appointment Cliniko lists, once the hub has polled it: its subject and Cliniko id. */
async function polledAppointment(
  flags: { patient_arrived?: boolean; did_not_arrive?: boolean } = {},
): Promise<{ subject: string; id: string }> {
  const id = String(nextId++);
  return { subject: await pollAppointment(c, id, flags), id };
}

const patches = (id: string) =>
  sim.requests
    .filter((r) => r.method === 'PATCH' && r.url === `/v1/individual_appointments/${id}`)
    .map((r) => `${r.status}${r.lostStatus === undefined ? '' : ` ${r.lostStatus}`}`);

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

describe('Cliniko reschedule', () => {
  it("keeps the appointment's length when no durationMinutes is given (not the type's), and takes a given one; echoed as appointment.rescheduled with causedBy", async () => {
    // A 60-minute visit of a 45-minute type (the front desk lengthened it). ends_at: null, sent
    // before, made Cliniko take the type's length: the visit shrank to 45 minutes at its new time.
    const id = String(nextId++);
    const subject = await pollAppointment(c, id, { ends_at: '2026-03-10T11:00:00Z' });
    const sent = await api('POST', '/v1/commands', {
      type: 'appointment.reschedule',
      subject,
      data: { start: '2026-03-11T09:00:00+01:00' },
    });
    expect(await finished(sent.json.id)).toMatchObject({ status: 'succeeded' });
    expect(sim.get(id)).toMatchObject({ starts_at: '2026-03-11T08:00:00Z', ends_at: '2026-03-11T09:00:00Z' });
    const echoed = await subscriber.waitFor(
      (r) => r.subject === subject && r.type === 'appointment.rescheduled' && causedBy(r) !== undefined,
    );
    expect(causedBy(echoed)).toEqual({ commandId: sent.json.id });
    expect((echoed.json as { data: { end: string } }).data.end).toBe('2026-03-11T09:00:00Z');
    await nextSecond();
    const shorter = await api('POST', '/v1/commands', {
      type: 'appointment.reschedule',
      subject,
      data: { start: '2026-03-12T09:00:00+01:00', durationMinutes: 20 },
    });
    expect(await finished(shorter.json.id)).toMatchObject({ status: 'succeeded' });
    expect(sim.get(id)).toMatchObject({ starts_at: '2026-03-12T08:00:00Z', ends_at: '2026-03-12T08:20:00Z' });
  });
});
