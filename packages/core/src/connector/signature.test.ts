import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
  hmacSha256,
  parseTimestampedSignatureHeader,
  signBody,
  signTimestamped,
  verifyBodySignature,
  verifyTimestampedSignature,
} from './signature.ts';

// Expected values are computed here with node:crypto directly, never with the functions under test.
const mac = (secret: string, payload: string, encoding: 'hex' | 'base64' = 'hex') =>
  createHmac('sha256', secret).update(payload).digest(encoding);

const BODY = '{"id":"evt_1","type":"booking.created"}';
const SECRET = 'whsec_test_0123456789abcdef';
const OLD_SECRET = 'whsec_old_fedcba9876543210';

describe('hmacSha256', () => {
  it("matches GitHub's published example vector", () => {
    // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    // ("Testing the webhook payload validation"): secret "It's a Secret to Everybody", payload
    // "Hello, World!" → X-Hub-Signature-256 sha256=757107ea…3e17.
    expect(hmacSha256("It's a Secret to Everybody", 'Hello, World!')).toBe(
      '757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
    );
    expect(signBody("It's a Secret to Everybody", Buffer.from('Hello, World!'), { prefix: 'sha256=' })).toBe(
      'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
    );
  });

  it('matches the RFC 4231 test case 2 vector', () => {
    // https://www.rfc-editor.org/rfc/rfc4231#section-4.3: key "Jefe", data "what do ya want for nothing?".
    expect(hmacSha256('Jefe', 'what do ya want for nothing?')).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  it('writes base64 digests (Shopify style)', () => {
    expect(hmacSha256(SECRET, BODY, 'base64')).toBe(mac(SECRET, BODY, 'base64'));
    expect(signBody(SECRET, BODY, { encoding: 'base64' })).toBe(mac(SECRET, BODY, 'base64'));
  });
});

describe('verifyBodySignature', () => {
  const body = Buffer.from(BODY);

  it('accepts a hex digest with its prefix, in either case', () => {
    const header = `sha256=${mac(SECRET, BODY)}`;
    expect(verifyBodySignature({ header, body, secrets: [SECRET], prefix: 'sha256=' })).toEqual({
      ok: true,
      secretIndex: 0,
    });
    expect(
      verifyBodySignature({
        header: `sha256=${mac(SECRET, BODY).toUpperCase()}`,
        body,
        secrets: [SECRET],
        prefix: 'sha256=',
      }),
    ).toMatchObject({ ok: true });
  });

  it('accepts a base64 digest', () => {
    const header = mac(SECRET, BODY, 'base64');
    expect(verifyBodySignature({ header, body, secrets: [SECRET], encoding: 'base64' })).toEqual({
      ok: true,
      secretIndex: 0,
    });
  });

  it('accepts any active secret during a rotation and says which', () => {
    const header = mac(OLD_SECRET, BODY);
    expect(verifyBodySignature({ header, body, secrets: [SECRET, OLD_SECRET] })).toEqual({
      ok: true,
      secretIndex: 1,
    });
    expect(verifyBodySignature({ header, body, secrets: [SECRET] })).toMatchObject({
      ok: false,
      reason: 'mismatch',
    });
  });

  it('refuses a changed body, a missing header, a missing prefix and a non-digest', () => {
    const good = `sha256=${mac(SECRET, BODY)}`;
    const check = (header: string | undefined, b: Buffer = body) =>
      verifyBodySignature({ header, body: b, secrets: [SECRET], prefix: 'sha256=' });
    expect(check(good, Buffer.from(`${BODY} `))).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(check(undefined)).toMatchObject({ ok: false, reason: 'missing' });
    expect(check('')).toMatchObject({ ok: false, reason: 'missing' });
    expect(check(mac(SECRET, BODY))).toMatchObject({ ok: false, reason: 'malformed' });
    expect(check('sha256=not-hex')).toMatchObject({ ok: false, reason: 'malformed' });
    expect(check(good.slice(0, -1))).toMatchObject({ ok: false, reason: 'mismatch' });
  });

  it('refuses everything when no secret is configured, and never echoes the expected digest', () => {
    const header = `sha256=${mac(SECRET, BODY)}`;
    const verdict = verifyBodySignature({ header, body, secrets: [], prefix: 'sha256=' });
    expect(verdict).toMatchObject({
      ok: false,
      reason: 'mismatch',
      message: 'no signing secret is configured',
    });
    const wrong = verifyBodySignature({ header: 'sha256=00', body, secrets: [SECRET], prefix: 'sha256=' });
    expect(JSON.stringify(wrong)).not.toContain(mac(SECRET, BODY));
    expect(JSON.stringify(wrong)).not.toContain(SECRET);
  });
});

describe('timestamped signatures (t=…,v1=…)', () => {
  const t = 1_768_471_200; // 2026-01-15T10:00:00Z
  const receivedAt = new Date(t * 1000);
  const body = Buffer.from(BODY);
  const v1 = (secret: string, ts = t, payload = BODY) => mac(secret, `${ts}.${payload}`);

  it('signs "<t>.<body>" with every secret', () => {
    expect(signTimestamped(SECRET, body, { timestamp: t })).toBe(`t=${t},v1=${v1(SECRET)}`);
    expect(signTimestamped([SECRET, OLD_SECRET], BODY, { timestamp: receivedAt })).toBe(
      `t=${t},v1=${v1(SECRET)},v1=${v1(OLD_SECRET)}`,
    );
  });

  it('parses the header, keeping only the requested scheme', () => {
    expect(parseTimestampedSignatureHeader(`t=${t}, v1=aa ,v0=bb,v1=cc,junk`)).toEqual({
      timestamp: t,
      signatures: ['aa', 'cc'],
    });
    expect(parseTimestampedSignatureHeader('v1=aa')).toEqual({ timestamp: undefined, signatures: ['aa'] });
  });

  const verify = (
    header: string | undefined,
    options: { secrets?: string[]; at?: Date; tolerance?: number } = {},
  ) =>
    verifyTimestampedSignature({
      header,
      body,
      secrets: options.secrets ?? [SECRET],
      receivedAt: options.at ?? receivedAt,
      toleranceSeconds: options.tolerance,
    });

  it('accepts a signature made independently with node:crypto', () => {
    expect(verify(`t=${t},v1=${v1(SECRET)}`)).toEqual({ ok: true, secretIndex: 0 });
  });

  it('accepts any v1 under any active secret (rotation on either side)', () => {
    expect(verify(`t=${t},v1=${'0'.repeat(64)},v1=${v1(SECRET)}`)).toMatchObject({ ok: true });
    expect(verify(`t=${t},v1=${v1(OLD_SECRET)}`, { secrets: [SECRET, OLD_SECRET] })).toEqual({
      ok: true,
      secretIndex: 1,
    });
  });

  it('refuses outside the tolerance window, either way, and accepts at its edge', () => {
    const edge = DEFAULT_SIGNATURE_TOLERANCE_SECONDS;
    const header = (ts: number) => `t=${ts},v1=${v1(SECRET, ts)}`;
    expect(verify(header(t - edge))).toMatchObject({ ok: true });
    expect(verify(header(t + edge))).toMatchObject({ ok: true });
    expect(verify(header(t - edge - 1))).toMatchObject({ ok: false, reason: 'expired' });
    expect(verify(header(t + edge + 1))).toMatchObject({ ok: false, reason: 'expired' });
    expect(verify(header(t - 60), { tolerance: 30 })).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('refuses a signature of another timestamp, another body or another secret', () => {
    expect(verify(`t=${t + 1},v1=${v1(SECRET)}`)).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(verify(`t=${t},v1=${v1(SECRET, t, `${BODY} `)}`)).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(verify(`t=${t},v1=${v1('another-secret-000000')}`)).toMatchObject({
      ok: false,
      reason: 'mismatch',
    });
  });

  it('refuses a missing or malformed header', () => {
    expect(verify(undefined)).toMatchObject({ ok: false, reason: 'missing' });
    expect(verify(`v1=${v1(SECRET)}`)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(verify(`t=${t}`)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(verify(`t=soon,v1=${v1(SECRET)}`)).toMatchObject({ ok: false, reason: 'malformed' });
  });
});
