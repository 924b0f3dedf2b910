import type { JsonSchema } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import {
  collectSecretValues,
  isSecretHeaderName,
  REDACTED,
  redactConfig,
  redactHeaders,
  redactSecretFields,
  secretFieldValues,
} from './redact.ts';

describe('redactHeaders', () => {
  it('redacts known and look-alike secret headers, case-insensitively, keeping names', () => {
    const headers = {
      Authorization: 'Bearer abc',
      cookie: 'sid=1',
      'X-API-Key': 'k',
      Authtoken: 't',
      'x-clockwise-token': 't2',
      'x-client-secret': 's',
      'webhook-signature': 'v1,abc',
      'x-password': 'p',
      'content-type': 'application/json',
      'user-agent': 'curl',
      'x-absent-token': undefined,
    };
    expect(redactHeaders(headers)).toEqual({
      Authorization: REDACTED,
      cookie: REDACTED,
      'X-API-Key': REDACTED,
      Authtoken: REDACTED,
      'x-clockwise-token': REDACTED,
      'x-client-secret': REDACTED,
      'webhook-signature': REDACTED,
      'x-password': REDACTED,
      'content-type': 'application/json',
      'user-agent': 'curl',
      'x-absent-token': undefined,
    });
    expect(headers.Authorization).toBe('Bearer abc');
  });

  it('redacts extra names and array values', () => {
    expect(
      redactHeaders(
        { 'X-Docplanner-Auth': 'x', 'set-cookie': ['a=1', 'b=2'] },
        { extraSecretHeaderNames: ['x-docplanner-auth'] },
      ),
    ).toEqual({ 'X-Docplanner-Auth': REDACTED, 'set-cookie': REDACTED });
    expect(isSecretHeaderName('X-Docplanner-Auth')).toBe(false);
    expect(isSecretHeaderName('Accept')).toBe(false);
  });
});

const schema: JsonSchema = {
  type: 'object',
  $defs: {
    credentials: {
      type: 'object',
      properties: { clientId: { type: 'string' }, clientSecret: { type: 'string', 'x-secret': true } },
    },
  },
  properties: {
    name: { type: 'string' },
    apiKey: { type: 'string', 'x-secret': true },
    oauth: { $ref: '#/$defs/credentials' },
    locations: {
      type: 'array',
      items: {
        type: 'object',
        properties: { id: { type: 'string' }, pin: { type: 'integer', 'x-secret': true } },
      },
    },
    tokens: { type: 'array', items: { type: 'string', 'x-secret': true } },
    whole: { type: 'object', 'x-secret': true },
    byTenant: {
      type: 'object',
      additionalProperties: { type: 'object', properties: { key: { 'x-secret': true } } },
    },
    tuple: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'string', 'x-secret': true }] },
    auth: {
      oneOf: [
        {
          type: 'object',
          properties: { mode: { const: 'basic' }, password: { type: 'string', 'x-secret': true } },
        },
        {
          type: 'object',
          properties: { mode: { const: 'bearer' }, token: { type: 'string', 'x-secret': true } },
        },
      ],
    },
    optionalSecret: { type: ['string', 'null'], 'x-secret': true },
  },
  patternProperties: { '^hook_': { type: 'string', 'x-secret': true } },
};

const config = {
  name: 'clinic',
  apiKey: 'api-key-123',
  oauth: { clientId: 'client-1', clientSecret: 'client-secret-1' },
  locations: [
    { id: 'a', pin: 1234 },
    { id: 'b', pin: 5678 },
  ],
  tokens: ['tok-1', 'tok-2'],
  whole: { user: 'u', pass: 'whole-pass' },
  byTenant: { north: { key: 'north-key' }, south: { key: 'south-key', other: 'visible' } },
  tuple: ['first', 'tuple-secret'],
  auth: { mode: 'basic', password: 'basic-pass' },
  optionalSecret: null,
  hook_main: 'hook-secret',
  unknown: 'stays',
};

