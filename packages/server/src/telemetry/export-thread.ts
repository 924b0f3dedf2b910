/**
 * The OTLP exporter in a worker thread. Each span is encoded as it ends ({@link ThreadExporter.encode},
 * called by the span processor of `sdk.ts`): the fields the OTLP encoders read become one JSON
 * string, and that string is what waits in the batch processor's queue and what crosses to
 * `export-worker.ts`, where the official OTLP/HTTP exporter gets the spans back in the shape it
 * reads, encodes them (protobuf or JSON) and sends them, and reports how each export ended.
 *
 * Why encode at the end and not at export: the batch processor holds ended spans until the next
 * export (up to a second), long enough for V8 to promote each span's object graph (the span, its
 * attribute object, time arrays, status, links, events: some fifteen objects) out of the hub's
 * small young generation into the old one, whose collection then visits every one of them. A
 * string is one object without pointers, cheap for the collector to visit (one that waits long is
 * still promoted, which is why sdk.ts hands spans over in small batches, `HANDOFF_BATCH_SPANS`);
 * and posting a batch's strings to the worker copies their bytes, where V8's serializer would walk
 * a batch's object graphs on the hub's event loop. They go as an array, each span's string as it
 * is, not joined into one: V8 must flatten a joined string on the hub's heap before it can copy it,
 * about 3 KB more allocated per traced push (bench/lib/otel-alloc.ts; docs/observability.md, "One
 * string per span in the hand-off"). The hub's event loop — which also parses every push,
 * normalizes and delivers — keeps only the `JSON.stringify` of each span; the OTLP encoding
 * (more CPU per span than making the span: docs/observability.md, "What tracing costs") and the
 * HTTP client run on the other thread.
 *
 * Why the worker gathers hand-offs into larger exports ({@link EXPORT_BATCH_SPANS}): the hand-offs
 * are small so that the strings leave the hub's heap young, but every export request has its cost,
 * in the export thread and in the collector (at 128 spans a request, four times the requests of the
 * SDK's 512). So {@link ThreadExporter.export} answers the batch processor as soon as the batch is
 * handed over, and the worker sends up to 512 spans a request, one request in flight; how each
 * request ended comes back as a {@link ExportOutcome}, which sdk.ts counts (exported, dropped) and
 * which frees the spans' places in its bounded queue: spans waiting in the worker still count
 * against `queueSize`, so a collector that is down fills that one bound and spans are dropped, as
 * before.
 */
import { Worker } from 'node:worker_threads';
import type { Attributes, HrTime, Link, SpanKind, SpanStatus } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter, TimedEvent } from '@opentelemetry/sdk-trace';

/**
 * The nice value of the export thread (Linux): 10, well below the hub's threads (0), whose event
 * loop runs every stage; the export waits, the pipeline does not.
 */
export const EXPORT_THREAD_NICE = 10;

/**
 * The most spans one export request carries: the SDK's own default batch (512). The worker sends
 * as soon as this many wait, when a hand-off comes that is not full (the batch processor's queue
 * ran empty: nothing more is coming soon), when spans have waited `lingerMillis`, or on a flush.
 */
export const EXPORT_BATCH_SPANS = 512;

/** The exporter's settings, as the worker receives them (`workerData`). */
export interface ExportWorkerSettings {
  protocol: 'http/protobuf' | 'http/json';
  url?: string;
  headers?: Record<string, string>;
  timeoutMillis?: number;
  /**
   * A hand-off of this many spans (the batch processor's batch) is full: more may follow at once,
   * so the worker waits for them (up to {@link EXPORT_BATCH_SPANS}) before it sends.
   */
  handoffSpans: number;
  /** How long spans wait in the worker for company at most (the batch processor's delay). */
  lingerMillis: number;
  /**
   * The most spans one request carries, when the deployment says (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`);
   * {@link EXPORT_BATCH_SPANS} otherwise.
   */
  requestSpans?: number;
}

/** How one export request of the worker ended, for the spans it carried. */
export interface ExportOutcome {
  /** Spans the collector accepted. */
  exported: number;
  /** Spans lost: the collector refused them, or could not be reached within the timeout. */
  failed: number;
  /** Why, when some failed. */
  error?: string;
}

