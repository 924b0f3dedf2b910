/**
 * Diagnostic (not a scenario): `node bench/lib/count-queries.ts [events]` pushes `events`
 * Docplanner bookings (default 1000) through a hub with one subscription and prints how many
 * statements of each kind the hub sent per event. It is how the round-trip breakdown in
 * docs/benchmarks.md was obtained.
 */

import { startChild } from '/work/main/bench/lib/child.ts';
import { cannon, hookUrl } from '/work/main/bench/lib/load.ts';
import { waitUntil } from '/work/main/bench/lib/result.ts';
import { startFastSubscriber } from '/work/main/bench/lib/subscriber.ts';
import { createTestDatabase } from '/work/main/packages/testing/src/index.ts';

const events = Number(process.argv[2] ?? 1000);
const db = await createTestDatabase({ adminUrl: process.env.DATABASE_URL, prefix: 'sy_bench_' });
const child = await startChild(new URL('file:///work/main/bench/lib/hub-process.ts'), {
  BENCH_DATABASE_URL: db.url,
  BENCH_COUNT_QUERIES: '1',
});
const subscriber = await startFastSubscriber();
try {
  const { port } = await child.call<{ port: number }>('start', {});
  await child.call('subscribe', subscriber.url, 10);
  await cannon({ url: hookUrl(port), amount: events, tag: 5 });
  await waitUntil(() => subscriber.count >= events * 10, 'deliveries', 600_000);
  const counts = await child.call<[string, number][]>('queryCounts');
  const total = counts.reduce((sum, [, n]) => sum + n, 0);
  console.log(`statements per event: ${(total / events).toFixed(2)}`);
  for (const [text, n] of counts.slice(0, 30)) console.log(`${(n / events).toFixed(2)}  ${text}`);
} finally {
  await child.stop();
  await subscriber.close();
  await db.drop();
  process.exit(0);
}
