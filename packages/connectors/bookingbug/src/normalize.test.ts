import { readFileSync } from 'node:fs';
import type { JsonObject, NormalizeResult } from '@switchyard/core';
import { inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { normalize, toRfc3339 } from './normalize.ts';
import { parse } from './parse.ts';

const config: Config = { basicAuth: { username: 'bb-user', password: 'bb-password-0123456789' } };
const fixture = (name: string): JsonObject =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;

function setup() {
  const ctx = memoryNormalizeContext({
    config,
    instanceId: 'bb-test',
    receivedAt: new Date('2026-01-15T10:00:00Z'),
  });
  const push = async (body: JsonObject, route = 'default'): Promise<NormalizeResult> => {
    const [n] = parse(inboundRequest({ route, body, receivedAt: new Date('2026-01-15T10:00:00Z') }), config);
    return normalize(n!, ctx);
  };
  return { ctx, push };
}

const dataOf = (r: NormalizeResult, i = 0) => r.events[i]?.data as JsonObject;

describe('bookingbug normalize', () => {
  it('maps the vendor sample to a created appointment with patient, practitioner, place and service', async () => {
    const { push } = setup();
    const r = await push(fixture('created.json'));
    expect(r.events.map((e) => e.type)).toEqual(['appointment.created']);
    const data = dataOf(r);
    expect(r.events[0]?.subject).toBe(`appointment/${data.id}`);
    expect(r.events[0]?.time).toBe('2017-03-07T09:30:31Z');
    expect(data).toMatchObject({
      vendorIds: [{ system: 'bookingbug', instance: 'bb-test', value: '13477736', current: true }],
      status: 'booked',
      start: '2017-03-10T11:30:00+00:00',
      end: '2017-03-10T12:00:00+00:00',
      durationMinutes: 30,
      timeZone: 'Europe/London',
      bookedAt: '2017-03-07T09:30:31Z',
      patient: {
        id: '3056937',
        externalRef: 'QWERTY123',
        name: 'Test Gladden',
        given: 'Test',
        family: 'Gladden',
        email: 'test@bookingbug.com',
        phone: '+4412345678910',
      },
      practitioner: { id: '30553', name: 'Waqas' },
      location: {
        id: '52355',
        name: 'London Office',
        address: { line: ['111 Neville Road'], postalCode: 'E11 11', country: 'United Kingdom' },
      },
      organization: { id: '50666' },
      service: { id: '104747', name: 'Microchipping', price: { amount: 1500, unit: 'minor' } },
    });
    const vendor = data.vendor as JsonObject;
    expect((vendor.booking as JsonObject).id).toBe(13477736);
    expect((vendor.purchase as JsonObject).id).toBe(11610441);
    expect(((vendor.purchase as JsonObject)._embedded as JsonObject).bookings).toBeUndefined();
  });

  it('follows created → unchanged → moved → changed → cancelled on one hub id', async () => {
    const { push } = setup();
    const created = await push(fixture('created.json'));
    const hubSubject = created.events[0]?.subject;
    expect((await push(fixture('repeat-unchanged.json'))).ignored).toBe('no change since the last delivery');

    const moved = await push(fixture('amended-time.json'));
    expect(moved.events[0]?.type).toBe('appointment.rescheduled');
    expect(moved.events[0]?.subject).toBe(hubSubject);
    expect(dataOf(moved)).toMatchObject({
      start: '2017-03-14T15:00:00+00:00',
      previous: { start: '2017-03-10T11:30:00+00:00', end: '2017-03-10T12:00:00+00:00' },
      changes: ['start', 'end'],
    });

    const changed = await push(fixture('amended-other.json'));
    expect(changed.events[0]?.type).toBe('appointment.updated');
    expect(dataOf(changed)).toMatchObject({
      changes: ['practitioner', 'vendor.resource_name'],
      practitioner: { id: '30560', name: 'Sarah' },
    });

    const cancelled = await push(fixture('cancelled-via-cancellation-url.json'), 'cancellation');
    expect(cancelled.events.map((e) => [e.type, e.subject])).toEqual([['appointment.cancelled', hubSubject]]);
    expect(dataOf(cancelled).status).toBe('cancelled');
    expect((await push(fixture('cancelled-via-cancellation-url.json'), 'cancellation')).ignored).toMatch(
      /no change/,
    );
  });

  it('gives one event per booking, treats a replaced booking id at a new time as a move, cancels only flagged bookings', async () => {
    const { push, ctx } = setup();
    const two = await push(fixture('two-bookings.json'));
    expect(two.events.map((e) => e.type)).toEqual(['appointment.created', 'appointment.created']);
    const [first, second] = two.events.map((e) => e.subject);
    expect(first).not.toBe(second);

    const moved = await push(fixture('moved-new-booking-id.json'));
    expect(moved.events.map((e) => [e.type, e.subject])).toEqual([['appointment.rescheduled', first]]);
    expect(dataOf(moved)).toMatchObject({
      vendorIds: [
        { value: '13477801', current: false },
        { value: '13477850', current: true },
      ],
      previous: { start: '2017-03-20T09:00:00+00:00', vendorId: '13477801' },
      start: '2017-03-21T11:00:00+00:00',
    });
    expect(await ctx.aliases.find('appointment', '13477850')).toBe(first?.slice('appointment/'.length));

    const cancelled = await push(fixture('cancelled-via-is-cancelled.json'));
    expect(cancelled.events.map((e) => [e.type, e.subject])).toEqual([['appointment.cancelled', second]]);
  });

  it('cancels every booking when the cancellation URL gets a purchase without is_cancelled', async () => {
    const { push } = setup();
    await push(fixture('two-bookings.json'));
    const r = await push(fixture('two-bookings.json'), 'cancellation');
    expect(r.events.map((e) => e.type)).toEqual(['appointment.cancelled', 'appointment.cancelled']);
  });

  it('handles the JRNI trigger shape, using triggerTime as the event time and cancelledAt', async () => {
    const { push } = setup();
    const created = await push(fixture('jrni-create.json'));
    expect(created.events[0]).toMatchObject({ type: 'appointment.created', time: '2024-05-02T08:15:43Z' });
    const modified = await push(fixture('jrni-modify.json'));
    expect(modified.events[0]).toMatchObject({
      type: 'appointment.rescheduled',
      time: '2024-05-03T16:40:05Z',
    });
    expect(dataOf(modified).start).toBe('2024-05-11T10:00:00+01:00');
    const cancelled = await push(fixture('jrni-cancelled.json'));
    expect(cancelled.events[0]?.type).toBe('appointment.cancelled');
    expect(dataOf(cancelled).cancelledAt).toBe('2024-05-04T09:01:17Z');
  });

  it('announces an amendment of a booking it never saw as created (the hub started late)', async () => {
    const { push } = setup();
    expect((await push(fixture('amended-other.json'))).events[0]?.type).toBe('appointment.created');
  });

  it('ignores a purchase without bookings', async () => {
    const { push } = setup();
    const body = { ...fixture('created.json'), _embedded: { bookings: [] } };
    expect((await push(body)).ignored).toBe('the purchase has no bookings');
  });

  it('normalizes datetimes keeping the offset', () => {
    expect(toRfc3339('2017-03-10T11:30:00+00:00')).toBe('2017-03-10T11:30:00+00:00');
    expect(toRfc3339('2017-03-10 11:30')).toBe('2017-03-10T11:30:00Z');
    expect(toRfc3339('2017-03-10T11:30:00+0100')).toBe('2017-03-10T11:30:00+01:00');
    expect(toRfc3339('null')).toBeUndefined();
  });
});
