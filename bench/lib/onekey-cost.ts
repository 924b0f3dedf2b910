/**
 * Diagnostic (not a scenario): `node bench/lib/onekey-cost.ts [messages] [keys]` queues `messages`
 * Docplanner notifications over `keys` facilities (default 2,000 over 1: one busy facility) in a
 * hub child with BENCH_COUNT_QUERIES=1, releases them at once and reports, per message, what the
 * drain cost: statements the hub sent (by kind), CPU time of the hub process and of the Postgres
 * backends of its database (from /proc), and the summed round-trip time of those statements.
 * Unlike the events/s of `pnpm bench onekey`, these are nearly independent of the machine's load:
 * it is how the one-key figures in docs/benchmarks.md were compared before and after a change.
 */
import { readFileSync } from 'node:fs';
import { CHANNEL_NORMALIZE } from '../../packages/server/src/storage/queues.ts';
import { createTestDatabase } from '../../packages/testing/src/index.ts';
import { startChild } from './child.ts';
import { pg } from './deps.ts';
import { INSTANCE_ID, pushBody } from './docplanner.ts';
import { closeAgent, pushOnce } from './load.ts';
import { waitUntil } from './result.ts';
import { HUB_ENTRY } from './scenario.ts';

const n = Number(process.argv[2] ?? 2000);
const keys = Number(process.argv[3] ?? 1);
const TICK_MS = 1000 / 100; // USER_HZ on Linux

/** utime + stime of a process, ms (0 when it is gone). */
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return 0;
  }
}

const QUEUE_SQL = `
with tpl as (select * from switchyard.inbound_messages where instance_id = $3 order by seq limit 1)
insert into switchyard.inbound_messages (id, instance_id, route, dedupe_key, vendor_type, ordering_key,
  occurred_at, gate, payload, meta, headers, source_ip, origin, next_attempt_at)
select gen_random_uuid(), tpl.instance_id, tpl.route, 'cost-' || g, tpl.vendor_type,
  'facility/' || (20000 + g % $2) || '/bookings', tpl.occurred_at, false,
  jsonb_set(jsonb_set(tpl.payload, '{data,visit_booking,id}', to_jsonb((800000000 + g)::text)),
    '{data,facility,id}', to_jsonb((20000 + g % $2)::text)),
  tpl.meta, tpl.headers, tpl.source_ip, tpl.origin, now() + interval '1 day'
from tpl, generate_series(1, $1::int) g`;

const db = await createTestDatabase({ adminUrl: process.env.DATABASE_URL, prefix: 'sy_bench_' });
const child = await startChild(HUB_ENTRY, { BENCH_DATABASE_URL: db.url, BENCH_COUNT_QUERIES: '1' });
const client = new pg.Client({ connectionString: db.url });
try {
  const { port } = await child.call<{ port: number }>('start', {});
  if ((await pushOnce(port, pushBody(1))) >= 300) throw new Error('template push refused');
  closeAgent();
  await client.connect();
  await waitUntil(
    async () =>
      (await client.query(`select 1 from switchyard.inbound_messages where status = 'normalized'`))
        .rowCount === 1,
    'template normalized',
    30_000,
  );
  await client.query(QUEUE_SQL, [n, keys, INSTANCE_ID]);
  await client.query('analyze switchyard.inbound_messages');
  const backends = async () =>
    (
      await client.query<{ pid: number }>(
        `select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`,
      )
    ).rows.map((r) => r.pid);
  const counts0 = new Map(await child.call<[string, number][]>('queryCounts'));
  const trip0 = new Map(await child.call<[string, number][]>('queryRoundTripMs'));
  const pgPids = new Set(await backends());
  const pg0 = new Map([...pgPids].map((p) => [p, cpuMs(p)]));
  const hub0 = cpuMs(child.process.pid!);
  const t0 = Date.now();
  await client.query(
    `with go as (update switchyard.inbound_messages set next_attempt_at = now() where dedupe_key like 'cost-%')
     select pg_notify($1, '')`,
    [CHANNEL_NORMALIZE],
  );
  await waitUntil(
    async () => {
      // A backend opened during the drain counts from zero.
      for (const p of await backends()) {
        if (pgPids.has(p)) continue;
        pgPids.add(p);
        pg0.set(p, 0);
      }
      const r = await client.query(
        `select count(*)::int as n from switchyard.inbound_messages where status = 'received' and dedupe_key like 'cost-%'`,
      );
      return r.rows[0].n === 0;
    },
    'drain',
    900_000,
    200,
  );
  const wall = Date.now() - t0;
  const hubMs = cpuMs(child.process.pid!) - hub0;
  let pgMs = 0;
  for (const p of pgPids) pgMs += Math.max(0, cpuMs(p) - (pg0.get(p) ?? 0));
  const counts = (await child.call<[string, number][]>('queryCounts'))
    .map(([t, c]) => [t, c - (counts0.get(t) ?? 0)] as const)
    .filter(([, c]) => c > 0);
  const trips = (await child.call<[string, number][]>('queryRoundTripMs')).map(
    ([t, ms]) => [t, ms - (trip0.get(t) ?? 0)] as const,
  );
  const total = counts.reduce((s, [, c]) => s + c, 0);
  const tripTotal = trips.reduce((s, [, ms]) => s + ms, 0);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`${n} messages over ${keys} key(s), load ${load}, wall ${(wall / 1000).toFixed(1)} s`);
  console.log(`statements per message: ${(total / n).toFixed(3)}`);
  console.log(
    `hub CPU per message: ${(hubMs / n).toFixed(3)} ms; Postgres backends: ${(pgMs / n).toFixed(3)} ms`,
  );
  console.log(`summed round trips per message: ${(tripTotal / n).toFixed(3)} ms`);
  for (const [text, c] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 12))
    console.log(`${(c / n).toFixed(3)}  ${text}`);
} finally {
  await client.end().catch(() => {});
  await child.stop();
  await db.drop();
  process.exit(0);
}
