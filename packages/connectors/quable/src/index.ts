import { defineConnector } from '@switchyard/core';
import { authenticate, credentials, sign } from './auth.ts';
import { type Config, configSchema } from './config.ts';
import { encode } from './encode.ts';
import { CONNECTOR_NAME, eventMap, normalize } from './normalize.ts';
import { parse, routes } from './parse.ts';

export type { Config } from './config.ts';
export { configSchema } from './config.ts';
export { encode } from './encode.ts';
export { eventMap, IGNORED_FAMILIES, normalize, PROCESS_KINDS } from './normalize.ts';
export { parse, routes } from './parse.ts';
export type { QuableNotification, QuableProcess, QuableResource } from './vendor.ts';

/**
 * Quable PIM: webhook notifications → catalog `document.*`, `asset.*` (media) and
 * `process.completed` (bulk edit, import, export finished), authenticated by the static
 * `Authorization` header chosen when the webhook was set up.
 *
 * @example
 * ```yaml
 * connectors:
 *   - id: catalog
 *     connector: quable
 *     settings: { authorization: '${env:QUABLE_WEBHOOK_AUTHORIZATION}' }
 * ```
 */
export const quableConnector = defineConnector<Config>({
  name: CONNECTOR_NAME,
  version: '0.1.0',
  displayName: 'Quable PIM',
  configSchema,
  eventMap,
  // No custom acknowledge: the hub's default 200 goes out as soon as the notification is durable,
  // well inside Quable's 5 s limit (three slow or failed answers in a row disable the webhook).
  push: { routes, authenticate, credentials, sign, parse },
  normalize,
  encode,
});

export default quableConnector;
