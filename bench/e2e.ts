/**
 * End to end: sustained events/s from vendor push to subscriber 2xx with 1 and with 10
 * subscriptions, the hub as users run it (`switchyard start`, bench/lib/cli-hub.ts), beside raw
 * pg-boss moving the same number of jobs (one per delivery) through send → work with a no-op handler,
 * and beside the pipeline floor (bench/lib/pipeline-floor.ts: durable push → signed POST → record,
 * none of the hub's features) taking the same pushes to the same subscriber.
 */
import { DELIVERY_SOCKETS_PER_ORIGIN } from '../packages/server/src/delivery/http-post.ts';
import { cannon, hookUrl } from './lib/load.ts';
import { type BenchOptions, type BenchResult, mib, row, waitUntil } from './lib/result.ts';
import { PGBOSS_ENTRY, PIPELINE_FLOOR_ENTRY, withChild, withCliHub } from './lib/scenario.ts';
import { type FastSubscriber, startFastSubscriber } from './lib/subscriber.ts';

export interface HubRun {
  eventsPerSecond: number;
  deliveriesPerSecond: number;
  ingestSeconds: number;
  seconds: number;
  rss: number;
  /**
   * Traced runs: the hub's span counters (`/metrics`) once the last delivery was in: spans the
   * collector took, and spans dropped (queue full, export failed). A traced arm that drops spans
   * does less work than tracing asks.
   */
  spans?: { exported: number; dropped: number };
}

/** The hub's span counters from its `/metrics` (Prometheus text). */
async function spanCounters(port: number): Promise<{ exported: number; dropped: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const sum = (name: string) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(name))
      .reduce((total, line) => total + Number(line.split(' ').at(-1)), 0);
  return {
    exported: sum('switchyard_trace_spans_exported_total'),
    dropped: sum('switchyard_trace_spans_dropped_total'),
  };
}

/**
 * A warm-up (JIT, pools, plans and table statistics before the clock starts), then `events` pushes
 * from autocannon timed from the first push to the last of their `perEvent` deliveries each.
 */
async function timedPushes(
  port: number,
  subscriber: FastSubscriber,
  events: number,
  perEvent: number,
  what: string,
): Promise<{ seconds: number; ingestSeconds: number }> {
  const warm = Math.min(500, events);
  await cannon({ url: hookUrl(port), amount: warm, tag: 1 });
  await waitUntil(() => subscriber.count >= warm * perEvent, `${what} warm-up deliveries`, 120_000);
  const before = subscriber.count;
  const started = performance.now();
  const pushed = await cannon({ url: hookUrl(port), amount: events, tag: 2 });
  if (pushed.non2xx > 0 || pushed.errors > 0)
    throw new Error(`${what} push had ${pushed.non2xx} non-2xx, ${pushed.errors} errors`);
  await waitUntil(() => subscriber.count >= before + events * perEvent, `${what} deliveries`, 600_000);
  return { seconds: (subscriber.lastAt - started) / 1000, ingestSeconds: pushed.seconds };
}

/**
 * One `switchyard start` hub, `subscriptions` webhook subscriptions of one body `format` to a fast
 * subscriber, tracing on when `start.traces` names an OTLP endpoint; events/s from the first push to
 * the last 2xx after a warm-up. Also used by bench/fhir.ts and bench/otel.ts.
 */
export async function hubRun(
  options: BenchOptions,
  events: number,
  subscriptions: number,
  start: { traces?: string; format?: string } = {},
): Promise<HubRun> {
  const subscriber = await startFastSubscriber();
  try {
    const subscribers = Array.from({ length: subscriptions }, () => subscriber.url);
    return await withCliHub(options.adminUrl, { subscribers, ...start }, async (hub) => {
      const t = await timedPushes(hub.port, subscriber, events, subscriptions, 'e2e');
      return {
        eventsPerSecond: events / t.seconds,
        deliveriesPerSecond: (events * subscriptions) / t.seconds,
        ingestSeconds: t.ingestSeconds,
        seconds: t.seconds,
        rss: hub.peakRss(),
        ...(start.traces ? { spans: await spanCounters(hub.port) } : {}),
      };
    });
  } finally {
    await subscriber.close();
  }
}

/**
 * The pipeline floor (bench/lib/pipeline-floor.ts) taking `events` pushes to a fast subscriber, timed
 * as {@link hubRun} times the hub: from the first push after a warm-up to the last 2xx.
 */
async function pipelineFloorRun(
  options: BenchOptions,
  events: number,
): Promise<{ eventsPerSecond: number; ingestSeconds: number; seconds: number; rss: number }> {
  const subscriber = await startFastSubscriber();
  try {
    return await withChild(options.adminUrl, PIPELINE_FLOOR_ENTRY, async (child) => {
      const { port } = await child.call<{ port: number }>('start', { subscriber: subscriber.url });
      const t = await timedPushes(port, subscriber, events, 1, 'pipeline floor');
      return {
        eventsPerSecond: events / t.seconds,
        ingestSeconds: t.ingestSeconds,
        seconds: t.seconds,
        rss: await child.peakRss(),
      };
    });
  } finally {
    await subscriber.close();
  }
}

