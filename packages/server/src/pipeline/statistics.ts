import { analyzeTable, tablesNeedingAnalyze } from '../storage/statistics.ts';
import type { Runtime } from './shared.ts';
import type { TickResult } from './worker-loop.ts';

/** How often a worker process checks whether the busy tables need fresh statistics. */
export const STATISTICS_INTERVAL_MS = 5000;

/**
 * One pass of the statistics keeper: ANALYZE each busy table whose size doubled or halved since
 * the planner last counted it (`tablesNeedingAnalyze`). Why: the hub's queue tables start empty and fill in bursts, and every statement is
 * planned with their statistics; planned as if tiny, lookups of a few rows became scans of whole
 * tables (every alias of an instance per booking, every delivery per claim) until autovacuum's
 * next ANALYZE, a minute or more later. Several processes may analyze the same table; that is
 * harmless.
 *
 * @example
 * ```ts
 * const loop = new WorkerLoop('statistics', () => keepStatistics(rt), STATISTICS_INTERVAL_MS, logger);
 * ```
 */
export async function keepStatistics(rt: Runtime): Promise<TickResult> {
  for (const table of await tablesNeedingAnalyze(rt.db)) {
    await analyzeTable(rt.db, table);
  }
  return { busy: false, nextDueAt: new Date(Date.now() + STATISTICS_INTERVAL_MS) };
}
