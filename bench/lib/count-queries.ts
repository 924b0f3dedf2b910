/**
 * Diagnostic (not a scenario): `node bench/lib/count-queries.ts [events]` pushes `events`
 * Docplanner bookings (default 1000) through a hub with one subscription and prints how many
 * statements of each kind the hub sent per event. It is how the round-trip breakdown in
 * docs/benchmarks.md was obtained. `--traces` turns tracing on (sample ratio 1, OTLP/HTTP to a
 * receiver that discards the spans), to compare the statements of a traced hub with an untraced one.
 * `--rate N` sends the pushes at a steady N per second (open loop, as the latency scenario does)
 * instead of as fast as the hub takes them: what a hub below capacity sends per event.
 */
import { startOtlpReceiver } from '../../packages/server/src/telemetry/otlp-receiver.test-support.ts';
import { createTestDatabase } from '../../packages/testing/src/index.ts';
import { startChild } from './child.ts';
import { cannon, hookUrl, paced } from './load.ts';
import { waitUntil } from './result.ts';
import { startFastSubscriber } from './subscriber.ts';

const args = process.argv.slice(2);
const traced = args.includes('--traces');
const rateAt = args.indexOf('--rate');
const rate = rateAt >= 0 ? Number(args[rateAt + 1]) : undefined;
const events = Number(args.find((a, i) => /^\d+$/.test(a) && (rateAt < 0 || i !== rateAt + 1)) ?? 1000);
const receiver = traced ? await startOtlpReceiver({ discard: true }) : undefined;
const db = await createTestDatabase({ adminUrl: process.env.DATABASE_URL, prefix: 'sy_bench_' });
const child = await startChild(new URL('./hub-process.ts', import.meta.url), {
  BENCH_DATABASE_URL: db.url,
  BENCH_COUNT_QUERIES: '1',
});
const subscriber = await startFastSubscriber();
try {
  const { port } = await child.call<{ port: number }>('start', receiver ? { traces: receiver.url } : {});
  await child.call('subscribe', subscriber.url, 1);
  if (rate === undefined) await cannon({ url: hookUrl(port), amount: events, tag: 5 });
  else await paced({ port, rate, total: events, firstSeq: 0, tag: 5, onSend: () => {} });
  await waitUntil(() => subscriber.count >= events, 'deliveries', 600_000);
  const counts = await child.call<[string, number][]>('queryCounts');
  const total = counts.reduce((sum, [, n]) => sum + n, 0);
  console.log(`statements per event: ${(total / events).toFixed(2)}`);
  for (const [text, n] of counts.slice(0, 30)) console.log(`${(n / events).toFixed(2)}  ${text}`);
  const send = await child.call<[string, number][]>('querySendMs');
  console.log('\nms spent sending (socket write included), most first:');
  for (const [text, ms] of send.slice(0, 12)) console.log(`${ms.toFixed(0).padStart(6)} ms  ${text}`);
  const trip = await child.call<[string, number][]>('queryRoundTripMs');
  console.log('\nms from send to answer (summed over concurrent statements), most first:');
  for (const [text, ms] of trip.slice(0, 12)) console.log(`${ms.toFixed(0).padStart(6)} ms  ${text}`);
} finally {
  await child.stop();
  await subscriber.close();
  await receiver?.close();
  await db.drop();
  process.exit(0);
}
