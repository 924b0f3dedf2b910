// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config files use ${env:...} references on purpose.
/**
 * OpenTelemetry across processes: an `http` process and a `worker` process on one database export
 * to an OTLP/HTTP receiver written here; one Docplanner push reaches two subscribers, one failing
 * once. The spans form one trace (continuing the vendor's own `traceparent`), crossing the database
 * hand-off, and each subscriber receives that trace in `traceparent`.
 *
 * With SWITCHYARD_WATERFALL_OUT set, the trace is also written there as the waterfall table that
 * docs/observability.md shows.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { freePort, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ReceivedSpan, startOtlpReceiver, waterfall } from '../telemetry/otlp-receiver.test-support.ts';
import {
  ADMIN_TOKEN,
  newSigningSecret,
  PUSH_KEY,
  secretEnv,
  slotBooked,
  spawnSwitchyard,
  tempDir,
  webhookSubscription,
  writeConfig,
} from './helpers.test-support.ts';

const db = useTestDatabase();
const signingSecret = newSigningSecret();
let crm: Awaited<ReturnType<typeof startRecordingSubscriber>>;
let erp: Awaited<ReturnType<typeof startRecordingSubscriber>>;
let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;

beforeAll(async () => {
  // crm fails the first attempt (500), then takes the retry; erp takes the first.
  crm = await startRecordingSubscriber({ secrets: signingSecret, script: [500] });
  erp = await startRecordingSubscriber({ secrets: signingSecret });
  otlp = await startOtlpReceiver();
});
afterAll(async () => {
  await crm?.close();
  await erp?.close();
  await otlp?.close();
});

const SERVER = 2;
const CLIENT = 3;
const CONSUMER = 5;

async function push(
  url: string,
  bookingId: number,
  traceparent?: string,
  tracestate?: string,
): Promise<number> {
  const res = await fetch(`${url}/hooks/dp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-api-key': PUSH_KEY,
      ...(traceparent !== undefined ? { traceparent } : {}),
      ...(tracestate !== undefined ? { tracestate } : {}),
    },
    body: slotBooked(bookingId),
  });
  await res.arrayBuffer();
  return res.status;
}

it('one push is one trace from the hook request to every subscriber answer, across the http and worker processes', async () => {
  const dir = tempDir('otel');
  const [httpPort, workerPort] = [await freePort(), await freePort()];
  writeConfig(dir, {
    port: httpPort,
    database: '${env:SY_E2E_DATABASE_URL}',
    subscriptions: [
      ...webhookSubscription('crm', `${crm.url}crm`),
      ...webhookSubscription('erp', `${erp.url}erp`),
    ],
    // Request log lines are written at debug (one per request): on, to see them carry the trace.
    extra: ['telemetry:', '  traces:', `    endpoint: ${otlp.url}`, '    sampleRatio: 1'],
    logLevel: 'debug',
  });
  const env = { ...secretEnv(signingSecret, db.url()), OTEL_EXPORTER_OTLP_ENDPOINT: undefined };
  const http = spawnSwitchyard(['start', '--config', 'switchyard.yaml', '--role', 'http'], {
    cwd: dir,
    env,
    port: httpPort,
  });
  const worker = spawnSwitchyard(
    ['start', '--config', 'switchyard.yaml', '--role', 'worker', '--port', String(workerPort)],
    { cwd: dir, env, port: workerPort },
  );
  let codes: (number | string)[] = [];
  try {
    await Promise.all([http.ready(90_000), worker.ready(90_000)]);

    // The vendor (or its proxy) sends a traceparent and a tracestate: the hub's spans continue that
    // trace, and carry the state on across the database hand-off (W3C Trace Context §3.3).
    const traceId = randomBytes(16).toString('hex');
    const vendorSpanId = randomBytes(8).toString('hex');
    expect(await push(http.url, 710001, `00-${traceId}-${vendorSpanId}-01`, 'vendor=abc')).toBe(200);
    // Scraped as OpenMetrics, the push's duration bucket names the push's trace (an exemplar).
    const exemplarSpanId = await bucketExemplar(http.url, 'switchyard_ingest_duration_seconds', traceId);
    const crmOk = await crm.waitFor((r) => r.text.includes('"710001"') && r.response?.status === 200, 30_000);
    const erpOk = await erp.waitFor((r) => r.text.includes('"710001"'), 30_000);
    // The attempt-latency histogram, fed from the attempt log when scraped (here by the worker),
    // names the trace of crm's failed attempt beside its bucket.
    const retryExemplarSpanId = await bucketExemplar(
      worker.url,
      'switchyard_delivery_attempt_duration_seconds',
      traceId,
      'outcome="retry"',
    );
    // A malformed traceparent starts a new trace: never an error.
    expect(await push(http.url, 710002, '00-not-a-trace-context')).toBe(200);
    await crm.waitFor((r) => r.text.includes('"710002"') && r.response?.status === 200, 30_000);

    // Each subscriber got the trace in traceparent (its parent: the hub's client span of that call),
    // and the vendor's tracestate with it, sent from the worker process.
    for (const received of [crmOk, erpOk]) {
      expect(received.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      expect(String(received.headers.tracestate).split(',')).toContain('vendor=abc');
    }
    const crmFirst = crm.requests.find((r) => r.text.includes('"710001"') && r.response?.status === 500);
    expect(crmFirst?.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-`));
    expect(String(crmFirst?.headers.tracestate).split(',')).toContain('vendor=abc');
    // The malformed push sent no tracestate: its deliveries send none either.
    const crmOther = crm.requests.find((r) => r.text.includes('"710002"'));
    expect(crmOther?.headers.tracestate).toBeUndefined();

    // Spans are batched every second; wait for the last ones (the retried delivery's).
    const isTrace = (s: ReceivedSpan) => s.traceId === traceId;
    await otlp.waitFor(
      (spans) => spans.filter((s) => isTrace(s) && s.name === 'switchyard.deliver').length >= 3,
      30_000,
    );
    // The http process's request log line (debug) is written inside the request span.
    expect(http.stdout()).toContain(`"trace_id":"${traceId}"`);
    const attemptTraces = await attemptTraceIds(http.url, '710001');

    codes = await Promise.all([http.stop('SIGTERM'), worker.stop('SIGTERM')]);
    const trace = otlp.spans.filter(isTrace);
    const one = (name: string) => {
      const found = trace.filter((s) => s.name === name);
      expect(found, name).toHaveLength(1);
      return found[0]!;
    };
    const childrenOf = (parent: ReceivedSpan, name?: string) =>
      trace.filter((s) => s.parentSpanId === parent.spanId && (name === undefined || s.name === name));

    // The hook request: a SERVER span, child of the vendor's span, in the http process.
    const hook = one('POST /hooks/:instance');
    expect(hook.kind).toBe(SERVER);
    expect(hook.parentSpanId).toBe(vendorSpanId);
    expect(hook.resource['switchyard.role']).toBe('http');
    expect(hook.attributes).toMatchObject({
      'switchyard.connector': 'docplanner',
      'switchyard.instance': 'dp',
      'switchyard.route': 'default',
      'switchyard.ingest.outcome': 'accepted',
      'switchyard.dedupe_hit': false,
      'http.response.status_code': 200,
      // OpenTelemetry's HTTP server conventions require the scheme beside the path.
      'http.request.method': 'POST',
      'url.scheme': 'http',
      'http.route': '/hooks/:instance',
    });
    // The metric's exemplar is the request span.
    expect(exemplarSpanId).toBe(hook.spanId);
    // The durable store, inside the request.
    expect(one('switchyard.store').parentSpanId).toBe(hook.spanId);

    // Across the database: normalize in the worker process, child of the hook request.
    const normalize = one('switchyard.normalize');
    expect(normalize.kind).toBe(CONSUMER);
    expect(normalize.parentSpanId).toBe(hook.spanId);
    expect(normalize.resource['switchyard.role']).toBe('worker');
    // The messaging conventions' required operation attributes, on every consumer span.
    for (const consumer of [normalize, ...childrenOf(one('switchyard.fanout'), 'switchyard.deliver')])
      expect(consumer.attributes).toMatchObject({
        'messaging.system': 'switchyard',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
      });
    expect(normalize.resource['service.instance.id']).not.toBe(hook.resource['service.instance.id']);
    const fanout = one('switchyard.fanout');
    expect(fanout.parentSpanId).toBe(normalize.spanId);

    // One span per delivery attempt, children of the fan-out: crm twice (500 then 200), erp once.
    const deliveries = childrenOf(fanout, 'switchyard.deliver');
    expect(deliveries).toHaveLength(3);
    const summary = deliveries
      .map((d) => [
        d.attributes['switchyard.subscription'],
        d.attributes['switchyard.attempt'],
        d.attributes['switchyard.delivery.outcome'],
        d.attributes['http.response.status_code'],
      ])
      .sort((a, b) => String(a).localeCompare(String(b)));
    expect(summary).toEqual([
      ['crm', 1, 'retry', 500],
      ['crm', 2, 'succeeded', 200],
      ['erp', 1, 'succeeded', 200],
    ]);
    for (const d of deliveries) {
      expect(d.kind).toBe(CONSUMER);
      expect(d.resource['switchyard.role']).toBe('worker');
      // The POST to the subscriber: a CLIENT span whose id the subscriber got as its parent.
      const [post] = childrenOf(d, 'POST');
      expect(post?.kind).toBe(CLIENT);
      expect(post?.attributes['http.response.status_code']).toBe(d.attributes['http.response.status_code']);
    }
    const retry = deliveries.find((d) => d.attributes['switchyard.delivery.outcome'] === 'retry')!;
    expect(retry.attributes['switchyard.retry_in_ms']).toBeGreaterThan(0);
    // The attempt-latency exemplar is that attempt's span.
    expect(retryExemplarSpanId).toBe(retry.spanId);
    // The admin API's attempt log names the trace of each attempt (read before the stop).
    expect(attemptTraces.sort()).toEqual([traceId, traceId, traceId]);
    expect(retry.statusCode).toBe(0);
    const crmPost = childrenOf(
      deliveries.find(
        (d) => d.attributes['switchyard.subscription'] === 'crm' && d.attributes['switchyard.attempt'] === 2,
      )!,
      'POST',
    )[0]!;
    expect(crmOk.headers.traceparent).toBe(`00-${traceId}-${crmPost.spanId}-01`);

    // The malformed traceparent: its request started a trace of its own, a root span.
    const other = otlp.spans.filter(
      (s) => s.name === 'POST /hooks/:instance' && s.traceId !== traceId && s.parentSpanId === '',
    );
    expect(other).toHaveLength(1);

    if (process.env.SWITCHYARD_WATERFALL_OUT)
      writeFileSync(process.env.SWITCHYARD_WATERFALL_OUT, `${waterfall(trace)}\n`);
  } finally {
    if (codes.length === 0) codes = await Promise.all([http.stop('SIGTERM'), worker.stop('SIGTERM')]);
  }
  expect(codes).toEqual([0, 0]);
}, 120_000);

/**
 * The span id of the exemplar naming `traceId` on a bucket of the histogram `family` (whose line
 * holds `label`, if given), scraped as OpenMetrics (waits up to 10 s: a push's duration is observed
 * as the answer leaves, an attempt's when the attempt log is read at a scrape). The classic scrape of
 * the same process shows no exemplar.
 */
