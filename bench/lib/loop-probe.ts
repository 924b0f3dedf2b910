/**
 * Preloaded into a hub by bench/lib/otel-latency.ts (`node --import=…/loop-probe.ts`, through
 * `NODE_OPTIONS`): once a second it appends to `$LOOP_PROBE_DIR/<pid>.jsonl` the main thread's
 * event-loop delay over that second (`monitorEventLoopDelay`, 5 ms resolution: a reading includes
 * the 5 ms) and the garbage collections it saw (count and pause time, scavenges apart from
 * mark-compacts), then starts the next second afresh. Nothing else in the hub changes; worker
 * threads (the OTLP export thread) are not probed.
 *
 * @example
 * ```ts
 * spawn(process.execPath, [bin], { env: { ...process.env, LOOP_PROBE_DIR: dir, NODE_OPTIONS: `--import=${probe}` } });
 * ```
 */
import { appendFileSync } from 'node:fs';
import {
  constants,
  monitorEventLoopDelay,
  type PerformanceEntry,
  PerformanceObserver,
} from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

/** One second of a probed process. */
export interface LoopSecond {
  /** Date.now() at the end of the second. */
  t: number;
  /** Event-loop delay over the second, ms: mean, p50, p99, max. */
  mean: number;
  p50: number;
  p99: number;
  max: number;
  /** Scavenges (young generation) and mark-compacts (old) in the second, and their pause ms. */
  minor: number;
  minorMs: number;
  major: number;
  majorMs: number;
}

const dir = process.env.LOOP_PROBE_DIR;
if (isMainThread && dir) {
  const file = `${dir}/${process.pid}.jsonl`;
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  let gc = { minor: 0, minorMs: 0, major: 0, majorMs: 0 };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        gc.minor++;
        gc.minorMs += entry.duration;
      } else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.major++;
        gc.majorMs += entry.duration;
      }
    }
  }).observe({ entryTypes: ['gc'] });
  setInterval(() => {
    const second: LoopSecond = {
      t: Date.now(),
      mean: delay.mean / 1e6,
      p50: delay.percentile(50) / 1e6,
      p99: delay.percentile(99) / 1e6,
      max: delay.max / 1e6,
      ...gc,
    };
    appendFileSync(file, `${JSON.stringify(second)}\n`);
    delay.reset();
    gc = { minor: 0, minorMs: 0, major: 0, majorMs: 0 };
  }, 1000).unref();
}
