import { ConnectorError } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { authenticate } from './auth.ts';
import type { Config } from './config.ts';

const SECRET = 'in-test-secret-0123456789abcdef';
const body = { type: 'soap_note.created', data: { object: { id: 1 } } };

function refusal(run: () => void): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectorError);
    expect((error as ConnectorError).kind).toBe('auth');
    return (error as ConnectorError).message;
  }
}

describe('authenticate', () => {
  const header = (mode: Config['auth']['mode'], value: string | undefined) =>
    refusal(() =>
      authenticate(inboundRequest({ headers: { 'x-instinctive-secret': value }, body }), {
        auth: { mode, secret: SECRET },
      }),
    );
  const path = (mode: Config['auth']['mode'], value: string) =>
    refusal(() =>
      authenticate(inboundRequest({ route: 'secret', params: { secret: value }, body }), {
        auth: { mode, secret: SECRET },
      }),
    );

  it('header mode accepts the secret in the default header and refuses it in the path', () => {
    expect(header('header', SECRET)).toBeUndefined();
    expect(header('header', `${SECRET}x`)).toContain('does not match (x-instinctive-secret header)');
    expect(header('header', undefined)).toContain('missing');
    expect(path('header', SECRET)).toContain('missing');
  });

  it('path mode accepts the secret as the last path segment and refuses it in a header', () => {
    expect(path('path', SECRET)).toBeUndefined();
    expect(path('path', SECRET.slice(0, -1))).toContain('does not match (URL path)');
    expect(header('path', SECRET)).toContain('missing (URL path)');
  });

  it('either mode accepts a match in either place and refuses when neither matches', () => {
    expect(header('either', SECRET)).toBeUndefined();
    expect(path('either', SECRET)).toBeUndefined();
    expect(header('either', 'nope')).toContain('does not match');
    expect(path('either', 'nope')).toContain('does not match');
    expect(refusal(() => authenticate(inboundRequest({ body }), { auth: { secret: SECRET } }))).toContain(
      'missing',
    );
  });

  it('reads a custom header name case-insensitively', () => {
    const config: Config = { auth: { mode: 'header', headerName: 'X-Notes-Token', secret: SECRET } };
    expect(
      refusal(() => authenticate(inboundRequest({ headers: { 'X-Notes-Token': SECRET }, body }), config)),
    ).toBe(undefined);
    expect(
      refusal(() =>
        authenticate(inboundRequest({ headers: { 'x-instinctive-secret': SECRET }, body }), config),
      ),
    ).toContain('x-notes-token');
  });

  it('refuses everything when no secret is configured, and never echoes the secret', () => {
    expect(refusal(() => authenticate(inboundRequest({ body }), { auth: { secret: '' } }))).toContain(
      'no auth.secret',
    );
    expect(header('header', 'wrong-secret-value')).not.toContain(SECRET);
  });
});
