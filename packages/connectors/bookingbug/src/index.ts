import { defineConnector } from '@switchyard/core';
import { authenticate, credentials, sign, TOKEN_ROUTE, tokenResponse, verifyBody } from './auth.ts';
import { commands, commandsUnavailable, commandUnsupported } from './commands.ts';
import { type Config, configSchema } from './config.ts';
import { encode } from './encode.ts';
import { CONNECTOR_NAME, eventMap, normalize } from './normalize.ts';
import { parse, routes } from './parse.ts';

export { basicAuthorization, issueAccessToken, TOKEN_ROUTE, verifyAccessToken } from './auth.ts';
export type { AdminApiConfig, Config } from './config.ts';
export { configSchema } from './config.ts';
export { eventMap } from './normalize.ts';

/**
 * The BookingBug (JRNI) connector: the legacy whole-purchase pushes to the booking and cancellation
 * URLs, and JRNI's data and notification webhooks (one appointment snapshot each), turned into one
 * appointment event per booking by comparing with its known state; HTTP Basic, JRNI's Basic token,
 * or OAuth2 client credentials against the instance's own token endpoint. With `adminApi`, it
 * cancels and moves bookings and sets their check-in status through the admin REST API
 * (`appointment.cancel`, `appointment.reschedule`, `appointment.mark_arrived`,
 * `appointment.mark_no_show`), and writes a comment as a private note (`appointment.update`).
 *
 * @example
 * ```yaml
 * connectors:
 *   - id: bb-main
 *     connector: bookingbug
 *     settings:
 *       basicAuth: { username: switchyard, password: ${env:BB_PUSH_PASSWORD} }
 *       adminApi: { baseUrl: https://uk.bookingbug.com, appId: f6b16c23, email: hub@clinic.example, password: ${env:BB_ADMIN_PASSWORD} }
 * ```
 */
export const bookingbugConnector = defineConnector<Config>({
  name: CONNECTOR_NAME,
  version: '0.1.0',
  displayName: 'BookingBug (JRNI)',
  configSchema,
  eventMap,
  push: {
    routes,
    authenticate,
    verifyBody,
    credentials,
    sign,
    parse,
    acknowledge(_notifications, config, request) {
      // The token route stores nothing: its answer is the access token JRNI asked for.
      if (request.route === TOKEN_ROUTE) return tokenResponse(config, request.receivedAt);
      return { status: 200, body: { status: 'accepted' } };
    },
  },
  normalize,
  commands,
  commandsUnavailable,
  commandUnsupported,
  encode,
});

export default bookingbugConnector;
