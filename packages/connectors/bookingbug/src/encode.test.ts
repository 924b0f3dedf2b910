import { readFileSync } from 'node:fs';
import type { EventEnvelope, JsonObject } from '@switchyard/core';
import { completeEvent, inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { encode } from './encode.ts';
import { bookingbugConnector } from './index.ts';
import { normalize } from './normalize.ts';
import { parse } from './parse.ts';

const config: Config = { basicAuth: { username: 'bb-user', password: 'bb-password-0123456789' } };
const fixture = (name: string): JsonObject =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;

async function eventsOf(body: JsonObject, route = 'default', ctx = memoryNormalizeContext({ config })) {
  const [n] = parse(inboundRequest({ route, body }), config);
  const result = await normalize(n!, ctx);
  return result.events.map((draft, index) =>
    completeEvent(draft, {
      instanceId: ctx.instanceId,
      connector: bookingbugConnector,
      notification: n!,
      index,
    }),
  );
}

function bare(type: string, data: JsonObject): EventEnvelope {
  return {
    specversion: '1.0',
    id: 'e1',
    type,
    source: 'bb',
    subject: 'appointment/h1',
    time: '2026-01-15T10:00:00Z',
    datacontenttype: 'application/json',
    connector: 'bookingbug',
    instance: 'bb',
    vendortype: 'purchase',
    data,
  };
}

describe('bookingbug encode', () => {
  it('re-creates the purchase with just this booking, on the booking URL', async () => {
    const [event] = await eventsOf(fixture('created.json'));
    const encoded = encode(event!, config);
    expect(encoded.route).toBe('default');
    const body = encoded.body as JsonObject;
    expect(body.id).toBe(11610441);
    const bookings = (body._embedded as JsonObject).bookings as JsonObject[];
    expect(bookings.map((b) => b.id)).toEqual([13477736]);
    expect((body._embedded as JsonObject).client).toMatchObject({ first_name: 'Test' });
  });

  it('sends cancellations to the cancellation URL with is_cancelled', async () => {
    const ctx = memoryNormalizeContext({ config });
    await eventsOf(fixture('created.json'), 'default', ctx);
    const [cancelled] = await eventsOf(fixture('created.json'), 'cancellation', ctx);
    const encoded = encode(cancelled!, config);
    expect(encoded.route).toBe('cancellation');
    expect(((encoded.body as JsonObject)._embedded as JsonObject).bookings).toEqual([
      expect.objectContaining({ id: 13477736, is_cancelled: true }),
    ]);
  });

  it('encodes an event from a JRNI webhook as a JRNI webhook that normalizes back to it', async () => {
    const ctx = memoryNormalizeContext({ config });
    for (const file of ['jrni-data-create.json', 'jrni-data-modify-time.json', 'jrni-data-checked-in.json']) {
      const [event] = await eventsOf(fixture(file), 'default', ctx);
      const encoded = encode(event!, config);
      expect(encoded.route, file).toBe('default');
      const body = encoded.body as JsonObject;
      expect(body.triggerTime, file).toBe(event!.time);
      expect(body.appointment, file).toMatchObject({ bookingId: 1294, companyStartTime: event!.data.start });
    }
    // A check-in the hub announces encodes to the JRNI push that announces it again.
    const fresh = memoryNormalizeContext({ config });
    const created = await eventsOf(fixture('jrni-data-create.json'), 'default', fresh);
    const arrived = {
      ...created[0]!,
      type: 'appointment.arrived',
      data: { ...created[0]!.data, status: 'arrived', workflowStep: 'arrived' },
    } as EventEnvelope;
    const body = encode(arrived, config).body as JsonObject;
    expect(body).toMatchObject({ triggerName: 'modify', appointment: { checkInStatus: 'Checked in' } });
    const [again] = await eventsOf(body, 'default', fresh);
    expect(again).toMatchObject({ type: 'appointment.arrived', subject: created[0]!.subject });
  });

  it('puts the event times on the booking, so a reschedule parses back as a move', async () => {
    const ctx = memoryNormalizeContext({ config });
    await eventsOf(fixture('created.json'), 'default', ctx);
    const moved = bare('appointment.rescheduled', {
      id: 'h1',
      status: 'booked',
      vendorIds: [{ system: 'bookingbug', value: '13477736', current: true }],
      start: '2017-03-15T09:00:00+00:00',
      end: '2017-03-15T09:30:00+00:00',
      previous: {},
    });
    const encoded = encode(moved, config);
    expect(((encoded.body as JsonObject)._embedded as JsonObject).bookings).toEqual([
      expect.objectContaining({ id: 13477736, datetime: '2017-03-15T09:00:00+00:00' }),
    ]);
    // Without a vendor record the purchase id falls back to the booking id: a new purchase for the hub.
    const [n] = parse(inboundRequest({ body: encoded.body as JsonObject }), config);
    expect(n?.orderingKey).toBe('purchase:13477736');
  });

  it('builds a booking from normalized data when the event has no vendor record', () => {
    const encoded = encode(
      bare('appointment.created', {
        id: 'h1',
        status: 'booked',
        vendorIds: [{ system: 'bookingbug', value: '42', current: true }],
        start: '2026-03-10T11:30:00+01:00',
        service: { id: '7', name: 'Checkup', price: { amount: 900, unit: 'minor' } },
        practitioner: { id: '3', name: 'Dr Who' },
        patient: { given: 'Ada', family: 'Lovelace', email: 'ada@example.com' },
      }),
      config,
    );
    expect(encoded.body).toMatchObject({
      id: 42,
      _embedded: {
        bookings: [
          {
            id: 42,
            datetime: '2026-03-10T11:30:00+01:00',
            service_id: 7,
            service_name: 'Checkup',
            price: 900,
            person_name: 'Dr Who',
            first_name: 'Ada',
            email: 'ada@example.com',
          },
        ],
      },
    });
  });

  it('refuses types BookingBug cannot produce and events without a BookingBug id', () => {
    expect(() =>
      encode(bare('appointment.checked_in', { vendorIds: [{ system: 'bookingbug', value: '1' }] }), config),
    ).toThrow(/no push/);
    expect(() => encode(bare('appointment.created', { vendorIds: [] }), config)).toThrow(
      /no BookingBug booking id/,
    );
  });
});
