/**
 * Child-process entry that runs one Switchyard hub for a benchmark scenario: the pipeline
 * (`createHub`) with the Docplanner connector and an HTTP front end, so the parent measures the
 * hub from outside and reads its peak resident memory on its own.
 *
 * The HTTP front end is the server's `buildApp()` when it is available; otherwise a minimal
 * node:http adapter that does what the hooks route does (body → `hub.ingest()` → answer).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import docplanner from '../../packages/connectors/docplanner/src/index.ts';
import { tracingDefaults } from '../../packages/server/src/config/units.ts';
import { createHub, type Hub, type PipelineOptions } from '../../packages/server/src/index.ts';
import { CHANNEL_DELIVER } from '../../packages/server/src/storage/queues.ts';
import type { SubscriptionFormat } from '../../packages/server/src/storage/subscription-row.ts';
import { startTelemetry, type Telemetry } from '../../packages/server/src/telemetry/index.ts';
import { serveChild } from './child.ts';
import { pg, pino, Registry } from './deps.ts';
import { INSTANCE_ID, instanceSettings, SECRET_KEY } from './docplanner.ts';

const databaseUrl = process.env.BENCH_DATABASE_URL!;
let hub: Hub | undefined;
let telemetry: Telemetry | undefined;
let telemetryRegistry: Parameters<typeof startTelemetry>[1]['registry'] | undefined;
let server: { close(): Promise<void> } | undefined;

/** Short retries so a hiccup does not stall a run for the production schedule's minutes. */
const BENCH_OPTIONS: PipelineOptions = {
  queue: false,
  retryScheduleMs: [0, 100, 1000],
};

function shim(h: Hub): http.Server {
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const [, hooks, instance, route] = (req.url ?? '').split('?')[0]!.split('/');
      if (hooks !== 'hooks' || !instance || req.method !== 'POST') {
        res.writeHead(404).end();
        return;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      h.ingest(instance, {
        route: route ?? 'default',
        params: {},
        query: {},
        method: 'POST',
        headers,
        rawBody: Buffer.concat(chunks),
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        receivedAt: new Date(),
      }).then(
        (r) => {
          const body = r.ok ? JSON.stringify(r.body ?? {}) : JSON.stringify(r.problem);
          res
            .writeHead(r.status, { 'content-type': 'application/json', ...(r.ok ? r.headers : {}) })
            .end(body);
        },
        () => res.writeHead(500).end(),
      );
    });
  });
}

type BuildApp = (options: { hub: Hub; adminToken: string | undefined }) => Promise<unknown>;

/** Finds the server's buildApp if the HTTP layer exists in this checkout. */
async function findBuildApp(): Promise<BuildApp | undefined> {
  for (const path of ['../../packages/server/src/http/app.ts', '../../packages/server/src/http/index.ts']) {
    try {
      const mod = (await import(path)) as { buildApp?: BuildApp };
      if (typeof mod.buildApp === 'function') return mod.buildApp;
    } catch {
      // not there (yet): try the next place, then fall back to the adapter
    }
  }
  return undefined;
}

interface FastifyLike {
  listen(o: { port: number; host: string }): Promise<string>;
  close(): Promise<void>;
  server: http.Server;
}

async function startHttp(h: Hub, useApp: boolean): Promise<{ port: number; front: string }> {
  const buildApp = useApp ? await findBuildApp() : undefined;
  if (buildApp) {
    const app = (await buildApp({ hub: h, adminToken: undefined })) as FastifyLike;
    await app.listen({ port: 0, host: '127.0.0.1' });
    server = { close: () => app.close() };
    return { port: (app.server.address() as AddressInfo).port, front: 'buildApp() (fastify)' };
  }
  const s = shim(h);
  s.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  server = { close: () => new Promise<void>((resolve) => s.close(() => resolve())) };
  return { port: (s.address() as AddressInfo).port, front: 'node:http adapter → hub.ingest()' };
}

/**
 * With BENCH_COUNT_QUERIES=1, counts every statement the hub sends (by its first words), to show
 * where the round trips per event go. Off by default: measured runs do not pay for it.
 */
