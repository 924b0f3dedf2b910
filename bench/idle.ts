/**
 * Idle: what `switchyard start` (every role, one subscription, nothing pushed) costs with nothing
 * to do: transactions per second its database commits (`pg_stat_database`) and the CPU of the hub
 * process and its database's backends from /proc (bench/lib/proc-cpu.ts), beside the floor server
 * (bare fastify + a pg Pool) idle in the same run.
 */
import { pg } from './lib/deps.ts';
import { CpuMeter } from './lib/proc-cpu.ts';
import { type BenchOptions, type BenchResult, row, sleep } from './lib/result.ts';
import { BASELINE_ENTRY, withChild, withCliHub } from './lib/scenario.ts';
import { startFastSubscriber } from './lib/subscriber.ts';

interface Idle {
  seconds: number;
  transactions: number;
  sessions: number;
  processPercent: number;
  backendsPercent: number;
}

async function databaseStats(adminUrl: string, datname: string) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const r = await client.query<{ xacts: string; sessions: string }>(
      'select xact_commit + xact_rollback as xacts, sessions from pg_stat_database where datname = $1',
      [datname],
    );
    return { xacts: Number(r.rows[0]?.xacts ?? 0), sessions: Number(r.rows[0]?.sessions ?? 0) };
  } finally {
    await client.end();
  }
}

/** Watches `datname` and `pids()` for `windowMs` after `settleMs`. */
async function watch(
  adminUrl: string,
  datname: string,
  pids: () => number[],
  settleMs: number,
  windowMs: number,
): Promise<Idle> {
  await sleep(settleMs);
  const meter = new CpuMeter(adminUrl, datname, pids);
  const before = await databaseStats(adminUrl, datname);
  await meter.start();
  await sleep(windowMs);
  const cpu = await meter.stop();
  const after = await databaseStats(adminUrl, datname);
  return {
    seconds: cpu.seconds,
    transactions: after.xacts - before.xacts,
    sessions: after.sessions - before.sessions,
    processPercent: (100 * cpu.processMs) / (cpu.seconds * 1000),
    backendsPercent: (100 * cpu.backendsMs) / (cpu.seconds * 1000),
  };
}

export async function run(options: BenchOptions): Promise<BenchResult> {
  const windowMs = options.quick ? 15_000 : 60_000;
  const floorWindowMs = options.quick ? 10_000 : 20_000;
  // Start-up work (migrations, the first pass of every loop, pg-boss's maintenance) is over by then,
  // and reported: an idle backend reports its counts up to 10 s late (PGSTAT_IDLE_INTERVAL), so a
  // shorter settle would count start-up's statements in the window.
  const settleMs = options.quick ? 12_000 : 15_000;

  options.log(`idle: switchyard start, nothing to do, ${windowMs / 1000} s`);
  const subscriber = await startFastSubscriber();
  const hub = await withCliHub(options.adminUrl, { subscribers: [subscriber.url] }, (h, db) =>
    watch(options.adminUrl, db.name, h.pids, settleMs, windowMs),
  ).finally(() => subscriber.close());

  options.log(`idle: floor server, ${floorWindowMs / 1000} s`);
  const floor = await withChild(options.adminUrl, BASELINE_ENTRY, async (child, db) => {
    await child.call('start');
    const pid = child.process.pid!;
    return watch(options.adminUrl, db.name, () => [pid], settleMs, floorWindowMs);
  });

  const label = 'floor server idle (bare fastify + pg Pool)';
  const cpu = (i: Idle) => i.processPercent + i.backendsPercent;
  return {
    name: 'Idle',
    rows: [
      row(
        'Idle transactions/s (its database)',
        hub.transactions / hub.seconds,
        floor.transactions / floor.seconds,
        {
          unit: '/s',
          baselineLabel: label,
          // The issue counts statements; a transaction is one or more, so this is a lower bound.
          target: { kind: 'max', value: 1, label: '≤ 1/s' },
        },
      ),
      row('Idle CPU, hub process + its backends', cpu(hub), cpu(floor), {
        unit: '%',
        baselineLabel: label,
        target: { kind: 'max', value: 0.5, label: '< 0.5 % of a core' },
      }),
      row('Idle CPU, hub process', hub.processPercent, floor.processPercent, {
        unit: '%',
        baselineLabel: label,
      }),
    ],
    notes: [
      `\`switchyard start\` (every role, one Docplanner push instance, one webhook subscription, default settings and logging), nothing pushed; measured for ${hub.seconds.toFixed(0)} s after ${settleMs / 1000} s of settling. Transactions are \`xact_commit + xact_rollback\` of the hub's database in \`pg_stat_database\` (each statement outside a transaction is one; an idle backend reports them up to 10 s late, hence the settling time): ${hub.transactions}, and ${hub.sessions} new connections (a backend opened in the window counts its start-up CPU). CPU from /proc (utime + stime) of the hub process and its database's backends, as % of one core: hub ${hub.processPercent.toFixed(2)} % + Postgres ${hub.backendsPercent.toFixed(2)} %.`,
      `The floor: the bare fastify + pg Pool server, started and left idle, ${floor.seconds.toFixed(0)} s: ${floor.transactions} transactions, ${(floor.processPercent + floor.backendsPercent).toFixed(2)} % CPU. packages/server/src/e2e/idle.int.test.ts counts the hub's statements exactly (wire-protocol messages through a proxy) and asserts ≤ 1/s.`,
    ],
  };
}
