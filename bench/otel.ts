/**
 * Tracing's cost: end-to-end throughput and push→subscriber latency with OpenTelemetry tracing on
 * (sample ratio 1.0, every span exported over OTLP/HTTP to a receiver on loopback) beside the same
 * runs with tracing off, in the same run. Issue 17's targets: ≥ 0.9× the throughput and a p99 at
 * most 1.1× with tracing on. Beside them, the hub process's CPU per delivered event in the latency
 * runs (from /proc, bench/lib/proc-cpu.ts): what tracing itself costs, a figure the load of the
 * machine distorts far less than latency near saturation does.
 *
 * The latency runs go at a rate the hub sustains with headroom on the machine at hand, chosen in
 * the same run: half the tracing-off throughput just measured, at most the latency scenario's
 * 200/s. Latency is what an operator reads below saturation; at or past it, the pushes queue, the
 * p99 grows with the queue (with the length of the run, not with the hub), and any CPU difference
 * between the arms is amplified without bound. Capacity is what the throughput row measures.
 */

import { CONFIG_DEFAULTS } from '../packages/server/src/config/schema.ts';
import { EXPORT_BATCH_SPANS } from '../packages/server/src/telemetry/export-thread.ts';
import { startOtlpReceiver } from '../packages/server/src/telemetry/otlp-receiver.test-support.ts';
import { HANDOFF_BATCH_SPANS } from '../packages/server/src/telemetry/sdk.ts';
import { hubRun } from './e2e.ts';
import { hubLatency, RATE } from './latency.ts';
import { mean, pairedRuns, pooledRate } from './lib/paired.ts';
import { type BenchOptions, type BenchResult, percentile, row } from './lib/result.ts';

/**
 * The latency runs' rate: half the tracing-off throughput, rounded down to 10/s, at most
 * {@link RATE} (and at least 10/s).
 */
export function latencyRate(offEventsPerSecond: number): number {
  return Math.max(10, Math.min(RATE, Math.floor(offEventsPerSecond / 2 / 10) * 10));
}

