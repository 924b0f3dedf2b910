import { defineConnector } from '@switchyard/core';
import { authenticate, credentials, sign } from './auth.ts';
import { commands, commandUnsupported } from './commands.ts';
import { type Config, configSchema } from './config.ts';
import { encode } from './encode.ts';
import { CONNECTOR_NAME, eventMap, normalize } from './normalize.ts';
import { parse, routes } from './parse.ts';

export type { AuthMode, Config } from './config.ts';
export { configSchema } from './config.ts';
export { eventMap } from './normalize.ts';

/**
 * The Clockwise.MD connector: thin appointment webhooks (`{ appointment_id, event_type }`) enriched
 * from the REST API, with the clinic workflow (check-in → ready → callback → discharge, remove and
 * every undo) mapped onto normalized appointment events.
 *
 * @example
 * ```yaml
 * connectors:
 *   - id: clinic-a
 *     connector: clockwisemd
 *     settings: { auth: { mode: header, key: ${env:CWMD_HOOK_KEY} }, apiKey: ${env:CWMD_API_KEY} }
 * ```
 */
export const clockwisemdConnector = defineConnector<Config>({
  name: CONNECTOR_NAME,
  version: '0.1.0',
  displayName: 'Clockwise.MD',
  configSchema,
  eventMap,
  push: { routes, authenticate, credentials, sign, parse },
  normalize,
  commands,
  commandUnsupported,
  encode,
});

export default clockwisemdConnector;
