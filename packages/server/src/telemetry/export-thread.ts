/**
 * The OTLP exporter in a worker thread. The batch processor of `sdk.ts` hands each batch of ended
 * spans to {@link ThreadExporter}, which copies the fields the OTLP encoders read into plain arrays
 * and posts them to `export-worker.ts`; there the official OTLP/HTTP exporter rebuilds nothing but
 * what it serializes, encodes (protobuf or JSON) and sends them, and answers with the export's
 * result. The hub's event loop — which also parses every push, normalizes and delivers — keeps only
 * the copy (a few fields per span, cloned by V8's serializer); the encoding (more CPU per span
 * than making the span: docs/observability.md, "What tracing costs") and the HTTP client run on
 * the other thread. Results come back as the export's callback, so the batch processor's queue
 * bound, timeout and the dropped/exported counters work exactly as with an exporter in this thread.
 */
import { Worker } from 'node:worker_threads';
import type { Attributes, HrTime, Link, SpanKind, SpanStatus } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter, TimedEvent } from '@opentelemetry/sdk-trace';

/** The exporter's settings, as the worker receives them (`workerData`). */
export interface ExportWorkerSettings {
  protocol: 'http/protobuf' | 'http/json';
  url?: string;
  headers?: Record<string, string>;
  timeoutMillis?: number;
}

/**
 * One span as it crosses to the worker: what the OTLP encoders read, trace state as its header
 * string, the resource and instrumentation scope by number (each is sent once).
 */
export type SpanRecord = [
  name: string,
  kind: SpanKind,
  traceId: string,
  spanId: string,
  traceFlags: number,
  traceState: string | undefined,
  parent: { traceId: string; spanId: string; traceFlags: number; isRemote?: boolean } | undefined,
  startTime: HrTime,
  endTime: HrTime,
  attributes: Attributes,
  status: SpanStatus,
  droppedAttributesCount: number,
  events: TimedEvent[],
  droppedEventsCount: number,
  links: (Omit<Link, 'context'> & { context: LinkContext })[],
  droppedLinksCount: number,
  resource: number,
  scope: number,
];

type LinkContext = {
  traceId: string;
  spanId: string;
  traceFlags: number;
  traceState?: string;
  isRemote?: boolean;
};

/** Main thread → worker. */
export type ToWorker =
  | {
      type: 'export';
      id: number;
      spans: SpanRecord[];
      /** Resources and scopes not sent before, by their number. */
      resources: [number, Attributes][];
      scopes: [number, { name: string; version?: string; schemaUrl?: string }][];
    }
  | { type: 'flush' | 'shutdown'; id: number };

/** Worker → main thread: the answer to the message with the same id. */
export interface FromWorker {
  id: number;
  /** Export results only: `ExportResultCode`, and the error's message on failure. */
  code?: number;
  error?: string;
}

/**
 * A `SpanExporter` whose work runs in a worker thread (`export-worker.ts`). While an export, flush
 * or shutdown is pending the worker keeps the process alive (a final flush completes); otherwise it
 * does not. A worker that fails or exits fails what is pending and every later export.
 */
export class ThreadExporter implements SpanExporter {
  private readonly worker: Worker;
  private readonly pending = new Map<number, (answer: FromWorker) => void>();
  private nextId = 0;
  private dead: Error | undefined;
  private readonly resources = new Map<ReadableSpan['resource'], number>();
  private readonly scopes = new Map<ReadableSpan['instrumentationScope'], number>();

  constructor(settings: ExportWorkerSettings) {
    this.worker = new Worker(new URL('./export-worker.ts', import.meta.url), {
      workerData: settings,
      // Not the hub's 2 MB young generation: a batch waiting for its HTTP answer dies young here.
      resourceLimits: { maxYoungGenerationSizeMb: 16 },
    });
    this.worker.unref();
    this.worker.on('message', (answer: FromWorker) => this.settle(answer));
    const fail = (error: Error) => {
      this.dead ??= error;
      for (const id of [...this.pending.keys()])
        this.settle({ id, code: ExportResultCode.FAILED, error: error.message });
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the OTLP export thread exited (code ${code})`)));
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.dead) {
      resultCallback({ code: ExportResultCode.FAILED, error: this.dead });
      return;
    }
    const resources: [number, Attributes][] = [];
    const scopes: [number, { name: string; version?: string; schemaUrl?: string }][] = [];
    const records = spans.map((span): SpanRecord => {
      let resource = this.resources.get(span.resource);
      if (resource === undefined) {
        resource = this.resources.size;
        this.resources.set(span.resource, resource);
        resources.push([resource, span.resource.attributes]);
      }
      let scope = this.scopes.get(span.instrumentationScope);
      if (scope === undefined) {
        scope = this.scopes.size;
        this.scopes.set(span.instrumentationScope, scope);
        const { name, version, schemaUrl } = span.instrumentationScope;
        scopes.push([
          scope,
          {
            name,
            ...(version !== undefined ? { version } : {}),
            ...(schemaUrl !== undefined ? { schemaUrl } : {}),
          },
        ]);
      }
      const ctx = span.spanContext();
      const parent = span.parentSpanContext;
      return [
        span.name,
        span.kind,
        ctx.traceId,
        ctx.spanId,
        ctx.traceFlags,
        ctx.traceState?.serialize(),
        parent
          ? {
              traceId: parent.traceId,
              spanId: parent.spanId,
              traceFlags: parent.traceFlags,
              ...(parent.isRemote !== undefined ? { isRemote: parent.isRemote } : {}),
            }
          : undefined,
        span.startTime,
        span.endTime,
        span.attributes,
        span.status,
        span.droppedAttributesCount,
        span.events,
        span.droppedEventsCount,
        span.links.map((l) => ({
          ...l,
          context: {
            traceId: l.context.traceId,
            spanId: l.context.spanId,
            traceFlags: l.context.traceFlags,
            ...(l.context.traceState ? { traceState: l.context.traceState.serialize() } : {}),
            ...(l.context.isRemote !== undefined ? { isRemote: l.context.isRemote } : {}),
          },
        })),
        span.droppedLinksCount,
        resource,
        scope,
      ];
    });
    this.call({ type: 'export', id: 0, spans: records, resources, scopes }, (answer) =>
      resultCallback(
        answer.code === ExportResultCode.SUCCESS
          ? { code: ExportResultCode.SUCCESS }
          : { code: ExportResultCode.FAILED, error: new Error(answer.error ?? 'export failed') },
      ),
    );
  }

  forceFlush(): Promise<void> {
    return new Promise((resolve) =>
      this.dead ? resolve() : this.call({ type: 'flush', id: 0 }, () => resolve()),
    );
  }

  async shutdown(): Promise<void> {
    if (!this.dead)
      await new Promise<void>((resolve) => this.call({ type: 'shutdown', id: 0 }, () => resolve()));
    this.dead ??= new Error('the OTLP exporter was shut down');
    await this.worker.terminate();
  }

  private call(message: ToWorker, onAnswer: (answer: FromWorker) => void): void {
    const id = this.nextId++;
    this.pending.set(id, onAnswer);
    if (this.pending.size === 1) this.worker.ref();
    this.worker.postMessage({ ...message, id });
  }

  private settle(answer: FromWorker): void {
    const onAnswer = this.pending.get(answer.id);
    if (!onAnswer) return;
    this.pending.delete(answer.id);
    if (this.pending.size === 0) this.worker.unref();
    onAnswer(answer);
  }
}
