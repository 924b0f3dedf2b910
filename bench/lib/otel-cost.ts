/**
 * Diagnostic (not a scenario): `node bench/lib/otel-cost.ts [events]` measures, in this one process
 * with `process.threadCpuUsage` (the main thread, which runs every stage in the hub), what tracing
 * costs per event of the hub's shape — the `telemetry/tracing.ts` calls of one Docplanner push with
 * one subscription (hook request, store, normalize, fan-out, delivery attempt and its POST: six
 * spans, the hub's attributes, parents crossing as stored `traceparent` strings) — with tracing
 * off, on with the export discarded, and on with the hub's export thread; then the CPU and
 * bytes per span of the two OTLP serializers (protobuf, JSON) over 512 such spans. A machine
 * shared with other work blurs a whole hub's CPU per event by far more than these microseconds;
 * this is how docs/observability.md ("What tracing costs") was measured.
 */
import { createRequire } from 'node:module';
import { type StartTracingOptions, startTracing } from '../../packages/server/src/telemetry/sdk.ts';
import type { TracingSettings } from '../../packages/server/src/telemetry/settings.ts';
import { Registry } from './deps.ts';
import { event, startReceiverThread } from './otel-event.ts';

const events = Number(process.argv[2] ?? 20_000);

// The SDK's types, through the hub's own (bench/ has no dependency on the SDK packages).
type SpanExporter = NonNullable<StartTracingOptions['exporter']>;
type ReadableSpan = Parameters<SpanExporter['export']>[0][number];

const settings: TracingSettings = {
  sampler: { ratio: 1, parentBased: true, from: 'default' },
  queueSize: 2048,
  batchDelayMs: 1000,
  shutdownTimeoutMs: 5000,
  serviceName: 'switchyard',
  protocol: 'http/protobuf',
  propagators: ['tracecontext'],
};

/** CPU µs per event over `events` events, after a warm-up. */
async function cpuPerEvent(): Promise<number> {
  for (let i = 0; i < 2000; i++) await event(i);
  const start = process.threadCpuUsage();
  for (let i = 0; i < events; i++) await event(i);
  const used = process.threadCpuUsage(start);
  return (used.user + used.system) / events;
}

const kept: ReadableSpan[] = [];
const discard: SpanExporter = {
  export(spans, done) {
    if (kept.length < 512) kept.push(...spans.slice(0, 512 - kept.length));
    done({ code: 0 });
  },
  shutdown: async () => {},
};
// The hub's own export path sends to a receiver running in another thread of this process (its
// CPU is not the main thread's).
const sink = await startReceiverThread();
const url = sink.url;

/**
 * Main-thread CPU per event: tracing off; on with the export discarded in this thread (the SDK and
 * `tracing.ts` alone); on as the hub runs it (each span encoded as it ends and posted to the export
 * thread). Three rounds in rotating order, so that neither warm-up nor drift favours one.
 */
const arms = {
  off: async () => cpuPerEvent(),
  discarded: async () => {
    const tracing = await startTracing(settings, {
      registry: new Registry(),
      role: 'all',
      exporter: discard,
    });
    const cpu = await cpuPerEvent();
    await tracing.shutdown();
    return cpu;
  },
  thread: async () => {
    const tracing = await startTracing({ ...settings, url }, { registry: new Registry(), role: 'all' });
    const cpu = await cpuPerEvent();
    await tracing.shutdown();
    return cpu;
  },
};
const order = ['off', 'discarded', 'thread'] as const;
for (let round = 0; round < 3; round++) {
  const cpu: Partial<Record<keyof typeof arms, number>> = {};
  for (let k = 0; k < order.length; k++) {
    const arm = order[(k + round) % order.length]!;
    cpu[arm] = await arms[arm]();
  }
  console.log(
    `round ${round + 1}: main-thread CPU per event, tracing off ${cpu.off!.toFixed(2)} µs (the calls and this harness); on, export discarded ${cpu.discarded!.toFixed(1)} µs (+${(cpu.discarded! - cpu.off!).toFixed(1)}); on, export thread as in the hub ${cpu.thread!.toFixed(1)} µs (+${(cpu.thread! - cpu.off!).toFixed(1)})`,
  );
}
await sink.stop();

// The serializers the two exporters use, from the package they load them from.
const serverRequire = createRequire(new URL('../../packages/server/package.json', import.meta.url));
const transformer = createRequire(serverRequire.resolve('@opentelemetry/exporter-trace-otlp-proto'))(
  '@opentelemetry/otlp-transformer',
) as Record<
  'ProtobufTraceSerializer' | 'JsonTraceSerializer',
  { serializeRequest(s: ReadableSpan[]): Uint8Array }
>;
// Three rounds, alternated: the first includes the serializers' warm-up.
for (const name of Array.from(
  { length: 3 },
  () => ['ProtobufTraceSerializer', 'JsonTraceSerializer'] as const,
).flat()) {
  const serializer = transformer[name];
  let bytes = 0;
  const start = process.cpuUsage();
  for (let k = 0; k < 200; k++) bytes = serializer.serializeRequest(kept).length;
  const used = process.cpuUsage(start);
  console.log(
    `${name}: ${((used.user + used.system) / 200 / kept.length).toFixed(2)} µs CPU and ${(bytes / kept.length).toFixed(0)} bytes per span (${kept.length} spans)`,
  );
}
