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
 * Acuity Scheduling (Squarespace): form-encoded webhooks signed with a base64 HMAC-SHA256 of the
 * body (`X-Acuity-Signature`, the API key as the secret), each enriched with a read of the
 * appointment; commands book, cancel and reschedule through the v1 API.
 *
 * @example
 * ```yaml
 * instances:
 *   - id: acuity-main
 *     connector: acuity
 *     settings: { userId: '11145481', apiKey: '${env:ACUITY_API_KEY}' }
 * ```
 */
export const acuityConnector = defineConnector<Config>({
  name: CONNECTOR_NAME,
  version: '0.1.0',
  displayName: 'Acuity Scheduling',
  configSchema,
  eventMap,
  push: { routes, authenticate, verifyBody, credentials, sign, parse },
  commands,
  commandUnsupported,
  normalize,
  encode,
});

export default acuityConnector;
