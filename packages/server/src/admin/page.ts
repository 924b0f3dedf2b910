/**
 * What every admin list shares: the page it answers and the bounds on its input (the events,
 * deliveries, inbound, gates and commands lists).
 */
import { invalid } from './errors.ts';

/** A page of results; pass `nextCursor` back as `cursor` for the next page (null: no more). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * A list's `limit`: `def` when absent, at most `max`, SY_PIPELINE_INVALID_INPUT unless a positive integer.
 *
 * @example
 * ```ts
 * const limit = clampLimit(f.limit); // 50 when absent, at most 500
 * ```
 */
export function clampLimit(limit: number | undefined, max = 500, def = 50): number {
  if (limit === undefined) return def;
  if (!Number.isInteger(limit) || limit < 1) throw invalid('limit must be a positive integer');
  return Math.min(limit, max);
}

/** A uuid (an id that is not one is not found, without asking the database). */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
