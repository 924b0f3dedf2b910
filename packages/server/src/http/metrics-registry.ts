import { performance } from 'node:perf_hooks';
import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type HistogramConfiguration,
  type Metric,
  type MetricObjectWithValues,
  type MetricValue,
  type OpenMetricsContentType,
  Registry,
} from 'prom-client';
import { feedGaps } from '../events/store.ts';
import type { Hub } from '../pipeline/hub.ts';
import { queueDepths } from '../storage/queues.ts';
import { databaseErrorCounts, isDatabaseUnavailable } from '../storage/unavailable.ts';
import { exemplarOfTraceparent } from '../telemetry/tracing.ts';
import {
  countAttemptsSince,
  deadBySubscription,
  deliveryCounts,
  feedBacklogs,
  maxAttemptId,
  probeDatabaseWithin,
  pullHealth,
  subscriptionStates,
} from './hub-stats.ts';

/**
 * The hub's Prometheus metrics, on their own registry (nothing global, so several apps in one
 * process, as in tests, never collide).
 */
export interface HttpMetrics {
  registry: Registry;
  /** Inbound pushes by instance and outcome (`accepted`, `duplicate`, `empty`, `unauthorized`, ...). */
  ingestRequests: Counter<'instance' | 'outcome'>;
  /**
   * Time from request to answer of inbound pushes, seconds. With exemplars: each bucket names the
   * trace of the last push it counted (`observe({ labels, value, exemplarLabels })`), shown when
   * `/metrics` is scraped as OpenMetrics ({@link metricsExposition}).
   */
  ingestDuration: Histogram<'instance' | 'outcome'>;
  /**
   * Gate decisions (`outcome`: approve/refuse, `reason`). Registered here so `/metrics` lists the
   * family before any decision; the gates, given this registry as the host's (`createHub({ metrics })`),
   * increment this counter rather than registering the name again (gates/metrics.ts).
   */
  gateDecisions: Counter<'instance' | 'outcome' | 'reason'>;
  /**
   * Delivery attempt latency by outcome, seconds (read from the attempt log at scrape time). With
   * exemplars like `ingestDuration`: each bucket names the `switchyard.deliver` span of the last
   * traced attempt it counted.
   */
  attemptLatency: Histogram<'outcome'>;
}

/** The subscription label of an attempt whose subscription was deleted since. */
export const DELETED_SUBSCRIPTION_LABEL = '_deleted';

/** Instances that do not exist must not create label values (an attacker could invent millions). */
export const UNKNOWN_INSTANCE_LABEL = '_unknown';

/**
 * Creates the metrics. Pass the result to `buildApp({ metrics })`, and its `registry` to
 * `createHub({ metrics })` so the subsystems register theirs beside (one `/metrics` per process).
 *
 * @example
 * ```ts
 * const metrics = createMetrics();
 * metrics.gateDecisions.inc({ instance: 'dp-main', outcome: 'approve', reason: 'approved' });
 * ```
 */
export function createMetrics(): HttpMetrics {
  const registry = new Registry();
  // The same objects in every registry of the process: they describe the process, not the app.
  for (const metric of runtimeMetrics().getMetricsAsArray())
    registry.registerMetric(metric as unknown as Metric);
  return {
    registry,
    ingestRequests: new Counter({
      name: 'switchyard_ingest_requests_total',
      help: 'Inbound vendor pushes answered, by instance and outcome.',
      labelNames: ['instance', 'outcome'],
      registers: [registry],
    }),
    ingestDuration: withExemplars(registry, {
      name: 'switchyard_ingest_duration_seconds',
      help: 'Time to answer an inbound vendor push (after the durable write), by instance and outcome.',
      labelNames: ['instance', 'outcome'],
      // Up to the longest gate deadline (30 s, GATE_DEADLINE_MS): a gate push is answered at its
      // decision, so ending at 5 s put every default answered at a longer deadline in +Inf.
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }),
    gateDecisions: new Counter({
      name: 'switchyard_gate_decisions_total',
      help: 'Synchronous approval (gate) decisions, by instance, outcome and reason.',
      labelNames: ['instance', 'outcome', 'reason'],
      registers: [registry],
    }),
    attemptLatency: withExemplars(registry, {
      name: 'switchyard_delivery_attempt_duration_seconds',
      help: 'Latency of delivery attempts to subscribers (recorded since this process started), by outcome.',
      labelNames: ['outcome'],
      // Up to the longest subscription timeout (120 s, TIMEOUT_MS): an attempt is timed until it.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      // Fed from the attempt log as it is read for the scrape (bindHubMetrics), so a scrape shows
      // the attempts recorded up to it, not those up to the scrape before.
      async collect() {
        await attemptFeeds.get(this)?.();
      },
    }),
  };
}

