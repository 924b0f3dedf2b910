import { readFileSync } from 'node:fs';
import type { EventEnvelope, JsonObject } from '@switchyard/core';
import { afterEach, describe, expect, it } from 'vitest';
import { bookingbugConnector } from '../../../connectors/bookingbug/src/index.ts';
import { inboundRequest } from '../connector-context.ts';
import { BookingBugSimulator } from './bookingbug.ts';
import { startHookReceiver } from './shared/receiver.ts';

const fixture = (name: string) =>
  JSON.parse(
    readFileSync(new URL(`../../../connectors/bookingbug/fixtures/${name}`, import.meta.url), 'utf8'),
  ) as JsonObject;
const USER = 'switchyard-bb';
const PASSWORD = 'bb-push-password-0123456789';

/** A hook receiver answering from a script of statuses (the last one repeats). */
async function receiver(statuses: number[]) {
  const hook = await startHookReceiver({ path: '/hooks/bb', answers: statuses, whenDone: 'repeat' });
  return { ...hook, base: hook.url };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('BookingBugSimulator', () => {
  it('pushes the purchase with HTTP Basic credentials the connector accepts', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const sim = new BookingBugSimulator({ bookingUrl: hook.base, username: USER, password: PASSWORD });
    const record = await sim.push(fixture('created.json'));
    expect(record).toMatchObject({ delivered: true, kind: 'create', url: hook.base });
    const got = hook.received[0]!;
    expect(JSON.parse(got.body)).toEqual(fixture('created.json'));
    const request = inboundRequest({
      headers: { authorization: got.headers.authorization },
      body: JSON.parse(got.body),
    });
    const config = { basicAuth: { username: USER, password: PASSWORD } };
    expect(() => bookingbugConnector.push!.authenticate(request, config)).not.toThrow();
  });

  it('sends cancellations to the cancellation URL when configured, else to the booking URL', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const both = new BookingBugSimulator({
      bookingUrl: hook.base,
      cancellationUrl: `${hook.base}/cancellation`,
      username: USER,
      password: PASSWORD,
    });
    await both.push(fixture('created.json'), { kind: 'cancelled' });
    await both.push(fixture('amended-time.json'), { kind: 'modify' });
    const bookingOnly = new BookingBugSimulator({
      bookingUrl: hook.base,
      username: USER,
      password: PASSWORD,
    });
    await bookingOnly.push(fixture('created.json'), { kind: 'cancelled' });
    expect(hook.received.map((r) => r.url)).toEqual(['/hooks/bb/cancellation', '/hooks/bb', '/hooks/bb']);
  });

  it('adds JRNI trigger fields when asked', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const sim = new BookingBugSimulator({
      bookingUrl: hook.base,
      username: USER,
      password: PASSWORD,
      jrni: true,
      now: () => new Date('2026-01-15T10:00:00Z'),
    });
    await sim.push(fixture('amended-time.json'), { kind: 'modify' });
    expect(JSON.parse(hook.received[0]!.body)).toMatchObject({
      triggerName: 'modify',
      triggerTime: '2026-01-15T10:00:00.000Z',
      id: 11610441,
    });
  });

  it('does not retry by default, and retries on the configured delays when told to', async () => {
    const hook = await receiver([500, 502, 200]);
    cleanups.push(hook.close);
    const once = new BookingBugSimulator({ bookingUrl: hook.base, username: USER, password: PASSWORD });
    expect((await once.push(fixture('created.json'))).attempts.map((a) => a.status)).toEqual([500]);
    const retrying = new BookingBugSimulator({
      bookingUrl: hook.base,
      username: USER,
      password: PASSWORD,
      retryDelaysMs: [1000, 1000, 1000],
      timeScale: 0.001,
    });
    const record = await retrying.push(fixture('created.json'));
    expect(record.attempts.map((a) => a.status)).toEqual([502, 200]);
    expect(record.delivered).toBe(true);
  });

  it('records a refused connection as an attempt without a status', async () => {
    const hook = await receiver([200]);
    await hook.close();
    const sim = new BookingBugSimulator({ bookingUrl: hook.base, username: USER, password: PASSWORD });
    const record = await sim.push(fixture('created.json'));
    expect(record.delivered).toBe(false);
    expect(record.attempts[0]).toMatchObject({ status: null });
    expect(record.attempts[0]?.error).toBeTruthy();
  });

  it('encodes a cancelled event into a purchase on the cancellation URL', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const sim = new BookingBugSimulator({
      bookingUrl: hook.base,
      cancellationUrl: `${hook.base}/cancellation`,
      username: USER,
      password: PASSWORD,
    });
    const event: EventEnvelope = {
      specversion: '1.0',
      id: 'e1',
      type: 'appointment.cancelled',
      source: 'bb',
      subject: 'appointment/h1',
      time: '2026-01-15T10:00:00Z',
      datacontenttype: 'application/json',
      data: {
        id: 'h1',
        status: 'cancelled',
        vendorIds: [{ system: 'bookingbug', value: '13477736', current: true }],
        start: '2017-03-10T11:30:00+00:00',
      },
      connector: 'bookingbug',
      instance: 'bb',
      vendortype: 'cancellation',
    };
    const record = await sim.push(event);
    expect(record.kind).toBe('cancelled');
    expect(hook.received[0]!.url).toBe('/hooks/bb/cancellation');
    expect(JSON.parse(hook.received[0]!.body)).toMatchObject({
      _embedded: { bookings: [{ id: 13477736, is_cancelled: true, datetime: '2017-03-10T11:30:00+00:00' }] },
    });
  });
});
