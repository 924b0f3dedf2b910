import { defineConnector } from '@switchyard/core';
import { commands, commandUnsupported } from './commands.ts';
import { blockCommands, blockUnsupported } from './commands-blocks.ts';
import { type Config, configSchema } from './config.ts';
import { CONNECTOR_NAME, eventMap, normalize } from './normalize.ts';
import { pull } from './pull.ts';

export type { Config } from './config.ts';
export { configSchema } from './config.ts';
export { eventMap, normalize } from './normalize.ts';
export { pull } from './pull.ts';

/**
 * Cliniko: no webhooks; individual appointments and unavailable blocks (calendar blocks, `slot.*`)
 * are polled by `updated_at` and normalized by comparing each version with the last one seen.
 * Commands book, cancel, reschedule, mark arrival and no-show, clear them, write the notes, and
 * block, move and remove calendar time (unavailable blocks).
 *
 * @example
 * ```yaml
 * instances:
 *   - id: cliniko-main
 *     connector: cliniko
 *     mode: pull
 *     settings: { apiKey: '${env:CLINIKO_API_KEY}', userAgent: 'Switchyard (ops@example.com)' }
 *     pull: { interval: 60s }
 * ```
 */
export const clinikoConnector = defineConnector<Config>({
  name: CONNECTOR_NAME,
  version: '0.1.0',
  displayName: 'Cliniko',
  configSchema,
  eventMap,
  pull,
  normalize,
  commands: { ...commands, ...blockCommands },
  commandUnsupported: (command) => commandUnsupported(command) ?? blockUnsupported(command),
});

export default clinikoConnector;
