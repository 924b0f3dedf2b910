import { createHmac } from 'node:crypto';
import { type ConnectorError, inboundRequestHead } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { authenticate, credentials, sign, verifyBody } from './auth.ts';
import { type Config, SIGNATURE_HEADER } from './config.ts';

const config: Config = { signatureKey: 'test-signature-key-0123456789' };
const url = 'https://hub.example.com/hooks/sq-main';
const body = '{"event_id":"e1","type":"booking.created"}';
// Signed here with node:crypto as Square documents it, not with the helpers the connector uses.
const signature = (key: string, notificationUrl = url, payload = body) =>
  createHmac('sha256', key)
    .update(notificationUrl + payload)
    .digest('base64');

/** As the hub runs them: authenticate on the head, then verifyBody. */
function admit(
  headers: Record<string, string>,
  options: { hookUrl?: string; config?: Config; body?: string } = {},
) {
  const request = inboundRequest({
    headers,
    body: options.body ?? body,
    ...(options.hookUrl === undefined ? {} : { hookUrl: options.hookUrl }),
  });
  authenticate(inboundRequestHead(request), options.config ?? config);
  verifyBody(request, options.config ?? config);
}
const refusal = (fn: () => void) => {
  try {
    fn();
  } catch (error) {
    return { kind: (error as ConnectorError).kind, message: (error as Error).message };
  }
  return undefined;
};

describe('Square signature (URL + body)', () => {
  it('accepts base64 HMAC-SHA256 of the notification URL followed by the raw body', () => {
    expect(() =>
      admit({ [SIGNATURE_HEADER]: signature(config.signatureKey) }, { hookUrl: url }),
    ).not.toThrow();
  });

  it('refuses a signature made for another URL (the hub reached as http://internal-host:8080)', () => {
    const internal = signature(config.signatureKey, 'http://internal-host:8080/hooks/sq-main');
    expect(refusal(() => admit({ [SIGNATURE_HEADER]: internal }, { hookUrl: url }))?.kind).toBe('auth');
  });

  it('refuses a body changed after signing, another key, and a missing header', () => {
    const good = signature(config.signatureKey);
    expect(refusal(() => admit({ [SIGNATURE_HEADER]: good }, { hookUrl: url, body: `${body} ` }))?.kind).toBe(
      'auth',
    );
    expect(
      refusal(() => admit({ [SIGNATURE_HEADER]: signature('another-key-0123456789') }, { hookUrl: url }))
        ?.kind,
    ).toBe('auth');
    expect(refusal(() => admit({}, { hookUrl: url }))?.message).toContain('missing');
  });

  it('refuses every push, naming server.publicUrl, when the hub does not know its public URL', () => {
    const r = refusal(() => admit({ [SIGNATURE_HEADER]: signature(config.signatureKey) }));
    expect(r).toEqual({ kind: 'auth', message: expect.stringContaining('server.publicUrl') });
  });

  it('accepts the previous key during a rotation, and not once it is removed', () => {
    const old = 'old-signature-key-0123456789';
    const rotating = { ...config, previousSignatureKey: old };
    expect(() =>
      admit({ [SIGNATURE_HEADER]: signature(old) }, { hookUrl: url, config: rotating }),
    ).not.toThrow();
    expect(refusal(() => admit({ [SIGNATURE_HEADER]: signature(old) }, { hookUrl: url }))?.kind).toBe('auth');
  });

  it('declares the signature header, and signs as Square does', () => {
    expect(credentials(config)).toEqual({ headers: [SIGNATURE_HEADER] });
    const presented = sign(inboundRequest({ body, hookUrl: url }), config);
    expect(presented.headers?.[SIGNATURE_HEADER]).toBe(signature(config.signatureKey));
  });
});
