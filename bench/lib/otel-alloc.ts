/**
 * Diagnostic (not a scenario): `node --max-semi-space-size=128 --min-semi-space-size=128
 * bench/lib/otel-alloc.ts` measures the heap bytes one event of the hub's shape allocates
 * (bench/lib/otel-event.ts: six spans) with tracing off, on with the export discarded, and on with
 * the hub's export thread (each span encoded as it ends): the used heap before and after 1,000
 * events, in blocks that no garbage collection interrupts (the large young generation of the flags
 * above; a block a collection did interrupt prints NaN). Bytes, not time: unlike CPU on a shared
 * machine, this figure does not move with the load, so it settles a change of a few kilobytes per
 * event that a hub's CPU per event cannot. What tracing allocates is what the garbage collector's
 * scavenges then cost the hub (docs/observability.md, "Where the latency goes at 200/s").
 */
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { type StartTracingOptions, startTracing } from '../../packages/server/src/telemetry/sdk.ts';
import type { TracingSettings } from '../../packages/server/src/telemetry/settings.ts';
import { Registry } from './deps.ts';
import { event, startReceiverThread } from './otel-event.ts';

type SpanExporter = NonNullable<StartTracingOptions['exporter']>;

// No export during a block: a queue that holds every span and a delay longer than the run.
const settings: TracingSettings = {
  sampler: { ratio: 1, parentBased: true, from: 'default' },
  queueSize: 1_000_000,
  batchDelayMs: 1_000_000,
  shutdownTimeoutMs: 5000,
  serviceName: 'switchyard',
  protocol: 'http/protobuf',
  propagators: ['tracecontext'],
};

let collections = 0;
new PerformanceObserver((list) => {
  collections += list.getEntries().length;
}).observe({ entryTypes: ['gc'] });

/** Heap bytes per event over 1,000 events after a warm-up; NaN when a collection ran meanwhile. */
async function bytesPerEvent(): Promise<number> {
  const n = 1000;
  for (let i = 0; i < 300; i++) await event(i);
  await new Promise((r) => setTimeout(r, 10));
  const before = collections;
  const used = v8.getHeapStatistics().used_heap_size;
  for (let i = 0; i < n; i++) await event(i);
  const bytes = v8.getHeapStatistics().used_heap_size - used;
  // The observer hears of a collection in a later task.
  await new Promise((r) => setTimeout(r, 10));
  return collections === before ? bytes / n : Number.NaN;
}

const discard: SpanExporter = {
  export(_spans, done) {
    done({ code: 0 });
  },
  shutdown: async () => {},
};
const sink = await startReceiverThread();
const url = sink.url;
for (let round = 0; round < 3; round++) {
  const off = await bytesPerEvent();
  let tracing = await startTracing(settings, { registry: new Registry(), role: 'all', exporter: discard });
  const discarded = await bytesPerEvent();
  await tracing.shutdown();
  tracing = await startTracing({ ...settings, url }, { registry: new Registry(), role: 'all' });
  const thread = await bytesPerEvent();
  await tracing.shutdown();
  console.log(
    `round ${round + 1}: heap bytes allocated per event: tracing off ${off.toFixed(0)}; on, export discarded ${discarded.toFixed(0)}; on, export thread as in the hub ${thread.toFixed(0)}`,
  );
}
await sink.stop();
