import {
  ConnectorError,
  type InboundRequestHead,
  type PushCredentials,
  timingSafeEqualString,
} from '@switchyard/core';
import type { Config } from './config.ts';

/**
 * Accepts a push whose HTTP Basic credentials match the instance's `basicAuth`. Username and
 * password are both compared in constant time, whatever the first comparison said.
 *
 * @example
 * ```ts
 * authenticate(request, { basicAuth: { username: 'bb', password: 'p'.repeat(20) } }); // throws ConnectorError.auth when wrong
 * ```
 */
export function authenticate(request: InboundRequestHead, config: Config): void {
  const header = request.headers.authorization;
  if (header === undefined || header === '') throw ConnectorError.auth('HTTP Basic credentials are missing');
  const m = /^basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!m) throw ConnectorError.auth('the Authorization header is not HTTP Basic');
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw ConnectorError.auth('the HTTP Basic credentials are malformed');
  const userOk = timingSafeEqualString(decoded.slice(0, colon), config.basicAuth.username);
  const passwordOk = timingSafeEqualString(decoded.slice(colon + 1), config.basicAuth.password);
  if (!userOk || !passwordOk) throw ConnectorError.auth('the HTTP Basic credentials do not match');
}

/** The `Authorization` header value for these credentials (simulators, tests). */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

/**
 * Where a BookingBug push carries credentials: HTTP Basic in `Authorization`. An auth mode added
 * later (another header, a query token) adds its names here, from the config.
 *
 * @example
 * ```ts
 * credentials({ basicAuth: { username: 'bb', password: 'p'.repeat(20) } }); // { headers: ['authorization'] }
 * ```
 */
export function credentials(_config: Config): PushCredentials {
  return { headers: ['authorization'] };
}
