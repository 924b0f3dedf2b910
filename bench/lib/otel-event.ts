/**
 * One Docplanner push with one subscription as the hub traces it: the `telemetry/tracing.ts` calls of
 * the hook request, store, normalize, fan-out, delivery attempt and its POST (six spans, the hub's
 * attributes, parents crossing as stored `traceparent` strings), for the in-process diagnostics
 * bench/lib/otel-cost.ts (CPU) and bench/lib/otel-alloc.ts (heap bytes).
 */
import { Worker } from 'node:worker_threads';
import * as t from '../../packages/server/src/telemetry/tracing.ts';

/** One event's tracing calls, as the hub makes them (see the call sites in pipeline/ and http/). */
export async function event(i: number): Promise<void> {
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

/**
 * An OTLP/HTTP receiver that reads and discards what it is sent, in its own thread of this
 * process, so that its CPU is not the main thread's the probes measure.
 *
 * @example
 * ```ts
 * const sink = await startReceiverThread();
 * await startTracing({ ...settings, url: sink.url }, { registry, role: 'all' });
 * await sink.stop();
 * ```
 */
export async function startReceiverThread(): Promise<{ url: string; stop(): Promise<void> }> {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     import(workerData).then(async (m) => parentPort.postMessage((await m.startOtlpReceiver({ discard: true })).url));`,
    {
      eval: true,
      workerData: new URL(
        '../../packages/server/src/telemetry/otlp-receiver.test-support.ts',
        import.meta.url,
      ).href,
    },
  );
  const url = await new Promise<string>((resolve) => worker.once('message', resolve));
  return { url, stop: async () => void (await worker.terminate()) };
}
