/** Helpers the scenarios share: a fresh database per participant, started children. */
import { createTestDatabase, type TestDatabase } from '../../packages/testing/src/index.ts';
import { type Child, startChild } from './child.ts';
import { type CliHub, type CliHubOptions, HUB_NODE_FLAGS, startCliHub } from './cli-hub.ts';

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