const queryCounts = new Map<string, number>();
const querySendMs = new Map<string, number>();
const queryRoundTripMs = new Map<string, number>();
if (process.env.BENCH_COUNT_QUERIES === '1') {
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  pg.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0] as string | { text?: string };
    const text = (typeof first === 'string' ? first : (first?.text ?? ''))
      .replace(/\s+/g, ' ')
      .trim()
      .slice(0, 90);
    queryCounts.set(text, (queryCounts.get(text) ?? 0) + 1);
    // The synchronous part of query() includes sending the statement (the socket write) when
    // the client is idle: shows which statements cost the most to send.
    const t0 = performance.now();
    const result = original.apply(this, args);
    querySendMs.set(text, (querySendMs.get(text) ?? 0) + performance.now() - t0);
    if (result instanceof Promise)
      void result.then(
        () => queryRoundTripMs.set(text, (queryRoundTripMs.get(text) ?? 0) + performance.now() - t0),
        () => {},
      );
    return result;
  } as typeof pg.Client.prototype.query;
}

serveChild(
  {
    /** Statement counts since start (BENCH_COUNT_QUERIES=1), most frequent first. */
    queryCounts() {
      return [...queryCounts].sort((a, b) => b[1] - a[1]);
    },
    /** Milliseconds spent sending each statement (BENCH_COUNT_QUERIES=1), most expensive first. */
    querySendMs() {
      return [...querySendMs].sort((a, b) => b[1] - a[1]);
    },
    /** Milliseconds from sending each statement to its answer, summed (BENCH_COUNT_QUERIES=1). */
    queryRoundTripMs() {
      return [...queryRoundTripMs].sort((a, b) => b[1] - a[1]);
    },
    /** Creates and starts the hub, its instance and HTTP front end. */
    async start(
      opts: {
        workers?: boolean;
        useApp?: boolean;
        options?: PipelineOptions;
        /** OTLP/HTTP traces URL: tracing on at sample ratio 1 (bench/otel.ts); absent: off. */
        traces?: string;
      } = {},
    ) {
      if (opts.traces !== undefined) {
        telemetryRegistry = new Registry() as NonNullable<typeof telemetryRegistry>;
        telemetry = await startTelemetry(
          { endpoint: opts.traces, sampleRatio: 1 },
          { env: {}, registry: telemetryRegistry, role: 'all', defaults: tracingDefaults() },
        );
      }
      hub = await createHub({
        databaseUrl,
        connectors: [docplanner],
        secretKey: SECRET_KEY,
        logger: pino({ level: 'error' }),
        // BENCH_HUB_OPTIONS='{"normalizeConcurrency":64}' tries other pipeline options.
        options: {
          ...BENCH_OPTIONS,
          workers: opts.workers ?? true,
          ...(JSON.parse(process.env.BENCH_HUB_OPTIONS ?? '{}') as PipelineOptions),
          ...opts.options,
        },
      });
      await hub.start();
      await hub.instances.upsert({
        id: INSTANCE_ID,
        connector: 'docplanner',
        mode: 'push',
        settings: instanceSettings,
      });
      return startHttp(hub, opts.useApp ?? true);
    },
    /**
     * Creates `count` webhook subscriptions to `url` (loopback allowed) with the body `format`
     * (default cloudevents); returns their ids.
     */
    async subscribe(url: string, count: number, format: SubscriptionFormat = 'cloudevents') {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const { subscription } = await hub!.subscriptions.create({
          url,
          format,
          eventTypes: ['appointment.*'],
          allowPrivateAddresses: true,
          retryScheduleMs: [0, 100, 1000],
          timeoutMs: 10_000,
        });
        ids.push(subscription.id);
      }
      return ids;
    },
    /** Replays every event since `sinceIso` to a subscription. */
    async replaySince(subscriptionId: string, sinceIso: string) {
      return hub!.deliveries.replaySince(subscriptionId, new Date(sinceIso));
    },
    /** Span counters of a traced run: exported and dropped (by reason). */
    async traceCounts() {
      await telemetry?.flush();
      const metrics = (await telemetryRegistry?.getMetricsAsJSON()) ?? [];
      const out: Record<string, number> = {};
      for (const m of metrics)
        for (const v of m.values)
          out[`${m.name}${v.labels.reason ? `{${v.labels.reason}}` : ''}`] = Number(v.value);
      return out;
    },
    /** The notification channel the deliver workers listen on (for rows queued by SQL). */
    deliverChannel() {
      return CHANNEL_DELIVER;
    },
  },
  async () => {
    await server?.close();
    await hub?.stop({ graceful: true });
    await telemetry?.shutdown();
  },
);
