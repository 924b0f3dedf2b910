import { createHmac } from 'node:crypto';
import { type ConnectorError, inboundRequestHead } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { authenticate, credentials, verifyBody } from './auth.ts';
import { type Config, DEFAULT_SIGNATURE_HEADER, DEFAULT_TOLERANCE_SECONDS } from './config.ts';

const config: Config = { signingKey: 'test-signing-secret-0123456789abcdef' };
// The header and window the config defaults to: change them there (your vendor's header name, its
// replay window) and these tests follow.
const header = DEFAULT_SIGNATURE_HEADER.toLowerCase();
const tolerance = DEFAULT_TOLERANCE_SECONDS;
const body = '{"id":"evt_1","type":"booking.created"}';
const receivedAt = new Date('2026-03-10T09:15:00Z');
const now = Math.floor(receivedAt.getTime() / 1000);
// Signed here with node:crypto, not with the helpers the connector uses, so a bug there cannot hide.
const signature = (secret: string, t = now, payload = body) =>
  `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${payload}`).digest('hex')}`;

/** As the hub runs them: authenticate on the head (the body unreadable), then verifyBody. */
function refusal(headers: Record<string, string>, settings: Config = config): string | undefined {
  const request = inboundRequest({ headers, body: Buffer.from(body), receivedAt });
  try {
    authenticate(inboundRequestHead(request), settings);
    verifyBody(request, settings);
    return undefined;
  } catch (error) {
    expect((error as ConnectorError).kind).toBe('auth');
    return (error as ConnectorError).message;
  }
}

describe('authenticate and verifyBody', () => {
  it('accepts a signature over the exact body with the signing secret', () => {
    expect(refusal({ [header]: signature(config.signingKey) })).toBeUndefined();
  });

  it('accepts the previous secret during a rotation, and only then', () => {
    const previous = 'test-previous-secret-0123456789';
    expect(
      refusal({ [header]: signature(previous) }, { ...config, previousSigningKey: previous }),
    ).toBeUndefined();
    expect(refusal({ [header]: signature(previous) })?.toLowerCase()).toBe(
      `${header}: no signature matches an active secret`,
    );
  });

  it('refuses a signature of another body, a missing header, and a replay outside the window', () => {
    expect(refusal({ [header]: signature(config.signingKey, now, `${body} `) })).toContain(
      'no signature matches',
    );
    expect(refusal({})?.toLowerCase()).toBe(`${header}: the signature header is missing`);
    expect(refusal({ [header]: signature(config.signingKey, now - tolerance - 1) })).toContain(
      `tolerance ${tolerance} s`,
    );
    expect(refusal({ [header]: signature(config.signingKey, now - tolerance + 1) })).toBeUndefined();
  });

  it('refuses from the head alone what the head shows: no header, or one that is not t=…,v1=…', () => {
    const head = (headers: Record<string, string>) => () =>
      authenticate(inboundRequestHead(inboundRequest({ headers, receivedAt })), config);
    expect(head({})).toThrow(/the signature header is missing/);
    expect(head({ [header]: 'v1=abc' })).toThrow('is not t=<unix seconds>,v1=<signature>');
    expect(head({ [header]: `t=${now}` })).toThrow('is not t=<unix seconds>,v1=<signature>');
    // A well-formed header passes the head check; whether it matches the body is verifyBody's call.
    expect(head({ [header]: `t=${now},v1=00` })).not.toThrow();
  });

  it('reads a custom header name, and declares it as the credential', () => {
    const settings = { ...config, signatureHeader: 'X-Vendor-Signature' };
    expect(refusal({ 'x-vendor-signature': signature(config.signingKey) }, settings)).toBeUndefined();
    expect(refusal({ [header]: signature(config.signingKey) }, settings)).toContain('missing');
    expect(credentials(settings)).toEqual({ headers: ['x-vendor-signature'] });
  });
});
