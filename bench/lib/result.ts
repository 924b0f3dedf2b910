/**
 * The shape every benchmark scenario returns, and the small statistics the scenarios share.
 * `bench/run.ts` aggregates these into the printed table and docs/benchmarks.md.
 */

/** A target a figure is judged against (the numbers for this 2-core machine). */
export interface Target {
  /** `min`: the value must be at least `value`; `max`: at most. */
  kind: 'min' | 'max';
  value: number;
  /** When set, the target applies to the ratio (value / baseline) instead of the value. */
  onRatio?: boolean;
  /** How the target reads in the doc, e.g. `≥ 70% of baseline`. */
  label: string;
}

/** One figure beside its same-run baseline. */
export interface BenchRow {
  metric: string;
  value: number;
  /** The same-run baseline figure (null when a figure has no meaningful baseline). */
  baseline: number | null;
  /** value / baseline (null without a baseline). */
  ratio: number | null;
  /** Unit of value and baseline, e.g. `req/s`, `ms`, `MiB`, `s`. */
  unit?: string;
  /** What the baseline is, e.g. `bare fastify + 1 INSERT`. */
  baselineLabel?: string;
  /** True when a higher value is better (throughput); false for times and memory. */
  higherIsBetter?: boolean;
  target?: Target;
}

/** What a scenario returns. `notes` are printed under the table (method, counts, caveats). */
export interface BenchResult {
  name: string;
  rows: BenchRow[];
  notes?: string[];
}

/** Options every scenario's `run(options)` receives. */
export interface BenchOptions {
  /** Smaller counts: a smoke test of the harness, not figures to quote. */
  quick: boolean;
  /** Admin URL of the Postgres server (each scenario makes and drops its own database). */
  adminUrl: string;
  /** Progress messages go here (stderr), so stdout keeps just the table. */
  log(message: string): void;
}

/**
 * Builds a row, computing the ratio.
 *
 * @example
 * ```ts
 * row('ingest req/s', 3100, 4300, { unit: 'req/s', higherIsBetter: true }); // ratio 0.72
 * ```
 */
export function row(
  metric: string,
  value: number,
  baseline: number | null,
  extra: Omit<BenchRow, 'metric' | 'value' | 'baseline' | 'ratio'> = {},
): BenchRow {
  const ratio = baseline === null || baseline === 0 || !Number.isFinite(baseline) ? null : value / baseline;
  return { metric, value, baseline, ratio, ...extra };
}

/** Whether a row meets its target (undefined when it has none or cannot be judged). */
export function passes(r: BenchRow): boolean | undefined {
  if (!r.target) return undefined;
  const subject = r.target.onRatio ? r.ratio : r.value;
  if (subject === null || !Number.isFinite(subject)) return false;
  return r.target.kind === 'min' ? subject >= r.target.value : subject <= r.target.value;
}

/**
 * The q-quantile (0..1) of samples, nearest-rank. Sorts a copy.
 *
 * @example
 * ```ts
 * percentile([5, 1, 9, 3], 0.5); // 3
 * ```
 */
export function percentile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** Bytes (or KiB from `resourceUsage().maxRSS`) to MiB with one decimal. */
export function mib(bytes: number): number {
  return Math.round((bytes / 1024 / 1024) * 10) / 10;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every `everyMs` until true; throws after `timeoutMs` with `what` in the message. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs: number,
  everyMs = 5,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