/**
 * One span as it crosses to the worker (as JSON): what the OTLP encoders read, trace state as its
 * header string, the resource and instrumentation scope by number (each is sent once). JSON carries
 * the attribute values the hub sets (strings, finite numbers, booleans, arrays of them) exactly;
 * a byte-array value or a non-finite number would not survive it, and the hub sets none.
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
      /** A batch handed over: the worker sends it, alone or with others, and reports an outcome. */
      type: 'handoff';
      /** The batch's spans: each a {@link SpanRecord} as JSON. */
      spans: string[];
      /** How many. */
      count: number;
      /** Resources and scopes not sent before, by their number. */
      resources: [number, Attributes][];
      scopes: [number, { name: string; version?: string; schemaUrl?: string }][];
    }
  /** Sends what waits, then answers (`done` with the same id); `shutdown` then stops the exporter. */
  | { type: 'flush' | 'shutdown'; id: number };

/** Worker → main thread. */
export type FromWorker =
  /** The answer to the flush or shutdown with the same id. */
  | { type: 'done'; id: number }
  /** One export request ended. */
  | ({ type: 'outcome' } & ExportOutcome);

/** The links of a span without any (most of the hub's): one array for all of them. */
const NO_LINKS: SpanRecord[14] = [];

/** Every span that reaches the queue is sampled (`sdk.ts` drops the others before it). */
const SAMPLED = { traceId: '', spanId: '', traceFlags: 1 };

/**
 * An ended span as the batch processor queues it: its {@link SpanRecord} as JSON. The processor
 * reads only `spanContext().traceFlags` and `resource` of what it queues.
 */
class EncodedSpan {
  readonly json: string;
  readonly resource: ReadableSpan['resource'];

  constructor(json: string, resource: ReadableSpan['resource']) {
    this.json = json;
    this.resource = resource;
  }

  spanContext(): typeof SAMPLED {
    return SAMPLED;
  }
}

/**
 * A `SpanExporter` whose work runs in a worker thread (`export-worker.ts`). {@link export} hands a
 * batch over and answers at once; `onOutcome` hears how each of the worker's export requests ended.
 * While spans wait in the worker, or a flush or shutdown is pending, the worker keeps the process
 * alive (a final flush completes); otherwise it does not. A worker that fails or exits fails the
 * spans it held, what is pending and every later batch.
 *
 * @example
 * ```ts
 * const thread = new ThreadExporter({ protocol: 'http/protobuf', url, handoffSpans: 128, lingerMillis: 1000 },
 *   ({ exported, failed }) => count(exported, failed));
 * new BatchSpanProcessor({ exporter: thread, maxExportBatchSize: 128 });
 * ```
 */
export class ThreadExporter implements SpanExporter {
  private readonly worker: Worker;
  private readonly onOutcome: (outcome: ExportOutcome) => void;
  private readonly pending = new Map<number, () => void>();
  private nextId = 0;
  /** Spans handed over whose outcome has not come back. */
  private inWorker = 0;
  /** Whether the worker is ref'd (keeps the process alive). */
  private held = false;
  private dead: Error | undefined;
  private readonly resources = new Map<ReadableSpan['resource'], number>();
  private readonly scopes = new Map<ReadableSpan['instrumentationScope'], number>();
  /** Resources and scopes numbered since the last message to the worker, sent with the next one. */
  private newResources: [number, Attributes][] = [];
  private newScopes: [number, { name: string; version?: string; schemaUrl?: string }][] = [];

