/**
 * Inbound authentication compares credentials in constant time: every shipped connector's
 * `authenticate` and the admin API's bearer check hand the presented value and the secret to
 * `timingSafeEqualString` (hash both, `crypto.timingSafeEqual`), never to `===`. Proven by
 * recording the calls while refusing wrong credentials.
 */
import type * as core from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { beforeEach, describe, expect, it, vi } from 'vitest';

const calls: [unknown, unknown][] = [];
vi.mock('@switchyard/core', async (importOriginal) => {
  const actual = await importOriginal<typeof import('@switchyard/core')>();
  return {
    ...actual,
    timingSafeEqualString: (presented: string | undefined | null, expected: string) => {
      calls.push([presented, expected]);
      return actual.timingSafeEqualString(presented, expected);
    },
  };
});

const { shippedConnectors } = await import('../connectors.ts');
const { realInstances } = await import('./support.test-support.ts');
const { adminAuth } = await import('../http/plugins/admin-auth.ts');

beforeEach(() => {
  calls.length = 0;
});

describe('constant-time credential checks', () => {
  for (const instance of realInstances(9)) {
    it(`${instance.connector} compares the presented credential with timingSafeEqualString`, () => {
      const connector = shippedConnectors.find((c) => c.name === instance.connector)!;
      const secret = instance.secrets[0]!;
      connector.push!.authenticate(
        inboundRequest({ headers: instance.goodHeaders, body: '{}' }),
        instance.settings as never,
      );
      // The secret reached the comparison only through the constant-time function.
      expect(
        calls.some(([, expected]) => String(expected).includes(secret)),
        `${instance.connector}: ${JSON.stringify(calls)}`,
      ).toBe(true);
      // A near miss (last character changed) is refused.
      const wrong = Object.fromEntries(
        Object.entries(instance.goodHeaders).map(([k, v]) => [k, `${v.slice(0, -1)}#`]),
      );
      expect(() =>
        connector.push!.authenticate(
          inboundRequest({ headers: wrong, body: '{}' }),
          instance.settings as never,
        ),
      ).toThrow();
    });
  }

  it('the admin API compares the bearer token with timingSafeEqualString', async () => {
    // No session cookie: the database is never asked (any use of it throws).
    const noDatabase = new Proxy(
      {},
      {
        get() {
          throw new Error('the bearer check read the database');
        },
      },
    );
    const hook = adminAuth('admin-token-for-the-constant-time-test', noDatabase as never);
    const request = {
      headers: { authorization: 'Bearer admin-token-for-the-constant-time-tesT' },
      routeOptions: { config: {} },
    };
    await expect((hook as (r: unknown) => Promise<void>)(request)).rejects.toMatchObject({
      code: 'SY_HTTP_UNAUTHORIZED',
    });
    expect(calls).toEqual([
      ['admin-token-for-the-constant-time-tesT', 'admin-token-for-the-constant-time-test'],
    ]);
  });

  it('timingSafeEqualString is right for equal, different and different-length values', () => {
    const real = vi.importActual<typeof core>('@switchyard/core');
    return real.then(({ timingSafeEqualString }) => {
      expect(timingSafeEqualString('same-secret', 'same-secret')).toBe(true);
      expect(timingSafeEqualString('same-secreT', 'same-secret')).toBe(false);
      expect(timingSafeEqualString('short', 'same-secret')).toBe(false);
      expect(timingSafeEqualString(undefined, 'same-secret')).toBe(false);
      expect(timingSafeEqualString('', '')).toBe(true);
    });
  });
});