/**
 * How often the event loop's delay is sampled (`nodejs_eventloop_lag_*`), in ms. prom-client's
 * default, 10 ms, is a timer waking the process 100 times a second: measured alone (a Node 24
 * process doing nothing else, CPU over 20 s) it cost 0.53 % of a core, more than the idle hub's whole
 * budget (docs/benchmarks.md, "Idle"); 100 ms cost 0.06 % and 1,000 ms 0.007 %. A second's sampling
 * still shows a loop kept busy for long stretches; what the loop did between samples is
 * `nodejs_eventloop_busy_seconds_total`, counted without a timer.
 */
export const EVENT_LOOP_SAMPLE_MS = 1000;

let runtime: Registry | undefined;

/**
 * The process's runtime series: prom-client's default metrics (`process_cpu_seconds_total`,
 * `process_resident_memory_bytes`, `process_open_fds`, `nodejs_heap_size_used_bytes`,
 * `nodejs_heap_space_size_used_bytes`, `nodejs_gc_duration_seconds`, `nodejs_eventloop_lag_*`,
 * `nodejs_active_handles`, ...) under their usual names, which Node.js dashboards expect, and the
 * event loop's busy time. Made once per process: the defaults start an event-loop monitor and a GC
 * observer each time they are collected into a registry, and tests run many apps in one process.
 */
