/**
 * The OTLP exporter in a worker thread. Each span is encoded as it ends ({@link ThreadExporter.encode},
 * called by the span processor of `sdk.ts`): the fields the OTLP encoders read become one JSON
 * string, and that string is what waits in the batch processor's queue and what crosses to
 * `export-worker.ts`, where the official OTLP/HTTP exporter gets the spans back in the shape it
 * reads, encodes them (protobuf or JSON) and sends them, and answers with the export's result.
 *
 * Why encode at the end and not at export: the batch processor holds ended spans until the next
 * export (up to a second), long enough for V8 to promote each span's object graph (the span, its
 * attribute object, time arrays, status, links, events: some fifteen objects) out of the hub's
 * small young generation into the old one, whose collection then visits every one of them. A
 * string is one object without pointers, cheap for the collector to visit (one that waits long is
 * still promoted, which is why sdk.ts's `EXPORT_BATCH_SPANS` keeps the wait short); and posting a
 * batch's string to the worker is a copy of its bytes, not a walk of a batch's object graphs by
 * V8's serializer on the hub's event loop. The hub's event loop — which also parses every push,
 * normalizes and delivers — keeps only the `JSON.stringify` of each span; the OTLP encoding (more
 * CPU per span than making the span: docs/observability.md, "What tracing costs") and the HTTP
 * client run on the other thread. Results come back as the export's callback, so the batch
 * processor's queue bound, timeout and the dropped/exported counters work exactly as with an
 * exporter in this thread.
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

/** The exporter's settings, as the worker receives them (`workerData`). */
export interface ExportWorkerSettings {
  protocol: 'http/protobuf' | 'http/json';
  url?: string;
  headers?: Record<string, string>;
  timeoutMillis?: number;
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
      type: 'export';
      id: number;
      /** The batch's spans: a JSON array of {@link SpanRecord}s. */
      spans: string;
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
  /** Resources and scopes numbered since the last message to the worker, sent with the next one. */
  private newResources: [number, Attributes][] = [];
  private newScopes: [number, { name: string; version?: string; schemaUrl?: string }][] = [];

  constructor(settings: ExportWorkerSettings) {
    this.worker = new Worker(new URL('./export-worker.ts', import.meta.url), {
      workerData: settings,
      // A young generation of its own, sized so that a batch waiting for its HTTP answer dies young.
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

  /**
   * The stand-in the batch processor queues for an ended, sampled span: the span encoded now, so
   * that only a string waits for the export. Only this exporter can export it.
   */
  encode(span: ReadableSpan): ReadableSpan {
    return new EncodedSpan(this.json(span), span.resource) as unknown as ReadableSpan;
  }

  /** Exports spans queued by {@link encode}, or SDK spans as they are (encoded now). */
  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.dead) {
      resultCallback({ code: ExportResultCode.FAILED, error: this.dead });
      return;
    }
    let json = '[';
    for (let i = 0; i < spans.length; i++) {
      const span = spans[i]!;
      if (i > 0) json += ',';
      json += span instanceof EncodedSpan ? span.json : this.json(span);
    }
    json += ']';
    const resources = this.newResources;
    const scopes = this.newScopes;
    this.newResources = [];
    this.newScopes = [];
    this.call({ type: 'export', id: 0, spans: json, resources, scopes }, (answer) =>
      resultCallback(
        answer.code === ExportResultCode.SUCCESS
          ? { code: ExportResultCode.SUCCESS }
          : { code: ExportResultCode.FAILED, error: new Error(answer.error ?? 'export failed') },
      ),
    );
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
