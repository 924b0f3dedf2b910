import { defineConnector } from '@switchyard/core';
import { authenticate, credentials } from './auth.ts';
import { type Config, configSchema } from './config.ts';
import { encode } from './encode.ts';
import { CONNECTOR_NAME, eventMap, normalize } from './normalize.ts';
import { parse, routes } from './parse.ts';

export { basicAuthorization } from './auth.ts';
export type { Config } from './config.ts';
export { configSchema } from './config.ts';
export { eventMap } from './normalize.ts';

/**
 * The BookingBug (JRNI) connector: whole-purchase pushes to the booking and cancellation URLs with
 * HTTP Basic auth, turned into one appointment event per booking by comparing with the last state.
 *
 * @example
 * ```yaml
 * connectors:
 *   - id: bb-main
 *     connector: bookingbug
 *     settings: { basicAuth: { username: switchyard, password: ${env:BB_PUSH_PASSWORD} } }
 * ```
 */
export const bookingbugConnector = defineConnector<Config>({
  name: CONNECTOR_NAME,
  version: '0.1.0',
  displayName: 'BookingBug (JRNI)',
  configSchema,
  eventMap,
  push: { routes, authenticate, credentials, parse },
  normalize,
  encode,
});

export default bookingbugConnector;
