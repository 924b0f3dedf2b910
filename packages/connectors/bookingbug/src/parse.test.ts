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
    ['not Basic', { authorization: 'Bearer bb-password-0123456789' }, /not HTTP Basic/],
    ['without a colon', { authorization: `Basic ${Buffer.from('bb-user').toString('base64')}` }, /malformed/],
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
  it('makes one notification per purchase, typed by route or JRNI trigger', () => {
    const created = parse(inboundRequest({ body: fixture('created.json') }), config);
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({
      type: 'purchase',
      orderingKey: 'purchase:11610441',
      meta: { route: 'default' },
    });
    const cancel = parse(inboundRequest({ route: 'cancellation', body: fixture('created.json') }), config);
    expect(cancel[0]?.type).toBe('cancellation');
    const jrni = parse(inboundRequest({ body: fixture('jrni-modify.json') }), config);
    expect(jrni[0]).toMatchObject({ type: 'modify', occurredAt: '2024-05-03T16:40:05Z' });
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
    expect(key(fixture('jrni-cancelled.json'))).not.toBe(
      key({ ...fixture('jrni-cancelled.json'), triggerTime: '2024-05-04T09:05:00Z' }),
    );
  });

  it('reads a purchase wrapped in `purchase` (JRNI variant)', () => {
    const { triggerName, triggerTime, ...purchase } = fixture('jrni-create.json');
    const [n] = parse(
      inboundRequest({ body: { triggerName: triggerName!, triggerTime: triggerTime!, purchase } }),
      config,
    );
    expect(n).toMatchObject({ type: 'purchase', orderingKey: 'purchase:11620001' });
  });

  it.each([
    ['no purchase id', { _embedded: { bookings: [] } }, /not a purchase/],
    ['bookings that are not an array', { id: 1, _embedded: { bookings: {} } }, /not an array/],
    ['an unknown triggerName', { id: 1, triggerName: 'exploded' }, /triggerName/],
    ['a JSON array', [{ id: 1 }], /JSON object/],
  ])('refuses %s as a bad request', (_name, body, message) => {
    const run = () => parse(inboundRequest({ body: body as JsonObject }), config);
    expect(run).toThrow(message);
    expect(run).toThrow(expect.objectContaining({ kind: 'bad_request' }));
  });
});
