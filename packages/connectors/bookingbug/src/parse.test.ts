import { readFileSync } from 'node:fs';
import type { JsonObject } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { authenticate, basicAuthorization } from './auth.ts';
import type { Config } from './config.ts';
import { parse } from './parse.ts';

const config: Config = { basicAuth: { username: 'bb-user', password: 'bb-password-0123456789' } };
const fixture = (name: string): JsonObject =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;
const good = { authorization: basicAuthorization('bb-user', 'bb-password-0123456789') };

describe('bookingbug authenticate', () => {
  it('accepts the configured Basic credentials (any case of the scheme)', () => {
    expect(() => authenticate(inboundRequest({ headers: good, body: {} }), config)).not.toThrow();
    const lower = { authorization: good.authorization.replace('Basic', 'basic') };
    expect(() => authenticate(inboundRequest({ headers: lower, body: {} }), config)).not.toThrow();
  });
  it.each([
    ['missing', {}, /missing/],
    ['another scheme', { authorization: 'Digest bb-password-0123456789' }, /neither Basic nor Bearer/],
    ['a Bearer token when OAuth2 is not configured', { authorization: 'Bearer x' }, /not configured/],
    [
      'without a colon',
      { authorization: `Basic ${Buffer.from('bb-user').toString('base64')}` },
      /do not match/,
    ],
    [
      'a wrong password',
      { authorization: basicAuthorization('bb-user', 'bb-password-012345678') },
      /do not match/,
    ],
    [
      'a wrong user',
      { authorization: basicAuthorization('bb-usr', 'bb-password-0123456789') },
      /do not match/,
    ],
  ])('refuses %s', (_name, headers, message) => {
    const run = () => authenticate(inboundRequest({ headers, body: {} }), config);
    expect(run).toThrow(message);
    expect(run).toThrow(expect.objectContaining({ kind: 'auth' }));
  });
  it('accepts a password that contains colons', () => {
    const c: Config = { basicAuth: { username: 'u', password: 'a:b:c-0123456789abc' } };
    const headers = { authorization: basicAuthorization('u', 'a:b:c-0123456789abc') };
    expect(() => authenticate(inboundRequest({ headers, body: {} }), c)).not.toThrow();
  });
});

