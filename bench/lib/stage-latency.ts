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
import { pg } from './deps.ts';
import { cannon, closeAgent, hookUrl, paced } from './load.ts';
import { percentile, waitUntil } from './result.ts';
import { startFastSubscriber } from './subscriber.ts';

const rate = Number(process.argv[2] ?? 200);
const FIRST_SEQ = 2_000_000;

const db = await createTestDatabase({ adminUrl: process.env.DATABASE_URL, prefix: 'sy_bench_' });
const child = await startChild(new URL('./hub-process.ts', import.meta.url), { BENCH_DATABASE_URL: db.url });
const subscriber = await startFastSubscriber({ track: true });
const client = new pg.Client({ connectionString: db.url });
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

  await client.connect();
  // Only the paced pushes: their comment is `bench:<seq>` with seq from FIRST_SEQ (seven digits).
  const stages = await client.query(
    `with x as (
       select m.received_at, m.processed_at, d.created_at as stored_at, a.started_at, d.completed_at
       from switchyard.inbound_messages m
       join switchyard.events e on e.inbound_message_id = m.id
       join switchyard.deliveries d on d.event_id = e.id
       join switchyard.delivery_attempts a on a.delivery_id = d.id
       where m.payload->'data'->'visit_booking'->>'comment' like 'bench:2______')
     select count(*)::int as n,
       percentile_cont(array[0.5, 0.99]) within group (order by extract(epoch from processed_at - received_at) * 1000) as normalize,
       percentile_cont(array[0.5, 0.99]) within group (order by extract(epoch from started_at - stored_at) * 1000) as to_attempt,
       percentile_cont(array[0.5, 0.99]) within group (order by extract(epoch from completed_at - started_at) * 1000) as attempt
     from x`,
  );
  const r = stages.rows[0] as Record<string, number | number[]>;
  const fmt = (v: number[]) => `p50 ${v[0]!.toFixed(1)} ms, p99 ${v[1]!.toFixed(1)} ms`;
  console.log(`events measured: ${r.n}`);
  console.log(`received → normalized:         ${fmt(r.normalize as number[])}`);
  console.log(`stored → attempt started:      ${fmt(r.to_attempt as number[])}`);
  console.log(`attempt (POST and its record): ${fmt(r.attempt as number[])}`);
} finally {
  await client.end().catch(() => {});
  closeAgent();
  await child.stop();
  await subscriber.close();
  await db.drop();
}
