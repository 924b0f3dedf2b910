import { memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { encode } from './encode.ts';
import { normalize } from './normalize.ts';
import { fixtureSettings, fixtureVendorApi } from './testing.ts';

describe('encode', () => {
  it('turns an event back into the form Acuity sends', async () => {
    const ctx = memoryNormalizeContext({
      instanceId: 'acuity-main',
      config: fixtureSettings,
      vendorApi: fixtureVendorApi,
    });
    const payload = { action: 'scheduled', id: '54321', calendarID: '27238', appointmentTypeID: '1' };
    const { events } = await normalize({ type: 'scheduled', dedupeKey: 'k', payload }, ctx);
    const event = { ...events[0]!, id: 'e1', source: 'acuity-main', specversion: '1.0' } as never;
    expect(encode(event, fixtureSettings)).toEqual({
      route: 'default',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: payload,
    });
  });

  it('refuses a type Acuity has no webhook for', () => {
    expect(() => encode({ type: 'slot.blocked', data: {} } as never, fixtureSettings)).toThrow('no webhook');
  });
});
