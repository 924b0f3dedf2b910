import type { InboundRequest } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { authenticate } from './auth.ts';
import type { Config } from './config.ts';
import { parse } from './parse.ts';

const KEY = 'cw-hook-key-0123456789abcdef';
const at = new Date('2026-03-10T16:30:00.250Z');

function request(body: unknown, extra: Partial<InboundRequest> = {}): InboundRequest {
  return {
    route: 'default',
    params: {},
    query: {},
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    rawBody: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    sourceIp: '127.0.0.1',
    receivedAt: at,
    ...extra,
  };
}

const config = (mode: 'path' | 'header' | 'either'): Config => ({ auth: { mode, key: KEY } });

describe('clockwisemd authenticate', () => {
  const body = { appointment_id: 1, event_type: 'create' };
  it('accepts the key in the Authtoken header in header mode, and refuses it in the path', () => {
    expect(() =>
      authenticate(request(body, { headers: { authtoken: KEY } }), config('header')),
    ).not.toThrow();
    expect(() =>
      authenticate(request(body, { route: 'key', params: { key: KEY } }), config('header')),
    ).toThrow(/missing.*Authtoken/);
  });
  it('accepts the key in the path in path mode, and refuses a header-only request', () => {
    expect(() =>
      authenticate(request(body, { route: 'key', params: { key: KEY } }), config('path')),
    ).not.toThrow();
    expect(() => authenticate(request(body, { headers: { authtoken: KEY } }), config('path'))).toThrow(
      expect.objectContaining({ kind: 'auth' }),
    );
  });
  it('accepts either place in either mode and refuses wrong or missing keys', () => {
    expect(() =>
      authenticate(request(body, { headers: { authtoken: KEY } }), config('either')),
    ).not.toThrow();
    expect(() =>
      authenticate(request(body, { route: 'key', params: { key: KEY } }), config('either')),
    ).not.toThrow();
    expect(() =>
      authenticate(request(body, { headers: { authtoken: `${KEY}x` } }), config('either')),
    ).toThrow(/does not match/);
    expect(() => authenticate(request(body), config('either'))).toThrow(/missing/);
  });
  it('never accepts anything when no key is configured', () => {
    expect(() =>
      authenticate(request(body, { headers: { authtoken: '' } }), { auth: { mode: 'header', key: '' } }),
    ).toThrow(/no auth.key/);
  });
});

describe('clockwisemd parse', () => {
  it('reads event_type and the legacy action the same way', () => {
    const [a] = parse(request({ appointment_id: 12345, event_type: 'checkin' }), config('either'));
    const [b] = parse(request({ appointment_id: '12345', action: 'checkin' }), config('either'));
    expect(a).toMatchObject({
      type: 'checkin',
      orderingKey: 'appointment:12345',
      occurredAt: at.toISOString(),
    });
    expect(b?.type).toBe('checkin');
    expect(a?.dedupeKey).toBe(b?.dedupeKey);
    expect(b?.meta).toMatchObject({ shape: 'action' });
  });

  it('gives the same request the same key and distinguishes type, appointment and receive second', () => {
    const key = (body: unknown, receivedAt = at) =>
      parse(request(body, { receivedAt }), config('either'))[0]?.dedupeKey;
    const base = key({ appointment_id: 1, event_type: 'checkin' });
    expect(key({ appointment_id: 1, event_type: 'checkin' })).toBe(base);
    expect(key({ appointment_id: 1, event_type: 'checkin' }, new Date('2026-03-10T16:30:00.999Z'))).toBe(
      base,
    );
    expect(key({ appointment_id: 1, event_type: 'checkin' }, new Date('2026-03-10T16:30:01.000Z'))).not.toBe(
      base,
    );
    expect(key({ appointment_id: 2, event_type: 'checkin' })).not.toBe(base);
    expect(key({ appointment_id: 1, event_type: 'undo_checkin' })).not.toBe(base);
  });

  it('keeps unknown types for normalize to ignore', () => {
    expect(
      parse(request({ appointment_id: 3, event_type: 'Insurance_Verified' }), config('either'))[0]?.type,
    ).toBe('insurance_verified');
  });

  it.each([
    ['no appointment id', { event_type: 'create' }, /appointment_id/],
    ['an empty appointment id', { appointment_id: ' ', event_type: 'create' }, /appointment_id/],
    ['no type', { appointment_id: 1 }, /event_type/],
    ['an array body', [{ appointment_id: 1, event_type: 'create' }], /JSON object/],
    ['invalid JSON', '{"appointment_id": 1,', /not valid JSON/],
  ])('refuses %s as a bad request', (_name, body, message) => {
    expect(() => parse(request(body), config('either'))).toThrow(message);
    expect(() => parse(request(body), config('either'))).toThrow(
      expect.objectContaining({ kind: 'bad_request' }),
    );
  });
});
