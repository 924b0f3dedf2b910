/**
 * The worker thread of `export-thread.ts`: the official OTLP/HTTP exporter (protobuf, or JSON when
 * `OTEL_EXPORTER_OTLP_PROTOCOL` asks), fed with the spans the hub's thread hands over (as JSON). Each
 * span is given back the shape the exporter reads (`ReadableSpan`); the resource and instrumentation
 * scope are rebuilt once, so the encoder groups the spans as it would in the hub's thread. Hand-offs
 * wait here until {@link EXPORT_BATCH_SPANS} spans can go in one request (or nothing more is coming
 * soon); one request is in flight at a time, and each request's outcome is reported back.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { type Attributes, createTraceState, type SpanContext } from '@opentelemetry/api';
import { ExportResultCode, hrTimeDuration } from '@opentelemetry/core';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import {
  EXPORT_BATCH_SPANS,
  EXPORT_THREAD_NICE,
  type ExportWorkerSettings,
  type FromWorker,
  type SpanRecord,
  type ToWorker,
} from './export-thread.ts';

const settings = workerData as ExportWorkerSettings;
const port = parentPort!;
/** The most spans one request carries. */
const requestSpans = settings.requestSpans ?? EXPORT_BATCH_SPANS;

// Below the hub's own threads: an export encodes and sends a batch of up to 512 spans at once,
// a burst that otherwise takes a core from the event loop every stage runs on, when nothing waits
// on the export (bench/analysis.md, "The export thread yields"). Linux only: setpriority() takes
// a thread's id there (`/proc/thread-self`); elsewhere the thread keeps the process's priority.
try {
  setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), EXPORT_THREAD_NICE);
} catch {
  // Not Linux, or not allowed: the same priority as the hub's threads.
}
// Only the exporter of the protocol in use is loaded (both take the same options).
const { OTLPTraceExporter } =
  settings.protocol === 'http/json'
    ? await import('@opentelemetry/exporter-trace-otlp-http')
    : await import('@opentelemetry/exporter-trace-otlp-proto');
const exporter = new OTLPTraceExporter({
  ...(settings.url !== undefined ? { url: settings.url } : {}),
  ...(settings.headers !== undefined ? { headers: settings.headers } : {}),
  ...(settings.timeoutMillis !== undefined ? { timeoutMillis: settings.timeoutMillis } : {}),
  // One export in flight: a slow collector makes the queue fill (and drop), not sockets pile up.
  concurrencyLimit: 1,
});

const resources = new Map<number, Resource>();
const scopes = new Map<number, ReadableSpan['instrumentationScope']>();

function spanOf(r: SpanRecord): ReadableSpan {
  const traceState = r[5];
  const context: SpanContext = {
    traceId: r[2],
    spanId: r[3],
    traceFlags: r[4],
    ...(traceState ? { traceState: createTraceState(traceState) } : {}),
  };
  return {
    name: r[0],
    kind: r[1],
    spanContext: () => context,
    ...(r[6] ? { parentSpanContext: r[6] } : {}),
    startTime: r[7],
    endTime: r[8],
    duration: hrTimeDuration(r[7], r[8]),
    ended: true,
    attributes: r[9],
    status: r[10],
    droppedAttributesCount: r[11],
    events: r[12],
    droppedEventsCount: r[13],
    links: r[14].map((l) => ({
      ...l,
      context: {
        ...l.context,
        traceState: l.context.traceState ? createTraceState(l.context.traceState) : undefined,
      },
    })),
    droppedLinksCount: r[15],
    resource: resources.get(r[16])!,
    instrumentationScope: scopes.get(r[17])!,
  };
}

const answer = (message: FromWorker) => port.postMessage(message);

/**
 * Why an export failed, for the operator's log line: a collector's refusal with its HTTP status
 * (the exporter keeps it as `code`, its message is only the status text: `Unauthorized`), else the
 * error's message (`connect ECONNREFUSED ...`, `Request timed out`). Never the response body.
 */
function failureOf(error: Error | undefined): string {
  if (!error) return 'export failed';
  const { code } = error as { code?: unknown };
  return typeof code === 'number' ? `HTTP ${code} ${error.message}`.trim() : error.message || 'export failed';
}

/** Hand-offs not yet sent, in order: each its spans' records (one JSON string a span), and how many. */
const waiting: { spans: string[]; count: number }[] = [];
/** Send without waiting for more: a hand-off that was not full came, or spans waited their linger. */
let now = false;
let sending = false;
let linger: ReturnType<typeof setTimeout> | undefined;
/** Flushes and shutdowns waiting until every span handed over has been sent. */
const drained: (() => void)[] = [];

/** Sends the next request if one is due and none is in flight; answers the flushes once all is sent. */
function send(): void {
  if (sending) return;
  const waitingSpans = waiting.reduce((n, handoff) => n + handoff.count, 0);
  if (waitingSpans === 0) {
    now = false;
    for (const done of drained.splice(0)) done();
    return;
  }
  if (waitingSpans < requestSpans && !now && drained.length === 0) {
    linger ??= setTimeout(() => {
      linger = undefined;
      now = true;
      send();
    }, settings.lingerMillis);
    return;
  }
  clearTimeout(linger);
  linger = undefined;
  // Whole hand-offs (each at most `handoffSpans`), up to `requestSpans` spans, at least one;
  // decoded only now, so that the spans' objects live through one request, not the wait before it.
  const records: SpanRecord[] = [];
  let count = 0;
  while (waiting.length > 0 && (count === 0 || count + waiting[0]!.count <= requestSpans)) {
    const handoff = waiting.shift()!;
    count += handoff.count;
    for (const json of handoff.spans) records.push(JSON.parse(json) as SpanRecord);
  }
  sending = true;
  exporter.export(records.map(spanOf), (result) => {
    answer(
      result.code === ExportResultCode.SUCCESS
        ? { type: 'outcome', exported: count, failed: 0 }
        : { type: 'outcome', exported: 0, failed: count, error: failureOf(result.error) },
    );
    // Not at once: the exporter calls back before it counts the request as finished (its promise
    // queue lets it go a microtask later), and with one request allowed (concurrencyLimit) an
    // export started now fails with "Concurrent export limit reached".
    setImmediate(() => {
      sending = false;
      send();
    });
  });
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'handoff': {
      for (const [n, attributes] of message.resources)
        resources.set(n, resourceFromAttributes(attributes as Attributes));
      for (const [n, scope] of message.scopes) scopes.set(n, scope);
      waiting.push({ spans: message.spans, count: message.count });
      // Not full: the batch processor's queue ran empty, and nothing more is coming soon.
      if (message.count < settings.handoffSpans) now = true;
      send();
      return;
    }
    case 'flush':
      drained.push(() =>
        exporter.forceFlush().then(
          () => answer({ type: 'done', id: message.id }),
          () => answer({ type: 'done', id: message.id }),
        ),
      );
      send();
      return;
    case 'shutdown':
      drained.push(() =>
        exporter.shutdown().then(
          () => answer({ type: 'done', id: message.id }),
          () => answer({ type: 'done', id: message.id }),
        ),
      );
      send();
      return;
  }
});
