import {
  ConnectorError,
  type InboundRequestHead,
  type PresentedCredentials,
  type PushCredentials,
  timingSafeEqualString,
} from '@switchyard/core';
import { type Config, resolveConfig } from './config.ts';

/**
 * Accepts an Instinctive Notes webhook whose shared secret matches, in the configured header and/or
 * the URL path (`:secret` route), as the instance's `auth.mode` says. Constant-time comparisons.
 *
 * @example
 * ```ts
 * authenticate(request, { auth: { mode: 'header', secret: 's'.repeat(24) } }); // throws ConnectorError.auth when wrong
 * ```
 */
export function authenticate(request: InboundRequestHead, config: Config): void {
  const { auth } = resolveConfig(config);
  if (auth.secret === '')
    throw ConnectorError.auth('the Instinctive Notes instance has no auth.secret configured');
  const pathSecret = request.params.secret;
  const headerSecret = request.headers[auth.headerName];
  // Both are always compared so the answer time does not say which one was wrong.
  const pathOk = timingSafeEqualString(pathSecret, auth.secret);
  const headerOk = timingSafeEqualString(headerSecret, auth.secret);
  const ok = auth.mode === 'path' ? pathOk : auth.mode === 'header' ? headerOk : pathOk || headerOk;
  if (ok) return;
  const where =
    auth.mode === 'path'
      ? 'URL path'
      : auth.mode === 'header'
        ? `${auth.headerName} header`
        : `URL path or ${auth.headerName} header`;
  const presented =
    auth.mode === 'path' ? pathSecret : auth.mode === 'header' ? headerSecret : (pathSecret ?? headerSecret);
  throw ConnectorError.auth(
    presented === undefined
      ? `the Instinctive Notes secret is missing (${where})`
      : `the Instinctive Notes secret does not match (${where})`,
  );
}

/**
 * Where an Instinctive Notes push carries its secret: the header the instance names
 * (`auth.headerName`, default `x-instinctive-secret`) and the `:secret` path segment (both declared
 * whatever the mode, since a vendor may send the secret in either).
 *
 * @example
 * ```ts
 * credentials({ auth: { headerName: 'X-IN-Auth', secret: 's'.repeat(24) } }); // { headers: ['x-in-auth'], params: ['secret'] }
 * ```
 */
export function credentials(config: Config): PushCredentials {
  return { headers: [resolveConfig(config).auth.headerName], params: ['secret'] };
}

/**
 * What Instinctive Notes presents on a push: the shared secret in the instance's header (modes
 * `header` and `either`) or as the last path segment (mode `path`: the `secret` route).
 * `switchyard push` sends it.
 *
 * @example
 * ```ts
 * sign(request, { auth: { secret: 'in-0123456789abcdef' } }); // { headers: { 'x-instinctive-secret': 'in-0123456789abcdef' } } (the default header)
 * ```
 */
export function sign(_request: unknown, config: Config): PresentedCredentials {
  const { auth } = resolveConfig(config);
  if (auth.secret === '') return {};
  return auth.mode === 'path'
    ? { params: { secret: auth.secret } }
    : { headers: { [auth.headerName]: auth.secret } };
}