describe('bookingbug parse', () => {
  it('makes one notification per purchase, typed by route', () => {
    const created = parse(inboundRequest({ body: fixture('created.json') }), config);
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({
      type: 'purchase',
      orderingKey: 'company:50666',
      meta: { route: 'default' },
    });
    const cancel = parse(inboundRequest({ route: 'cancellation', body: fixture('created.json') }), config);
    expect(cancel[0]?.type).toBe('cancellation');
  });

  it('makes one notification per JRNI webhook, typed by its trigger, ordered per company', () => {
    const [n] = parse(inboundRequest({ body: fixture('jrni-data-modify-time.json') }), config);
    expect(n).toMatchObject({
      type: 'modify',
      orderingKey: 'company:37011',
      occurredAt: '2023-02-12T09:30:00Z',
      meta: { route: 'default', shape: 'jrni' },
    });
    const typeOf = (triggerName: unknown) =>
      parse(
        inboundRequest({ body: { ...fixture('jrni-data-create.json'), triggerName } as JsonObject }),
        config,
      )[0]?.type;
    expect(typeOf('create')).toBe('create');
    expect(typeOf('Cancelled')).toBe('cancelled');
    expect(typeOf('booking_confirmed')).toBe('confirmed');
    expect(typeOf('Session Reminder')).toBe('reminder');
    expect(typeOf('additional_attendees_added')).toBe('attendees_added');
    // A customised payload without (or with an unknown) trigger is still stored: the comparison decides.
    expect(typeOf(undefined)).toBe('snapshot');
    expect(typeOf('exploded')).toBe('snapshot');
  });

  it('answers a token request with nothing to store, and refuses another grant type', () => {
    const token = (body: string, type = 'application/x-www-form-urlencoded') =>
      parse(
        inboundRequest({ route: 'oauth-token', headers: { 'content-type': type }, body: Buffer.from(body) }),
        config,
      );
    expect(token('grant_type=client_credentials')).toEqual([]);
    expect(token('{"grant_type":"client_credentials"}', 'application/json')).toEqual([]);
    expect(() => token('grant_type=password')).toThrow(expect.objectContaining({ kind: 'bad_request' }));
  });

  it('dedupes an identical redelivery, even re-serialized with other key order, but not an amendment', () => {
    const key = (body: unknown, route = 'default') =>
      parse(inboundRequest({ route, body: body as JsonObject, receivedAt: new Date() }), config)[0]
        ?.dedupeKey;
    const body = fixture('created.json');
    const reordered = Object.fromEntries(Object.entries(body).reverse()) as JsonObject;
    expect(key(body)).toBe(key(reordered));
    expect(key(fixture('amended-time.json'))).not.toBe(key(body));
    expect(key(fixture('repeat-unchanged.json'))).not.toBe(key(body));
    expect(key(body, 'cancellation')).not.toBe(key(body));
    expect(key(fixture('jrni-data-create.json'))).toBe(key(fixture('jrni-data-create.json')));
    expect(key(fixture('jrni-data-checked-in.json'))).not.toBe(
      key({ ...fixture('jrni-data-checked-in.json'), triggerTime: '2023-02-18T18:59:00Z' }),
    );
  });

  it('reads a purchase wrapped in `purchase`', () => {
    const [n] = parse(inboundRequest({ body: { purchase: fixture('created.json') } }), config);
    expect(n).toMatchObject({ type: 'purchase', orderingKey: 'company:50666' });
  });

  it('acknowledges a JRNI queue entry that names no booking (origin queuer), where it refused it 400', () => {
    // FACTS.md: the data webhook's appointment.origin is `booking` or `queuer`; a walk-in queue's
    // entry need not carry a bookingId. Refused, JRNI sent it again and again (vendor-payload audit).
    const create = fixture('jrni-data-create.json') as JsonObject;
    const { bookingId: _, ...appointment } = create.appointment as JsonObject;
    const queued = { ...create, appointment: { ...appointment, origin: 'queuer' } };
    const [n, more] = parse(inboundRequest({ body: queued }), config);
    expect(more).toBeUndefined();
    expect(n).toMatchObject({
      type: 'create',
      orderingKey: `company:${(create.company as JsonObject).jrniId}`,
    });
    expect(n?.meta).toMatchObject({ shape: 'jrni-queue' });
    // Still refused: an appointment that is neither a booking nor a queue entry.
    const neither = { ...create, appointment: { ...appointment, origin: 'booking' } };
    expect(() => parse(inboundRequest({ body: neither }), config)).toThrow(/no appointment.bookingId/);
  });

  it('orders both shapes of one company under one key, and a purchase or booking without one by itself', () => {
    // The same booking in both shapes, as an instance receiving both gets it (one change, two pushes).
    const legacy = fixture('created.json');
    const jrni = fixture('jrni-data-create.json') as JsonObject;
    const sameBooking = {
      ...jrni,
      appointment: { ...(jrni.appointment as JsonObject), bookingId: 13477736 },
      company: { ...(jrni.company as JsonObject), jrniId: 50666 },
    };
    const [a] = parse(inboundRequest({ body: legacy }), config);
    const [b] = parse(inboundRequest({ body: sameBooking }), config);
    expect(a?.orderingKey).toBe('company:50666');
    expect(b?.orderingKey).toBe(a?.orderingKey);
    const bookings = ((legacy._embedded as JsonObject).bookings as JsonObject[]).map(
      ({ company_id: _, ...rest }) => rest,
    );
    const noCompany = { ...legacy, _embedded: { ...(legacy._embedded as JsonObject), bookings } };
    expect(parse(inboundRequest({ body: noCompany }), config)[0]?.orderingKey).toBe('purchase:11610441');
    const { company: _, ...jrniNoCompany } = jrni;
    expect(parse(inboundRequest({ body: jrniNoCompany }), config)[0]?.orderingKey).toBe('booking:1294');
  });

  it.each([
    ['no purchase id', { _embedded: { bookings: [] } }, /neither a BookingBug purchase/],
    ['a JRNI webhook without bookingId', { appointment: { longId: 'x' } }, /no appointment.bookingId/],
    ['bookings that are not an array', { id: 1, _embedded: { bookings: {} } }, /not an array/],
    ['a JSON array', [{ id: 1 }], /JSON object/],
  ])('refuses %s as a bad request', (_name, body, message) => {
    const run = () => parse(inboundRequest({ body: body as JsonObject }), config);
    expect(run).toThrow(message);
    expect(run).toThrow(expect.objectContaining({ kind: 'bad_request' }));
  });
});
