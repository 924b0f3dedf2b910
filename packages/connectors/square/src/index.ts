import { defineConnector } from '@switchyard/core';
import { authenticate, credentials, sign, verifyBody } from './auth.ts';
import { commands, commandsUnavailable, commandUnsupported } from './commands.ts';
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
 * Square Appointments (Bookings webhooks): pushes signed with base64 HMAC-SHA256 over the notification URL and the body
 * (`x-square-hmacsha256-signature`, verified against `server.publicUrl` + the hook path); `booking.created` and
 * `booking.updated` → appointment events, ordered by the booking's `version`; with an `accessToken`,
 * commands book, cancel and reschedule through the Bookings API, each write under an
 * `idempotency_key` derived from the command id.
 *
 * @example
 * ```yaml
 * instances:
 *   - id: square-main
 *     connector: square
 *     settings: { signatureKey: '${env:SQUARE_SIGNATURE_KEY}', accessToken: '${env:SQUARE_ACCESS_TOKEN}' }
 * ```
 */
export const squareConnector = defineConnector<Config>({
  name: CONNECTOR_NAME,
  version: '0.1.0',
  displayName: 'Square Appointments',
  configSchema,
  eventMap,
  push: { routes, signsHookUrl: true, authenticate, verifyBody, credentials, sign, parse },
  commands,
  commandsUnavailable,
  commandUnsupported,
  normalize,
  encode,
});

export default squareConnector;