export async function run(options: BenchOptions): Promise<BenchResult> {
  const events = options.quick ? 1000 : 20_000;
  const durationMs = options.quick ? 5000 : 20_000;
  // The receiver keeps no spans: it stands for a collector that takes them, not for a test.
  const receiver = await startOtlpReceiver({ discard: true });
  try {
    const traced = { traces: receiver.url };
    const rounds = options.quick ? 1 : 2;
    // A p99 over 20 s runs moves by tens of percent from run to run: more rounds than throughput.
    // Eight, not four: a round's tail is one draw of the machine's state (a burst of slow pushes,
    // not slow pushes one by one), so the pooled p99 of four rounds often was one round's; full
    // runs of one build read 0.97-1.40x with four (bench/analysis.md, session 36).
    const latencyRounds = options.quick ? 1 : 8;
    // Off and on alternate (off, on, on, off, ...), a CHECKPOINT before each run (bench/lib/paired.ts).
    options.log(`otel: e2e, tracing off and on, ${events} events, ${rounds} rounds`);
    const throughput = await pairedRuns(options, rounds, {
      off: () => hubRun(options, events, 1),
      on: () => hubRun(options, events, 1, traced),
    });
    const offRun = { eventsPerSecond: pooledRate(throughput.off) };
    const onRun = { eventsPerSecond: pooledRate(throughput.on) };
    const rate = latencyRate(offRun.eventsPerSecond);
    options.log(`otel: latency at ${rate}/s, tracing off and on, ${latencyRounds} rounds`);
    const latency = await pairedRuns(options, latencyRounds, {
      off: () => hubLatency(options, durationMs, { rate }),
      on: () => hubLatency(options, durationMs, { ...traced, rate }),
    });
    // Percentiles of all the rounds' pushes pooled into one distribution per arm: the p99 of
    // 8 × 4,000 pushes rests on 320 pushes above it, not on 40 per round averaged, and it is the
    // p99 of what the arm delivered over all its rounds (a mean of per-round p99s is the p99 of no
    // distribution). The per-round figures go in the notes, to keep the spread in sight.
    const lat = (runs: typeof latency.off) => {
      const pooled = runs.flatMap((r) => r.latencies);
      return {
        p50: percentile(pooled, 0.5),
        p99: percentile(pooled, 0.99),
        meanP99: mean(runs, (r) => r.p99),
        processMs: mean(runs, (r) => r.cpu.processMs),
        mainThreadMs: mean(runs, (r) => r.cpu.mainThreadMs),
        machineBusy: mean(runs, (r) => r.cpu.machineBusy),
      };
    };
    const perRound = (runs: typeof latency.off) =>
      runs.map((r) => `${r.p50.toFixed(1)} / ${r.p99.toFixed(0)}`).join(', ');
    const offLatency = lat(latency.off);
    const onLatency = lat(latency.on);
    const baseline = 'same run, tracing off';
    const measured = (rate * durationMs) / 1000;
    const at = `at ${rate}/s (½ tracing-off throughput, ≤ ${RATE}/s)`;
    const hubCpu = (l: typeof offLatency) => l.processMs / measured;
    const mainCpu = (l: typeof offLatency) => l.mainThreadMs / measured;
    return {
      name: 'OpenTelemetry tracing',
      rows: [
        row('E2E events/s, tracing on (1 subscription)', onRun.eventsPerSecond, offRun.eventsPerSecond, {
          unit: 'events/s',
          baselineLabel: baseline,
          higherIsBetter: true,
          target: { kind: 'min', value: 0.9, onRatio: true, label: '≥ 0.9× tracing off' },
        }),
        row(`Push→subscriber p50 ${at}, tracing on`, onLatency.p50, offLatency.p50, {
          unit: 'ms',
          baselineLabel: baseline,
        }),
        row(`Push→subscriber p99 ${at}, tracing on`, onLatency.p99, offLatency.p99, {
          unit: 'ms',
          baselineLabel: baseline,
          target: { kind: 'max', value: 1.1, onRatio: true, label: '≤ 1.1× tracing off' },
        }),
        row(
          `Hub process CPU per delivered event at ${rate}/s, tracing on`,
          hubCpu(onLatency),
          hubCpu(offLatency),
          {
            unit: 'ms',
            baselineLabel: baseline,
          },
        ),
        row(
          `Hub main thread (event loop) CPU per delivered event at ${rate}/s, tracing on`,
          mainCpu(onLatency),
          mainCpu(offLatency),
          {
            unit: 'ms',
            baselineLabel: baseline,
          },
        ),
      ],
      notes: [
        `Tracing on: the hub process starts the OpenTelemetry SDK (telemetry/sdk.ts) with sample ratio 1.0, handing ended spans to its export thread every ${CONFIG_DEFAULTS.telemetry.traces.batchDelay} or every ${HANDOFF_BATCH_SPANS} spans, whichever comes first (queue ${CONFIG_DEFAULTS.telemetry.traces.queueSize.toLocaleString('en')}), which sends them as OTLP/HTTP protobuf in requests of up to ${EXPORT_BATCH_SPANS} spans to a node:http receiver in the load-generator process that reads and discards the bodies (${receiver.requests.toLocaleString('en')} export requests, ${(receiver.bytes / 1024 / 1024).toFixed(1)} MiB in this run). The exporter encodes and sends in a worker thread of the hub (telemetry/export-thread.ts). Tracing off: the SDK is not loaded.`,
        `Spans in the traced throughput runs, read from the hub's /metrics once the last delivery was in: ${throughput.on.map((r) => `${(r.spans?.exported ?? 0).toLocaleString('en')} exported and ${(r.spans?.dropped ?? 0).toLocaleString('en')} dropped`).join('; ')} (six spans an event; what was not yet exported was still on its way).`,
        `Throughput: ${events.toLocaleString('en')} unique slot-booked pushes as in the e2e scenario, ${rounds} rounds of each; throughput is all the rounds' events over all their seconds. Latency: ${rate}/s for ${durationMs / 1000} s as in the latency scenario, ${latencyRounds} rounds of each; the percentiles are those of all the rounds' pushes pooled into one distribution per arm (more pushes behind each percentile than one round has; a mean of per-round p99s is the p99 of no distribution), CPU the mean of the rounds (p50 off ${offLatency.p50.toFixed(1)} ms / on ${onLatency.p50.toFixed(1)} ms). Each round's own p50 / p99 in the order run, off: ${perRound(latency.off)}; on: ${perRound(latency.on)} ms (the mean of the rounds' p99s, as this row was computed before: off ${offLatency.meanP99.toFixed(0)} / on ${onLatency.meanP99.toFixed(0)} ms, ${(onLatency.meanP99 / offLatency.meanP99).toFixed(2)}×). Off and on alternate (off, on, on, off, ...), a CHECKPOINT before every run (bench/lib/paired.ts).`,
        `The latency rate is chosen in this run: half the tracing-off throughput just measured (${offRun.eventsPerSecond.toFixed(0)} events/s), rounded down to 10/s, at most ${RATE}/s, so that both arms run below saturation with headroom, where latency is what an operator reads. Near the hub's capacity the pushes queue and the p99 measures the queue, which a few percent more CPU per event lengthens out of all proportion (docs/observability.md, "Cost"); capacity is the throughput row's.`,
        `Hub CPU from /proc/<pid>/stat over the measured pushes of each latency run: tracing adds ${((hubCpu(onLatency) - hubCpu(offLatency)) * 1000).toFixed(0)} µs per event (${hubCpu(offLatency).toFixed(2)} → ${hubCpu(onLatency).toFixed(2)} ms), of which the main thread (the event loop every stage runs on) ${((mainCpu(onLatency) - mainCpu(offLatency)) * 1000).toFixed(0)} µs (${mainCpu(offLatency).toFixed(2)} → ${mainCpu(onLatency).toFixed(2)} ms); the rest is the process's other threads (V8's garbage collector helpers, the export thread). The whole machine (every core, every process, /proc/stat over the same windows) was ${(offLatency.machineBusy * 100).toFixed(0)} % busy with tracing off, ${(onLatency.machineBusy * 100).toFixed(0)} % on (docs/observability.md, "Where the latency goes at 200/s").`,
      ],
    };
  } finally {
    await receiver.close();
  }
}
