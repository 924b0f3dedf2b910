/** Helpers the scenarios share: a fresh database per participant, started children. */
import { BUSY_TABLES } from '../../packages/server/src/storage/statistics.ts';
import { createTestDatabase, type TestDatabase } from '../../packages/testing/src/index.ts';
import { type Child, startChild } from './child.ts';
import { type CliHub, type CliHubOptions, HUB_NODE_FLAGS, startCliHub } from './cli-hub.ts';
import { pg } from './deps.ts';

export const HUB_ENTRY = new URL('./hub-process.ts', import.meta.url);
export const BASELINE_ENTRY = new URL('./baseline-server.ts', import.meta.url);
export const PGBOSS_ENTRY = new URL('./pgboss-process.ts', import.meta.url);
export const PIPELINE_FLOOR_ENTRY = new URL('./pipeline-floor.ts', import.meta.url);

/**
 * Runs `body` with a fresh database and a child process on it, then stops the child and drops
 * the database whatever happens.
 *
 * @example
 * ```ts
 * const rps = await withChild(adminUrl, HUB_ENTRY, async (hub) => { ... });
 * ```
 */
export async function withChild<T>(
  adminUrl: string,
  entry: URL,
  body: (child: Child, db: TestDatabase) => Promise<T>,
): Promise<T> {
  const db = await createTestDatabase({ adminUrl, prefix: 'sy_bench_' });
  let child: Child | undefined;
  try {
    // BENCH_CPU_PROF=dir profiles the hub child (V8 .cpuprofile written to dir when it exits).
    const prof = process.env.BENCH_CPU_PROF;
    const isHub = entry.href === HUB_ENTRY.href;
    const execArgv = [
      ...(isHub ? HUB_NODE_FLAGS : []),
      ...(prof && isHub ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []),
    ];
    child = await startChild(entry, { BENCH_DATABASE_URL: db.url }, execArgv);
    return await body(child, db);
  } finally {
    await child?.stop().catch(() => {});
    await db.drop().catch(() => {});
  }
}

/**
 * Runs `body` with a fresh database and `switchyard start` on it (bench/lib/cli-hub.ts: the hub as
 * users run it), then stops the hub and drops the database whatever happens.
 *
 * @example
 * ```ts
 * const r = await withCliHub(adminUrl, { subscribers: [sub.url] }, async (hub, db) => { ... });
 * ```
 */
export async function withCliHub<T>(
  adminUrl: string,
  options: Omit<CliHubOptions, 'databaseUrl'>,
  body: (hub: CliHub, db: TestDatabase) => Promise<T>,
): Promise<T> {
  const db = await createTestDatabase({ adminUrl, prefix: 'sy_bench_' });
  let hub: CliHub | undefined;
  try {
    hub = await startCliHub({ ...options, databaseUrl: db.url });
    return await body(hub, db);
  } finally {
    await hub?.stop().catch(() => {});
    await db.drop().catch(() => {});
  }
}

/**
 * Whether the hub's statistics keeper (pipeline/statistics.ts) has counted each busy table once
 * (an ANALYZE, by it or anyone). A hub's first ANALYZE of its busy tables comes at the keeper's
 * first tick with work done after they reach 500 rows, all six in a row, and has every cached plan
 * of the pipeline's statements made again: a stall of tens of milliseconds in normalize and
 * delivery, once in a hub's first seconds. A latency run's warm-up goes on until it has happened,
 * so that the measured window is the hub's steady state and not wherever that tick fell
 * (bench/analysis.md, session 34); the later ANALYZEs, at each doubling of a table, stay in.
 *
 * @example
 * ```ts
 * await latencyWarmUp({ port, rate: 200, delivered: () => subscriber.count, what: 'latency', ready: () => busyTablesCounted(db.url) });
 * ```
 */
export async function busyTablesCounted(databaseUrl: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      `select count(*)::integer as n from pg_stat_user_tables
       where schemaname = 'switchyard' and relname = any($1::text[])
         and (last_analyze is not null or last_autoanalyze is not null)`,
      [[...BUSY_TABLES]],
    );
    return rows[0]!.n === BUSY_TABLES.length;
  } finally {
    await client.end();
  }
}
