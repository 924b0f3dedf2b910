import { readFileSync } from 'node:fs';
import {
  ConnectorError,
  type JsonObject,
  type JsonValue,
  type NormalizeContext,
  toRfc3339InZone,
  type VendorNotification,
  type VendorRequest,
  type VendorResponse,
} from '@switchyard/core';
import { memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { CANCEL_INTENT_MS, cancelIntentKey, normalize, toDate } from './normalize.ts';

const api = (id: number): JsonObject =>
  JSON.parse(
    readFileSync(new URL(`./__api__/appointment-${id}.json`, import.meta.url), 'utf8'),
  ) as JsonObject;

const config: Config = { auth: { mode: 'either', key: 'k'.repeat(24) }, apiKey: 'api-key-123', enrich: true };

function context(
  vendorApi: (req: VendorRequest) => VendorResponse | Promise<VendorResponse>,
  overrides: { config?: Config } = {},
) {
  const ctx = memoryNormalizeContext({
    instanceId: 'cw-test',
    config: overrides.config ?? config,
    vendorApi,
    receivedAt: new Date('2026-03-10T16:30:00Z'),
  });
  return { ctx, requests: ctx.vendorRequests, state: ctx.state.values };
}

const ok = (body: JsonValue): VendorResponse => ({ status: 200, headers: {}, body });
const byId = (req: VendorRequest): VendorResponse => {
  const id = Number(req.url.split('/').pop());
  return [12345, 12346, 12347].includes(id)
    ? ok(api(id))
    : { status: 404, headers: {}, body: { error: 'not found' } };
};

let seq = 0;
function note(type: string, appointmentId: number | string = 12345): VendorNotification {
  seq += 1;
  return {
    type,
    dedupeKey: `k${seq}`,
    orderingKey: `appointment:${appointmentId}`,
    occurredAt: '2026-03-10T16:30:00.000Z',
    payload: { appointment_id: appointmentId, event_type: type },
  };
}

async function run(ctx: NormalizeContext<Config>, type: string, id: number | string = 12345) {
  const result = await normalize(note(type, id), ctx);
  return { result, event: result.events[0], data: result.events[0]?.data as JsonObject | undefined };
}

describe('clockwisemd normalize: the workflow', () => {
  it('walks create → checkin → ready → callback → discharge with FHIR status and workflowStep', async () => {
    const { ctx, requests } = context(byId);
    const steps: Array<[string, string, string, string]> = [
      ['create', 'appointment.created', 'booked', 'scheduled'],
      ['checkin', 'appointment.arrived', 'arrived', 'arrived'],
      ['ready', 'appointment.checked_in', 'checked-in', 'ready'],
      ['callback', 'appointment.in_progress', 'checked-in', 'in_progress'],
      ['discharge', 'appointment.completed', 'fulfilled', 'completed'],
    ];
    const subjects = new Set<string>();
    for (const [vendorType, type, status, step] of steps) {
      const { event, data } = await run(ctx, vendorType);
      expect(event?.type).toBe(type);
      expect(data).toMatchObject({ status, workflowStep: step, enrichment: 'enriched' });
      subjects.add(event!.subject);
    }
    expect(subjects.size).toBe(1);
    expect(requests[0]).toMatchObject({
      url: 'https://api.clockwisemd.com/v1/appointments/12345',
      headers: { Authtoken: 'api-key-123' },
    });
  });

  it('fills the snapshot from the REST record and keeps the whole record in vendor', async () => {
    const { ctx } = context(byId);
    const { event, data } = await run(ctx, 'create');
    expect(event?.subject).toBe(`appointment/${data?.id}`);
    expect(data).toMatchObject({
      vendorIds: [{ system: 'clockwisemd', instance: 'cw-test', value: '12345', current: true }],
      start: '2026-03-10T11:30:00-05:00',
      end: '2026-03-10T11:45:00-05:00',
      durationMinutes: 15,
      timeZone: 'America/Chicago',
      patient: {
        id: '88123',
        given: 'Maria',
        family: 'Lopez',
        name: 'Maria Lopez',
        email: 'maria.lopez@example.com',
        phone: '5551234567',
        birthDate: '1984-07-02',
      },
      location: { id: '301', name: 'Clockwise Urgent Care - Main St' },
      practitioner: { id: '77', name: 'Dr. Ana Patel' },
      service: { id: '5', name: 'Flu symptoms' },
      vendor: { webhook: { appointment_id: 12345, event_type: 'create' }, appointment: api(12345) },
    });
  });

  it('reads an offset-less time in the record time zone', async () => {
    const { ctx } = context(byId);
    const { data } = await run(ctx, 'create', 12346);
    expect(data?.start).toBe('2026-03-11T09:00:00-04:00');
  });

  it('maps remove to no_show before check-in and to cancelled after, and undo_remove restores', async () => {
    const { ctx } = context(byId);
    await run(ctx, 'create', 12347);
    expect((await run(ctx, 'remove', 12347)).event?.type).toBe('appointment.no_show');

    await run(ctx, 'create', 12346);
    await run(ctx, 'checkin', 12346);
    await run(ctx, 'ready', 12346);
    const removed = await run(ctx, 'remove', 12346);
    expect(removed.event?.type).toBe('appointment.cancelled');
    expect(removed.data).toMatchObject({ status: 'cancelled', workflowStep: 'removed' });
    const restored = await run(ctx, 'undo_remove', 12346);
    expect(restored.event?.type).toBe('appointment.restored');
    expect(restored.data).toMatchObject({ status: 'checked-in', workflowStep: 'ready' });
  });

  it('takes the remove a cancellation asked through the hub causes for a cancellation, once, and only while fresh', async () => {
    const { ctx } = context(byId);
    await run(ctx, 'create', 12347);
    // What the appointment.cancel command records before its PUT …/remove (commands.ts).
    await ctx.state.set(cancelIntentKey('12347'), { command: 'c-1', at: '2026-03-10T16:29:00Z' });
    const removed = await run(ctx, 'remove', 12347);
    expect([removed.event?.type, removed.data?.status]).toEqual(['appointment.cancelled', 'cancelled']);
    expect(await ctx.state.get(cancelIntentKey('12347'))).toBeUndefined(); // used up
    await run(ctx, 'undo_remove', 12347);
    expect((await run(ctx, 'remove', 12347)).event?.type).toBe('appointment.no_show'); // staff's own remove

    // Asked longer ago than the window: the remove is read as Clockwise.MD means it.
    await run(ctx, 'create', 12346);
    const stale = new Date(Date.parse('2026-03-10T16:30:00Z') - CANCEL_INTENT_MS - 1000).toISOString();
    await ctx.state.set(cancelIntentKey('12346'), { command: 'c-2', at: stale });
    expect((await run(ctx, 'remove', 12346)).event?.type).toBe('appointment.no_show');
  });

  it('undoes a no-show with status_reverted, not restored (restored undoes a cancellation only)', async () => {
    const { ctx } = context(byId);
    await run(ctx, 'create', 12347);
    expect((await run(ctx, 'remove', 12347)).event?.type).toBe('appointment.no_show');
    const undone = await run(ctx, 'undo_remove', 12347);
    expect(undone.event?.type).toBe('appointment.status_reverted');
    expect(undone.data).toMatchObject({
      status: 'booked',
      workflowStep: 'scheduled',
      changes: ['status', 'workflowStep'],
    });
  });

  it('treats remove after an undone check-in as a no-show', async () => {
    const { ctx } = context(byId);
    await run(ctx, 'create');
    await run(ctx, 'checkin');
    await run(ctx, 'undo_checkin');
    expect((await run(ctx, 'remove')).event?.type).toBe('appointment.no_show');
  });

  it.each([
    ['undo_checkin', ['checkin'], 'booked', 'scheduled'],
    ['undo_ready', ['checkin', 'ready'], 'arrived', 'arrived'],
    ['undo_callback', ['checkin', 'ready', 'callback'], 'checked-in', 'ready'],
    ['undo_discharge', ['checkin', 'ready', 'callback', 'discharge'], 'checked-in', 'in_progress'],
  ])('%s is a status_reverted to the step before', async (undo, before, status, step) => {
    const { ctx } = context(byId);
    await run(ctx, 'create');
    for (const t of before) await run(ctx, t);
    const { event, data } = await run(ctx, undo);
    expect(event?.type).toBe('appointment.status_reverted');
    expect(data).toMatchObject({ status, workflowStep: step, changes: ['status', 'workflowStep'] });
  });

  it('emits a genuine repeat (checkin, undo_checkin, checkin) but ignores a redelivered step', async () => {
    const { ctx } = context(byId);
    await run(ctx, 'create');
    expect((await run(ctx, 'checkin')).event?.type).toBe('appointment.arrived');
    expect((await run(ctx, 'checkin')).result.ignored).toMatch(/repeated checkin/);
    expect((await run(ctx, 'undo_checkin')).event?.type).toBe('appointment.status_reverted');
    expect((await run(ctx, 'checkin')).event?.type).toBe('appointment.arrived');
    expect((await run(ctx, 'create')).result.ignored).toMatch(/repeated create/);
  });

  it('ignores a redelivered step with a demographics_update or reschedule between (they do not move the workflow)', async () => {
    const { ctx } = context(byId);
    await run(ctx, 'create');
    expect((await run(ctx, 'checkin')).event?.type).toBe('appointment.arrived');
    expect((await run(ctx, 'demographics_update')).event?.type).toBe('appointment.updated');
    expect((await run(ctx, 'checkin')).result.ignored).toMatch(
      /repeated checkin: the appointment is already arrived/,
    );
    expect((await run(ctx, 'reschedule')).event?.type).toBe('appointment.rescheduled');
    expect((await run(ctx, 'checkin')).result.ignored).toMatch(/repeated checkin/);
    expect((await run(ctx, 'remove')).event?.type).toBe('appointment.cancelled');
    expect((await run(ctx, 'demographics_update')).event?.type).toBe('appointment.updated');
    expect((await run(ctx, 'remove')).result.ignored).toMatch(/repeated remove/);
  });

  it('reschedule carries previous start/end from the stored state', async () => {
    let apt = api(12345);
    const { ctx } = context(() => ok(apt));
    await run(ctx, 'create');
    apt = { ...apt, apt_time: '2026-03-12T08:00:00-05:00', end_time: '2026-03-12T08:15:00-05:00' };
    const { event, data } = await run(ctx, 'reschedule');
    expect(event?.type).toBe('appointment.rescheduled');
    expect(data).toMatchObject({
      status: 'booked',
      start: '2026-03-12T08:00:00-05:00',
      end: '2026-03-12T08:15:00-05:00',
      previous: { start: '2026-03-10T11:30:00-05:00', end: '2026-03-10T11:45:00-05:00' },
      changes: ['start', 'end'],
    });
  });

  it('demographics_update is an update of the patient with the fresh record', async () => {
    let apt = api(12345);
    const { ctx } = context(() => ok(apt));
    await run(ctx, 'create');
    await run(ctx, 'checkin');
    apt = { ...apt, last_name: 'Lopez-Garcia' };
    const { event, data } = await run(ctx, 'demographics_update');
    expect(event?.type).toBe('appointment.updated');
    expect(data).toMatchObject({
      status: 'arrived',
      changes: ['patient'],
      patient: { family: 'Lopez-Garcia' },
    });
  });

  it('ignores unknown event types', async () => {
    const { ctx } = context(byId);
    expect((await run(ctx, 'insurance_verified')).result.ignored).toMatch(/no normalized counterpart/);
  });
});

describe('clockwisemd normalize: enrichment failures', () => {
  it.each([503, 429, 500])('a %s retries (transient) without touching the state', async (status) => {
    const { ctx, state } = context(() => ({ status, headers: { 'retry-after': '7' }, body: 'busy' }));
    await expect(run(ctx, 'create')).rejects.toMatchObject({ kind: 'transient', retryAfterMs: 7000 });
    expect(state.size).toBe(0);
  });

  it('a network error retries (transient)', async () => {
    const { ctx } = context(() => {
      throw ConnectorError.transient('connect ECONNREFUSED');
    });
    await expect(run(ctx, 'create')).rejects.toMatchObject({ kind: 'transient' });
  });

  it('on the final attempt emits the event marked enrichment failed, from the stored state', async () => {
    let down = false;
    const { ctx } = context(() => (down ? { status: 503, headers: {}, body: '' } : ok(api(12345))));
    await run(ctx, 'create');
    down = true;
    await expect(run(ctx, 'checkin')).rejects.toMatchObject({ kind: 'transient' });
    ctx.finalAttempt = true;
    ctx.attempt = 5;
    const { event, data } = await run(ctx, 'checkin');
    expect(event?.type).toBe('appointment.arrived');
    expect(data).toMatchObject({
      enrichment: 'failed',
      start: '2026-03-10T11:30:00-05:00',
      patient: { given: 'Maria' },
    });
    expect(data?.vendor).toEqual({ webhook: { appointment_id: 12345, event_type: 'checkin' } });
  });

  it('a 404 emits without enrichment (failed), a 401 is permanent', async () => {
    const { ctx } = context(byId);
    expect((await run(ctx, 'create', 999)).data).toMatchObject({ enrichment: 'failed', status: 'booked' });
    const denied = context(() => ({ status: 401, headers: {}, body: { error: 'bad token' } }));
    await expect(run(denied.ctx, 'create')).rejects.toMatchObject({ kind: 'permanent' });
  });

  it('does not call the API when enrich is off or no apiKey is set', async () => {
    for (const c of [{ ...config, enrich: false }, { auth: config.auth }]) {
      const { ctx, requests } = context(byId, { config: c });
      expect((await run(ctx, 'create')).data).toMatchObject({ enrichment: 'none' });
      expect(requests).toHaveLength(0);
    }
  });

  it('unwraps an {appointment: {...}} envelope', async () => {
    const { ctx } = context(() => ok({ appointment: api(12345) }));
    expect((await run(ctx, 'create')).data).toMatchObject({
      enrichment: 'enriched',
      patient: { given: 'Maria' },
    });
  });
});

describe('clockwisemd time helpers', () => {
  it('keeps offsets, fills seconds, converts offset-less times', () => {
    expect(toRfc3339InZone('2026-03-10T11:30-05:00')).toBe('2026-03-10T11:30:00-05:00');
    expect(toRfc3339InZone('2026-03-10 11:30:00 +0100')).toBe('2026-03-10T11:30:00+01:00');
    expect(toRfc3339InZone('2026-03-10 11:30:00')).toBe('2026-03-10T11:30:00Z');
    expect(toRfc3339InZone('2026-07-10 11:30:00', 'Europe/Paris')).toBe('2026-07-10T11:30:00+02:00');
    expect(toRfc3339InZone('tomorrow')).toBeUndefined();
    expect(toDate('07/02/1984')).toBe('1984-07-02');
    expect(toDate('1984-07-02T00:00:00Z')).toBe('1984-07-02');
  });

  it('reads a wall time in a DST change the same way in every zone', () => {
    // The hour repeated when daylight time ends is its first pass (the daylight offset), east of
    // Greenwich as west of it: Warsaw's 02:30 read as its second pass, New York's 01:30 as its first.
    expect(toRfc3339InZone('2026-10-25 02:30:00', 'Europe/Warsaw')).toBe('2026-10-25T02:30:00+02:00');
    expect(toRfc3339InZone('2026-10-25 02:30:00', 'Europe/Madrid')).toBe('2026-10-25T02:30:00+02:00');
    expect(toRfc3339InZone('2026-11-01 01:30:00', 'America/New_York')).toBe('2026-11-01T01:30:00-04:00');
    // The hour skipped when it starts is read at the offset before the change (an hour later on the
    // clock after it: 03:30 daylight time); New York's 02:30 was read as 01:30 standard time.
    expect(toRfc3339InZone('2026-03-29 02:30:00', 'Europe/Warsaw')).toBe('2026-03-29T02:30:00+01:00');
    expect(toRfc3339InZone('2026-03-08 02:30:00', 'America/New_York')).toBe('2026-03-08T02:30:00-05:00');
    // Either side of the change, the one offset the zone has.
    expect(toRfc3339InZone('2026-10-25 03:00:00', 'Europe/Warsaw')).toBe('2026-10-25T03:00:00+01:00');
    expect(toRfc3339InZone('2026-10-25 01:59:00', 'Europe/Warsaw')).toBe('2026-10-25T01:59:00+02:00');
    expect(toRfc3339InZone('2026-03-08 03:00:00', 'America/New_York')).toBe('2026-03-08T03:00:00-04:00');
    expect(toRfc3339InZone('2026-03-08 01:59:00', 'America/New_York')).toBe('2026-03-08T01:59:00-05:00');
    expect(toRfc3339InZone('2028-02-29 00:00:00', 'Europe/Warsaw')).toBe('2028-02-29T00:00:00+01:00');
  });
});
