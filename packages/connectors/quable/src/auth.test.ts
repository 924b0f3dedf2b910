import { ConnectorError } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { authenticate } from './auth.ts';

const AUTHORIZATION = 'Bearer qb-test-0123456789abcdef';
const body = { uuid: 'u', code: 'document.update' };

function refusal(authorization: string | undefined, expected = AUTHORIZATION): string | undefined {
  try {
    authenticate(inboundRequest({ headers: { Authorization: authorization }, body }), {
      authorization: expected,
    });
    return undefined;
  } catch (error) {
    expect((error as ConnectorError).kind).toBe('auth');
    return (error as ConnectorError).message;
  }
}

describe('authenticate', () => {
  it('accepts exactly the configured Authorization value', () => {
    expect(refusal(AUTHORIZATION)).toBeUndefined();
  });

  it('refuses another value, another case, a bare token, or no header, without echoing the secret', () => {
    expect(refusal('Bearer qb-test-0123456789abcdeg')).toBe('the Quable Authorization header does not match');
    expect(refusal('bearer qb-test-0123456789abcdef')).toContain('does not match');
    expect(refusal('qb-test-0123456789abcdef')).toContain('does not match');
    expect(refusal(undefined)).toBe('the Quable Authorization header is missing');
  });

  it('refuses everything when no value is configured', () => {
    expect(refusal('', '')).toContain('no authorization configured');
    expect(() =>
      authenticate(inboundRequest({ body }), { authorization: undefined as unknown as string }),
    ).toThrow(ConnectorError);
  });
});