function runtimeMetrics(): Registry {
  if (runtime) return runtime;
  runtime = new Registry();
  collectDefaultMetrics({ register: runtime, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  let counted = 0;
  new Counter({
    name: 'nodejs_eventloop_busy_seconds_total',
    help: "Seconds the process's event loop spent running code (not waiting for I/O or timers) since it started; its rate is the event loop's utilization (1: saturated).",
    registers: [runtime],
    collect() {
      // Cumulative since the process started, read at the scrape: no timer, nothing missed.
      const active = performance.eventLoopUtilization().active / 1000;
      if (active > counted) this.inc(active - counted);
      counted = active;
    },
  });
  // Counted where every caller reports the database's condition (reportDatabaseUnavailable), so
  // one place sees every push refused, worker pass given back and request answered 503.
  const served = new Map<string, number>();
  new Counter({
    name: 'switchyard_database_errors_total',
    help: "Operations of this process that met the database's condition (a full disk, out of memory, an I/O error, read-only, unreachable; pool_exhausted: no connection of the hub's own pool came free in time, Postgres may be answering; aborted: a deadlock, a serialization conflict or a cancel, run again), by condition.",
    labelNames: ['condition'],
    registers: [runtime],
    collect() {
      for (const [condition, n] of databaseErrorCounts()) {
        const before = served.get(condition) ?? 0;
        if (n > before) this.inc({ condition }, n - before);
        served.set(condition, n);
      }
    },
  });
  return runtime;
}

/**
 * The text of a scrape of `registry` and its content type, in the format the scraper asks for:
 * OpenMetrics (with exemplars: the trace of a push beside its duration's bucket) when its `Accept`
 * header names `application/openmetrics-text`, as Prometheus's does by default; else the classic
 * Prometheus text format, which has no exemplars. The metrics are the same objects either way: an
 * OpenMetrics registry is made for the scrape and given every metric of `registry` (subsystems
 * register theirs on it after start, so it is not made once).
 *
 * @example
 * ```ts
 * const { contentType, text } = await metricsExposition(metrics.registry, request.headers.accept);
 * reply.type(contentType).send(text);
 * ```
 */
export async function metricsExposition(
  registry: Registry,
  accept: string | undefined,
): Promise<{ contentType: string; text: string }> {
  if (!accept?.includes('application/openmetrics-text')) {
    return { contentType: registry.contentType, text: await registry.metrics() };
  }
  const open = new Registry<OpenMetricsContentType>();
  open.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  for (const metric of registry.getMetricsAsArray()) open.registerMetric(openMetricsView(metric));
  return { contentType: open.contentType, text: await open.metrics() };
}

/** What prom-client reads of a metric to serialize it (its objects, typed by it as descriptions). */
interface Serializable {
  name: string;
  type: string;
  get(): Promise<MetricObjectWithValues<MetricValue<string>>>;
  /** A histogram's values with their exemplars, which the text serializer prefers to `get()`. */
  getForPromString?(): Promise<MetricObjectWithValues<MetricValue<string>>>;
}

/**
 * A metric as an OpenMetrics registry may serialize it without changing it. prom-client's
 * OpenMetrics serializer renames the counters it is given (`name` without `_total`, on the object),
 * so after one OpenMetrics scrape every Prometheus-text scrape named the hub's counters
 * `switchyard_ingest_requests` instead of `switchyard_ingest_requests_total`: the series a
 * text-format scraper, an alert or a dashboard knew went missing. The view carries the OpenMetrics
 * family name and reads the metric's values; the metric keeps its own.
 */
function openMetricsView(metric: unknown): Metric {
  const m = metric as Serializable;
  const name = m.type === 'counter' ? m.name.replace(/_total$/, '') : m.name;
  const read = m.getForPromString ?? m.get;
  const view = { name, type: m.type, get: async () => ({ ...(await read.call(m)), name }) };
  return view as unknown as Metric;
}

/**
 * A histogram with exemplars on the hub's (Prometheus-format) registry. prom-client refuses
 * exemplars on a metric constructed with a Prometheus-format registry, because that format cannot
 * show them; the hub's registry serves both formats ({@link metricsExposition}), so the histogram
 * is registered after construction: the Prometheus text leaves its exemplars out, OpenMetrics shows
 * them.
 */
function withExemplars<T extends string>(
  registry: Registry,
  config: Omit<HistogramConfiguration<T>, 'registers' | 'enableExemplars'>,
): Histogram<T> {
  const histogram = new Histogram<T>({ ...config, enableExemplars: true, registers: [] });
  registry.registerMetric(histogram);
  return histogram;
}

const bound = new WeakMap<Registry, Hub>();

/** How long a scrape waits for the database's answer to `switchyard_database_up`'s probe. */
const DATABASE_PROBE_MS = 3000;

/** The read's value, or undefined when the database is unavailable (other errors are thrown). */
async function unlessUnavailable<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (error) {
    if (isDatabaseUnavailable(error)) return undefined;
    throw error;
  }
}

/** What feeds each attempt-latency histogram from the attempt log (set by {@link bindHubMetrics}). */
const attemptFeeds = new WeakMap<Histogram<'outcome'>, () => Promise<void>>();

/**
 * Wraps a read so that callers who ask while it runs share its answer instead of starting their
 * own. `/metrics` takes no credentials and prom-client collects each scrape's metrics concurrently:
 * without it, fifty scrapes at once ran fifty counts of the deliveries table on the pool pushes
 * use; with it, one set of the scrape's statements is in flight at any time, however many scrape.
 * A read that ends is not kept: the next caller reads afresh.
 *
 * @example
 * ```ts
 * const counts = sharedWhileRunning(() => deliveryCounts(db));
 * const [a, b] = await Promise.all([counts(), counts()]); // one query, one answer
 * ```
 */
export function sharedWhileRunning<T>(read: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  return () =>
    (running ??= read().finally(() => {
      running = undefined;
    }));
}

/**
 * Adds the gauges whose values live in the database (deliveries by status, queue depths, pull lag
 * per instance) and feeds the attempt-latency histogram from the attempt log; all are read when
 * Prometheus scrapes. Once per registry.
 */
export function bindHubMetrics(metrics: HttpMetrics, hub: Hub): void {
  if (bound.has(metrics.registry)) return;
  bound.set(metrics.registry, hub);
  const { registry } = metrics;
  const db = hub.host.db;
  // While the database is unavailable a scrape still answers, without the series read from it:
  // the process's own (pushes refused, stalled requests) are what shows the outage, and a 503 lost
  // them all (an operator audit). `switchyard_database_up` says which case a scrape is.
  const counts = sharedWhileRunning(() => unlessUnavailable(deliveryCounts(db)));
  const depths = sharedWhileRunning(() => unlessUnavailable(queueDepths(db)));
  const pulls = sharedWhileRunning(() => unlessUnavailable(pullHealth(db)));
  const subscriptions = sharedWhileRunning(() => unlessUnavailable(subscriptionStates(db)));
  const dead = sharedWhileRunning(() => unlessUnavailable(deadBySubscription(db)));
  const gaps = sharedWhileRunning(() => unlessUnavailable(feedGaps(db)));
  const backlogs = sharedWhileRunning(() => unlessUnavailable(feedBacklogs(db)));

  new Gauge({
    name: 'switchyard_database_up',
    help: "1 when the database answered this process's probe for the scrape, 0 when not (the series read from the database are then absent).",
    registers: [registry],
    async collect() {
      this.set(
        await probeDatabaseWithin(db, DATABASE_PROBE_MS).then(
          () => 1,
          () => 0,
        ),
      );
    },
  });

  new Gauge({
    name: 'switchyard_deliveries',
    help: 'Deliveries currently stored, by status (pending, in_flight, succeeded, dead, replayed, skipped, held); dead: not replayed.',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [status, count] of Object.entries((await counts()) ?? {})) this.set({ status }, count);
    },
  });

  new Gauge({
    name: 'switchyard_deliveries_dead',
    help: 'Dead deliveries not yet replayed or skipped, by subscription (0 for one without any).',
    labelNames: ['subscription'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { subscription, dead: n } of (await dead()) ?? []) this.set({ subscription }, n);
    },
  });

  new Gauge({
    name: 'switchyard_feed_gap_events',
    help: 'Events retention removed before a pull subscription acknowledged them (disabled, or past retention.unreadEvents), until its reader acknowledges past them; only subscriptions with such a gap.',
    labelNames: ['subscription'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const gap of (await gaps()) ?? []) this.set({ subscription: gap.subscription }, gap.events);
    },
  });

  // Retention keeps every event after the lowest position of the enabled pull subscriptions: a
  // reader never started or stopped grows the events table until retention.unreadEvents (180 days).
  new Gauge({
    name: 'switchyard_feed_unread_events',
    help: 'Per enabled pull subscription: at most this many events are stored after its acknowledged position (sequence numbers from the first stored one to the newest; an upper bound: its filter is not applied), which retention keeps until retention.unreadEvents.',
    labelNames: ['subscription'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const b of (await backlogs()) ?? []) this.set({ subscription: b.subscription }, b.unreadEvents);
    },
  });

  new Gauge({
    name: 'switchyard_feed_oldest_unread_age_seconds',
    help: 'Per enabled pull subscription: age of the first event stored after its acknowledged position (0 when none); past retention.events its reader is what keeps events retention would remove.',
    labelNames: ['subscription'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const b of (await backlogs()) ?? [])
        this.set({ subscription: b.subscription }, b.oldestUnreadAgeSeconds);
    },
  });

  new Gauge({
    name: 'switchyard_queue_depth',
    help: "Work waiting: inbound messages to normalize, deliveries due or retrying (not a disabled subscription's, parked until it is enabled).",
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      const depth = await depths();
      if (!depth) return;
      this.set({ queue: 'normalize' }, depth.normalize);
      this.set({ queue: 'deliver' }, depth.deliver);
    },
  });

  new Gauge({
    name: 'switchyard_pull_lag_seconds',
    help: 'Age of the oldest notification of the last pulled batch when it arrived, per pull instance.',
    labelNames: ['instance'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { instance, lagMs } of (await pulls()) ?? [])
        if (lagMs !== null) this.set({ instance }, lagMs / 1000);
    },
  });

  new Gauge({
    name: 'switchyard_subscription_disabled',
    help: 'Per subscription: 1 while it is disabled (after consecutive dead deliveries, a 410 Gone, or by an operator), else 0. A disabled subscription is attempted no more: its events wait for a re-enable (replayMissed).',
    labelNames: ['subscription'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { subscription, disabled } of (await subscriptions()) ?? [])
        this.set({ subscription }, disabled ? 1 : 0);
    },
  });

  // The lag keeps the last batch's value while every poll fails (a vendor down, rate-limiting, or
  // refusing the key): these two are what move then, and go back to 0 / now when a poll fetches.
  new Gauge({
    name: 'switchyard_pull_consecutive_failures',
    help: "Polling turns of a pull instance that failed in a row (vendor error, rate limit, store failure); 0 once a turn fetched. The reason is the instance's last_error (dashboard, GET /v1/instances/{id}/health).",
    labelNames: ['instance'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { instance, consecutiveFailures } of (await pulls()) ?? [])
        this.set({ instance }, consecutiveFailures);
    },
  });

  new Gauge({
    name: 'switchyard_pull_last_success_timestamp_seconds',
    help: 'Unix time a polling turn of a pull instance last fetched from its vendor (absent before one did).',
    labelNames: ['instance'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { instance, lastSuccessAt } of (await pulls()) ?? [])
        if (lastSuccessAt) this.set({ instance }, lastSuccessAt.getTime() / 1000);
    },
  });

  // Counted by the pipeline in memory: the time since the last scrape is added at each one.
  let gaveWay = 0;
  new Counter({
    name: 'switchyard_ingest_first_seconds_total',
    help: "Seconds this process's normalize worker ran one run at a time because vendor pushes queued for their durable write (workers.ingestFirst).",
    registers: [registry],
    collect() {
      const now = hub.ingestPressure.pressedSeconds;
      if (now > gaveWay) this.inc(now - gaveWay);
      gaveWay = now;
    },
  });

  new Gauge({
    name: 'switchyard_delivery_requests_stalled',
    help: "Delivery requests of this process unanswered for 2 s and still running, by subscription: their slots went to other subscribers, and the process takes none of the subscription's deliveries until its subscriber answers.",
    labelNames: ['subscription'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [subscription, n] of hub.stalledDeliveryRequests()) this.set({ subscription }, n);
    },
  });

  new Gauge({
    name: 'switchyard_pull_spool_refused',
    help: "1 while this process's pull spool (workers.pullSpoolDir) refuses its check: no pull of the process fetches anything (a read-only or full disk); else 0.",
    registers: [registry],
    collect() {
      this.set(hub.pullSpoolRefused() ? 1 : 0);
    },
  });

  new Gauge({
    name: 'switchyard_feed_long_polls',
    help: 'Pull feed reads of this process waiting for an event (`wait`); at the bound (1000 by default) one more is refused with 503.',
    registers: [registry],
    collect() {
      this.set(hub.feed.waiting());
    },
  });

  // The attempt log is append-only with a serial id: observe each new attempt once per process,
  // from the end of the log when the process started (read now; the first scrape reads it if the
  // database did not answer then), so attempts before the first scrape are counted too.
  let after: string | undefined;
  const starting = maxAttemptId(db).then(
    (id) => {
      after ??= id;
    },
    () => {},
  );
  let observed = 0;
  // By subscription: which subscriber fails (the histogram has no subscription label, which would
  // multiply its buckets by the subscriptions; a counter is one series per subscription and outcome).
  const bySubscription = new Counter({
    name: 'switchyard_delivery_attempts_total',
    help: 'Delivery attempts recorded since this process started (read from the attempt log at scrape), by subscription and outcome.',
    labelNames: ['subscription', 'outcome'],
    registers: [registry],
    async collect() {
      await fed();
    },
  });
  const feed = async () => {
    await starting;
    after ??= await maxAttemptId(db);
    const { attempts, last } = await countAttemptsSince(db, after);
    for (const a of attempts) {
      // The trace of the attempt's span, if it was traced (prom-client types exemplar labels
      // as the metric's own label names).
      const exemplar: Record<string, string> | undefined = exemplarOfTraceparent(a.traceparent);
      metrics.attemptLatency.observe({
        labels: { outcome: a.outcome },
        value: a.latencyMs / 1000,
        exemplarLabels: exemplar,
      });
      // A subscription deleted since its attempt was recorded has no row to name it.
      bySubscription.inc({ subscription: a.subscription ?? DELETED_SUBSCRIPTION_LABEL, outcome: a.outcome });
    }
    after = last;
    observed += attempts.length;
  };
  // One feed at a time, shared by whatever asks while it runs: the histogram and the gauge below
  // read the same feed, and two scrapes at once read the log once.
  const fed = sharedWhileRunning(async () => {
    await unlessUnavailable(feed());
  });
  attemptFeeds.set(metrics.attemptLatency, fed);
  new Gauge({
    name: 'switchyard_delivery_attempts_observed',
    help: 'Delivery attempts fed into switchyard_delivery_attempt_duration_seconds by this process.',
    registers: [registry],
    async collect() {
      await fed();
      this.set(observed);
    },
  });
}
