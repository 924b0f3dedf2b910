/**
 * The exporter in its worker thread sends what the same OTLP exporter sends in this thread: the
 * same request bodies, byte for byte (protobuf) or value for value (JSON), for spans with every
 * field the encoders write (kinds, parents local and remote, trace state, attributes of each type,
 * status with a message, events, links), whether they were encoded as they ended or at the export.
 * It gathers full hand-offs into requests of up to EXPORT_BATCH_SPANS spans, sends one that is not
 * full at once and none later than its linger; and a collector that is not there fails the spans.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import { context, createTraceState, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { type ReadableSpan, type SpanExporter, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  EXPORT_BATCH_SPANS,
  EXPORT_THREAD_NICE,
  type ExportOutcome,
  type SpanRecord,
  ThreadExporter,
  type ToWorker,
} from './export-thread.ts';

const bodies: Buffer[] = [];
const collector = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    bodies.push(Buffer.concat(chunks));
    const json = (req.headers['content-type'] ?? '').includes('json');
    res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
    res.end(json ? '{}' : undefined);
  });
});
let url = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`;
});
afterAll(async () => {
  collector.closeAllConnections();
  await new Promise((r) => collector.close(r));
});

/** Spans made by the SDK with every field the OTLP encoders write. */
function makeSpans(): ReadableSpan[] {
  const ended: ReadableSpan[] = [];
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'switchyard-test', 'switchyard.role': 'worker' }),
    spanProcessors: [
      {
        onStart() {},
        onEnd: (span) => void ended.push(span),
        forceFlush: async () => {},
        shutdown: async () => {},
      },
    ],
  });
  const tracer = provider.getTracer('@switchyard/server', '1.2.3');
  const remote = trace.setSpanContext(context.active(), {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: 1,
    isRemote: true,
    traceState: createTraceState('vendor=abc,other=1'),
  });
  const server = tracer.startSpan(
    'POST /hooks/{instance}',
    {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': 'POST',
        'server.port': 8080,
        ok: true,
        ratio: 0.5,
        list: ['a', 'b'],
        // Not ASCII: the JSON that crosses to the worker keeps it exactly.
        'switchyard.doctor': 'Zoë Łukasiewicz — 東京',
      },
      links: [{ context: trace.getSpanContext(remote)!, attributes: { 'link.reason': 'batch' } }],
    },
    remote,
  );
  server.addEvent('stored', { 'switchyard.notifications': 2 });
  const child = tracer.startSpan('POST', { kind: SpanKind.CLIENT }, trace.setSpan(context.active(), server));
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'HTTP 500' });
  child.setAttribute('http.response.status_code', 500);
  child.end();
  server.end();
  tracer.startSpan('switchyard.normalize', { kind: SpanKind.CONSUMER }).end();
  return ended;
}

function exportWith(exporter: SpanExporter, spans: ReadableSpan[]): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

/** A thread exporter whose outcomes can be awaited one by one, in order. */
function threadExporter(settings: Partial<ConstructorParameters<typeof ThreadExporter>[0]> = {}): {
  thread: ThreadExporter;
  outcomes: ExportOutcome[];
  next(): Promise<ExportOutcome>;
} {
  const outcomes: ExportOutcome[] = [];
  const waiters: ((o: ExportOutcome) => void)[] = [];
  let read = 0;
  const thread = new ThreadExporter(
    { protocol: 'http/protobuf', url, handoffSpans: 128, lingerMillis: 60_000, ...settings },
    (outcome) => {
      outcomes.push(outcome);
      const waiter = waiters.shift();
      if (waiter) waiter(outcomes[read++]!);
    },
  );
  return {
    thread,
    outcomes,
    next: () =>
      read < outcomes.length
        ? Promise.resolve(outcomes[read++]!)
        : new Promise((resolve) => waiters.push(resolve)),
  };
}

/** Spans per request the collector received, the bodies read as OTLP JSON. */
function spansPerRequest(): number[] {
  return bodies.map(
    (b) =>
      (
        JSON.parse(b.toString('utf8')) as { resourceSpans: { scopeSpans: { spans: unknown[] }[] }[] }
      ).resourceSpans
        .flatMap((r) => r.scopeSpans)
        .flatMap((s) => s.spans).length,
  );
}

