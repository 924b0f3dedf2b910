/**
 * Latency: push-to-subscriber p50/p99 at a steady 200 events/s, beside pg-boss send → handler
 * start at the same rate with LISTEN/NOTIFY wake-ups.
 */
import { cannon, closeAgent, hookUrl, paced } from './lib/load.ts';
import { type BenchOptions, type BenchResult, mib, percentile, row, waitUntil } from './lib/result.ts';
import { HUB_ENTRY, PGBOSS_ENTRY, withChild } from './lib/scenario.ts';
import { startFastSubscriber } from './lib/subscriber.ts';

/** Pushes per second of the latency runs. */
export const RATE = 200;

/**
 * Push→subscriber latency of one hub process at a steady {@link RATE}/s for `durationMs`; `start`
 * goes to its `start` call (bench/otel.ts runs it with tracing on and off).
 */
export async function hubLatency(options: BenchOptions, durationMs: number, start: object = {}) {
  const total = (RATE * durationMs) / 1000;
  const subscriber = await startFastSubscriber({ track: true });
  return withChild(options.adminUrl, HUB_ENTRY, async (child) => {
    const { port } = await child.call<{ port: number }>('start', start);
    await child.call('subscribe', subscriber.url, 1);
    await cannon({ url: hookUrl(port), amount: 500, tag: 1 });
    const warmPaced = RATE * 2;
    await paced({ port, rate: RATE, total: warmPaced, firstSeq: 1_000_000, tag: 2, onSend: () => {} });
    await waitUntil(() => subscriber.count >= 500 + warmPaced, 'latency warm-up', 60_000);
    const sent = new Map<number, number>();
    const { failures } = await paced({
      port,
      rate: RATE,
      total,
      // Above the warm-up's numbers (autocannon counts from 0, the paced warm-up from 1,000,000).
      firstSeq: 2_000_000,
      tag: 3,
      onSend: (seq, at) => sent.set(seq, at),
    });
    await waitUntil(
      () => [...sent.keys()].every((s) => subscriber.arrivals.has(s)),
      'latency deliveries',
      // A hub that cannot keep up at this rate still finishes; its p99 then says so.
      600_000,
      20,
    );
    const latencies = [...sent].map(([seq, at]) => subscriber.arrivals.get(seq)! - at);
    return {
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      max: percentile(latencies, 1),
      failures,
      rss: await child.peakRss(),
    };
  }).finally(async () => {
    closeAgent();
    await subscriber.close();
  });
}

export async function run(options: BenchOptions): Promise<BenchResult> {
  const durationMs = options.quick ? 5000 : 20_000;
  const total = (RATE * durationMs) / 1000;

  options.log(`latency: hub at ${RATE}/s for ${durationMs / 1000} s`);
  const hub = await hubLatency(options, durationMs);

  options.log(`latency: pg-boss at ${RATE}/s`);
  const boss = await withChild(options.adminUrl, PGBOSS_ENTRY, async (child) => {
    await child.call('start');
    await child.call('latency', RATE, 2000);
    const r = await child.call<{ p50: number; p99: number }>('latency', RATE, durationMs);
    return { ...r, rss: await child.peakRss() };
  });

  const label = `pg-boss send→handler start at ${RATE}/s (LISTEN/NOTIFY)`;
  return {
    name: 'Latency',
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
      row('Peak RSS, latency run', mib(hub.rss), mib(boss.rss), {
        unit: 'MiB',
        baselineLabel: 'pg-boss process',
      }),
    ],
    notes: [
      `${total.toLocaleString('en')} pushes at a steady ${RATE}/s (open loop), after a warm-up of 500 closed-loop and ${RATE * 2} paced pushes; latency = subscriber receipt − the moment the push request was written (both clocks in the load-generator process). Max ${hub.max.toFixed(1)} ms; ${hub.failures} failed pushes.`,
      'The hub path includes the HTTP push and its durable acknowledgement, normalization, fan-out and the signed delivery POST; the baseline only a queue hop (send → handler start).',
    ],
  };
}
