export { ConfigError } from './errors.ts';
export { instanceInput, resolveInstance } from './instances.ts';
export {
  formatProblem,
  type LoadOptions,
  loadConfig,
  parseConfig,
  secretKeyProblem,
  suggest,
} from './load.ts';
export { buildConfigSchema, CONFIG_SCHEMA_ID, DEFAULT_RETRY_SCHEDULE } from './schema.ts';
export { hasReference, resolveReferences, type SecretReference } from './secrets.ts';
export { resolveSubscription } from './subscriptions.ts';
export type * from './types.ts';
export { configDurationMs, configSizeBytes, tracingDefaults } from './units.ts';
