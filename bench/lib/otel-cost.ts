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
import { Worker } from 'node:worker_threads';
import { type StartTracingOptions, startTracing } from '../../packages/server/src/telemetry/sdk.ts';
import type { TracingSettings } from '../../packages/server/src/telemetry/settings.ts';
import * as t from '../../packages/server/src/telemetry/tracing.ts';
import { Registry } from './deps.ts';

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
};

/** One event's tracing calls, as the hub makes them (see the call sites in pipeline/ and http/). */
async function event(i: number): Promise<void> {
  const hook = t.startSpan('POST /hooks/:instance', {
    kind: t.SpanKind.SERVER,
    parentHeaders: { host: '127.0.0.1' },
    attributes: {
      'http.request.method': 'POST',
      'url.path': '/hooks/dp',
      'http.route': '/hooks/:instance',
      'client.address': '127.0.0.1',
    },
  });
  const stored = await t.runInContext(hook?.context, async () => {
    t.logTraceFields();
    const traceparent = t.currentTraceparent() ?? null;
    t.setSpanAttributes({
      'switchyard.connector': 'docplanner',
      'switchyard.instance': 'dp',
      'switchyard.route': 'default',
      'switchyard.notifications': 1,
    });
    await t.withSpan(
      'switchyard.store',
      { attributes: { 'switchyard.instance': 'dp', 'switchyard.notifications': 1 } },
      async () => {},
    );
    t.setSpanAttributes({ 'switchyard.stored': 1, 'switchyard.dedupe_hit': false });
    return traceparent;
  });
  if (hook) {
    hook.span.setAttribute('http.response.status_code', 200);
    hook.span.setAttribute('switchyard.ingest.outcome', 'accepted');
    hook.span.end();
  }
  const normalized = await t.withSpan(
    'switchyard.normalize',
    {
      kind: t.SpanKind.CONSUMER,
      parent: stored,
      attributes: {
        'messaging.system': 'switchyard',
        'messaging.operation.type': 'process',
        'messaging.destination.name': 'normalize',
        'messaging.message.id': `01JINBOUND${i}`,
        'switchyard.instance': 'dp',
        'switchyard.vendor_type': 'slot-booked',
        'switchyard.attempt': 0,
        'switchyard.run_length': 1,
      },
    },
    async (span) => {
      t.setSpanAttributes({ 'switchyard.connector': 'docplanner', 'switchyard.events': 1 });
      return span ? t.traceparentOf(span) : null;
    },
  );
  const fanout = t.startSpan('switchyard.fanout', {
    parent: normalized,
    attributes: { 'switchyard.events': 1, 'switchyard.batch': 1 },
  });
  const eventTrace = fanout ? t.traceparentOf(fanout.span) : null;
  fanout?.span.end();
  await t.withSpan(
    'switchyard.deliver',
    {
      kind: t.SpanKind.CONSUMER,
      parent: eventTrace,
      attributes: {
        'messaging.system': 'switchyard',
        'messaging.operation.type': 'process',
        'messaging.destination.name': 'deliver',
        'messaging.message.id': `01JEVENT${i}`,
        'switchyard.delivery': `01JDELIVERY${i}`,
        'switchyard.subscription': 'crm',
        'switchyard.attempt': 1,
      },
    },
    async () => {
      const headers: Record<string, string> = {};
      await t.withClientSpan(
        'POST',
        new URL('http://127.0.0.1:4000/crm'),
        headers,
        async () => ({ status: 200 }),
        (r) => r,
      );
      t.setSpanAttributes({ 'switchyard.delivery.outcome': 'succeeded', 'http.response.status_code': 200 });
    },
  );
}

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
const sink = new Worker(
  `const { parentPort, workerData } = require('node:worker_threads');
   import(workerData).then(async (m) => parentPort.postMessage((await m.startOtlpReceiver({ discard: true })).url));`,
  {
    eval: true,
    workerData: new URL('../../packages/server/src/telemetry/otlp-receiver.test-support.ts', import.meta.url)
      .href,
  },
);
const url = await new Promise<string>((resolve) => sink.once('message', resolve));

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
await sink.terminate();

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
