import {
  ConnectorError,
  type InboundRequestHead,
  type PresentedCredentials,
  type PushCredentials,
  timingSafeEqualString,
} from '@switchyard/core';
import { type Config, resolveConfig } from './config.ts';

/**
 * Accepts a Clockwise.MD webhook whose shared key matches, in the URL path (`:key` route) and/or the
 * `Authtoken` header as the instance's `auth.mode` says. Both comparisons run in constant time.
 *
 * @example
 * ```ts
 * authenticate(request, { auth: { mode: 'header', key: 'k'.repeat(24) } }); // throws ConnectorError.auth when wrong
 * ```
 */
export function authenticate(request: InboundRequestHead, config: Config): void {
  const { auth } = resolveConfig(config);
  if (auth.key === '') throw ConnectorError.auth('the Clockwise.MD instance has no auth.key configured');
  const pathKey = request.params.key;
  const headerKey = request.headers.authtoken;
  // Both are always compared so the answer time does not say which one was wrong.
  const pathOk = timingSafeEqualString(pathKey, auth.key);
  const headerOk = timingSafeEqualString(headerKey, auth.key);
  const ok = auth.mode === 'path' ? pathOk : auth.mode === 'header' ? headerOk : pathOk || headerOk;
  if (ok) return;
  const where =
    auth.mode === 'path'
      ? 'URL path'
      : auth.mode === 'header'
        ? 'Authtoken header'
        : 'URL path or Authtoken header';
  const presented =
    auth.mode === 'path' ? pathKey : auth.mode === 'header' ? headerKey : (pathKey ?? headerKey);
  throw ConnectorError.auth(
    presented === undefined
      ? `the Clockwise.MD key is missing (${where})`
      : `the Clockwise.MD key does not match (${where})`,
  );
}

/**
 * Where a Clockwise.MD push carries its key: the `Authtoken` header and the `:key` path segment
 * (both declared whatever the mode, since a vendor may send the key in either).
 *
 * @example
 * ```ts
 * credentials({ auth: { mode: 'path', key: 'k'.repeat(24) } }); // { headers: ['authtoken'], params: ['key'] }
 * ```
 */
export function credentials(_config: Config): PushCredentials {
  return { headers: ['authtoken'], params: ['key'] };
}

/**
 * What Clockwise.MD presents on a push: the key as the instance takes it, in the `Authtoken` header
 * (modes `header` and `either`) or as the last path segment (mode `path`: the `key` route).
 * `switchyard push` sends it.
 *
 * @example
 * ```ts
 * sign(request, { auth: { mode: 'path', key: 'cw-0123456789abcdef' } }); // { params: { key: 'cw-0123456789abcdef' } }
 * ```
 */
export function sign(_request: unknown, config: Config): PresentedCredentials {
  const { auth } = resolveConfig(config);
  if (auth.key === '') return {};
  return auth.mode === 'path' ? { params: { key: auth.key } } : { headers: { authtoken: auth.key } };
}
