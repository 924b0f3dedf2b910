/**
 * The hub as a process: what `switchyard start` runs (the CLI's shared helpers are in cli/hub.ts).
 *
 * @example
 * ```ts
 * import { startHubProcess } from './runtime/index.ts';
 * const running = await startHubProcess(config, { role: 'all', io, logger, signal });
 * await running.closed;
 * ```
 */

export { type ApplyResult, applyFileConfig } from './apply.ts';
export { banner, baseUrl, hookUrls, sampleCurl } from './banner.ts';
export { type HubDatabase, openHubDatabase, resolveSecretKey } from './database.ts';
export {
  type HubProcess,
  type HubRole,
  ROLES,
  type StartHubProcessOptions,
  startHubProcess,
} from './process.ts';
