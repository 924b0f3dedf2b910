/**
 * The one way a warning that a fault can repeat (per event, per attempt, per request) is bounded:
 * said at most once a minute per key (a subscription, an instance), the first occurrence always,
 * and when it is said again, how many were left unsaid meanwhile (`suppressed`). Those left unsaid
 * are logged at debug. Process memory: each process says it on its own. Two warnings keep rules of
 * their own: the database's condition (storage/unavailable.ts: said again at once when the
 * condition changes, so a new one is never hidden behind another's) and the trace collector's
 * failures (telemetry/sdk.ts: the export thread's outcomes, counted in a metric).
 */

/** At most one warning per key in this many ms. */
export const REPEAT_WARN_EVERY_MS = 60_000;

/** Keys held at most; past it, keys quiet for a minute are forgotten (their count with them). */
const MAX_KEYS = 10_000;

/** Bounds a repeated warning per key; see the module comment. */
export class RepeatedWarning {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  private readonly everyMs: number;
  private readonly now: () => number;

  constructor(everyMs = REPEAT_WARN_EVERY_MS, now: () => number = () => performance.now()) {
    this.everyMs = everyMs;
    this.now = now;
  }

  /**
   * Whether this occurrence of the warning for `key` is to be said: the number of occurrences left
   * unsaid since the last one said (0 the first time), or undefined when it is to be left unsaid
   * (at debug).
   *
   * @example
   * ```ts
   * warnRepeated(logger, this.notAnswering.take(subscription), fields, msg); // {@link warnRepeated}
   * ```
   */
  take(key: string): number | undefined {
    const now = this.now();
    const seen = this.last.get(key);
    if (seen !== undefined && now - seen.at < this.everyMs) {
      seen.suppressed++;
      return undefined;
    }
    if (seen === undefined && this.last.size >= MAX_KEYS) {
      for (const [k, v] of this.last) if (now - v.at >= this.everyMs) this.last.delete(k);
    }
    this.last.set(key, { at: now, suppressed: 0 });
    return seen?.suppressed ?? 0;
  }
}

/** What a warning said again adds to its message: how many were left unsaid, and the bound. */
export function suppressedNote(suppressed: number): string {
  return suppressed > 0
    ? ` (${suppressed} more since the last warning, at debug; at most one a minute)`
    : ' (said at most once a minute)';
}

/**
 * Logs one occurrence of a repeated warning as {@link RepeatedWarning.take} decided: a warning (with
 * `suppressed` and the note) when `suppressed` is a number, a debug line when it is undefined.
 *
 * @example
 * ```ts
 * warnRepeated(logger, this.retryWarning.take(instanceId), { attempt }, 'normalization will be retried');
 * ```
 */
export function warnRepeated(
  logger: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void },
  suppressed: number | undefined,
  fields: object,
  msg: string,
): void {
  if (suppressed === undefined) logger.debug(fields, msg);
  else logger.warn({ ...fields, suppressed }, `${msg}${suppressedNote(suppressed)}`);
}
