/** Durations (`30s`, `5m`, `1h30m`, `30d`) and sizes (`1mb`) as written in the config file. */
import { parseDuration } from '../delivery/retry-schedule.ts';
import type { SubscriptionDefaults } from '../subscriptions/api.ts';
import type { TracingDefaults } from '../telemetry/index.ts';
import { CONFIG_DEFAULTS, DEFAULT_RETRY_SCHEDULE } from './schema.ts';

// The same grammar as the delivery primitives' parseDuration, minus the spaces and bare numbers it
// tolerates from API input: the file has one spelling.
const DURATION = /^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d))+$/;
const SIZE = /^([0-9]+)(b|kb|mb|gb)$/i;
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/**
 * Milliseconds of a config duration, or undefined when it is not one.
 *
 * @example
 * ```ts
 * configDurationMs('5m'); // 300000
 * configDurationMs('5 minutes'); // undefined
 * ```
 */
export function configDurationMs(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  return parseDuration(text);
}

/**
 * A number of milliseconds in the file's spelling, for messages about a duration the file wrote:
 * seconds below an hour (the docs say "0.1s to 120s"), whole days or hours above, else ms.
 *
 * @example
 * ```ts
 * configDurationText(120_000); // '120s'
 * configDurationText(50); // '50ms'
 * configDurationText(604_800_000); // '7d'
 * ```
 */
export function configDurationText(ms: number): string {
  if (ms % 1000 !== 0) return `${ms}ms`;
  if (ms >= 86_400_000 && ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  return `${ms / 1000}s`;
}

/**
 * Bytes of a config size, or undefined when it is not one.
 *
 * @example
 * ```ts
 * configSizeBytes('1mb'); // 1048576
 * ```
 */
export function configSizeBytes(text: string): number | undefined {
  const match = SIZE.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * SIZE_UNITS[match[2]!.toLowerCase()]!;
}

/**
 * The duration problem message (durations are never secret, so the value is shown). A bare number
 * (`timeout: 15`) gets the unit it lacks suggested.
 *
 * @example
 * ```ts
 * durationMessage(15); // 'must be a duration such as "15s": a number and a unit (ms, s, m, h, d)'
 * ```
 */
export function durationMessage(value: unknown): string {
  if (typeof value === 'number')
    return `must be a duration such as "${value}s": a number and a unit (ms, s, m, h, d)`;
  if (typeof value !== 'string')
    return 'must be a duration such as "30s", "5m" or "1h30m": a number and a unit (ms, s, m, h, d)';
  return `invalid duration ${JSON.stringify(value)}: write a number and a unit (ms, s, m, h, d), e.g. "30s", "5m" or "1h30m"`;
}

/**
 * The default schedule: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h later. That is
 * 8 attempts (1 initial + 7 retries) spread over about 27 h 35 min before jitter.
 *
 * @example
 * ```ts
 * DEFAULT_RETRY_SCHEDULE_MS.length; // 8 attempts in total
 * ```
 */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = Object.freeze(
  // The config's default schedule, in milliseconds: one default, written once (config/schema.ts).
  // Here, not in delivery/, so delivery needs nothing of the config.
  DEFAULT_RETRY_SCHEDULE.map((delay) => parseDuration(delay)),
);

/**
 * `CONFIG_DEFAULTS.subscription` in the hub's units: what `hub.subscriptions.create` gives the fields
 * an input leaves out (the config file's loader fills the same ones from the same values).
 *
 * @example
 * ```ts
 * subscriptionDefaults().timeoutMs; // 15000
 * ```
 */
export function subscriptionDefaults(): SubscriptionDefaults {
  const d = CONFIG_DEFAULTS.subscription;
  return {
    eventTypes: d.events,
    contentType: d.contentType,
    format: d.format,
    timeoutMs: configDurationMs(d.timeout)!,
    ordering: d.ordering,
    allowPrivateAddresses: d.allowPrivateAddresses,
  };
}

/**
 * `CONFIG_DEFAULTS.telemetry.traces` in the hub's units: what tracing runs with where neither the
 * file nor the OpenTelemetry environment variables say (telemetry/settings.ts has the rule).
 *
 * @example
 * ```ts
 * tracingDefaults().batchDelayMs; // 1000
 * ```
 */
export function tracingDefaults(): TracingDefaults {
  const d = CONFIG_DEFAULTS.telemetry.traces;
  return {
    sampleRatio: d.sampleRatio,
    queueSize: d.queueSize,
    batchDelayMs: configDurationMs(d.batchDelay)!,
    exportTimeoutMs: configDurationMs(d.exportTimeout)!,
  };
}
