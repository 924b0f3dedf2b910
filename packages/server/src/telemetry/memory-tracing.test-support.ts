/**
 * Tracing on for a test, its finished spans kept in memory (the SDK's own pipeline, the exporter
 * replaced): `flush()` hands every ended span over, `shutdown()` turns tracing off again.
 */
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { Registry } from 'prom-client';
import { startTracing } from './sdk.ts';
import type { TracingSettings } from './settings.ts';

/** Every span sampled, and exported only when flushed. */
export const MEMORY_TRACING_SETTINGS: TracingSettings = {
  sampler: { ratio: 1, parentBased: true, from: 'default' },
  queueSize: 2048,
  batchDelayMs: 60_000,
  exportTimeoutMs: 1000,
  shutdownTimeoutMs: 1000,
  serviceName: 'switchyard-test',
  protocol: 'http/protobuf',
  propagators: ['tracecontext'],
};

/**
 * Starts tracing with an exporter that keeps what it gets in `finished`.
 *
 * @example
 * ```ts
 * const { finished, tracing } = await startMemoryTracing();
 * try { ...; await tracing.flush(); expect(finished.map((s) => s.name)).toContain('switchyard.normalize'); }
 * finally { await tracing.shutdown(); }
 * ```
 */
export async function startMemoryTracing(registry = new Registry()) {
  const finished: ReadableSpan[] = [];
  const exporter: SpanExporter = {
    export(spans, done) {
      finished.push(...spans);
      done({ code: 0 });
    },
    shutdown: async () => {},
  };
  const tracing = await startTracing(MEMORY_TRACING_SETTINGS, { registry, role: 'all', exporter });
  return { finished, tracing };
}
