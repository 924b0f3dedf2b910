import { createHmac, createSecretKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { standardWebhooksHmac, verifyStandardWebhooksSignature } from './standard-webhooks.ts';

// The Standard Webhooks spec's test vector (its reference libraries' tests, e.g.
// github.com/standard-webhooks/standard-webhooks libraries/javascript/src/index.test.ts "sign function
// works"): this secret, id, timestamp and payload sign to SPEC_SIGNATURE.
const SPEC_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SPEC_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const SPEC_TIMESTAMP = 1614265330;
const SPEC_BODY = '{"test": 2432232314}';
const SPEC_SIGNATURE = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

const NEW_SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const OLD_SECRET = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
const BODY = JSON.stringify({ id: 'evt_1', type: 'booking.created', note: 'zażółć ✓' });
const RECEIVED_AT = new Date('2026-01-15T10:00:00Z');
const NOW = RECEIVED_AT.getTime() / 1000;

/** Expected signatures are computed here with node:crypto directly, never with the functions under test. */
const sign = (secret: string, id: string, t: number, body: string) =>
  `v1,${createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64'))
    .update(`${id}.${t}.${body}`)
    .digest('base64')}`;

const verify = (overrides: Partial<Parameters<typeof verifyStandardWebhooksSignature>[0]> = {}) =>
  verifyStandardWebhooksSignature({
    id: 'msg_1',
    timestamp: String(NOW),
    signature: sign(NEW_SECRET, 'msg_1', NOW, BODY),
    body: Buffer.from(BODY),
    secrets: [NEW_SECRET],
    receivedAt: RECEIVED_AT,
    ...overrides,
  });

describe('standardWebhooksHmac', () => {
  it("gives the spec's test vector, with a Buffer key and a KeyObject alike", () => {
    const key = Buffer.from(SPEC_SECRET.slice('whsec_'.length), 'base64');
    for (const k of [key, createSecretKey(key)]) {
      expect(`v1,${standardWebhooksHmac(k, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY).toString('base64')}`).toBe(
        SPEC_SIGNATURE,
      );
    }
  });

  it('hashes a string body as UTF-8 and a Buffer body byte for byte', () => {
    const key = Buffer.alloc(32, 7);
    const expected = createHmac('sha256', key).update(`msg_1.${NOW}.${BODY}`).digest();
    expect(standardWebhooksHmac(key, 'msg_1', NOW, BODY)).toEqual(expected);
    expect(standardWebhooksHmac(key, 'msg_1', NOW, Buffer.from(BODY))).toEqual(expected);
    // Bytes that are not UTF-8 are signed as they are, not as their replacement characters.
    const binary = Buffer.from([0xff, 0xfe, 0x00]);
    expect(standardWebhooksHmac(key, 'm', 1, binary)).toEqual(
      createHmac('sha256', key)
        .update(Buffer.concat([Buffer.from('m.1.'), binary]))
        .digest(),
    );
  });
});

describe('verifyStandardWebhooksSignature', () => {
  it("accepts the spec's test vector within the tolerance of its timestamp", () => {
    expect(
      verifyStandardWebhooksSignature({
        id: SPEC_ID,
        timestamp: String(SPEC_TIMESTAMP),
        signature: SPEC_SIGNATURE,
        body: SPEC_BODY,
        secrets: [SPEC_SECRET],
        receivedAt: new Date((SPEC_TIMESTAMP + 10) * 1000),
      }),
    ).toEqual({ ok: true, secretIndex: 0 });
  });

  it('accepts a valid signature over the exact body, and a bare base64 secret or a raw key too', () => {
    expect(verify()).toEqual({ ok: true, secretIndex: 0 });
    expect(verify({ secrets: [NEW_SECRET.slice('whsec_'.length)] })).toEqual({ ok: true, secretIndex: 0 });
    expect(verify({ secrets: [Buffer.alloc(32, 7)] })).toEqual({ ok: true, secretIndex: 0 });
  });

  it('refuses a wrong secret, another body, another id and another timestamp', () => {
    const mismatch = { ok: false, reason: 'mismatch', message: 'no signature matches an active secret' };
    expect(verify({ secrets: [OLD_SECRET] })).toEqual(mismatch);
    expect(verify({ body: `${BODY} ` })).toEqual(mismatch);
    expect(verify({ id: 'msg_2' })).toEqual(mismatch);
    expect(verify({ timestamp: String(NOW - 1) })).toEqual(mismatch);
    expect(verify({ secrets: [] })).toEqual({
      ok: false,
      reason: 'mismatch',
      message: 'no signing secret is configured',
    });
  });

  it('refuses a timestamp outside the tolerance window, either way, and honours a configured one', () => {
    const at = (t: number, toleranceSeconds?: number) =>
      verify({ timestamp: String(t), signature: sign(NEW_SECRET, 'msg_1', t, BODY), toleranceSeconds });
    expect(at(NOW - 300)).toEqual({ ok: true, secretIndex: 0 });
    expect(at(NOW + 300)).toEqual({ ok: true, secretIndex: 0 });
    expect(at(NOW - 301)).toEqual({
      ok: false,
      reason: 'expired',
      message: 'the signature timestamp is 301 s away from the receive time (tolerance 300 s)',
    });
    expect(at(NOW + 301)).toMatchObject({ ok: false, reason: 'expired' });
    expect(at(NOW - 60, 30)).toMatchObject({ ok: false, reason: 'expired' });
    expect(at(NOW - 29, 30)).toEqual({ ok: true, secretIndex: 0 });
  });

  it('accepts any one of several space-separated signatures, skipping other versions', () => {
    const good = sign(NEW_SECRET, 'msg_1', NOW, BODY);
    const stranger = sign(OLD_SECRET, 'msg_1', NOW, BODY);
    expect(verify({ signature: `${stranger} ${good}` })).toEqual({ ok: true, secretIndex: 0 });
    expect(verify({ signature: `v1a,${good.slice(3)} ${good}` })).toEqual({ ok: true, secretIndex: 0 });
    // The same digest under another version is not a v1 signature.
    expect(verify({ signature: `v2,${good.slice(3)}` })).toMatchObject({ ok: false, reason: 'malformed' });
    expect(verify({ signature: stranger })).toMatchObject({ ok: false, reason: 'mismatch' });
  });

  it('accepts the old and the new secret during a rotation, and says which matched', () => {
    const secrets = [NEW_SECRET, OLD_SECRET];
    expect(verify({ secrets, signature: sign(OLD_SECRET, 'msg_1', NOW, BODY) })).toEqual({
      ok: true,
      secretIndex: 1,
    });
    // A vendor rotating its secret signs with both: either configured secret accepts the request.
    const both = `${sign(NEW_SECRET, 'msg_1', NOW, BODY)} ${sign(OLD_SECRET, 'msg_1', NOW, BODY)}`;
    expect(verify({ secrets: [OLD_SECRET], signature: both })).toEqual({ ok: true, secretIndex: 0 });
    expect(verify({ secrets, signature: both })).toEqual({ ok: true, secretIndex: 0 });
  });

  it('names a missing header, and refuses unreadable ones as malformed', () => {
    expect(verify({ id: undefined })).toMatchObject({
      reason: 'missing',
      message: expect.stringContaining('webhook-id'),
    });
    expect(verify({ timestamp: '' })).toMatchObject({
      reason: 'missing',
      message: expect.stringContaining('webhook-timestamp'),
    });
    expect(verify({ signature: ' ' })).toMatchObject({
      reason: 'missing',
      message: expect.stringContaining('webhook-signature'),
    });
    expect(verify({ timestamp: '2026-01-15T10:00:00Z' })).toMatchObject({ reason: 'malformed' });
    expect(verify({ timestamp: '-1' })).toMatchObject({ reason: 'malformed' });
    expect(verify({ signature: 'g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' })).toMatchObject({
      reason: 'malformed',
    });
    expect(verify({ signature: 'v1,not base64!' })).toMatchObject({ reason: 'malformed' });
    // A base64 value that is not 32 bytes is not an HMAC-SHA256 digest.
    expect(verify({ signature: `v1,${Buffer.alloc(16).toString('base64')}` })).toMatchObject({
      reason: 'malformed',
    });
  });

  it('tells the operator a configured secret is unusable, by position, never by value', () => {
    const verdict = verify({
      secrets: ['hunter2!', NEW_SECRET],
      signature: sign(OLD_SECRET, 'msg_1', NOW, BODY),
    });
    expect(verdict).toEqual({
      ok: false,
      reason: 'mismatch',
      message: 'no signature matches an active secret (secret #1 is not whsec_ followed by base64)',
    });
    // The unusable one is skipped; the good one still verifies.
    expect(verify({ secrets: ['hunter2!', NEW_SECRET] })).toEqual({ ok: true, secretIndex: 1 });
  });

  it('never puts a secret or the expected signature in a message', () => {
    const expected = sign(NEW_SECRET, 'msg_1', NOW, BODY).slice(3);
    const verdicts = [
      verify({ body: 'tampered' }),
      verify({ signature: 'v1,AAAA' }),
      verify({ timestamp: String(NOW - 1000), signature: sign(NEW_SECRET, 'msg_1', NOW - 1000, BODY) }),
    ];
    for (const verdict of verdicts) {
      expect(verdict.ok).toBe(false);
      if (verdict.ok) continue;
      expect(verdict.message).not.toContain(NEW_SECRET.slice('whsec_'.length));
      expect(verdict.message).not.toContain(expected);
    }
  });
});
