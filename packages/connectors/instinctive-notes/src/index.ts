import { defineConnector } from '@switchyard/core';
import { authenticate, credentials, sign } from './auth.ts';
import { type Config, configSchema } from './config.ts';
import { encode } from './encode.ts';
import { CONNECTOR_NAME, eventMap, normalize } from './normalize.ts';
import { parse, routes } from './parse.ts';

export type { AuthMode, Config, TestHandling } from './config.ts';
export { configSchema, resolveConfig } from './config.ts';
export { encode } from './encode.ts';
export { eventMap, normalize } from './normalize.ts';
export { parse, routes } from './parse.ts';
export type { SoapNote, WebhookEvent } from './vendor.ts';

/**
 * Instinctive Notes: SOAP note webhooks (`soap_note.created` / `.updated`) → clinical
 * `document.created` / `document.updated`, authenticated by a shared secret in a header or the path.
 *
 * @example
 * ```yaml
 * connectors:
 *   - id: notes
 *     connector: instinctive-notes
 *     settings: { auth: { mode: header, secret: '${env:INSTINCTIVE_SECRET}' } }
 * ```
 */
export const instinctiveNotesConnector = defineConnector<Config>({
  name: CONNECTOR_NAME,
  version: '0.1.0',
  displayName: 'Instinctive Notes',
  configSchema,
  eventMap,
  push: { routes, authenticate, credentials, sign, parse },
  normalize,
  encode,
});

export default instinctiveNotesConnector;
