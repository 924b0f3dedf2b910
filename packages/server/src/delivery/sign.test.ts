import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { isDeliveryError } from './errors.ts';
import {
  generateSecret,
  isValidSecret,
  parseSecret,
  SIGNING_SECRET_PATTERN,
  signPayload,
  verifySignature,
} from './sign.ts';

const body = JSON.stringify({ id: 'evt_1', type: 'appointment.created', data: { note: 'zażółć ✓' } });

describe('generateSecret', () => {
  it('makes distinct whsec_ secrets of 32 random bytes', () => {
    const a = generateSecret();
    const b = generateSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(a).not.toBe(b);
    expect(parseSecret(a)).toHaveLength(32);
  });
});

describe('parseSecret', () => {
  it.each([
    ['no prefix', 'A'.repeat(32)],
    ['empty after prefix', 'whsec_'],
    ['not base64', `whsec_${'!'.repeat(32)}`],
    ['unpadded length', `whsec_${'A'.repeat(33)}`],
    ['too short (18 bytes)', `whsec_${'A'.repeat(24)}`],
    ['too long (66 bytes)', `whsec_${'A'.repeat(88)}`],
  ])('refuses %s with SY_DELIVERY_SECRET_INVALID and without echoing it', (_label, secret) => {
    let caught: unknown;
    try {
      parseSecret(secret);
    } catch (error) {
      caught = error;
    }
    expect(isDeliveryError(caught)).toBe(true);
    expect((caught as { code: string }).code).toBe('SY_DELIVERY_SECRET_INVALID');
    if (secret.length > 10) expect((caught as Error).message).not.toContain(secret.slice(6));
    expect(isValidSecret(secret)).toBe(false);
  });

  it('SIGNING_SECRET_PATTERN says what parseSecret says (the input schema uses it)', () => {
    const pattern = new RegExp(SIGNING_SECRET_PATTERN);
    const chars = 'AB+/';
    for (let length = 0; length <= 96; length++)
      for (const padding of ['', '=', '==']) {
        if (padding.length > length) continue;
        const secret = `whsec_${chars.repeat(length).slice(0, length - padding.length)}${padding}`;
        expect(pattern.test(secret), secret).toBe(isValidSecret(secret));
      }
    expect(pattern.test(generateSecret())).toBe(true);
    expect(pattern.test('whsec_AAAA')).toBe(false);
  });

  it('accepts 24 and 64 byte keys', () => {
    expect(parseSecret(`whsec_${Buffer.alloc(24, 1).toString('base64')}`)).toHaveLength(24);
    expect(parseSecret(`whsec_${Buffer.alloc(64, 1).toString('base64')}`)).toHaveLength(64);
  });
});

describe('signPayload', () => {
  it('computes the spec HMAC over id.timestamp.body with the decoded key', () => {
    const secret = generateSecret();
    const headers = signPayload({ id: 'evt_1', timestamp: 1_700_000_000, body, secrets: [secret] });
    const expected = createHmac('sha256', Buffer.from(secret.slice(6), 'base64'))
      .update(`evt_1.1700000000.${body}`)
      .digest('base64');
    expect(headers).toEqual({
      'webhook-id': 'evt_1',
      'webhook-timestamp': '1700000000',
      'webhook-signature': `v1,${expected}`,
    });
  });

  it('signs alike with a secret seen before (its key is kept) and with a body of non-ASCII text', () => {
    const secret = generateSecret();
    const text = JSON.stringify({ name: 'Łukasz Żółć', note: 'zażółć gęślą jaźń' });
    const expected = createHmac('sha256', Buffer.from(secret.slice(6), 'base64'))
      .update(`evt_2.1700000000.${text}`)
      .digest('base64');
    for (let i = 0; i < 2; i++) {
      const headers = signPayload({ id: 'evt_2', timestamp: 1_700_000_000, body: text, secrets: [secret] });
      expect(headers['webhook-signature']).toBe(`v1,${expected}`);
    }
  });

  it('takes a Date and truncates to seconds', () => {
    const secret = generateSecret();
    const headers = signPayload({ id: 'e', timestamp: new Date(1_700_000_000_999), body, secrets: [secret] });
    expect(headers['webhook-timestamp']).toBe('1700000000');
  });

  it('is verified by the standardwebhooks library, for each secret during a rotation', () => {
    const oldSecret = generateSecret();
    const newSecret = generateSecret();
    const headers = signPayload({
      id: 'msg_1',
      timestamp: new Date(),
      body,
      secrets: [newSecret, oldSecret],
    });
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(new Webhook(newSecret).verify(body, { ...headers })).toEqual(JSON.parse(body));
    expect(new Webhook(oldSecret).verify(body, { ...headers })).toEqual(JSON.parse(body));
    expect(() => new Webhook(generateSecret()).verify(body, { ...headers })).toThrow(/No matching signature/);
    expect(() => new Webhook(newSecret).verify(`${body} `, { ...headers })).toThrow(/No matching signature/);
  });

  it('signs the same as the library does', () => {
    const secret = generateSecret();
    const at = new Date(1_735_689_600_000);
    const ours = signPayload({ id: 'msg_2', timestamp: at, body, secrets: [secret] })['webhook-signature'];
    expect(ours).toBe(new Webhook(secret).sign('msg_2', at, body));
  });

  it('sends one signature per distinct secret', () => {
    const s = generateSecret();
    expect(
      signPayload({ id: 'x', timestamp: 1, body, secrets: [s, s] })['webhook-signature'].split(' '),
    ).toHaveLength(1);
  });

  it('refuses no secrets, a bad secret, an empty id and a bad timestamp', () => {
    expect(() => signPayload({ id: 'x', timestamp: 1, body, secrets: [] })).toThrow(/at least one/);
    expect(() => signPayload({ id: 'x', timestamp: 1, body, secrets: [generateSecret(), 'nope'] })).toThrow(
      /whsec_/,
    );
    expect(() => signPayload({ id: '', timestamp: 1, body, secrets: [generateSecret()] })).toThrow(
      RangeError,
    );
    expect(() => signPayload({ id: 'x', timestamp: 1.5, body, secrets: [generateSecret()] })).toThrow(
      RangeError,
    );
    expect(() =>
      signPayload({ id: 'x', timestamp: new Date(Number.NaN), body, secrets: [generateSecret()] }),
    ).toThrow(RangeError);
  });
});

