import type { JsonObject } from '@switchyard/core';
import { memoryNormalizeContext } from '@switchyard/testing';
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