describe('the exporter in its worker thread', () => {
  for (const protocol of ['http/protobuf', 'http/json'] as const) {
    it(`sends the same ${protocol} request as the exporter in this thread`, async () => {
      const spans = makeSpans();
      bodies.length = 0;
      const here = protocol === 'http/json' ? new JsonExporter({ url }) : new ProtoExporter({ url });
      const { thread, next } = threadExporter({ protocol });
      try {
        expect((await exportWith(here, spans)).code).toBe(ExportResultCode.SUCCESS);
        // Encoded as they ended (what sdk.ts's batch queue holds), then as they are: the second batch
        // also reuses the resource and scope the worker already has. A hand-off of 3 is not full
        // (128): each goes at once, alone, as its outcome shows.
        const encoded = spans.map((span) => thread.encode(span));
        expect((await exportWith(thread, encoded)).code).toBe(ExportResultCode.SUCCESS);
        expect(await next()).toEqual({ exported: 3, failed: 0 });
        expect((await exportWith(thread, spans)).code).toBe(ExportResultCode.SUCCESS);
        expect(await next()).toEqual({ exported: 3, failed: 0 });
      } finally {
        await here.shutdown();
        await thread.shutdown();
      }
      expect(bodies).toHaveLength(3);
      if (protocol === 'http/json') {
        const [a, b, c] = bodies.map((b) => JSON.parse(b.toString('utf8')));
        expect(a.resourceSpans[0].scopeSpans[0].spans).toHaveLength(3);
        expect(b).toEqual(a);
        expect(c).toEqual(a);
      } else {
        expect(bodies[0]!.length).toBeGreaterThan(0);
        expect(bodies[1]!.equals(bodies[0]!)).toBe(true);
        expect(bodies[2]!.equals(bodies[0]!)).toBe(true);
      }
    });
  }

  it('hands each span over as its own string, not joined into one', async () => {
    // A joined string is a chain of pieces that V8 flattens on the hub's heap before it can copy
    // it to the worker: ~3 KB more allocated per traced push (docs/observability.md).
    const post = vi.spyOn(Worker.prototype, 'postMessage');
    const { thread, next } = threadExporter();
    try {
      const spans = makeSpans();
      expect(
        (
          await exportWith(
            thread,
            spans.map((span) => thread.encode(span)),
          )
        ).code,
      ).toBe(ExportResultCode.SUCCESS);
      expect(await next()).toEqual({ exported: 3, failed: 0 });
      const handoffs = post.mock.calls
        .map(([message]) => message as ToWorker)
        .filter((m): m is Extract<ToWorker, { type: 'handoff' }> => m.type === 'handoff');
      expect(handoffs).toHaveLength(1);
      const { spans: strings, count } = handoffs[0]!;
      expect(count).toBe(3);
      expect(strings).toHaveLength(3);
      expect(strings.map((json) => (JSON.parse(json) as SpanRecord)[0])).toEqual(spans.map((s) => s.name));
    } finally {
      post.mockRestore();
      await thread.shutdown();
    }
  });

  it.runIf(process.platform === 'linux')("runs below the hub threads' priority (Linux)", async () => {
    const nices = () =>
      readdirSync('/proc/self/task').map((tid) => {
        // The fields after the command's closing parenthesis start at the third; nice is the 19th.
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
      });
    expect(nices()).not.toContain(EXPORT_THREAD_NICE);
    const { thread, next } = threadExporter();
    try {
      // Sent: the worker has started (and set its priority first).
      expect((await exportWith(thread, makeSpans())).code).toBe(ExportResultCode.SUCCESS);
      expect(await next()).toEqual({ exported: 3, failed: 0 });
      expect(nices().filter((n) => n === EXPORT_THREAD_NICE)).toHaveLength(1);
      expect(nices().filter((n) => n === 0).length).toBeGreaterThan(0);
    } finally {
      await thread.shutdown();
    }
  });

  it('gathers full hand-offs into requests of up to EXPORT_BATCH_SPANS spans; one not full goes at once, with what waits', async () => {
    bodies.length = 0;
    // Hand-offs of 3 spans are full here: the worker waits for more (the linger is a minute).
    const { thread, next, outcomes } = threadExporter({ protocol: 'http/json', handoffSpans: 3 });
    try {
      const spans = makeSpans();
      const full = Math.floor(EXPORT_BATCH_SPANS / 3); // 170 hand-offs, 510 spans
      for (let i = 0; i < full; i++) await exportWith(thread, spans);
      await new Promise((r) => setTimeout(r, 300));
      expect(outcomes).toEqual([]);
      // One more would pass 512: the 510 go as one request, and the last 3 wait.
      await exportWith(thread, spans);
      expect(await next()).toEqual({ exported: full * 3, failed: 0 });
      await new Promise((r) => setTimeout(r, 300));
      expect(outcomes).toHaveLength(1);
      // A hand-off that is not full: the batch processor's queue ran empty; it goes with the 3.
      await exportWith(thread, spans.slice(0, 2));
      expect(await next()).toEqual({ exported: 5, failed: 0 });
      expect(spansPerRequest()).toEqual([full * 3, 5]);
    } finally {
      await thread.shutdown();
    }
  });

  it('sends request after request while more than EXPORT_BATCH_SPANS wait, none refused by the exporter', async () => {
    bodies.length = 0;
    const { thread, outcomes } = threadExporter({ protocol: 'http/json', handoffSpans: 3 });
    try {
      const spans = makeSpans();
      const handoffs = 3 * Math.ceil(EXPORT_BATCH_SPANS / 3); // three requests' worth, all waiting at once
      for (let i = 0; i < handoffs; i++) await exportWith(thread, spans);
      await thread.forceFlush();
      expect(outcomes.filter((o) => o.failed > 0)).toEqual([]);
      expect(outcomes.reduce((n, o) => n + o.exported, 0)).toBe(handoffs * 3);
      expect(spansPerRequest().reduce((a, b) => a + b, 0)).toBe(handoffs * 3);
      expect(Math.max(...spansPerRequest())).toBeLessThanOrEqual(EXPORT_BATCH_SPANS);
    } finally {
      await thread.shutdown();
    }
  });

  it('carries at most requestSpans a request when the deployment sets OTEL_BSP_MAX_EXPORT_BATCH_SIZE', async () => {
    // The variable was not read: a collector limited to smaller requests (a gateway's body limit)
    // got 512 spans a request whatever the deployment said.
    bodies.length = 0;
    const { thread, next } = threadExporter({ protocol: 'http/json', handoffSpans: 3, requestSpans: 6 });
    try {
      const spans = makeSpans();
      // Two full hand-offs fill a request of 6: it goes without waiting for the linger.
      await exportWith(thread, spans);
      await exportWith(thread, spans);
      expect(await next()).toEqual({ exported: 6, failed: 0 });
      for (let i = 0; i < 5; i++) await exportWith(thread, spans);
      await thread.forceFlush();
      expect(spansPerRequest().reduce((a, b) => a + b, 0)).toBe(21);
      expect(Math.max(...spansPerRequest())).toBe(6);
    } finally {
      await thread.shutdown();
    }
  });

  it('sends full hand-offs after their linger at the latest, and whatever waits on a flush', async () => {
    bodies.length = 0;
    const { thread, next, outcomes } = threadExporter({
      protocol: 'http/json',
      handoffSpans: 3,
      lingerMillis: 400,
    });
    try {
      const started = Date.now();
      await exportWith(thread, makeSpans());
      expect(await next()).toEqual({ exported: 3, failed: 0 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(350);
      await exportWith(thread, makeSpans());
      await thread.forceFlush();
      // The flush answers once the request has ended: its outcome is already in.
      expect(outcomes).toEqual([
        { exported: 3, failed: 0 },
        { exported: 3, failed: 0 },
      ]);
      expect(spansPerRequest()).toEqual([3, 3]);
    } finally {
      await thread.shutdown();
    }
  });

  it('shutdown sends what waits first', async () => {
    bodies.length = 0;
    const { thread, outcomes } = threadExporter({ protocol: 'http/json', handoffSpans: 3 });
    await exportWith(thread, makeSpans());
    await thread.shutdown();
    expect(outcomes).toEqual([{ exported: 3, failed: 0 }]);
    expect(spansPerRequest()).toEqual([3]);
  });

  it('fails the spans when the collector is not there, and every batch after shutdown', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const { thread, next } = threadExporter({
      url: `http://127.0.0.1:${port}/v1/traces`,
      timeoutMillis: 2000,
    });
    // Handed over: the batch processor moves on; the request's outcome comes later.
    expect((await exportWith(thread, makeSpans())).code).toBe(ExportResultCode.SUCCESS);
    const failed = await next();
    expect(failed).toMatchObject({ exported: 0, failed: 3 });
    expect(failed.error).toEqual(expect.any(String));
    await thread.shutdown();
    expect((await exportWith(thread, makeSpans())).code).toBe(ExportResultCode.FAILED);
    expect(await next()).toMatchObject({ exported: 0, failed: 3 });
  });
});
