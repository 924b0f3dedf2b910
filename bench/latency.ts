/**
 * Latency and cost at a steady 200 events/s (open loop), the hub as users run it
 * (`switchyard start`, bench/lib/cli-hub.ts, one subscription): push → subscriber p50/p99, and the
 * CPU per delivered event read from /proc (bench/lib/proc-cpu.ts) for the hub process and the
 * Postgres backends of its database, with Postgres' share split by pipeline stage and the stage
 * timings from the hub's rows. Beside it, in the same run: the floor (bare fastify + one INSERT)
 * at the same rate, its CPU per durable acknowledgement measured the same way; the pipeline floor
 * (bench/lib/pipeline-floor.ts: durable push → signed POST → record, none of the hub's features) at
 * the same rate, its latency and CPU per delivered event measured as the hub's; and pg-boss send →
 * handler start at the same rate with LISTEN/NOTIFY wake-ups.
 */
import { closeAgent, latencyWarmUp, paced } from './lib/load.ts';
import { CpuMeter, type CpuReading, type Stage } from './lib/proc-cpu.ts';
import { type BenchOptions, type BenchResult, mib, percentile, row, waitUntil } from './lib/result.ts';
import {
  BASELINE_ENTRY,
  busyTablesCounted,
  PGBOSS_ENTRY,
  PIPELINE_FLOOR_ENTRY,
  withChild,
  withCliHub,
} from './lib/scenario.ts';
import { type StageTimings, stageTimings } from './lib/stages.ts';
import { type FastSubscriber, startFastSubscriber } from './lib/subscriber.ts';

/** Pushes per second of the latency runs. */
export const RATE = 200;
const STAGES: Stage[] = ['ingest', 'normalize', 'deliver', 'pg-boss', 'other'];

/**
 * Push→subscriber latency and CPU of `switchyard start` at a steady `rate` (default {@link RATE})
 * pushes/s for `durationMs`; `traces` turns tracing on towards that OTLP endpoint (bench/otel.ts).
 */
export async function hubLatency(
  options: BenchOptions,
  durationMs: number,
  start: { traces?: string; rate?: number } = {},
) {
  const rate = start.rate ?? RATE;
  const total = (rate * durationMs) / 1000;
  const subscriber = await startFastSubscriber({ track: true });
  return withCliHub(
    options.adminUrl,
    { subscribers: [subscriber.url], traces: start.traces },
    async (h, db) => {
      const m = await pacedDeliveries({
        port: h.port,
        rate,
        total,
        subscriber,
        meter: new CpuMeter(options.adminUrl, db.name, h.pids),
        what: 'latency',
        ready: () => busyTablesCounted(db.url),
      });
      let stages: StageTimings | undefined;
      try {
        stages = await stageTimings(db.url, 'bench:2______');
      } catch (error) {
        options.log(`latency: stage timings not read: ${(error as Error).message}`);
      }
      return { ...m, stages, rss: h.peakRss() };
    },
  ).finally(() => subscriber.close());
}

/**
 * The measured part of a latency run, the hub's and the pipeline floor's alike: a warm-up
 * ({@link latencyWarmUp}), then `total` pushes at a steady `rate` with `meter`
 * running from the first of them to the last delivery; latency = subscriber receipt − the moment
 * the push request was written.
 */
async function pacedDeliveries(o: {
  port: number;
  rate: number;
  total: number;
  subscriber: FastSubscriber;
  meter: CpuMeter;
  what: string;
  /** What the paced warm-up goes on for, after its two seconds, a second at a time. */
  ready?: () => Promise<boolean>;
}) {
  const { port, rate, subscriber } = o;
  await latencyWarmUp({ port, rate, delivered: () => subscriber.count, what: o.what, ready: o.ready });
  const sent = new Map<number, number>();
  await o.meter.start();
  // The measured window (wall clock), for probes read beside it (bench/lib/otel-latency.ts).
  const from = Date.now();
  const { failures } = await paced({
    port,
    rate,
    total: o.total,
    // Above the warm-up's numbers (autocannon counts from 0, the paced warm-up from 1,000,000).
    firstSeq: 2_000_000,
    tag: 3,
    onSend: (seq, at) => sent.set(seq, at),
  });
  await waitUntil(
    () => [...sent.keys()].every((s) => subscriber.arrivals.has(s)),
    `${o.what} deliveries`,
    // A participant that cannot keep up at this rate still finishes; its p99 then says so.
    600_000,
    20,
  );
  const cpu = await o.meter.stop();
  const window = { from, to: Date.now() };
  const latencies = [...sent].map(([seq, at]) => subscriber.arrivals.get(seq)! - at);
  return {
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: percentile(latencies, 1),
    /** Every measured push's latency (ms), for percentiles pooled over runs (bench/otel.ts). */
    latencies,
    failures,
    cpu,
    window,
  };
}