async function bucketExemplar(
  url: string,
  family: string,
  traceId: string,
  label = '',
): Promise<string | undefined> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await fetch(`${url}/metrics`, {
      headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' },
    });
    expect(res.headers.get('content-type')).toMatch(/^application\/openmetrics-text; version=1\.0\.0/);
    const text = await res.text();
    expect(text.trimEnd().endsWith('# EOF')).toBe(true);
    const line = text
      .split('\n')
      .find(
        (l) => l.startsWith(`${family}_bucket{`) && l.includes(label) && l.includes(`trace_id="${traceId}"`),
      );
    if (line !== undefined || Date.now() > deadline) {
      const classic = await fetch(`${url}/metrics`);
      expect(classic.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(await classic.text()).not.toContain('trace_id=');
      expect(line).toMatch(/ # \{trace_id="[0-9a-f]{32}",span_id="[0-9a-f]{16}"\} [\d.e-]+ [\d.]+$/);
      return /span_id="([0-9a-f]{16})"/.exec(line ?? '')?.[1];
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The `traceId` of every attempt of every delivery of the event of booking `bookingId` (admin API). */
async function attemptTraceIds(url: string, bookingId: string): Promise<(string | null)[]> {
  const get = async (path: string) =>
    (await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
  const { items } = (await get('/v1/events?limit=100')) as { items: { id: string }[] };
  const ids: (string | null)[] = [];
  for (const { id } of items) {
    const { event, deliveries } = (await get(`/v1/events/${id}`)) as {
      event: unknown;
      deliveries: { attemptLog: { traceId: string | null }[] }[];
    };
    if (!JSON.stringify(event).includes(`"${bookingId}"`)) continue;
    for (const d of deliveries) for (const a of d.attemptLog) ids.push(a.traceId);
  }
  return ids;
}

async function droppedSpans(url: string, reason: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`switchyard_trace_spans_dropped_total{reason="${reason}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

it('a collector that answers 500, or is not there, changes nothing for the pipeline; lost spans are counted', async () => {
  const failing = await startOtlpReceiver({ status: 500 });
  const subscriber = await startRecordingSubscriber({ secrets: signingSecret });
  const closedPort = await freePort();
  try {
    for (const [n, endpoint] of [
      [720000, failing.url],
      [730000, `http://127.0.0.1:${closedPort}/v1/traces`],
    ] as const) {
      const dir = tempDir('otel-down');
      const port = await freePort();
      writeConfig(dir, {
        port,
        database: '${env:SY_E2E_DATABASE_URL}',
        subscriptions: webhookSubscription('crm', `${subscriber.url}crm`),
        extra: ['telemetry:', '  traces:', `    endpoint: ${endpoint}`, '    sampleRatio: 1'],
      });
      const hub = spawnSwitchyard(['start', '--config', 'switchyard.yaml'], {
        cwd: dir,
        env: secretEnv(signingSecret, db.url()),
        port,
      });
      try {
        await hub.ready(90_000);
        const ids = Array.from({ length: 20 }, (_, i) => n + i);
        const statuses = await Promise.all(ids.map((id) => push(hub.url, id)));
        expect(statuses).toEqual(ids.map(() => 200));
        for (const id of ids) await subscriber.waitFor((r) => r.text.includes(`"${id}"`), 30_000);
        if (endpoint === failing.url) {
          // The collector refused every batch: the spans are counted as lost, nothing else happened.
          const deadline = Date.now() + 30_000;
          while ((await droppedSpans(hub.url, 'export_failed')) === 0 && Date.now() < deadline)
            await new Promise((r) => setTimeout(r, 200));
          expect(await droppedSpans(hub.url, 'export_failed')).toBeGreaterThan(0);
          expect(failing.requests).toBeGreaterThan(0);
          expect(failing.spans).toHaveLength(0);
        }
      } finally {
        // The final flush fails too, within the export timeout; the process still stops cleanly.
        expect(await hub.stop('SIGTERM')).toBe(0);
      }
    }
  } finally {
    await failing.close();
    await subscriber.close();
  }
}, 180_000);

