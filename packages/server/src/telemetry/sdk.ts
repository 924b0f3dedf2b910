/**
 * Turns tracing on for this process with the official OpenTelemetry JS SDK: a tracer provider
 * (parent-based ratio sampler), the W3C trace-context propagator, an AsyncLocalStorage context
 * manager, and the OTLP/HTTP exporter (protobuf, or JSON when `OTEL_EXPORTER_OTLP_PROTOCOL` asks)
 * behind a bounded batch processor, the exporter running in a worker thread (`export-thread.ts`). Loaded with a dynamic
 * `import()` by `telemetry/index.ts` only when tracing is configured, so a hub with tracing off never
 * loads the SDK.
 *
 * A collector that is down, slow or answering 500 never holds up the hub: spans are handed to an
 * in-memory queue of `queueSize` spans (ending a span is a push onto it), exports run in the
 * background with a timeout, and what cannot be queued or exported is dropped and counted in
 * `switchyard_trace_spans_dropped_total`.
 */
import { type Context, context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  CompositePropagator,
  ExportResultCode,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  type Span,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { Counter, type Registry } from 'prom-client';
import { type ExportOutcome, ThreadExporter } from './export-thread.ts';
import type { TracingSettings } from './settings.ts';
import { setTracingEnabled } from './tracing.ts';

/** Tracing running in this process. */
export interface TracingHandle {
  /** Exports what is queued; resolves when done or after the export timeout. */
  flush(): Promise<void>;
  /** Flushes (bounded by the export timeout) and turns tracing off again. Idempotent. */
  shutdown(): Promise<void>;
}

/** What {@link startTracing} needs besides the settings. */
export interface StartTracingOptions {
  /** The process's Prometheus registry (its `/metrics`): the span counters are added to it. */
  registry: Registry;
  /** The hub process's role, a resource attribute (`switchyard.role`). */
  role: string;
  /** The hub's version, `service.version`. */
  version?: string;
  /** Replaces the OTLP exporter (tests of the queue bound only). */
  exporter?: SpanExporter;
  /** Where a collector that does not take the spans is said (at most once a minute). */
  logger?: { warn(obj: object, msg: string): void };
}

/**
 * How often a collector that keeps failing is said again in the log. Every lost span is counted in
 * `switchyard_trace_spans_dropped_total` anyway; the log line is what tells an operator why (a
 * wrong API key's 401, a wrong path's 404, a refused connection), once, not per export.
 */
export const EXPORT_FAILURE_WARN_EVERY_MS = 60_000;

/**
 * Counts what the batch processor loses. It sits in front of the SDK's BatchSpanProcessor and
 * enforces the queue bound itself, over every span handed on whose export has not ended (waiting in
 * the batch processor, in the export thread, or in a request), because the SDK reports its own drops
 * only through an experimental OpenTelemetry-metrics hook, and its queue ends where the export
 * thread's begins.
 */
class CountingProcessor implements SpanProcessor {
  private queued = 0;
  private readonly inner: BatchSpanProcessor;
  private readonly queueSize: number;
  private readonly dropped: Counter<'reason'>;
  private readonly thread: ThreadExporter | undefined;

  /** With `thread`, each ended span is queued encoded (`ThreadExporter.encode`), and a flush waits for it. */
  constructor(
    inner: BatchSpanProcessor,
    queueSize: number,
    dropped: Counter<'reason'>,
    thread?: ThreadExporter,
  ) {
    this.inner = inner;
    this.queueSize = queueSize;
    this.dropped = dropped;
    this.thread = thread;
  }

  /** Called as exports end, for the spans they carried. */
  settled(count: number): void {
    this.queued = Math.max(0, this.queued - count);
  }

  onStart(span: Span, parentContext: Context): void {
    this.inner.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    // Unsampled spans never reach the queue (the batch processor skips them too).
    if ((span.spanContext().traceFlags & 1) === 0) return;
    if (this.queued >= this.queueSize) {
      this.dropped.inc({ reason: 'queue_full' });
      return;
    }
    this.queued++;
    this.inner.onEnd(this.thread ? this.thread.encode(span) : span);
  }

  async forceFlush(): Promise<void> {
    await this.inner.forceFlush();
    // The batch processor is done once it has handed its batches over; the thread sends them.
    await this.thread?.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/** An exporter in this thread (tests), its callbacks reported as the export thread reports outcomes. */
function reportingExporter(exporter: SpanExporter, report: (outcome: ExportOutcome) => void): SpanExporter {
  return {
    export(spans, resultCallback) {
      exporter.export(spans, (result) => {
        report(
          result.code === ExportResultCode.SUCCESS
            ? { exported: spans.length, failed: 0 }
            : { exported: 0, failed: spans.length, error: result.error?.message ?? 'export failed' },
        );
        resultCallback(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    ...(exporter.forceFlush ? { forceFlush: () => exporter.forceFlush!() } : {}),
  };
}

function samplerOf(settings: TracingSettings): Sampler {
  const root = new TraceIdRatioBasedSampler(settings.sampler.ratio);
  return settings.sampler.parentBased ? new ParentBasedSampler({ root }) : root;
}

/** The counters on a registry, made once per registry (a process restarted in tests reuses it). */
const countersOf = new WeakMap<Registry, { exported: Counter; dropped: Counter<'reason'> }>();

function counters(registry: Registry): { exported: Counter; dropped: Counter<'reason'> } {
  let c = countersOf.get(registry);
  if (!c) {
    c = {
      exported: new Counter({
        name: 'switchyard_trace_spans_exported_total',
        help: 'Spans the OTLP exporter delivered to the collector.',
        registers: [registry],
      }),
      dropped: new Counter({
        name: 'switchyard_trace_spans_dropped_total',
        help: 'Spans lost: queue_full (the export queue was full, e.g. the collector is slow or down), export_failed (the collector refused them or could not be reached within the export timeout).',
        labelNames: ['reason'],
        registers: [registry],
      }),
    };
    countersOf.set(registry, c);
  }
  return c;
}

/**
 * The most spans the batch processor hands to the export thread at once: a batch goes as soon as
 * this many wait, or after `batchDelay` (1 s unless configured); the thread gathers hand-offs into
 * requests of up to `EXPORT_BATCH_SPANS` (512, the SDK's own batch; export-thread.ts). 128 rather
 * than 512: the queue holds each ended span's JSON string until its batch goes, and at 200
 * events/s (~1,400 spans/s) 512 spans took ~0.4 s to gather, longer than two young-generation
 * collections of the hub's heap, so every span's string was promoted to the old generation (~4 KB
 * per event) and brought the full collection, which pauses every stage, sooner. 128 gather in
 * ~0.1 s, and most die young. `bench/lib/tail-latency.ts` at 200/s with tracing on: promoted in
 * 20 s 6–7 MiB instead of 18–21 (5 with tracing off), full collections 0–1 against 1, p99 7.9–8.0
 * ms against 8.6–9.2; `pnpm bench otel`'s p99 ratio 1.16× against 1.29–1.31× (bench/analysis.md,
 * "Born old").
 */
export const HANDOFF_BATCH_SPANS = 128;

let running: TracingHandle | undefined;

/**
 * Registers the SDK globally and turns the hub's spans on. One per process; a second call while
 * one runs is refused.
 *
 * @example
 * ```ts
 * const tracing = await startTracing(settings, { registry: metrics.registry, role: 'worker' });
 * // ... on stop:
 * await tracing.shutdown();
 * ```
 */
export async function startTracing(
  settings: TracingSettings,
  options: StartTracingOptions,
): Promise<TracingHandle> {
  if (running) throw new Error('tracing is already running in this process');
  const { exported, dropped } = counters(options.registry);
  let counting: CountingProcessor | undefined;
  let lastWarned = Number.NEGATIVE_INFINITY;
  let unreported = 0;
  const report = (outcome: ExportOutcome) => {
    counting?.settled(outcome.exported + outcome.failed);
    if (outcome.exported > 0) exported.inc(outcome.exported);
    if (outcome.failed > 0) {
      dropped.inc({ reason: 'export_failed' }, outcome.failed);
      unreported += outcome.failed;
      const now = Date.now();
      if (options.logger && now - lastWarned >= EXPORT_FAILURE_WARN_EVERY_MS) {
        lastWarned = now;
        options.logger.warn(
          { spans: unreported, reason: outcome.error ?? 'export failed' },
          'tracing: the collector did not take these spans, they are dropped (switchyard_trace_spans_dropped_total{reason="export_failed"}); further failures within a minute are only counted',
        );
        unreported = 0;
      }
    }
  };
  // A hand-off never larger than a request may be (OTEL_BSP_MAX_EXPORT_BATCH_SIZE below 128).
  const handoff = Math.min(HANDOFF_BATCH_SPANS, settings.queueSize, settings.exportBatchSpans ?? Infinity);
  // The OTLP exporter encodes and sends in a worker thread (export-thread.ts): the hub's event loop
  // only turns each ended span into a JSON string, which is what waits in the queue.
  const thread = options.exporter
    ? undefined
    : new ThreadExporter(
        {
          protocol: settings.protocol,
          ...(settings.url !== undefined ? { url: settings.url } : {}),
          ...(settings.headers !== undefined ? { headers: settings.headers } : {}),
          ...(settings.exportTimeoutMs !== undefined ? { timeoutMillis: settings.exportTimeoutMs } : {}),
          handoffSpans: handoff,
          lingerMillis: settings.batchDelayMs,
          ...(settings.exportBatchSpans !== undefined ? { requestSpans: settings.exportBatchSpans } : {}),
        },
        report,
      );
  const batch = new BatchSpanProcessor({
    exporter: thread ?? reportingExporter(options.exporter!, report),
    maxQueueSize: settings.queueSize,
    maxExportBatchSize: handoff,
    scheduledDelayMillis: settings.batchDelayMs,
    exportTimeoutMillis: settings.shutdownTimeoutMs,
  });
  counting = new CountingProcessor(batch, settings.queueSize, dropped, thread);
  const provider = new TracerProvider({
    sampler: samplerOf(settings),
    resource: resourceFromAttributes({
      ...(options.version ? { [ATTR_SERVICE_VERSION]: options.version } : {}),
      'service.instance.id': crypto.randomUUID(),
      // The deployment's own (OTEL_RESOURCE_ATTRIBUTES) over the hub's defaults, as an SDK's
      // environment detector merges them; the name and the hub's role are resolved already.
      ...settings.resourceAttributes,
      [ATTR_SERVICE_NAME]: settings.serviceName,
      'switchyard.role': options.role,
    }),
    spanProcessors: [counting],
  });
  const contextManager = new AsyncLocalStorageContextManager();
  contextManager.enable();
  context.setGlobalContextManager(contextManager);
  // OTEL_PROPAGATORS=none leaves the API's no-op propagator: an inbound traceparent is not read
  // (every request starts a trace) and nothing goes out on the hub's calls.
  const propagators = settings.propagators.map((name) =>
    name === 'baggage' ? new W3CBaggagePropagator() : new W3CTraceContextPropagator(),
  );
  if (propagators.length === 1) propagation.setGlobalPropagator(propagators[0]!);
  else if (propagators.length > 1) propagation.setGlobalPropagator(new CompositePropagator({ propagators }));
  trace.setGlobalTracerProvider(provider);
  setTracingEnabled(true);

  const bounded = (work: Promise<void>): Promise<void> =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, settings.shutdownTimeoutMs);
      timer.unref();
      work.then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        () => {
          clearTimeout(timer);
          resolve();
        },
      );
    });

  let stopping: Promise<void> | undefined;
  const handle: TracingHandle = {
    flush: () => bounded(provider.forceFlush()),
    shutdown() {
      stopping ??= (async () => {
        setTracingEnabled(false);
        await bounded(provider.shutdown());
        trace.disable();
        propagation.disable();
        context.disable();
        running = undefined;
      })();
      return stopping;
    },
  };
  running = handle;
  return handle;
}
