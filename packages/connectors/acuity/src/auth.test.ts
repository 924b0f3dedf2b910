import { createHmac } from 'node:crypto';
import { type ConnectorError, inboundRequestHead } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { authenticate, credentials, verifyBody } from './auth.ts';
import type { Config } from './config.ts';

const config: Config = { userId: '11145481', apiKey: 'test-api-key-0123456789abcdef' };
const body = 'action=scheduled&id=54321&calendarID=27238&appointmentTypeID=1';
// Signed here with node:crypto (Acuity's documented recipe), not with the helpers the connector uses.
const signature = (key: string, payload = body) => createHmac('sha256', key).update(payload).digest('base64');

/** As the hub runs them: authenticate on the head, then verifyBody. */
function refusal(headers: Record<string, string>, settings: Config = config): string | undefined {
  const request = inboundRequest({
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: Buffer.from(body),
  });
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
  it('accepts the base64 HMAC-SHA256 of the exact body with the API key', () => {
    expect(refusal({ 'x-acuity-signature': signature(config.apiKey) })).toBeUndefined();
  });

  it('accepts the previous key during a rotation, and only then', () => {
    const previous = 'test-previous-key-0123456789';
    expect(
      refusal({ 'x-acuity-signature': signature(previous) }, { ...config, previousApiKey: previous }),
    ).toBeUndefined();
    expect(refusal({ 'x-acuity-signature': signature(previous) })).toContain('does not match');
  });

  it('refuses a signature of another body, a hex one, and a missing header', () => {
    expect(refusal({ 'x-acuity-signature': signature(config.apiKey, `${body}&x=1`) })).toContain(
      'does not match',
    );
    const hex = createHmac('sha256', config.apiKey).update(body).digest('hex');
    expect(refusal({ 'x-acuity-signature': hex })).toBeDefined();
    expect(refusal({})).toBe('x-acuity-signature: the signature header is missing');
  });

  it('declares the signature header as the credential', () => {
    expect(credentials(config)).toEqual({ headers: ['x-acuity-signature'] });
  });
});