/**
 * The pipeline floor (bench/lib/pipeline-floor.ts) at a steady {@link RATE}/s for `durationMs`,
 * warmed up and measured as {@link hubLatency} measures the hub: push → subscriber latencies, and
 * the CPU of its process and its database's backends until the last delivery.
 */
async function pipelineFloorLatency(options: BenchOptions, durationMs: number) {
  const total = (RATE * durationMs) / 1000;
  const subscriber = await startFastSubscriber({ track: true });
  try {
    return await withChild(options.adminUrl, PIPELINE_FLOOR_ENTRY, async (child, db) => {
      const { port } = await child.call<{ port: number }>('start', { subscriber: subscriber.url });
      const pid = child.process.pid!;
      const m = await pacedDeliveries({
        port,
        rate: RATE,
        total,
        subscriber,
        meter: new CpuMeter(options.adminUrl, db.name, () => [pid]),
        what: 'pipeline floor',
      });
      if (m.failures > 0) throw new Error(`pipeline floor: ${m.failures} failed pushes`);
      return m;
    });
  } finally {
    await subscriber.close();
  }
}

export async function run(options: BenchOptions): Promise<BenchResult> {
  const durationMs = options.quick ? 5000 : 20_000;
  const total = (RATE * durationMs) / 1000;

  options.log(`latency: switchyard start at ${RATE}/s for ${durationMs / 1000} s`);
  const hub = await hubLatency(options, durationMs);

  options.log(`latency: floor (bare fastify + one INSERT) at ${RATE}/s`);
  const floor = await withChild(options.adminUrl, BASELINE_ENTRY, async (child, db) => {
    const { port } = await child.call<{ port: number }>('start');
    await paced({ port, rate: RATE, total: RATE, firstSeq: 1_000_000, tag: 2, onSend: () => {} });
    const pid = child.process.pid!;
    const meter = new CpuMeter(options.adminUrl, db.name, () => [pid]);
    await meter.start();
    const { failures } = await paced({
      port,
      rate: RATE,
      total,
      firstSeq: 2_000_000,
      tag: 3,
      onSend: () => {},
    });
    const cpu = await meter.stop();
    if (failures > 0) throw new Error(`floor: ${failures} failed pushes`);
    return { cpu };
  });
  closeAgent();

  options.log(`latency: pipeline floor (push → signed POST → record) at ${RATE}/s`);
  const pipe = await pipelineFloorLatency(options, durationMs);
  closeAgent();

  options.log(`latency: pg-boss at ${RATE}/s`);
  const boss = await withChild(options.adminUrl, PGBOSS_ENTRY, async (child) => {
    await child.call('start');
    await child.call('latency', RATE, 2000);
    const r = await child.call<{ p50: number; p99: number }>('latency', RATE, durationMs);
    return { ...r, rss: await child.peakRss() };
  });

  const per = (ms: number) => ms / total;
  const c: CpuReading = hub.cpu;
  const f: CpuReading = floor.cpu;
  const p: CpuReading = pipe.cpu;
  const pipeLabel = `pipeline floor: push → signed POST → record at ${RATE}/s, per delivered event`;
  const floorLabel = `floor: bare fastify + 1 INSERT at ${RATE}/s, per durable ack`;
  const label = `pg-boss send→handler start at ${RATE}/s (LISTEN/NOTIFY)`;
  const ms = (v: number) => `${v.toFixed(2)} ms`;
  const t = hub.stages;
  return {
    name: 'Latency and CPU at 200/s',
    rows: [
      row(`Push→subscriber p50 at ${RATE}/s`, hub.p50, boss.p50, {
        unit: 'ms',
        baselineLabel: label,
        target: { kind: 'max', value: 15, label: '< 15 ms' },
      }),
      row(`Push→subscriber p99 at ${RATE}/s`, hub.p99, boss.p99, {
        unit: 'ms',
        baselineLabel: label,
        target: { kind: 'max', value: 50, label: '< 50 ms' },
      }),
      row(
        'CPU per delivered event, hub + Postgres backends',
        per(c.processMs + c.backendsMs),
        per(f.processMs + f.backendsMs),
        {
          unit: 'ms',
          baselineLabel: floorLabel,
          target: { kind: 'max', value: 1.5, label: '≤ 1.5 ms' },
        },
      ),
      row(
        'CPU per delivered event, hub + Postgres backends, against the pipeline floor',
        per(c.processMs + c.backendsMs),
        per(p.processMs + p.backendsMs),
        { unit: 'ms', baselineLabel: pipeLabel },
      ),
      row(`Push→subscriber p50 at ${RATE}/s, against the pipeline floor`, hub.p50, pipe.p50, {
        unit: 'ms',
        baselineLabel: pipeLabel.replace(', per delivered event', ''),
      }),
      row(`Push→subscriber p99 at ${RATE}/s, against the pipeline floor`, hub.p99, pipe.p99, {
        unit: 'ms',
        baselineLabel: pipeLabel.replace(', per delivered event', ''),
      }),
      row('CPU per delivered event, hub process', per(c.processMs), per(f.processMs), {
        unit: 'ms',
        baselineLabel: 'floor server process',
      }),
      row(
        'CPU per delivered event, Postgres backends of its database',
        per(c.backendsMs),
        per(f.backendsMs),
        {
          unit: 'ms',
          baselineLabel: "floor's backends",
        },
      ),
      ...STAGES.map((s) =>
        row(
          `  Postgres backends, ${s} statements`,
          per(c.byStage[s]),
          s === 'ingest' ? per(f.backendsMs) : null,
          {
            unit: 'ms',
            ...(s === 'ingest' ? { baselineLabel: "floor's INSERT" } : {}),
          },
        ),
      ),
      row(
        'CPU per event, server-wide Postgres processes (not in the total)',
        per(c.serverMs),
        per(f.serverMs),
        {
          unit: 'ms',
          baselineLabel: 'same, floor run',
        },
      ),
      row('Peak RSS, latency run', mib(hub.rss), mib(boss.rss), {
        unit: 'MiB',
        baselineLabel: 'pg-boss process',
      }),
    ],
    notes: [
      `${total.toLocaleString('en')} pushes at a steady ${RATE}/s (open loop) to \`switchyard start\` (all roles, one subscription, default logging to a file), after a warm-up of 500 closed-loop pushes and paced ones (${RATE * 2} at least, then on until the hub's statistics keeper had counted its busy tables once: that first ANALYZE has every cached plan made again, a stall of tens of milliseconds once in a hub's first seconds, which the measured window would otherwise hold or not by where the keeper's tick fell; bench/lib/scenario.ts \`busyTablesCounted\`); latency = subscriber receipt − the moment the push request was written (both clocks in the load-generator process). Max ${hub.max.toFixed(1)} ms; ${hub.failures} failed pushes.`,
      'The hub path includes the HTTP push and its durable acknowledgement, normalization, fan-out and the signed delivery POST; the pg-boss baseline only a queue hop (send → handler start).',
      `CPU from /proc/<pid>/stat (utime + stime) over the measured pushes until the last delivery (${c.seconds.toFixed(1)} s): the hub process(es) and every backend of the hub's database (pg_stat_activity sampled every 50 ms, ${c.backends} backends seen; one that exits loses at most its last 50 ms), divided by the ${total.toLocaleString('en')} delivered events. Hub ${ms(per(c.processMs))} + Postgres ${ms(per(c.backendsMs))} per event; the floor at the same rate ${ms(per(f.processMs))} + ${ms(per(f.backendsMs))} per acknowledged push (${f.backends} backends). Not in the total: the load generator and subscriber (the bench process), and the server-wide Postgres processes (checkpointer, background writer, WAL writer; autovacuum is off on this server), measured from their own pids and shown apart: they serve every database on the server, so other work on the machine lands there too.`,
      `The pipeline floor (bench/lib/pipeline-floor.ts; what it leaves out: the e2e scenario's notes) at the same rate, after the same warm-up, metered the same way until its last delivery (${p.seconds.toFixed(1)} s): ${ms(per(p.processMs))} in its process + ${ms(per(p.backendsMs))} in its backends per delivered event (${p.backends} backends); p50 ${ms(pipe.p50)}, p99 ${ms(pipe.p99)}, max ${ms(pipe.max)}. It is what a minimal durable push → signed POST → record costs on this machine, the same work as the hub's without any of its features: the absolute target of the CPU row is to be read beside it.`,
      `Per stage (Postgres): each backend's CPU between two samples is charged to the statement pg_stat_activity shows for it (running, or the last one when idle), classified by the tables it touches (bench/lib/proc-cpu.ts \`stageOf\`): ${STAGES.map((s) => `${s} ${ms(per(c.byStage[s]))}`).join(', ')}. "other" is transaction control, LISTEN, statistics and the like. The hub's own CPU is one process for every stage and is not split.`,
      `Postgres CPU by statement, most first (ms per event): ${c.byStatement
        .slice(0, 8)
        .map(([text, v]) => `\`${text.replaceAll('`', "'")}\` ${ms(per(v))}`)
        .join('; ')}.`,
      t
        ? `Stage timings from the hub's rows (${t.events} events): received → normalized p50 ${ms(t.normalize[0])} / p99 ${ms(t.normalize[1])}; delivery stored → attempt started ${ms(t.toAttempt[0])} / ${ms(t.toAttempt[1])}; attempt (signed POST and its record) ${ms(t.attempt[0])} / ${ms(t.attempt[1])}.`
        : "Stage timings from the hub's rows: not read (see the run's log).",
    ],
  };
}
