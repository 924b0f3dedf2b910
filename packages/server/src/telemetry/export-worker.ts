/**
 * The worker thread of `export-thread.ts`: the official OTLP/HTTP exporter (protobuf, or JSON when
 * `OTEL_EXPORTER_OTLP_PROTOCOL` asks), fed with the spans the hub's thread posts (as JSON). Each span is
 * given back the shape the exporter reads (`ReadableSpan`); the resource and instrumentation scope
 * are rebuilt once, so the encoder groups the spans as it would in the hub's thread.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { type Attributes, createTraceState, type SpanContext } from '@opentelemetry/api';
import { hrTimeDuration } from '@opentelemetry/core';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import {
  EXPORT_THREAD_NICE,
  type ExportWorkerSettings,
  type FromWorker,
  type SpanRecord,
  type ToWorker,
} from './export-thread.ts';

const settings = workerData as ExportWorkerSettings;
const port = parentPort!;

// Below the hub's own threads: an export encodes and sends a batch of up to 128 spans at once,
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

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'export': {
      for (const [n, attributes] of message.resources)
        resources.set(n, resourceFromAttributes(attributes as Attributes));
      for (const [n, scope] of message.scopes) scopes.set(n, scope);
      exporter.export((JSON.parse(message.spans) as SpanRecord[]).map(spanOf), (result) =>
        answer({
          id: message.id,
          code: result.code,
          ...(result.error ? { error: result.error.message } : {}),
        }),
      );
      return;
    }
    case 'flush':
      void exporter.forceFlush().then(
        () => answer({ id: message.id }),
        () => answer({ id: message.id }),
      );
      return;
    case 'shutdown':
      void exporter.shutdown().then(
        () => answer({ id: message.id }),
        () => answer({ id: message.id }),
      );
      return;
  }
});
