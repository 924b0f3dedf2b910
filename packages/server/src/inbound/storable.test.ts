import type { JsonValue } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { storableForms, storableJson, unstorableReason } from './storable.ts';
import type { NewInbound } from './store.ts';

function deep(levels: number): JsonValue {
  let value: JsonValue = 'bottom';
  for (let i = 0; i < levels; i++) value = { down: value };
  return value;
}

function item(payload: JsonValue, extra: Partial<NewInbound> = {}): NewInbound {
  return {
    id: '00000000-0000-4000-8000-000000000001',
    instanceId: 'dp',
    route: 'pull',
    dedupeKey: 'sha256:abc',
    vendorType: 'booking-canceled',
    orderingKey: 'facility/1/bookings',
    occurredAt: '2026-03-08T09:00:01+01:00',
    gate: false,
    payload,
    meta: { source: 'pull' },
    bodyId: null,
    headers: null,
    sourceIp: null,
    origin: 'pull',
    receivedAt: new Date(0),
    ...extra,
  };
}

describe('unstorableReason', () => {
  it('blames the payload for data exceptions, program limits and a serializer stack overflow only', () => {
    expect(unstorableReason({ code: '22P05', message: 'unsupported Unicode escape sequence' })).toBe(
      'the payload cannot be stored: unsupported Unicode escape sequence',
    );
    expect(unstorableReason({ code: '54001', message: 'stack depth limit exceeded' })).toMatch(/stack depth/);
    expect(unstorableReason(new RangeError('Maximum call stack size exceeded'))).toBe(
      'the payload is too deeply nested to store',
    );
    expect(unstorableReason(new RangeError('Invalid string length'))).toBeUndefined();
    expect(unstorableReason({ code: 'P0001', message: 'raised by a trigger' })).toBeUndefined();
    expect(unstorableReason(new Error('Connection terminated unexpectedly'))).toBeUndefined();
  });
});

describe('storableJson', () => {
  it('replaces NUL and lone surrogates in strings and keys with U+FFFD, and keeps surrogate pairs', () => {
    const value = {
      comment: 'call\u0000me',
      'k\u0000ey': ['\ud800', 'x\udc00', '\udbff\udfff', '\ud800\ud83d\ude00'],
      fine: 'Puławska 😀',
    };
    expect(storableJson(value)).toEqual({
      comment: 'call\uFFFDme',
      'k\uFFFDey': ['\uFFFD', 'x\uFFFD', '\udbff\udfff', '\uFFFD\ud83d\ude00'],
      fine: 'Puławska 😀',
    });
  });

  it('returns the same object when nothing is refused, and rebuilds only what changed', () => {
    const untouched = { a: { b: ['c', 1, null, true] } };
    expect(storableJson(untouched)).toBe(untouched);
    const partly = { keep: { same: 'yes' }, fix: 'no\u0000' };
    const out = storableJson(partly) as Record<string, JsonValue>;
    expect(out.keep).toBe(partly.keep);
    expect(out.fix).toBe('no\uFFFD');
  });

  it('gives up (undefined) on a value too deeply nested to walk', () => {
    expect(storableJson(deep(100_000))).toBeUndefined();
  });
});

describe('storableForms', () => {
  it('offers the sanitized notification, marked in meta, then a placeholder', () => {
    const reason = 'the payload cannot be stored: unsupported Unicode escape sequence';
    const forms = storableForms(item({ name: 'booking-canceled', data: { comment: 'a\u0000b' } }), reason);
    expect(forms.map((f) => f.storedAs)).toEqual(['sanitized', 'placeholder']);
    expect(forms[0]!.item).toMatchObject({
      id: '00000000-0000-4000-8000-000000000001',
      dedupeKey: 'sha256:abc',
      vendorType: 'booking-canceled',
      payload: { name: 'booking-canceled', data: { comment: 'a\uFFFDb' } },
      meta: { source: 'pull', unstorable: { reason, storedAs: 'sanitized' } },
    });
    expect(forms[1]!.item.payload).toEqual({
      unstorable: `${reason}; this placeholder was stored in its place`,
    });
    expect(forms[1]!.item.meta).toEqual({ source: 'pull', unstorable: { reason, storedAs: 'placeholder' } });
  });

  it('sanitizes the text columns too (Postgres refuses NUL in text)', () => {
    const [sanitized] = storableForms(item({}, { orderingKey: 'facility/1\u0000/bookings' }), 'r');
    expect(sanitized!.storedAs).toBe('sanitized');
    expect(sanitized!.item.orderingKey).toBe('facility/1\uFFFD/bookings');
  });

  it('offers only a placeholder when sanitizing changes nothing or the payload is too deep to walk', () => {
    expect(storableForms(item({ fine: true }), 'r').map((f) => f.storedAs)).toEqual(['placeholder']);
    const tooDeep = storableForms(item(deep(100_000)), 'the payload is too deeply nested to store');
    expect(tooDeep.map((f) => f.storedAs)).toEqual(['placeholder']);
    expect(tooDeep[0]!.item).toMatchObject({ vendorType: 'booking-canceled', dedupeKey: 'sha256:abc' });
  });
});
