/**
 * Tracing in one process, against real loopback HTTP: off costs nothing and changes nothing; on,
 * outbound calls carry the span's traceparent and log lines its ids; a collector that never answers
 * fills the bounded queue and the rest is dropped and counted.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, createContextKey, SpanStatusCode, trace } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postWebhook } from '../delivery/http-post.ts';
import { createVendorHttp } from '../delivery/vendor-http.ts';
import { createLogger } from '../logging/logger.ts';
import { requestTraceLabels, traceRequests } from './fastify.ts';
import { startTelemetry } from './index.ts';
import { MEMORY_TRACING_SETTINGS, startMemoryTracing } from './memory-tracing.test-support.ts';
import { startOtlpReceiver } from './otlp-receiver.test-support.ts';
import { HANDOFF_BATCH_SPANS, startTracing } from './sdk.ts';
import type { TracingDefaults, TracingSettings } from './settings.ts';
import {
  currentTraceparent,
  currentTracestate,
  exemplarOfTraceparent,
  injectTraceContext,
  SpanKind,
  startSpan,
  traceparentOf,
  tracestateOf,
  tracingEnabled,
  withSpan,
} from './tracing.ts';

const settings: TracingSettings = MEMORY_TRACING_SETTINGS;
/** What the config's defaults give where a test's file settings say nothing. */
const TEST_DEFAULTS: TracingDefaults = {
  sampleRatio: 1,
  queueSize: 2048,
  batchDelayMs: 1000,
  exportTimeoutMs: 10_000,
};

