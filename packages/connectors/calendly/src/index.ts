import { defineConnector } from '@switchyard/core';
import { authenticate, credentials, sign, verifyBody } from './auth.ts';
import { commands, commandUnsupported } from './commands.ts';
import { type Config, configSchema } from './config.ts';
import { encode } from './encode.ts';
import { CONNECTOR_NAME, eventMap, normalize } from './normalize.ts';
import { parse, routes } from './parse.ts';

export { credentialHeaders } from './auth.ts';
export type { Config } from './config.ts';
export { configSchema } from './config.ts';
export { encode } from './encode.ts';
export { eventMap, normalize } from './normalize.ts';
export { parse, routes } from './parse.ts';

/**
 * Calendly: pushes signed with HMAC-SHA256 over the timestamp and the body, `t=…,v1=…`;
 * `invitee.created` → `appointment.created`; with an `apiToken`, commands book (the Scheduling API's
 * `POST /invitees`), cancel the event and mark or clear a no-show through the API v2.
 *
 * @example
 * ```yaml
 * instances:
 *   - id: calendly-main
 *     connector: calendly
 *     settings: { signingKey: '${env:CALENDLY_SIGNING_SECRET}', apiToken: '${env:CALENDLY_API_TOKEN}' }
 * ```
 */
export const calendlyConnector = defineConnector<Config>({
  name: CONNECTOR_NAME,
  version: '0.1.0',
  displayName: 'Calendly',
  configSchema,
  eventMap,
  push: { routes, authenticate, verifyBody, credentials, sign, parse },
  commands,
  commandUnsupported,
  normalize,
  encode,
});

export default calendlyConnector;