it('a gate: the vendor waiting, the decision and each approver call are spans of the vendor request trace', async () => {
  const approver = await startRecordingSubscriber({
    secrets: signingSecret,
    defaultResponse: { status: 200, body: { decision: 'approve' } },
  });
  const dir = tempDir('otel-gate');
  const port = await freePort();
  writeConfig(dir, {
    port,
    database: '${env:SY_E2E_DATABASE_URL}',
    subscriptions: [
      '  - id: approver',
      '    kind: webhook',
      `    url: ${approver.url}approve`,
      '    events: ["schedule.updated"]',
      '    secrets: ["${env:E2E_SIGNING_SECRET}"]',
      '    allowPrivateAddresses: true',
      '    approver: {}',
    ],
    extra: ['telemetry:', '  traces:', `    endpoint: ${otlp.url}`],
  });
  const hub = spawnSwitchyard(['start', '--config', 'switchyard.yaml'], {
    cwd: dir,
    env: secretEnv(signingSecret, db.url()),
    port,
  });
  try {
    await hub.ready(90_000);
    // A real Docplanner slot-booking (connectors/docplanner/fixtures, from the vendor's documentation).
    const body = readFileSync(
      new URL('../../../connectors/docplanner/fixtures/slot-booking.json', import.meta.url),
      'utf8',
    );
    const res = await fetch(`${hub.url}/hooks/dp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': PUSH_KEY },
      body,
    });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    const asked = await approver.waitFor((r) => r.path === '/approve', 20_000);
    const traceId = asked.headers.traceparent?.split('-')[1];
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    await hub.stop('SIGTERM');

    const trace = otlp.spans.filter((s) => s.traceId === traceId);
    const named = (name: string) => trace.filter((s) => s.name === name);
    const [hook] = named('POST /hooks/:instance');
    const [wait] = named('switchyard.gate.wait');
    const [decide] = named('switchyard.gate.decide');
    const [call] = named('switchyard.gate.approver');
    expect(hook?.parentSpanId).toBe('');
    expect(wait?.parentSpanId).toBe(hook?.spanId);
    expect(decide?.parentSpanId).toBe(wait?.spanId);
    expect(decide?.attributes['switchyard.gate.decision']).toBe('approve');
    expect(call?.parentSpanId).toBe(decide?.spanId);
    expect(call?.attributes['switchyard.subscription']).toBe('approver');
    const post = trace.find((s) => s.name === 'POST' && s.parentSpanId === call?.spanId);
    expect(post?.kind).toBe(CLIENT);
    expect(asked.headers.traceparent).toBe(`00-${traceId}-${post?.spanId}-01`);
  } finally {
    expect(await hub.stop('SIGTERM')).toBe(0);
    await approver.close();
  }
}, 120_000);

it('a vendor key in the URL path, and a subscriber token in the query, are in no exported span', async () => {
  const subscriber = await startRecordingSubscriber({ secrets: signingSecret });
  // Clockwise.MD's path mode: the key is the last segment of the push URL (/hooks/{instance}/{key}).
  const pathKey = `cwkey${randomBytes(12).toString('hex')}`;
  const queryToken = `qtok${randomBytes(12).toString('hex')}`;
  const dir = tempDir('otel-redact');
  const port = await freePort();
  writeConfig(dir, {
    port,
    database: '${env:SY_E2E_DATABASE_URL}',
    subscriptions: webhookSubscription('tokened', `${subscriber.url}in?token=${queryToken}`),
    extra: ['telemetry:', '  traces:', `    endpoint: ${otlp.url}`, '    sampleRatio: 1'],
  });
  const hub = spawnSwitchyard(['start', '--config', 'switchyard.yaml'], {
    cwd: dir,
    env: secretEnv(signingSecret, db.url()),
    port,
  });
  try {
    await hub.ready(90_000);
    // Made through the admin API: the log's value scrubber has never seen this key.
    const created = await fetch(`${hub.url}/v1/instances`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        id: 'cw',
        connector: 'clockwisemd',
        settings: { auth: { mode: 'path', key: pathKey }, enrich: false },
      }),
    });
    expect(created.status).toBe(201);
    const body = readFileSync(
      new URL('../../../connectors/clockwisemd/fixtures/create.json', import.meta.url),
      'utf8',
    );
    // As written, and percent-encoded (the router decodes it to the same route, and the key is right).
    for (const path of [`/hooks/cw/${pathKey}`, `/%68ooks/cw/${pathKey}`]) {
      const res = await fetch(`${hub.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      await res.arrayBuffer();
      expect(res.status, path).toBeLessThan(300);
    }
    await subscriber.waitFor((r) => r.path.startsWith('/in?'), 30_000);
    const pushes = (spans: ReceivedSpan[]) =>
      spans.filter(
        (s) => s.name === 'POST /hooks/:instance/*' && s.attributes['switchyard.instance'] === 'cw',
      );
    const posts = (spans: ReceivedSpan[]) =>
      spans.filter((s) => s.name === 'POST' && String(s.attributes['url.full']).startsWith(subscriber.url));
    await otlp.waitFor((spans) => pushes(spans).length === 2 && posts(spans).length >= 1, 30_000);
    expect(await hub.stop('SIGTERM')).toBe(0);

    expect(pushes(otlp.spans).map((s) => s.attributes['url.path'])).toEqual(
      expect.arrayContaining(['/hooks/cw/[redacted]', '/%68ooks/cw/[redacted]']),
    );
    // The subscriber's URL: origin and path only.
    expect(posts(otlp.spans)[0]!.attributes['url.full']).toBe(`${subscriber.url}in`);
    for (const span of otlp.spans) {
      const exported = JSON.stringify({
        name: span.name,
        attributes: span.attributes,
        resource: span.resource,
      });
      expect(exported).not.toContain(pathKey);
      expect(exported).not.toContain(queryToken);
    }
  } finally {
    await hub.stop('SIGTERM');
    await subscriber.close();
  }
}, 120_000);