async function bossRun(options: BenchOptions, jobs: number): Promise<{ jobsPerSecond: number; rss: number }> {
  return withChild(options.adminUrl, PGBOSS_ENTRY, async (child) => {
    await child.call('start');
    await child.call('throughput', Math.min(500, jobs), 50);
    const r = await child.call<{ jobsPerSecond: number }>('throughput', jobs, 50);
    return { jobsPerSecond: r.jobsPerSecond, rss: await child.peakRss() };
  });
}

export async function run(options: BenchOptions): Promise<BenchResult> {
  const one = options.quick ? 1000 : 20_000;
  const ten = options.quick ? 200 : 3000;

  options.log(`e2e: hub, 1 subscription, ${one} events`);
  const hub1 = await hubRun(options, one, 1);
  options.log(`e2e: pg-boss, ${one} jobs`);
  const boss1 = await bossRun(options, one);
  options.log(`e2e: pipeline floor, ${one} events`);
  const floor1 = await pipelineFloorRun(options, one);
  options.log(`e2e: hub, 10 subscriptions, ${ten} events`);
  const hub10 = await hubRun(options, ten, 10);
  options.log(`e2e: pg-boss, ${ten * 10} jobs`);
  const boss10 = await bossRun(options, ten * 10);

  const label = (n: number) => `pg-boss send→work, no-op, ${n.toLocaleString('en')} jobs`;
  return {
    name: 'End to end',
    rows: [
      row('E2E events/s, 1 subscription', hub1.eventsPerSecond, boss1.jobsPerSecond, {
        unit: 'events/s',
        baselineLabel: `${label(one)} (jobs/s)`,
        higherIsBetter: true,
        target: { kind: 'min', value: 1000, label: '≥ 1,000 events/s' },
      }),
      row(
        'E2E events/s, 1 subscription, against the pipeline floor',
        hub1.eventsPerSecond,
        floor1.eventsPerSecond,
        {
          unit: 'events/s',
          baselineLabel: 'pipeline floor: bare fastify + 1 INSERT → claim → signed POST → record',
          higherIsBetter: true,
        },
      ),
      row('E2E deliveries/s, 10 subscriptions', hub10.deliveriesPerSecond, boss10.jobsPerSecond, {
        unit: 'deliveries/s',
        baselineLabel: `${label(ten * 10)} (jobs/s)`,
        higherIsBetter: true,
      }),
      row('E2E events/s, 10 subscriptions', hub10.eventsPerSecond, boss10.jobsPerSecond / 10, {
        unit: 'events/s',
        baselineLabel: `${label(ten * 10)} (jobs/s ÷ 10)`,
        higherIsBetter: true,
      }),
      row('Peak RSS, e2e 1 subscription', mib(hub1.rss), mib(boss1.rss), {
        unit: 'MiB',
        baselineLabel: 'pg-boss process',
        target: { kind: 'max', value: 250, label: '< 250 MiB' },
      }),
      row('Peak RSS, e2e 10 subscriptions', mib(hub10.rss), mib(boss10.rss), {
        unit: 'MiB',
        baselineLabel: 'pg-boss process',
      }),
    ],
    notes: [
      "Hub: `switchyard start` with every role and default logging to a file (bench/lib/cli-hub.ts), one Docplanner push instance, 1 or 10 webhook subscriptions to one subscriber URL, default retry schedule and worker settings; peak RSS is the hub process's VmHWM from /proc.",
      `Hub: ${one.toLocaleString('en')} (1 subscription) and ${ten.toLocaleString('en')} (10 subscriptions) unique slot-booked pushes from autocannon (50 connections) after a 500-push warm-up; the clock runs from the first push to the last subscriber 2xx. Pushing took ${hub1.ingestSeconds.toFixed(1)} s and ${hub10.ingestSeconds.toFixed(1)} s of the ${hub1.seconds.toFixed(1)} s and ${hub10.seconds.toFixed(1)} s.`,
      'Subscriber: a node:http server answering 200 at once, in the load-generator process.',
      'pg-boss: same process sends (50 in flight) and works (batchSize 50, burstWhenBatchFull, useListenNotify, queue notify: true); one job per delivery.',
      `Pipeline floor (bench/lib/pipeline-floor.ts): a minimal durable push → webhook pipeline in one process — a bare fastify route INSERTs each push (pg Pool 10) and answers after the commit; with fewer than ${DELIVERY_SOCKETS_PER_ORIGIN} POSTs in flight (the connections the hub opens to one subscriber) the push is stored claimed and POSTed at once, else it waits as pending for a claim (FOR UPDATE SKIP LOCKED); each POST carries a Standard Webhooks signature, and the 2xx are recorded by one UPDATE at a time. No normalization, dedupe, ordering, event log, fan-out, retries or attempt history. Same pushes, same subscriber, same clock as the hub's row: pushing took ${floor1.ingestSeconds.toFixed(1)} s of ${floor1.seconds.toFixed(1)} s; peak RSS ${mib(floor1.rss).toFixed(0)} MiB.`,
    ],
  };
}
