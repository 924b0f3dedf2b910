import { defineConnector } from '@switchyard/core';
import { authenticate } from './auth.ts';
import { type Config, configSchema } from './config.ts';
import { encode } from './encode.ts';
import { CONNECTOR_NAME, eventMap, normalize } from './normalize.ts';
import { parse, routes } from './parse.ts';

export type { Config } from './config.ts';
export { configSchema } from './config.ts';
export { encode } from './encode.ts';
export { eventMap, normalize } from './normalize.ts';
export { parse, routes } from './parse.ts';

/**
 * Zz Scaffold Check With A Rather Long Nm: pushes authenticated by a static API key header, `booking.created` →
 * `appointment.created`.
 *
 * @example
 * ```yaml
 * instances:
 *   - id: zz-scaffold-check-with-a-rather-long-nm-main
 *     connector: zz-scaffold-check-with-a-rather-long-nm
 *     settings: { apiKey: '${env:API_KEY}' }
 * ```
 */
export const zzScaffoldCheckWithARatherLongNmConnector = defineConnector<Config>({
  name: CONNECTOR_NAME,
  version: '0.1.0',
  displayName: 'Zz Scaffold Check With A Rather Long Nm',
  configSchema,
  eventMap,
  push: { routes, authenticate, parse },
  normalize,
  encode,
});

export default zzScaffoldCheckWithARatherLongNmConnector;
