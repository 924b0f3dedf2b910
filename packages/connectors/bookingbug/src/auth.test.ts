import type { JsonObject } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import {
  authenticate,
  basicAuthorization,
  issueAccessToken,
  TOKEN_ROUTE,
  tokenResponse,
  verifyAccessToken,
  verifyBody,
} from './auth.ts';
import type { Config } from './config.ts';
import { bookingbugConnector } from './index.ts';

const oauth2 = { clientId: 'jrni-client', clientSecret: 'jrni-client-secret-0123456789abcdef' };
const config: Config = { basicToken: 'jrni-basic-token-0123456789', oauth2 };
const now = new Date('2026-01-15T10:00:00Z');

const hook = (authorization: string | undefined, receivedAt = now) =>
  inboundRequest({ headers: { authorization }, body: {}, receivedAt });
const tokenRequest = (headers: Record<string, string>, body: string) =>
  inboundRequest({ route: TOKEN_ROUTE, headers, body: Buffer.from(body), receivedAt: now });
// As the hub runs them: the head check, then the body-time check (the token route's client).
const check = (request: ReturnType<typeof inboundRequest>, c: Config) => {
  authenticate(request, c);
  verifyBody(request, c);
};
const accepts = (request: ReturnType<typeof inboundRequest>, c: Config = config) =>
  expect(() => check(request, c)).not.toThrow();
const refuses = (request: ReturnType<typeof inboundRequest>, message: RegExp, c: Config = config) => {
  expect(() => check(request, c)).toThrow(message);
  expect(() => check(request, c)).toThrow(expect.objectContaining({ kind: 'auth' }));
};

describe('JRNI Basic token', () => {
  it('accepts the configured value sent as is after Basic, and nothing else', () => {
    accepts(hook('Basic jrni-basic-token-0123456789'));
    refuses(hook('Basic jrni-basic-token-012345678X'), /do not match/);
    refuses(hook('Bearer jrni-basic-token-0123456789'), /not valid/);
  });

  it('accepts a configured token with spaces in it, sent as is after Basic', () => {
    // FACTS.md, "BookingBug (now JRNI)": "Basic token" (the configured value is sent as is after
    // `Authorization: Basic `). The settings take any string of 16 characters or more, so a pass
    // phrase is a valid token; it was refused 401 on every webhook ("neither Basic nor Bearer").
    const phrase: Config = { basicToken: 'jrni shared pass phrase 2026' };
    accepts(hook('Basic jrni shared pass phrase 2026'), phrase);
    refuses(hook('Basic jrni shared pass phrase 2027'), /do not match/, phrase);
    refuses(hook('Basic jrni shared pass phrase'), /do not match/, phrase);
    // A Bearer token is one word still (the hub's own format).
    refuses(hook('Bearer a b'), /neither Basic nor Bearer/, { ...phrase, oauth2 });
  });

  it('accepts user/password and the token side by side when both are configured', () => {
    const both: Config = { ...config, basicAuth: { username: 'u', password: 'p-0123456789abcdef' } };
    accepts(hook(basicAuthorization('u', 'p-0123456789abcdef')), both);
    accepts(hook('Basic jrni-basic-token-0123456789'), both);
    refuses(hook(basicAuthorization('u', 'jrni-basic-token-0123456789')), /do not match/, both);
    // Node's base64 decoder skips foreign characters: a mangled header must not decode to the secret.
    const mangled = basicAuthorization('u', 'p-0123456789abcdef').replace(/=$/, '#');
    refuses(hook(mangled), /do not match/, both);
  });
});

describe('JRNI OAuth2 client credentials', () => {
  it('issues a token at the token route for client credentials in HTTP Basic or in the body', () => {
    const basic = tokenRequest(
      {
        authorization: basicAuthorization(oauth2.clientId, oauth2.clientSecret),
        'content-type': 'application/x-www-form-urlencoded',
      },
      'grant_type=client_credentials',
    );
    accepts(basic);
    const form = tokenRequest(
      { 'content-type': 'application/x-www-form-urlencoded' },
      `grant_type=client_credentials&client_id=${oauth2.clientId}&client_secret=${oauth2.clientSecret}`,
    );
    accepts(form);
    const json = tokenRequest(
      { 'content-type': 'application/json' },
      JSON.stringify({
        grant_type: 'client_credentials',
        client_id: oauth2.clientId,
        client_secret: oauth2.clientSecret,
      }),
    );
    accepts(json);
    const answer = bookingbugConnector.push!.acknowledge!([], config, json);
    expect(answer).toMatchObject({
      status: 200,
      headers: { 'cache-control': 'no-store' },
      body: { token_type: 'Bearer', expires_in: 3600 },
    });
    const token = (answer.body as JsonObject).access_token as string;
    accepts(hook(`Bearer ${token}`));
  });

  it('refuses wrong or missing client credentials at the token route', () => {
    refuses(
      tokenRequest({}, `grant_type=client_credentials&client_id=${oauth2.clientId}&client_secret=nope`),
      /do not match/,
    );
    refuses(tokenRequest({}, 'grant_type=client_credentials'), /no client credentials/);
    refuses(tokenRequest({}, 'grant_type=client_credentials'), /not configured/, {
      basicToken: 'x'.repeat(20),
    });
  });

  it('accepts a token until it expires, never a tampered one or one keyed by another secret', () => {
    const { token, expiresIn } = issueAccessToken({ ...oauth2, tokenTtlSeconds: 120 }, now);
    expect(expiresIn).toBe(120);
    expect(verifyAccessToken(token, oauth2, new Date(now.getTime() + 119_000))).toBe(true);
    expect(verifyAccessToken(token, oauth2, new Date(now.getTime() + 120_000))).toBe(false);
    refuses(hook(`Bearer ${token}`, new Date(now.getTime() + 121_000)), /not valid/);
    const [prefix, expires, nonce, mac] = token.split('.');
    const later = `${prefix}.${Number(expires) + 3600}.${nonce}.${mac}`;
    expect(verifyAccessToken(later, oauth2, now)).toBe(false);
    expect(verifyAccessToken(token, { ...oauth2, clientSecret: `${oauth2.clientSecret}x` }, now)).toBe(false);
    expect(verifyAccessToken('sy1.garbage', oauth2, now)).toBe(false);
  });

  it('issues a different token each time, and none without oauth2 settings', () => {
    const a = tokenResponse(config, now).body as JsonObject;
    const b = tokenResponse(config, now).body as JsonObject;
    expect(a.access_token).not.toBe(b.access_token);
    expect(() => tokenResponse({ basicToken: 'x'.repeat(20) }, now)).toThrow(/oauth2/);
  });
});
