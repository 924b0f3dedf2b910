/**
 * Diagnostic (not a scenario): `node bench/lib/ingest-cpu.ts [floor,http,all] [seconds]` runs the
 * ingest load (autocannon, 50 connections, 2 s warm-up) against the floor (bench/lib/baseline-server.ts),
 * `switchyard start --role http` and `switchyard start` (all roles, one subscription), and prints
 * for each the CPU per acknowledged request of the server process and of its database's Postgres
 * backends (bench/lib/proc-cpu.ts), the writing transactions per request (an ingest statement
 * shared by a batch, a NOTIFY, the floor's one INSERT each), the backends' share by stage and the
 * heaviest statements.
 * Run it under the bench lock. It tells the req/s rows apart: what the request path itself costs
 * beside the floor, and (as started) what normalize and delivery take from the same two cores.
 *
 * @example
 * ```sh
 * flock -x /tmp/sy-bench.lock node bench/lib/ingest-cpu.ts floor,http,all 5
 * ```
 */
import { pg } from './deps.ts';
import { cannon, hookUrl } from './load.ts';
import { CpuMeter } from './proc-cpu.ts';
import { BASELINE_ENTRY, withChild, withCliHub } from './scenario.ts';
import { startFastSubscriber } from './subscriber.ts';

const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const which = (process.argv[2] ?? 'floor,http,all').split(',');
const seconds = Number(process.argv[3] ?? 5);

async function measure(url: string, datname: string, pids: () => number[]): Promise<void> {
  await cannon({ url, durationS: 2 });
  const meter = new CpuMeter(adminUrl, datname, pids);
  const xids = await xidsSoFar();
  await meter.start();
  const r = await cannon({ url, durationS: seconds });
  const c = await meter.stop();
  const transactions = (await xidsSoFar()) - xids;
  const per = (ms: number) => (ms / r.total).toFixed(3);
  const stages = Object.entries(c.byStage)
    .map(([stage, ms]) => `${stage} ${per(ms)}`)
    .join(', ');
  console.log(
    `${r.requestsPerSecond.toFixed(0)} req/s, p50 ${r.p50} ms; ms per request: process ${per(c.processMs)} ` +
      `(main thread ${per(c.mainThreadMs)}), writing transactions ${per(transactions)}, backends ${per(c.backendsMs)} (${stages}); machine ${(c.machineBusy * 100).toFixed(0)} % busy`,
  );
  for (const [statement, ms] of c.byStatement.slice(0, 5)) console.log(`  ${per(ms)}  ${statement}`);
}

/**
 * Transaction ids the cluster has handed out so far (`pg_current_snapshot()`'s xmax). Every writing
 * transaction takes one (an ingest statement, a NOTIFY), so the difference over a window counts its
 * writing transactions when nothing else writes meanwhile (run it under the bench lock).
 */
async function xidsSoFar(): Promise<number> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const r = await client.query<{ n: string }>('select pg_snapshot_xmax(pg_current_snapshot())::text as n');
    return Number(r.rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

for (const target of which) {
  console.log(`== ${target}`);
  if (target === 'floor') {
    await withChild(adminUrl, BASELINE_ENTRY, async (child, db) => {
      const { port } = await child.call<{ port: number }>('start');
      await measure(`http://127.0.0.1:${port}/hooks/dp-bench`, db.name, () => [child.process.pid!]);
    });
  } else {
    const subscriber = await startFastSubscriber();
    try {
      await withCliHub(
        adminUrl,
        { role: target as 'http' | 'all', subscribers: [subscriber.url] },
        (hub, db) => measure(hookUrl(hub.port), db.name, () => hub.pids()),
      );
    } finally {
      await subscriber.close();
    }
  }
}
