import { type JsonObject, validateEvent } from '@switchyard/core';
import { completeEvent, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { normalize } from './normalize.ts';
import { toNotification } from './pull.ts';
import { fixtureSettings } from './testing.ts';

const base = {
  id: '77',
  starts_at: '2026-03-10T10:00:00Z',
  ends_at: '2026-03-10T10:30:00Z',
  did_not_arrive: false,
  patient_arrived: false,
  cancelled_at: null,
  patient: { links: { self: 'https://api.au1.cliniko.com/v1/patients/82' } },
};
const version = (updatedAt: string, changes: JsonObject = {}) =>
  toNotification({ ...base, ...changes, updated_at: updatedAt } as JsonObject);

async function story(...versions: ReturnType<typeof version>[]) {
  const ctx = memoryNormalizeContext({ instanceId: 'cliniko-main', config: fixtureSettings });
  const out: Array<string> = [];
  for (const v of versions) {
    const result = await normalize(v, ctx);
    // Each event as the pipeline checks it before storing (SY_EVENT_INVALID otherwise).
    result.events.forEach((draft, index) => {
      const event = completeEvent(draft, {
        instanceId: ctx.instanceId,
        connector: 'cliniko',
        notification: v,
        index,
      });
      expect(validateEvent(event), `${draft.type} valid`).toEqual({ valid: true });
    });
    out.push(
      result.ignored !== undefined ? `ignored: ${result.ignored}` : result.events.map((e) => e.type).join(),
    );
  }
  return out;
}

describe('Cliniko normalize', () => {
  it('tells a no-show, an arrival and another change from the last version seen', async () => {
    expect(
      await story(
        version('2026-03-01T10:00:00Z'),
        version('2026-03-01T11:00:00Z', { notes: 'bring the referral' }),
        version('2026-03-10T10:05:00Z', { notes: 'bring the referral', patient_arrived: true }),
      ),
    ).toEqual(['appointment.created', 'appointment.updated', 'appointment.arrived']);
    expect(
      await story(version('2026-03-01T10:00:00Z'), version('2026-03-10T11:00:00Z', { did_not_arrive: true })),
    ).toEqual(['appointment.created', 'appointment.no_show']);
  });

  it('names what an update changed (appointment.updated requires `changes`), keeping only a digest of the notes', async () => {
    const ctx = memoryNormalizeContext({ instanceId: 'cliniko-main', config: fixtureSettings });
    await normalize(version('2026-03-01T10:00:00Z'), ctx);
    const noted = await normalize(version('2026-03-01T11:00:00Z', { notes: 'bring the referral' }), ctx);
    // Before: no `changes`, and the pipeline failed the event (SY_EVENT_INVALID).
    expect(noted.events.map((e) => [e.type, e.data?.changes, e.data?.comment])).toEqual([
      ['appointment.updated', ['comment'], 'bring the referral'],
    ]);
    const moved = await normalize(
      version('2026-03-01T12:00:00Z', {
        notes: 'bring the referral',
        practitioner: { links: { self: 'https://api.au1.cliniko.com/v1/practitioners/9' } },
      }),
      ctx,
    );
    expect(moved.events[0]?.data?.changes).toEqual(['practitioner']);
    expect([...ctx.state.values.values()].join()).not.toContain('referral');
  });

  it('tells a cleared arrival or no-show (both flags back to false or null) as status_reverted', async () => {
    expect(
      await story(
        version('2026-03-01T10:00:00Z'),
        version('2026-03-10T10:05:00Z', { patient_arrived: true }),
        // Cliniko nulls both when either is unset (cliniko-api#153); the hub's clear writes false.
        version('2026-03-10T10:06:00Z', { patient_arrived: null, did_not_arrive: null }),
        version('2026-03-10T11:00:00Z', { did_not_arrive: true }),
        version('2026-03-10T11:01:00Z', { did_not_arrive: false }),
        // A no-show set right after an arrival is a new observation, not an undo.
        version('2026-03-10T11:02:00Z', { patient_arrived: true }),
        version('2026-03-10T11:03:00Z', { patient_arrived: false, did_not_arrive: true }),
      ),
    ).toEqual([
      'appointment.created',
      'appointment.arrived',
      'appointment.status_reverted',
      'appointment.no_show',
      'appointment.status_reverted',
      'appointment.arrived',
      'appointment.no_show',
    ]);
  });

  it('tells an archived appointment (archived_at set, deleted_at not) as cancelled', async () => {
    const ctx = memoryNormalizeContext({ instanceId: 'cliniko-main', config: fixtureSettings });
    await normalize(version('2026-03-01T10:00:00Z'), ctx);
    const archived = await normalize(
      version('2026-03-03T08:00:00Z', { archived_at: '2026-03-03T08:00:00Z', deleted_at: null }),
      ctx,
    );
    expect(archived.events.map((e) => [e.type, e.data?.status, e.data?.cancelledAt])).toEqual([
      ['appointment.cancelled', 'cancelled', '2026-03-03T08:00:00Z'],
    ]);
  });

  it('ignores a version older than the last seen, and an appointment first seen cancelled', async () => {
    expect(
      await story(
        version('2026-03-02T10:00:00Z'),
        version('2026-03-01T10:00:00Z', { starts_at: '2026-03-09T10:00:00Z' }),
      ),
    ).toEqual([
      'appointment.created',
      'ignored: Cliniko appointment 77 version 2026-03-01T10:00:00Z is not newer than 2026-03-02T10:00:00Z',
    ]);
    expect(await story(version('2026-03-02T10:00:00Z', { cancelled_at: '2026-03-02T10:00:00Z' }))).toEqual([
      'ignored: Cliniko appointment 77 was first seen cancelled: nothing to tell subscribers',
    ]);
  });

  it('reads the patient id from its link and keeps the whole record as vendor', async () => {
    const ctx = memoryNormalizeContext({ instanceId: 'cliniko-main', config: fixtureSettings });
    const [event] = (await normalize(version('2026-03-01T10:00:00Z', { patient_name: 'Joe Monahan' }), ctx))
      .events;
    expect(event?.data).toMatchObject({
      patient: { id: '82', name: 'Joe Monahan' },
      status: 'booked',
      vendor: { id: '77' },
    });
  });
});
