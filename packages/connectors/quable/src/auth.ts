import {
  ConnectorError,
  type InboundRequestHead,
  type PresentedCredentials,
  type PushCredentials,
  timingSafeEqualString,
} from '@switchyard/core';
import type { Config } from './config.ts';

/**
 * Accepts a Quable notification whose `Authorization` header is exactly the value configured for the
 * webhook (constant-time comparison). Quable signs nothing: this static header is all there is.
 *
 * @example
 * ```ts
 * authenticate(request, { authorization: 'Bearer 0123456789abcdef' }); // throws ConnectorError.auth when wrong
 * ```
 */
export function authenticate(request: InboundRequestHead, config: Config): void {
  const expected = config.authorization ?? '';
  if (expected === '') throw ConnectorError.auth('the Quable instance has no authorization configured');
  const presented = request.headers.authorization;
  if (timingSafeEqualString(presented, expected)) return;
  throw ConnectorError.auth(
    presented === undefined
      ? 'the Quable Authorization header is missing'
      : 'the Quable Authorization header does not match',
  );
}

/**
 * Where a Quable push carries credentials: the static `Authorization` header value.
 *
 * @example
 * ```ts
 * credentials({ authorization: 'Bearer 0123456789abcdef' }); // { headers: ['authorization'] }
 * ```
 */
export function credentials(_config: Config): PushCredentials {
  return { headers: ['authorization'] };
}

/**
 * What Quable presents on a push: the static `Authorization` header chosen when the webhook was
 * created. `switchyard push` sends it.
 *
 * @example
 * ```ts
 * sign(request, { authorization: 'Bearer qb-0123456789abcdef' }); // { headers: { authorization: 'Bearer qb-0123456789abcdef' } }
 * ```
 */
export function sign(_request: unknown, config: Config): PresentedCredentials {
  return config.authorization ? { headers: { authorization: config.authorization } } : {};
}