describe('redactSecretFields', () => {
  it('redacts token, secret and password members at any depth, keeping the rest and the input', () => {
    const login = {
      email: 'admin@clinic.example',
      auth_token: 'W98lv10xrwTjWmiRu60nUg',
      company_id: 37000,
      _embedded: { administrators: [{ name: 'A', access_token: 'x', refresh_token: null }] },
    };
    expect(redactSecretFields(login)).toEqual({
      email: 'admin@clinic.example',
      auth_token: '[redacted]',
      company_id: 37000,
      _embedded: { administrators: [{ name: 'A', access_token: '[redacted]', refresh_token: null }] },
    });
    expect(login.auth_token).toBe('W98lv10xrwTjWmiRu60nUg');
    expect(redactSecretFields('text')).toBe('text');
  });

  it("keeps an OAuth2 answer's token_type, which names the scheme, not a secret", () => {
    expect(redactSecretFields({ access_token: 'dptok-1', token_type: 'bearer', expires_in: 3600 })).toEqual({
      access_token: '[redacted]',
      token_type: 'bearer',
      expires_in: 3600,
    });
  });

  it('redacts the same members in a body kept as text: JSON labelled otherwise, or a form (an OAuth2 token answer)', () => {
    // A body is parsed only under a JSON content type: a token answered as text/plain or
    // form-encoded was kept whole in the call's snippet before.
    expect(redactSecretFields('{"access_token":"dptok-2","token_type":"bearer","expires_in":3600}')).toBe(
      '{"access_token":"[redacted]","token_type":"bearer","expires_in":3600}',
    );
    expect(redactSecretFields(' [{"auth_token":"W98lv10x"}]\n')).toBe('[{"auth_token":"[redacted]"}]');
    expect(redactSecretFields('access_token=gho_16C7e42F&scope=repo&token_type=bearer')).toBe(
      'access_token=%5Bredacted%5D&scope=repo&token_type=bearer',
    );
    for (const text of ['<html>502 Bad Gateway</html>', '{not json', 'scope=repo&token_type=bearer', 'a = b'])
      expect(redactSecretFields(text)).toBe(text);
  });
});

describe('secretFieldValues', () => {
  it('lists what redactSecretFields redacts, from a parsed body or from text read as JSON or a form', () => {
    expect(
      secretFieldValues({ auth_token: 'abc', company_id: 37000, nested: [{ client_secret: 'cs-1' }] }),
    ).toEqual(['abc', 'cs-1']);
    expect(secretFieldValues('{"error":"expired","session_token":"s-0123","token_type":"bearer"}')).toEqual([
      's-0123',
    ]);
    expect(secretFieldValues('access_token=gho_16C7e42F&token_type=bearer')).toEqual(['gho_16C7e42F']);
    expect(secretFieldValues('<html>access_token=x</html>')).toEqual([]);
    expect(secretFieldValues(undefined)).toEqual([]);
  });
});

describe('redactConfig', () => {
  it('replaces every x-secret value, at any depth, without touching the input', () => {
    const copy = structuredClone(config);
    expect(redactConfig(config, schema)).toEqual({
      name: 'clinic',
      apiKey: REDACTED,
      oauth: { clientId: 'client-1', clientSecret: REDACTED },
      locations: [
        { id: 'a', pin: REDACTED },
        { id: 'b', pin: REDACTED },
      ],
      tokens: [REDACTED, REDACTED],
      whole: REDACTED,
      byTenant: { north: { key: REDACTED }, south: { key: REDACTED, other: 'visible' } },
      tuple: ['first', REDACTED],
      auth: { mode: 'basic', password: REDACTED },
      optionalSecret: null,
      hook_main: REDACTED,
      unknown: 'stays',
    });
    expect(config).toEqual(copy);
  });

  it('leaves values alone when nothing is secret or the schema is boolean', () => {
    expect(redactConfig({ a: 1 }, { type: 'object' })).toEqual({ a: 1 });
    expect(redactConfig({ a: 1 }, true)).toEqual({ a: 1 });
    expect(redactConfig('plain', { type: 'string' })).toBe('plain');
    expect(redactConfig('top', { type: 'string', 'x-secret': true })).toBe(REDACTED);
  });
});

describe('collectSecretValues', () => {
  it('collects every secret string, nested ones included, longest first', () => {
    const values = collectSecretValues(config, schema);
    expect(new Set(values)).toEqual(
      new Set([
        'api-key-123',
        'client-secret-1',
        '1234',
        '5678',
        'tok-1',
        'tok-2',
        'u',
        'whole-pass',
        'north-key',
        'south-key',
        'tuple-secret',
        'basic-pass',
        'hook-secret',
      ]),
    );
    expect(values[0]).toBe('client-secret-1');
    expect(values).not.toContain('clinic');
    expect(values).not.toContain('client-1');
  });
});
