/**
 * When to try a delivery again. A schedule is a list of delays in milliseconds, one per attempt:
 * entry `i` is how long to wait before attempt `i + 1`, counted from the end of attempt `i`. Entry 0
 * stands for the first attempt, which is not waited for: a delivery is due when its event is stored
 * (the fan-out may take it at once), so write 0 there. So a schedule of N entries means N attempts in
 * total: the first plus N − 1 retries. After the last one fails the delivery is dead.
 */
import { DeliveryError } from './errors.ts';

/** Upper bounds {@link validateSchedule} enforces, so a typo cannot park a delivery for a year. */
export const MAX_SCHEDULE_ATTEMPTS = 100;
export const MAX_SCHEDULE_DELAY_MS = 7 * 24 * 3_600_000;

/**
 * The wait before the next attempt, or null when the schedule is exhausted (the delivery is dead).
 *
 * - `attempt`: attempts made so far, 1-based (1 after the first attempt failed). The next attempt is
 *   number `attempt + 1`, whose delay is `schedule[attempt]`.
 * - Jitter: the scheduled delay is multiplied by a uniform factor in [1 − jitter, 1 + jitter)
 *   (default ±20%), so retries after an outage do not arrive all at once. A 0 delay stays 0.
 * - `retryAfterMs` (the subscriber's `Retry-After`) is honoured within bounds: the result is
 *   `max(jittered, min(retryAfterMs, maxRetryAfterMs))`. It can postpone an attempt, never bring it
 *   earlier than scheduled, and never beyond `maxRetryAfterMs` (default: the schedule's largest
 *   delay, so a subscriber cannot park deliveries longer than the operator's own longest wait).
 *   Retry-After never adds attempts: the schedule's length alone decides when the delivery is dead.
 *
 * Throws `RangeError` for an attempt that is not a positive integer or a jitter outside [0, 1).
 *
 * @example
 * ```ts
 * // DEFAULT_RETRY_SCHEDULE_MS of config/units.ts: [0, 5000, 300000, ...], 8 attempts
 * nextAttemptDelay({ schedule: DEFAULT_RETRY_SCHEDULE_MS, attempt: 1 });                 // 4000..6000
 * nextAttemptDelay({ schedule: DEFAULT_RETRY_SCHEDULE_MS, attempt: 2, retryAfterMs: 3_600_000 }); // 3600000
 * nextAttemptDelay({ schedule: DEFAULT_RETRY_SCHEDULE_MS, attempt: 8 });                 // null: dead
 * ```
 */
export function nextAttemptDelay(input: {
  schedule: readonly number[];
  attempt: number;
  retryAfterMs?: number | undefined;
  random?: () => number;
  jitter?: number;
  maxRetryAfterMs?: number;
}): number | null {
  const { schedule, attempt } = input;
  const jitter = input.jitter ?? 0.2;
  if (!Number.isSafeInteger(attempt) || attempt < 1) {
    throw new RangeError(`attempt must be a positive integer (attempts made so far), got ${attempt}`);
  }
  if (!(jitter >= 0 && jitter < 1)) throw new RangeError(`jitter must be in [0, 1), got ${jitter}`);
  if (attempt >= schedule.length) return null;
  const delay = jittered(schedule[attempt]!, jitter, input.random);
  const retryAfter = input.retryAfterMs;
  if (retryAfter === undefined || !Number.isFinite(retryAfter) || retryAfter <= 0) return delay;
  const cap = input.maxRetryAfterMs ?? Math.max(...schedule);
  return Math.max(delay, Math.round(Math.min(retryAfter, cap)));
}

/**
 * `delayMs` times a uniform factor in [1 − jitter, 1 + jitter), rounded, never negative; 0 stays 0.
 * The one jitter rule of every retry in the hub (deliveries, normalization, commands), so retries
 * after an outage spread out the same way everywhere.
 *
 * @example
 * ```ts
 * jittered(5_000, 0.2); // 4000..6000
 * jittered(0, 0.2);     // 0
 * ```
 */
