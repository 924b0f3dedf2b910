import { ConnectorError } from '@switchyard/core';
import { memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { normalize } from './normalize.ts';
import { fixtureSettings, fixtureVendorApi } from './testing.ts';

const note = (action: string, id = '54321') => ({
  type: action,
  dedupeKey: `${action}:${id}`,
  orderingKey: `appointment:${id}`,
  payload: { action, id, calendarID: '27238', appointmentTypeID: '1' },
});

describe('normalize', () => {
  it('reads the appointment behind a scheduled webhook into appointment.created', async () => {
    const ctx = memoryNormalizeContext({
      instanceId: 'acuity-main',
      config: fixtureSettings,
      vendorApi: fixtureVendorApi,
    });
    const { events } = await normalize(note('scheduled'), ctx);
    expect(events[0]).toMatchObject({
      type: 'appointment.created',
      data: {
        status: 'booked',
        start: '2013-07-02T10:15:00-07:00',
        end: '2013-07-02T11:15:00-07:00',
        durationMinutes: 60,
        timeZone: 'America/New_York',
        patient: { name: 'Bob McTest', given: 'Bob', family: 'McTest', email: 'bob.mctest@example.com' },
        practitioner: { id: '27238', name: 'My Calendar' },
        service: { id: '1', name: 'Regular Visit' },
      },
    });
    expect(ctx.vendorRequests[0]!.url).toBe('https://acuity.test/api/v1/appointments/54321');
  });

  it("writes an end past a DST change with the offset its time zone has then, not the start's", async () => {
    // New York leaves daylight time at 02:00 on 1 November 2026: a 90-minute visit from 00:30 EDT
    // ends at 01:00 EST. Written with the start's offset it read 02:00-04:00, the same instant
    // under a wall time the clinic's clock never showed.
    const api = (request: Parameters<typeof fixtureVendorApi>[0]) => {
      const res = fixtureVendorApi(request);
      return {
        ...res,
        body: { ...(res.body as object), datetime: '2026-11-01T00:30:00-0400', duration: '90' },
      };
    };
    const ctx = memoryNormalizeContext({ config: fixtureSettings, vendorApi: api });
    const { events } = await normalize(note('scheduled'), ctx);
    expect(events[0]!.data).toMatchObject({
      start: '2026-11-01T00:30:00-04:00',
      end: '2026-11-01T01:00:00-05:00',
      durationMinutes: 90,
      timeZone: 'America/New_York',
    });
  });

  it('leaves a start on a day the month does not have out of the event, in the vendor part only', async () => {
    const api = (request: Parameters<typeof fixtureVendorApi>[0]) => {
      const res = fixtureVendorApi(request);
      return { ...res, body: { ...(res.body as object), datetime: '2026-02-29T10:00:00-0500' } };
    };
    const ctx = memoryNormalizeContext({ config: fixtureSettings, vendorApi: api });
    const { events } = await normalize(note('scheduled'), ctx);
    expect(events[0]!.data.start).toBeUndefined();
    expect(events[0]!.data.end).toBeUndefined();
  });

  it('drops a repeat that changes nothing, and tells a move from the state it took', async () => {
    let datetime = '2013-07-02T10:15:00-0700';
    const api = (request: Parameters<typeof fixtureVendorApi>[0]) => {
      const res = fixtureVendorApi(request);
      return { ...res, body: { ...(res.body as object), datetime } };
    };
    const ctx = memoryNormalizeContext({ config: fixtureSettings, vendorApi: api });
    await normalize(note('scheduled'), ctx);
    expect((await normalize(note('changed'), ctx)).ignored).toContain('nothing changed');
    datetime = '2013-07-03T09:00:00-0700';
    const moved = await normalize(note('rescheduled'), ctx);
    expect(moved.events[0]).toMatchObject({
      type: 'appointment.rescheduled',
      data: { start: '2013-07-03T09:00:00-07:00', previous: { start: '2013-07-02T10:15:00-07:00' } },
    });
    expect((await normalize(note('rescheduled'), ctx)).ignored).toContain('nothing changed');
  });

  it('retries a read that fails, and on the final attempt emits what the webhook says', async () => {
    const down = () => ({ status: 503, headers: { 'retry-after': '30' }, body: 'unavailable' });
    const ctx = memoryNormalizeContext({ config: fixtureSettings, vendorApi: down });
    await expect(normalize(note('scheduled'), ctx)).rejects.toMatchObject({
      kind: 'transient',
      retryAfterMs: 30_000,
    });
    const last = memoryNormalizeContext({ config: fixtureSettings, vendorApi: down, finalAttempt: true });
    const { events } = await normalize(note('canceled'), last);
    expect(events[0]).toMatchObject({
      type: 'appointment.cancelled',
      data: { status: 'cancelled', enrichment: 'failed' },
    });
  });

  it('treats an API it cannot reach as a failed read: retried, and emitted from the webhook on the final attempt', async () => {
    // What the hub's vendor client throws when the connection is refused or times out.
    const unreachable = () => {
      throw ConnectorError.transient('connect ECONNREFUSED 203.0.113.7:443');
    };
    const ctx = memoryNormalizeContext({ config: fixtureSettings, vendorApi: unreachable });
    await expect(normalize(note('scheduled'), ctx)).rejects.toMatchObject({ kind: 'transient' });
    const last = memoryNormalizeContext({
      config: fixtureSettings,
      vendorApi: unreachable,
      finalAttempt: true,
    });
    const { events } = await normalize(note('scheduled'), last);
    expect(events[0]).toMatchObject({
      type: 'appointment.created',
      data: { status: 'booked', enrichment: 'failed', vendor: { action: 'scheduled', id: '54321' } },
    });
    // Not a transient failure (a bug in a client, say): not covered up on the final attempt.
    const broken = memoryNormalizeContext({
      config: fixtureSettings,
      finalAttempt: true,
      vendorApi: () => {
        throw ConnectorError.permanent('refused by policy');
      },
    });
    await expect(normalize(note('scheduled'), broken)).rejects.toMatchObject({ kind: 'permanent' });
  });

  it('retries a 2xx without the appointment (a proxy page), as a 200 without it is retried', async () => {
    for (const status of [200, 204]) {
      const page = () => ({ status, headers: { 'content-type': 'text/html' }, body: '<html>' });
      const ctx = memoryNormalizeContext({ config: fixtureSettings, vendorApi: page });
      await expect(normalize(note('scheduled'), ctx)).rejects.toMatchObject({ kind: 'transient' });
    }
  });

  it('fails for good on refused credentials, and ignores an appointment Acuity no longer has', async () => {
    const refused = memoryNormalizeContext({
      config: { ...fixtureSettings, apiKey: 'another-key-0123456789' },
      vendorApi: fixtureVendorApi,
    });
    await expect(normalize(note('scheduled'), refused)).rejects.toMatchObject({ kind: 'permanent' });
    const ctx = memoryNormalizeContext({ config: fixtureSettings, vendorApi: fixtureVendorApi });
    expect((await normalize(note('scheduled', '999'), ctx)).ignored).toContain('no appointment 999');
  });
});
