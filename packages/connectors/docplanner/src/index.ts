/**
 * @switchyard/connector-docplanner: Docplanner (ZnanyLekarz, Doctoralia, MioDottore) integration
 * API v3. Push (static API key header, optional source-IP allowlist, approval gates for
 * `slot-booking` / `booking-moving`) and pull (OAuth2 client credentials, FIFO notification queue).
 *
 * @example
 * ```ts
 * import { docplannerConnector } from '@switchyard/connector-docplanner';
 * docplannerConnector.eventMap.find((m) => m.vendorType === 'booking-moved'); // appointment.rescheduled
 * ```
 */
import { defineConnector } from '@switchyard/core';
import { authenticate, credentials, sign } from './auth.ts';
import { commands, commandUnsupported } from './commands.ts';
import { breakCommands, breakUnsupported } from './commands-breaks.ts';
import { type Config, configSchema } from './config.ts';
import { encode } from './encode.ts';
import { matchKey, respond } from './gate.ts';
import { eventMap, normalize } from './normalize.ts';
import { parse, routes } from './parse.ts';
import { pull, reconcile } from './pull.ts';

export type { Config } from './config.ts';
export { configSchema } from './config.ts';
export { REFUSAL_STATUS } from './gate.ts';
export {
  apiBase,
  type DocplannerPullBatch,
  docplannerApi,
  fetchNotifications,
  releaseNotifications,
} from './pull.ts';
export type { DpNotification } from './vendor.ts';
export { DOCPLANNER_NAMES } from './vendor.ts';

export const docplannerConnector = defineConnector<Config>({
  name: 'docplanner',
  version: '0.1.0',
  displayName: 'Docplanner (ZnanyLekarz, Doctoralia, MioDottore)',
  configSchema,
  eventMap,
  push: { routes, authenticate, credentials, sign, parse },
  pull,
  reconcile,
  normalize,
  gate: { respond, matchKey },
  // The calendar-block commands live in their own file, which borrows commands.ts's helpers (so
  // they are joined here, not there: that would be an import cycle).
  commands: { ...commands, ...breakCommands },
  commandUnsupported: (command) => commandUnsupported(command) ?? breakUnsupported(command),
  encode,
});

export default docplannerConnector;