export function jittered(delayMs: number, jitter: number, random: () => number = Math.random): number {
  if (delayMs <= 0) return 0;
  const draw = Math.min(Math.max(random(), 0), 1);
  return Math.max(0, Math.round(delayMs * (1 + jitter * (2 * draw - 1))));
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/**
 * Reads a duration from a config file: a number is milliseconds; a string is one or more
 * `<number><unit>` parts with units `ms`, `s`, `m`, `h`, `d` (`'5s'`, `'1.5h'`, `'1h30m'`). A bare
 * numeric string is refused because its unit would be a guess. Returns whole milliseconds. Throws
 * `SY_DELIVERY_DURATION_INVALID`.
 *
 * @example
 * ```ts
 * parseDuration('5m');    // 300000
 * parseDuration('1h30m'); // 5400000
 * parseDuration(250);     // 250
 * parseDuration('5');     // throws: give a unit
 * ```
 */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw new DeliveryError(
        'SY_DELIVERY_DURATION_INVALID',
        `a duration must be a non-negative number of ms, got ${value}`,
      );
    }
    return Math.round(value);
  }
  if (typeof value !== 'string') {
    throw new DeliveryError(
      'SY_DELIVERY_DURATION_INVALID',
      `a duration must be a string like "5s" or a number of ms`,
    );
  }
  const text = value.trim().toLowerCase().replaceAll(' ', '');
  if (!DURATION.test(text)) {
    const hint = /^\d+(\.\d+)?$/.test(text)
      ? ' (give a unit: ms, s, m, h or d)'
      : ' (expected e.g. "500ms", "5s", "5m", "2h", "1h30m")';
    throw new DeliveryError(
      'SY_DELIVERY_DURATION_INVALID',
      `invalid duration ${JSON.stringify(value.slice(0, 40))}${hint}`,
    );
  }
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART)) total += Number(amount) * UNIT_MS[unit!]!;
  return Math.round(total);
}

/**
 * Checks a retry schedule from config and returns it in milliseconds. Entries may be numbers (ms)
 * or duration strings (see {@link parseDuration}). Requires 1..100 entries, each 0..7 days. Throws
 * `SY_DELIVERY_SCHEDULE_INVALID` naming the offending index (`details.index`).
 *
 * @example
 * ```ts
 * validateSchedule(['0s', '5s', '5m', '30m']); // [0, 5000, 300000, 1800000]: 4 attempts
 * validateSchedule([]);                         // throws SY_DELIVERY_SCHEDULE_INVALID
 * ```
 */
export function validateSchedule(schedule: unknown): number[] {
  if (!Array.isArray(schedule)) {
    throw new DeliveryError('SY_DELIVERY_SCHEDULE_INVALID', 'a retry schedule must be a list of delays');
  }
  if (schedule.length === 0) {
    throw new DeliveryError(
      'SY_DELIVERY_SCHEDULE_INVALID',
      'a retry schedule needs at least one entry (the first attempt)',
    );
  }
  if (schedule.length > MAX_SCHEDULE_ATTEMPTS) {
    throw new DeliveryError(
      'SY_DELIVERY_SCHEDULE_INVALID',
      `a retry schedule allows at most ${MAX_SCHEDULE_ATTEMPTS} attempts, got ${schedule.length}`,
    );
  }
  return schedule.map((entry: unknown, index) => {
    let ms: number;
    try {
      ms = parseDuration(entry as string | number);
    } catch (error) {
      throw new DeliveryError(
        'SY_DELIVERY_SCHEDULE_INVALID',
        `retry schedule entry ${index}: ${(error as Error).message}`,
        { details: { index }, cause: error },
      );
    }
    if (ms > MAX_SCHEDULE_DELAY_MS) {
      throw new DeliveryError(
        'SY_DELIVERY_SCHEDULE_INVALID',
        // As the file wrote it: the milliseconds were a number the operator never wrote (an audit).
        `retry schedule entry ${index}: ${typeof entry === 'string' ? entry : `${ms}ms`} is longer than the 7 day maximum (7d)`,
        { details: { index } },
      );
    }
    return ms;
  });
}