  constructor(settings: ExportWorkerSettings, onOutcome: (outcome: ExportOutcome) => void) {
    this.onOutcome = onOutcome;
    this.worker = new Worker(new URL('./export-worker.ts', import.meta.url), {
      workerData: settings,
      // A young generation of its own, sized so that a batch waiting for its HTTP answer dies young.
      resourceLimits: { maxYoungGenerationSizeMb: 16 },
    });
    this.worker.unref();
    this.worker.on('message', (message: FromWorker) => {
      if (message.type === 'done') this.answered(message.id);
      else
        this.settled({
          exported: message.exported,
          failed: message.failed,
          ...(message.error !== undefined ? { error: message.error } : {}),
        });
    });
    const fail = (error: Error) => {
      this.dead ??= error;
      if (this.inWorker > 0) this.settled({ exported: 0, failed: this.inWorker, error: error.message });
      for (const id of [...this.pending.keys()]) this.answered(id);
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the OTLP export thread exited (code ${code})`)));
  }

  /**
   * The stand-in the batch processor queues for an ended, sampled span: the span encoded now, so
   * that only a string waits for the export. Only this exporter can export it.
   */
  encode(span: ReadableSpan): ReadableSpan {
    return new EncodedSpan(this.json(span), span.resource) as unknown as ReadableSpan;
  }

  /**
   * Hands spans queued by {@link encode}, or SDK spans as they are (encoded now), to the worker and
   * answers success at once; their real outcome goes to `onOutcome`. Once the worker is gone, fails
   * them (to both).
   */
  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.dead) {
      this.onOutcome({ exported: 0, failed: spans.length, error: this.dead.message });
      resultCallback({ code: ExportResultCode.FAILED, error: this.dead });
      return;
    }
    const json = spans.map((span) => (span instanceof EncodedSpan ? span.json : this.json(span)));
    const resources = this.newResources;
    const scopes = this.newScopes;
    this.newResources = [];
    this.newScopes = [];
    this.inWorker += spans.length;
    this.holdProcess();
    this.worker.postMessage({
      type: 'handoff',
      spans: json,
      count: spans.length,
      resources,
      scopes,
    } satisfies ToWorker);
    resultCallback({ code: ExportResultCode.SUCCESS });
  }

  /** A span's {@link SpanRecord} as JSON, its resource and scope numbered (and queued to send) if new. */
  private json(span: ReadableSpan): string {
    let resource = this.resources.get(span.resource);
    if (resource === undefined) {
      resource = this.resources.size;
      this.resources.set(span.resource, resource);
      this.newResources.push([resource, span.resource.attributes]);
    }
    let scope = this.scopes.get(span.instrumentationScope);
    if (scope === undefined) {
      scope = this.scopes.size;
      this.scopes.set(span.instrumentationScope, scope);
      const { name, version, schemaUrl } = span.instrumentationScope;
      this.newScopes.push([
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
    const record: SpanRecord = [
      span.name,
      span.kind,
      ctx.traceId,
      ctx.spanId,
      ctx.traceFlags,
      ctx.traceState?.serialize(),
      parent === undefined
        ? undefined
        : parent.isRemote === undefined
          ? { traceId: parent.traceId, spanId: parent.spanId, traceFlags: parent.traceFlags }
          : {
              traceId: parent.traceId,
              spanId: parent.spanId,
              traceFlags: parent.traceFlags,
              isRemote: parent.isRemote,
            },
      span.startTime,
      span.endTime,
      span.attributes,
      span.status,
      span.droppedAttributesCount,
      span.events,
      span.droppedEventsCount,
      span.links.length === 0
        ? NO_LINKS
        : span.links.map((l) => ({
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
    return JSON.stringify(record);
  }

  /** Resolves once the worker has sent every span handed to it (or failed them). */
  forceFlush(): Promise<void> {
    return new Promise((resolve) => (this.dead ? resolve() : this.call('flush', resolve)));
  }

  /** Sends what the worker holds, then stops it; later batches fail. */
  async shutdown(): Promise<void> {
    if (!this.dead) await new Promise<void>((resolve) => this.call('shutdown', resolve));
    this.dead ??= new Error('the OTLP exporter was shut down');
    await this.worker.terminate();
  }

  private call(type: 'flush' | 'shutdown', onAnswer: () => void): void {
    const id = this.nextId++;
    this.pending.set(id, onAnswer);
    this.holdProcess();
    this.worker.postMessage({ type, id } satisfies ToWorker);
  }

  private answered(id: number): void {
    const onAnswer = this.pending.get(id);
    if (!onAnswer) return;
    this.pending.delete(id);
    this.releaseProcess();
    onAnswer();
  }

  private settled(outcome: ExportOutcome): void {
    this.inWorker = Math.max(0, this.inWorker - outcome.exported - outcome.failed);
    this.releaseProcess();
    this.onOutcome(outcome);
  }

  /** The worker keeps the process alive while it holds spans or owes an answer. */
  private holdProcess(): void {
    if (this.held) return;
    this.held = true;
    this.worker.ref();
  }

  private releaseProcess(): void {
    if (!this.held || this.inWorker > 0 || this.pending.size > 0) return;
    this.held = false;
    this.worker.unref();
  }
}
