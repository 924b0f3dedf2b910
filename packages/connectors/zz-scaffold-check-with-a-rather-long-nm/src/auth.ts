import { ConnectorError, type InboundRequest, timingSafeEqualString } from '@switchyard/core';
import { type Config, DEFAULT_HEADER_NAME } from './config.ts';

/**
 * Accepts a push whose API key header matches the configured key (constant-time comparison).
 *
 * @example
 * ```ts
 * authenticate(request, { apiKey: 'k'.repeat(24) }); // throws ConnectorError.auth when wrong
 * ```
 */
export function authenticate(request: InboundRequest, config: Config): void {
  const expected = config.apiKey ?? '';
  if (expected === '') throw ConnectorError.auth('the instance has no apiKey configured');
  const headerName = (config.headerName ?? DEFAULT_HEADER_NAME).toLowerCase();
  const presented = request.headers[headerName];
  if (timingSafeEqualString(presented, expected)) return;
  throw ConnectorError.auth(
    presented === undefined ? `the ${headerName} header is missing` : `the ${headerName} header does not match`,
  );
}