let seen: IncomingHttpHeaders[] = [];
const server = createServer((req, res) => {
  seen.push(req.headers);
  req.resume();
  req.on('end', () => {
    res.writeHead(req.url?.startsWith('/unavailable') ? 503 : 200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
});
// Idle keep-alive sockets live longer than a test's gap (starting tracing loads the exporter under a
// busy machine's load): the default 5 s timeout could close a socket just as the client reuses it.
server.keepAliveTimeout = 60_000;
let base = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

async function metricValue(registry: Registry, name: string, reason?: string): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = (metric?.values ?? []).find((v) => reason === undefined || v.labels.reason === reason);
  return Number(value?.value ?? 0);
}

describe('tracing off (no endpoint)', () => {
  it('starts nothing, and every helper calls straight through', async () => {
    const telemetry = await startTelemetry(
      { queueSize: 10, batchDelayMs: 1000, exportTimeoutMs: 1000 },
      { env: {}, registry: new Registry(), role: 'all', defaults: TEST_DEFAULTS },
    );
    expect(telemetry.tracing).toBe(false);
    expect(tracingEnabled()).toBe(false);
    expect(withSpan('x', {}, (span) => span)).toBeUndefined();
    expect(currentTraceparent()).toBeUndefined();
    const headers: Record<string, string> = {};
    injectTraceContext(headers);
    expect(headers).toEqual({});
    seen = [];
    await createVendorHttp().request({ url: `${base}/v` });
    expect(seen[0]?.traceparent).toBeUndefined();
    await telemetry.shutdown();
  });
});

/** Tracing on, every span exported to nowhere: for tests that look at spans, not at what is sent. */
function startDiscarding() {
  const discard: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };
  return startTracing(settings, { registry: new Registry(), role: 'all', exporter: discard });
}

describe('tracing on', () => {
  it('sends the active trace to vendors and subscribers, and puts its ids on log lines', async () => {
    const registry = new Registry();
    const { finished, tracing } = await startMemoryTracing(registry);
    try {
      const lines: string[] = [];
      const logger = createLogger({ destination: { write: (l) => lines.push(l) } });
      seen = [];
      const outer = await withSpan('outer', {}, async (span) => {
        logger.info('inside');
        await createVendorHttp().request({ url: `${base}/appointments/1?apiKey=secret` });
        await postWebhook({
          url: `${base}/hook`,
          headers: {},
          body: '{}',
          timeoutMs: 5000,
          allowPrivate: true,
          allowLoopback: true,
        });
        return span!.spanContext();
      });
      logger.info('outside');
      await tracing.flush();

      expect(JSON.parse(lines[0]!)).toMatchObject({ trace_id: outer.traceId, span_id: outer.spanId });
      expect(JSON.parse(lines[1]!).trace_id).toBeUndefined();

      const clients = finished.filter((s) => s.kind === SpanKind.CLIENT);
      expect(clients.map((s) => s.name)).toEqual(['GET', 'POST']);
      for (const [i, client] of clients.entries()) {
        expect(client.parentSpanContext?.spanId).toBe(outer.spanId);
        expect(seen[i]?.traceparent).toBe(`00-${outer.traceId}-${client.spanContext().spanId}-01`);
        expect(client.attributes['http.response.status_code']).toBe(200);
      }
      // The query (where vendors put keys) never reaches the span.
      expect(clients[0]!.attributes['url.full']).toBe(`${base}/appointments/1`);
      expect(await metricValue(registry, 'switchyard_trace_spans_exported_total')).toBe(finished.length);
    } finally {
      await tracing.shutdown();
    }
    expect(tracingEnabled()).toBe(false);
  });

  it("a CLIENT span answered with an error status has that status as error.type, a subscriber's as a vendor's", async () => {
    // OpenTelemetry's HTTP client conventions: error.type is the status code as a string. A
    // delivery answered 500 had 'http' (the hub's own error kind), a vendor call answered 500 '500'.
    const { finished, tracing } = await startMemoryTracing();
    try {
      await createVendorHttp()
        .request({ url: `${base}/unavailable/v` })
        .catch(() => undefined);
      await postWebhook({
        url: `${base}/unavailable/hook`,
        headers: {},
        body: '{}',
        timeoutMs: 5000,
        allowPrivate: true,
        allowLoopback: true,
      });
      await tracing.flush();
      const clients = finished.filter((s) => s.kind === SpanKind.CLIENT);
      expect(clients.map((s) => [s.name, s.attributes['error.type'], s.status.code])).toEqual([
        ['GET', '503', SpanStatusCode.ERROR],
        ['POST', '503', SpanStatusCode.ERROR],
      ]);
    } finally {
      await tracing.shutdown();
    }
  });

  it('continues a well-formed inbound traceparent and starts a new trace for a malformed one', async () => {
    const tracing = await startDiscarding();
    try {
      const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const continued = withSpan(
        'in',
        { kind: SpanKind.SERVER, parentHeaders: { traceparent: parent } },
        (s) => s!.spanContext(),
      );
      expect(continued.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
      const fresh = withSpan('in', { parentHeaders: { traceparent: '00-zz-not-valid' } }, (s) =>
        s!.spanContext(),
      );
      expect(fresh.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(fresh.traceId).not.toBe(continued.traceId);
      // A stored traceparent resumes the same way (the database hand-off).
      const stored = withSpan('store', {}, () => currentTraceparent());
      const resumed = withSpan('worker', { parent: stored }, (s) => s!.spanContext());
      expect(stored).toMatch(new RegExp(`^00-${resumed.traceId}-`));
      // The stored value is what the W3C propagator sends, sampled or not.
      for (const sampled of ['01', '00']) {
        const [own, current, sent] = withSpan(
          'row',
          { parent: `00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-${sampled}` },
          (s) => {
            const headers: Record<string, string> = {};
            injectTraceContext(headers);
            return [traceparentOf(s!), currentTraceparent(), headers.traceparent];
          },
        );
        expect(own).toMatch(new RegExp(`^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-${sampled}$`));
        expect(current).toBe(own);
        expect(sent).toBe(own);
      }
    } finally {
      await tracing.shutdown();
    }
  });

  it('a stored tracestate is resumed with its traceparent and sent on; a malformed or over-long one is dropped', async () => {
    const tracing = await startDiscarding();
    try {
      const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      // What the http process stores: the inbound request's tracestate, as its spans carry it.
      const stored = withSpan(
        'in',
        {
          kind: SpanKind.SERVER,
          parentHeaders: { traceparent: parent, tracestate: 'vendor=abc,rojo=00f067aa0ba902b7' },
        },
        () => withSpan('store', {}, () => [currentTraceparent(), currentTracestate()] as const),
      );
      expect(stored[1]).toBe('vendor=abc,rojo=00f067aa0ba902b7');
      /** What a worker resuming the stored pair sends on an outbound call. */
      const sent = (tracestate: string | null) =>
        withSpan('worker', { parent: stored[0]!, parentState: tracestate }, (s) =>
          withSpan('POST', { kind: SpanKind.CLIENT }, () => {
            const headers: Record<string, string> = {};
            injectTraceContext(headers);
            return { headers, own: tracestateOf(s!) };
          }),
        );
      const resumed = sent(stored[1]!);
      expect(resumed.headers.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-/);
      expect(resumed.headers.tracestate).toBe('vendor=abc,rojo=00f067aa0ba902b7');
      expect(resumed.own).toBe('vendor=abc,rojo=00f067aa0ba902b7');
      // None stored: none sent.
      expect(sent(null).headers.tracestate).toBeUndefined();
      // Malformed members are dropped (the valid ones kept); over 512 characters, the whole value.
      expect(sent('vendor=abc,NOT VALID,=x').headers.tracestate).toBe('vendor=abc');
      expect(sent('garbage').headers.tracestate).toBeUndefined();
      expect(sent(`vendor=${'a'.repeat(520)}`).headers.tracestate).toBeUndefined();
      // At most 32 members: the rest dropped, never an error.
      const many = Array.from({ length: 40 }, (_, i) => `k${i}=v${i}`).join(',');
      expect(sent(many).headers.tracestate?.split(',')).toHaveLength(32);
      // The trace goes on whatever the state.
      expect(sent('garbage').headers.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-/);
    } finally {
      await tracing.shutdown();
    }
  });

  it('metric exemplars name sampled spans only: a request span, a stored traceparent', async () => {
    const tracing = await startDiscarding();
    const app = Fastify();
    try {
      traceRequests(app);
      app.get('/x', async (request) => ({ labels: requestTraceLabels(request), own: currentTraceparent() }));
      const sampled = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const unsampled = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';
      // Parent-based sampling: the request span follows its caller's flag.
      const [on, off] = await Promise.all(
        [sampled, unsampled].map(
          async (traceparent) =>
            (await app.inject({ url: '/x', headers: { traceparent } })).json() as {
              labels: Record<string, string>;
              own: string;
            },
        ),
      );
      expect(on!.labels).toEqual({ trace_id: on!.own.slice(3, 35), span_id: on!.own.slice(36, 52) });
      expect(on!.labels.trace_id).toBe('0af7651916cd43dd8448eb211c80319c');
      // An unsampled trace is never exported: no exemplar could point at it.
      expect(off!.own).toMatch(/-00$/);
      expect(off!.labels).toEqual({});

      // A stored traceparent (the attempt log's): the same rule, and no guessing at anything else.
      expect(exemplarOfTraceparent(on!.own)).toEqual(on!.labels);
      expect(exemplarOfTraceparent(off!.own)).toBeUndefined();
      for (const none of [null, undefined, '', 'not a traceparent', on!.own.toUpperCase()])
        expect(exemplarOfTraceparent(none), String(none)).toBeUndefined();
    } finally {
      await app.close();
      await tracing.shutdown();
    }
  });

  it('a request whose caller hangs up before the answer still ends its SERVER span, as an error', async () => {
    // fastify runs no onResponse for it: the span never ended, and its children (store, gate.wait)
    // reached the collector under a root that never came.
    const { finished, tracing } = await startMemoryTracing();
    const app = Fastify();
    try {
      traceRequests(app);
      let hungUp!: () => void;
      const callerGone = new Promise<void>((resolve) => (hungUp = resolve));
      app.post('/hooks/:instance', async (request) => {
        request.raw.socket.once('close', hungUp);
        withSpan('switchyard.store', {}, () => {});
        await callerGone;
        return { ok: true };
      });
      app.post('/answered', async () => ({ ok: true }));
      await app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = app.server.address() as AddressInfo;
      // A vendor push whose body was read in full, the caller gone before the answer.
      await new Promise<void>((resolve) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/hooks/dp', method: 'POST' });
        req.setHeader('content-type', 'application/json');
        req.on('error', () => resolve());
        req.on('close', () => resolve());
        req.end('{"a":1}', () => setImmediate(() => req.destroy()));
      });
      const answered = await fetch(`http://127.0.0.1:${port}/answered`, { method: 'POST' });
      expect(answered.status).toBe(200);
      const deadline = Date.now() + 20_000;
      const named = (name: string) => finished.find((s) => s.name === name);
      while (!(named('POST /hooks/:instance') && named('POST /answered')) && Date.now() < deadline) {
        await tracing.flush();
        await new Promise((r) => setTimeout(r, 50));
      }
      const push = named('POST /hooks/:instance');
      expect(push?.kind).toBe(SpanKind.SERVER);
      expect(push?.status.code).toBe(SpanStatusCode.ERROR);
      expect(push?.attributes['error.type']).toBe('aborted');
      expect(push?.attributes['http.response.status_code']).toBeUndefined();
      expect(named('switchyard.store')?.parentSpanContext?.spanId).toBe(push?.spanContext().spanId);
      // An answered request ends once, in onResponse, as before.
      const ok = finished.filter((s) => s.name === 'POST /answered');
      expect(ok).toHaveLength(1);
      expect(ok[0]!.status.code).toBe(SpanStatusCode.UNSET);
      expect(ok[0]!.attributes['http.response.status_code']).toBe(200);
    } finally {
      await app.close();
      await tracing.shutdown();
    }
  });

  it("OTEL_RESOURCE_ATTRIBUTES reach the collector on every span's resource, OTEL_SERVICE_NAME over its service.name", async () => {
    // They were ignored: a deployment's `deployment.environment.name` or `k8s.pod.name` never
    // reached the backend, so prod and staging hubs sharing a collector could not be told apart.
    const otlp = await startOtlpReceiver();
    const start = (env: Record<string, string>) =>
      startTelemetry(
        { endpoint: otlp.url, queueSize: 100, batchDelayMs: 50, exportTimeoutMs: 5000 },
        { env, registry: new Registry(), role: 'worker', defaults: TEST_DEFAULTS },
      );
    try {
      for (const [run, env, name] of [
        [
          'a',
          {
            OTEL_RESOURCE_ATTRIBUTES:
              ' deployment.environment.name = prod ,service.name=from-attrs,team=a%2Cb%3Dc,switchyard.role=nope',
          },
          'from-attrs',
        ],
        [
          'b',
          {
            OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod,service.name=x',
            OTEL_SERVICE_NAME: 'sy-eu',
          },
          'sy-eu',
        ],
        // Unreadable (a pair without '='): discarded whole, as the specification says.
        ['c', { OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod,oops' }, 'switchyard'],
      ] as const) {
        const telemetry = await start(env);
        expect(telemetry.described?.endpoint).toBe(otlp.url);
        withSpan(`resource-${run}`, {}, () => {});
        await telemetry.shutdown();
        const spans = await otlp.waitFor((all) => all.some((s) => s.name === `resource-${run}`), 20_000);
        const { resource } = spans.find((s) => s.name === `resource-${run}`)!;
        expect(resource['service.name'], run).toBe(name);
        expect(resource['switchyard.role'], run).toBe('worker');
        expect(resource['service.instance.id'], run).toMatch(/^[0-9a-f-]{36}$/);
        if (run === 'c') expect(resource['deployment.environment.name']).toBeUndefined();
        else expect(resource['deployment.environment.name'], run).toBe('prod');
        if (run === 'a') expect(resource.team).toBe('a,b=c');
      }
    } finally {
      await otlp.close();
    }
  });

  it('a collector that refuses the spans is said in the log, with its status, not only counted', async () => {
    // A wrong API key (401) or path (404) showed nowhere but in a counter: "tracing on, nothing
    // arrives" with no line saying why.
    const otlp = await startOtlpReceiver({ status: 401 });
    const registry = new Registry();
    const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
    const logger = {
      warn: (obj: object, msg: string) => warnings.push({ obj: obj as Record<string, unknown>, msg }),
    };
    const telemetry = await startTelemetry(
      {
        endpoint: otlp.url,
        headers: { 'x-api-key': 'wrong-key-123' },
        queueSize: 100,
        batchDelayMs: 50,
        exportTimeoutMs: 5000,
      },
      { env: {}, registry, role: 'all', defaults: TEST_DEFAULTS, logger },
    );
    try {
      for (let i = 0; i < 3; i++) withSpan(`refused-${i}`, {}, () => {});
      const deadline = Date.now() + 20_000;
      while (warnings.length === 0 && Date.now() < deadline) {
        await telemetry.flush();
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(otlp.requests).toBeGreaterThan(0);
      expect(warnings[0]?.msg).toMatch(/^tracing: the collector did not take these spans/);
      expect(warnings[0]?.obj).toMatchObject({ reason: 'HTTP 401 Unauthorized' });
      expect(warnings[0]?.obj.spans).toBeGreaterThan(0);
      // The export's headers (an API key) are not in the line.
      expect(JSON.stringify(warnings)).not.toContain('wrong-key-123');
      expect(
        await metricValue(registry, 'switchyard_trace_spans_dropped_total', 'export_failed'),
      ).toBeGreaterThan(0);
    } finally {
      await telemetry.shutdown();
      await otlp.close();
    }
  });

  it('a stored traceparent resumes as the W3C propagator would extract it; anything else starts a new trace', async () => {
    const tracing = await startDiscarding();
    try {
      const parentOf = (parent: string) =>
        withSpan('worker', { parent }, (s) => (s as unknown as ReadableSpan).parentSpanContext);
      expect(parentOf('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')).toEqual({
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'b7ad6b7169203331',
        traceFlags: 1,
        isRemote: true,
      });
      // Version 00 with trace flags other than 01/00 is still well-formed (the flags are a byte).
      expect(parentOf('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03')?.traceFlags).toBe(3);
      // A later version's extra field is the propagator's to accept.
      expect(parentOf('01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra')?.spanId).toBe(
        'b7ad6b7169203331',
      );
      for (const malformed of [
        '00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01', // uppercase
        '00-00000000000000000000000000000000-b7ad6b7169203331-01', // all-zero trace id
        '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01', // all-zero span id
        'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', // forbidden version
        '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra', // version 00 has four fields
        '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x',
        'not a traceparent',
      ]) {
        expect(parentOf(malformed), malformed).toBeUndefined();
      }
    } finally {
      await tracing.shutdown();
    }
  });

  it("a span's context is one entry on its parent's, not a copy, and behaves as the API's", async () => {
    const tracing = await startDiscarding();
    try {
      const outer = startSpan('outer', {
        parent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      })!;
      // The API's own contexts copy their parent's Map for every value set.
      expect(Object.values(outer.context).some((v) => v instanceof Map)).toBe(false);
      const key = createContextKey('switchyard test key');
      const withKey = outer.context.setValue(key, 'v');
      expect(withKey.getValue(key)).toBe('v');
      expect(outer.context.getValue(key)).toBeUndefined();
      expect(trace.getSpan(withKey)).toBe(outer.span);
      const withoutSpan = trace.deleteSpan(withKey);
      expect(trace.getSpan(withoutSpan)).toBeUndefined();
      expect(withoutSpan.getValue(key)).toBe('v');
      expect(trace.getSpan(outer.context)).toBe(outer.span);
      // Nested spans find their parent through the chain; a suppressed context records nothing.
      const inner = context.with(outer.context, () => withSpan('inner', {}, (s) => s!));
      expect((inner as unknown as ReadableSpan).parentSpanContext?.spanId).toBe(
        outer.span.spanContext().spanId,
      );
      const suppressed = context.with(suppressTracing(outer.context), () => withSpan('no', {}, (s) => s!));
      expect(suppressed.isRecording()).toBe(false);
      outer.span.end();
    } finally {
      await tracing.shutdown();
    }
  });

  it("an attribute of a primitive value allocates no cycle guard (the pinned SDK's patch, patches/)", async () => {
    const tracing = await startDiscarding();
    const NativeWeakSet = globalThis.WeakSet;
    let guards = 0;
    // The SDK's attribute check makes its cycle guard with `new WeakSet()`, looked up at the call.
    globalThis.WeakSet = class extends NativeWeakSet<WeakKey> {
      constructor() {
        super();
        guards++;
      }
    } as WeakSetConstructor;
    try {
      const span = withSpan(
        'switchyard.deliver',
        { attributes: { 'switchyard.delivery': 'd1', 'switchyard.attempt': 1, 'switchyard.echo': false } },
        (s) => {
          s!.setAttribute('http.response.status_code', 200);
          return s as unknown as ReadableSpan;
        },
      );
      expect(guards).toBe(0);
      expect(span.attributes).toEqual({
        'switchyard.delivery': 'd1',
        'switchyard.attempt': 1,
        'switchyard.echo': false,
        'http.response.status_code': 200,
      });
      // A value that can hold a cycle still gets its guard (and the counter above does count).
      withSpan('x', {}, (s) => s!.setAttribute('switchyard.ids', ['a', 'b']));
      expect(guards).toBe(1);
    } finally {
      globalThis.WeakSet = NativeWeakSet;
      await tracing.shutdown();
    }
  });

  it('OTEL_PROPAGATORS: none reads and sends no context; tracecontext,baggage carries baggage too', async () => {
    // The variable was not read: `none` (a deployment that keeps its trace ids from vendors and
    // subscribers) still continued inbound traceparents and sent its own on every call.
    const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const inbound = { traceparent: parent, baggage: 'tenant=clinic-7' };
    const run = () =>
      withSpan('in', { kind: SpanKind.SERVER, parentHeaders: inbound }, (s) => {
        const headers: Record<string, string> = {};
        injectTraceContext(headers);
        return { traceId: s!.spanContext().traceId, headers };
      });
    const discard: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };
    const cases: [TracingSettings['propagators'], boolean, string[]][] = [
      [[], false, []],
      [['tracecontext'], true, ['traceparent']],
      [['tracecontext', 'baggage'], true, ['traceparent', 'baggage']],
    ];
    for (const [propagators, continued, sent] of cases) {
      const tracing = await startTracing(
        { ...settings, propagators },
        { registry: new Registry(), role: 'all', exporter: discard },
      );
      try {
        const { traceId, headers } = run();
        expect(traceId === '0af7651916cd43dd8448eb211c80319c', propagators.join()).toBe(continued);
        expect(Object.keys(headers).sort(), propagators.join()).toEqual(sent.sort());
        if (sent.includes('baggage')) expect(headers.baggage).toBe('tenant=clinic-7');
      } finally {
        await tracing.shutdown();
      }
    }
  });

  it('hands at most HANDOFF_BATCH_SPANS spans to the exporter at once', async () => {
    const batches: number[] = [];
    const counting: SpanExporter = {
      export: (spans, done) => {
        batches.push(spans.length);
        done({ code: 0 });
      },
      shutdown: async () => {},
    };
    const registry = new Registry();
    const tracing = await startTracing(settings, { registry, role: 'all', exporter: counting });
    try {
      for (let i = 0; i < 300; i++) withSpan(`s${i}`, {}, () => {});
      await tracing.flush();
      expect(batches.reduce((a, b) => a + b, 0)).toBe(300);
      expect(Math.max(...batches)).toBe(HANDOFF_BATCH_SPANS);
      expect(await metricValue(registry, 'switchyard_trace_spans_exported_total')).toBe(300);
    } finally {
      await tracing.shutdown();
    }
  });

  it('a collector that never answers: the queue stays bounded, the rest is dropped and counted, stop is bounded', async () => {
    const hanging: SpanExporter = { export() {}, shutdown: async () => {} };
    const registry = new Registry();
    const tracing = await startTracing(
      { ...settings, queueSize: 5, shutdownTimeoutMs: 200 },
      { registry, role: 'all', exporter: hanging },
    );
    try {
      // 5 go to the (hanging) export and hold their places in the queue until it ends, so the other
      // 15 are dropped; ending a span never waits.
      for (let i = 0; i < 20; i++) withSpan(`s${i}`, {}, () => {});
      expect(await metricValue(registry, 'switchyard_trace_spans_dropped_total', 'queue_full')).toBe(15);
      expect(await metricValue(registry, 'switchyard_trace_spans_exported_total')).toBe(0);
    } finally {
      await tracing.shutdown();
    }
  });
});
