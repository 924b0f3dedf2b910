/**
 * Diagnostic (not a scenario): `node bench/lib/stage-latency.ts [rate]` pushes Docplanner bookings
 * at a steady `rate` per second (default 200) for 4 s through a hub with one subscription, after a
 * 500-push warm-up, and prints push → subscriber p50 / p99 and where the time went, read from the
 * hub's own rows: received → normalized (`inbound_messages.received_at → processed_at`), stored →
 * attempt started (`deliveries.created_at → delivery_attempts.started_at`) and the attempt itself.
 * It is how the per-stage figures in docs/benchmarks.md were obtained.
 */
import { createTestDatabase } from '../../packages/testing/src/index.ts';
import { startChild } from './child.ts';
import { cannon, closeAgent, hookUrl, paced } from './load.ts';
import { percentile, waitUntil } from './result.ts';
import { stageTimings } from './stages.ts';
import { startFastSubscriber } from './subscriber.ts';

const rate = Number(process.argv[2] ?? 200);
const FIRST_SEQ = 2_000_000;

const db = await createTestDatabase({ adminUrl: process.env.DATABASE_URL, prefix: 'sy_bench_' });
const child = await startChild(new URL('./hub-process.ts', import.meta.url), { BENCH_DATABASE_URL: db.url });
const subscriber = await startFastSubscriber({ track: true });
try {
  const { port } = await child.call<{ port: number }>('start', {});
  await child.call('subscribe', subscriber.url, 1);
  await cannon({ url: hookUrl(port), amount: 500, tag: 1 });
  await waitUntil(() => subscriber.count >= 500, 'warm-up deliveries', 60_000);
  const sent = new Map<number, number>();
  await paced({
    port,
    rate,
    total: rate * 4,
    firstSeq: FIRST_SEQ,
    tag: 3,
    onSend: (s, at) => sent.set(s, at),
  });
  await waitUntil(() => [...sent.keys()].every((s) => subscriber.arrivals.has(s)), 'deliveries', 600_000, 20);
  const latencies = [...sent].map(([s, at]) => subscriber.arrivals.get(s)! - at);
  console.log(
    `${rate}/s: push → subscriber p50 ${percentile(latencies, 0.5).toFixed(1)} ms, p99 ${percentile(latencies, 0.99).toFixed(1)} ms`,
  );

  // Only the paced pushes: their comment is `bench:<seq>` with seq from FIRST_SEQ (seven digits).
  const t = await stageTimings(db.url, 'bench:2______');
  const fmt = (v: [number, number]) => `p50 ${v[0].toFixed(1)} ms, p99 ${v[1].toFixed(1)} ms`;
  console.log(`events measured: ${t.events}`);
  console.log(`received → normalized:         ${fmt(t.normalize)}`);
  console.log(`stored → attempt started:      ${fmt(t.toAttempt)}`);
  console.log(`attempt (POST and its record): ${fmt(t.attempt)}`);
} finally {
  closeAgent();
  await child.stop();
  await subscriber.close();
  await db.drop();
}
