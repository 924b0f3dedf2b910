/**
 * The hub as a process: what `switchyard start` runs, and what the other operational commands share.
 *
 * @example
 * ```ts
 * import { startHubProcess } from './runtime/index.ts';
 * const running = await startHubProcess(config, { role: 'all', io, logger, signal });
 * await running.closed;
 * ```
 */

export { findConfigFile } from '../cli/command.ts';
export { type ApplyResult, applyFileConfig } from './apply.ts';
export { banner, baseUrl, hookUrls, sampleCurl } from './banner.ts';
export { loadForCommand, withHub } from './cli.ts';
export { type HubDatabase, openHubDatabase, resolveSecretKey } from './database.ts';
export {
  type HubProcess,
  type HubRole,
  ROLES,
  type StartHubProcessOptions,
  startHubProcess,
} from './process.ts';
export { type Progress, progressBar } from './progress.ts';