describe('verifySignature', () => {
  const secret = generateSecret();
  const other = generateSecret();
  const now = new Date(1_735_689_600_000);
  const headers = signPayload({ id: 'msg_3', timestamp: now, body, secrets: [other, secret] });

  it('accepts any matching secret and says which', () => {
    expect(verifySignature({ headers, body, secrets: [secret], now })).toEqual({ ok: true, secretIndex: 0 });
    expect(
      verifySignature({ headers, body: Buffer.from(body), secrets: [generateSecret(), other], now }),
    ).toEqual({
      ok: true,
      secretIndex: 1,
    });
  });

  it('accepts signatures made by the standardwebhooks library, headers in any case', () => {
    const sig = new Webhook(secret).sign('msg_4', now, body);
    const result = verifySignature({
      headers: {
        'Webhook-Id': 'msg_4',
        'WEBHOOK-TIMESTAMP': String(now.getTime() / 1000),
        'webhook-signature': sig,
      },
      body,
      secrets: [secret],
      now,
    });
    expect(result).toEqual({ ok: true, secretIndex: 0 });
  });

  it('refuses a changed body, id, wrong secret, missing headers, stale or bad timestamps', () => {
    expect(verifySignature({ headers, body: `${body}x`, secrets: [secret], now })).toEqual({
      ok: false,
      reason: 'no_match',
    });
    expect(
      verifySignature({ headers: { ...headers, 'webhook-id': 'msg_x' }, body, secrets: [secret], now }).ok,
    ).toBe(false);
    expect(verifySignature({ headers, body, secrets: [generateSecret()], now })).toEqual({
      ok: false,
      reason: 'no_match',
    });
    expect(verifySignature({ headers: { 'webhook-id': 'a' }, body, secrets: [secret], now })).toEqual({
      ok: false,
      reason: 'missing_headers',
    });
    expect(
      verifySignature({ headers: { ...headers, 'webhook-timestamp': 'soon' }, body, secrets: [secret], now }),
    ).toEqual({ ok: false, reason: 'bad_timestamp' });
    expect(
      verifySignature({ headers, body, secrets: [secret], now: new Date(now.getTime() + 301_000) }),
    ).toEqual({
      ok: false,
      reason: 'timestamp_out_of_tolerance',
    });
    expect(
      verifySignature({
        headers,
        body,
        secrets: [secret],
        now: new Date(now.getTime() + 301_000),
        toleranceSeconds: 600,
      }).ok,
    ).toBe(true);
  });

  it('ignores other signature versions', () => {
    const v1 = headers['webhook-signature'].split(' ')[1]!;
    const forged = { ...headers, 'webhook-signature': `v2,${v1.slice(3)} v1a,${v1.slice(3)}` };
    expect(verifySignature({ headers: forged, body, secrets: [secret], now })).toEqual({
      ok: false,
      reason: 'no_match',
    });
  });
});
