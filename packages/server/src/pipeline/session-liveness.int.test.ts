/**
 * Every session a hub opens asks Postgres to give up on it after a bounded silence
 * (storage/db.ts, `SESSION_LIVENESS`), so that a process whose host was lost is told gone
 * (`sessionsConnected`, `workerGone`) in about a minute rather than the kernel's 2 h 11 min; and,
 * where this machine lets a test drop a connection's packets (`tc` on the loopback), that the
 * sessions of a "lost host" do end within the bound while a session with the server's defaults
 * stays.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { afterEach, expect, it } from 'vitest';
import { BOSS_TIMERS, bossSession } from '../host/boss.ts';
import { HubListener } from '../host/listener.ts';
import {
  databaseNow,
  type Executor,
  openDatabase,
  PLAN_STABLE,
  SESSION_LIVENESS,
  sessionApplicationName,
  workerGone,
} from '../storage/db.ts';
import { lostHostUnavailable, partition } from '../storage/partition.test-support.ts';
import { makeHub, silent } from './fixtures.test-support.ts';

const database = useTestDatabase();
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The liveness settings of the session that runs it, in the server's units (s, s, -, ms, ms). */
const LIVENESS_OF_SESSION = `select
  (select setting from pg_settings where name = 'tcp_keepalives_idle') as idle_s,
  (select setting from pg_settings where name = 'tcp_keepalives_interval') as interval_s,
  (select setting from pg_settings where name = 'tcp_keepalives_count') as count,
  (select setting from pg_settings where name = 'tcp_user_timeout') as user_timeout_ms,
  (select setting from pg_settings where name = 'client_connection_check_interval') as check_ms,
  current_setting('jit') as jit,
  current_setting('plan_cache_mode') as plan_cache_mode`;

interface Liveness {
  idle_s: string;
  interval_s: string;
  count: string;
  user_timeout_ms: string;
  check_ms: string;
  jit: string;
  plan_cache_mode: string;
}

const BOUNDED = {
  idle_s: String(SESSION_LIVENESS.keepalivesIdleSeconds),
  interval_s: String(SESSION_LIVENESS.keepalivesIntervalSeconds),
  count: String(SESSION_LIVENESS.keepalivesCount),
  user_timeout_ms: String(SESSION_LIVENESS.userTimeoutMs),
};

it('every session a hub opens (pool, plan-stable pool, LISTEN, pg-boss) has the liveness bounds', async () => {
  const hub = await makeHub(database.url(), { options: { queue: true } });
  cleanups.push(() => hub.stop());
  await hub.start();
  const db = hub.host.db;

  const pooled = (await sql<Liveness>`${sql.raw(LIVENESS_OF_SESSION)}`.execute(db)).rows[0]!;
  expect(pooled).toMatchObject({ ...BOUNDED, check_ms: String(SESSION_LIVENESS.clientCheckIntervalMs) });
  expect(pooled.plan_cache_mode).toBe('force_custom_plan');

  // Run alone with the mark, on a free connection of the plan-stable pool (its plan cache mode says so).
  const stable = (await sql<Liveness>`${PLAN_STABLE}${sql.raw(LIVENESS_OF_SESSION)}`.execute(db)).rows[0]!;
  expect(stable).toMatchObject({ ...BOUNDED, check_ms: String(SESSION_LIVENESS.clientCheckIntervalMs) });
  expect(stable.plan_cache_mode).toBe('force_generic_plan');

  const listening = (hub.host.listener as unknown as { client?: pg.Client }).client;
  expect(listening).toBeDefined();
  const listener = (await listening!.query<Liveness>(LIVENESS_OF_SESSION)).rows[0]!;
  expect(listener).toMatchObject(BOUNDED);

  const boss = (await hub.host.queue!.getDb().executeSql(LIVENESS_OF_SESSION)) as { rows: Liveness[] };
  // Still without JIT: its own startup option beside the hub's.
  expect(boss.rows[0]).toMatchObject({ ...BOUNDED, jit: 'off' });
});

it("keeps the bounds when the database URL carries its own options, which come after the hub's", async () => {
  const url = new URL(database.url());
  url.searchParams.set('options', '-c tcp_keepalives_idle=45 -c statement_timeout=7000');
  const hub = await makeHub(url.toString(), { options: { queue: true } });
  cleanups.push(() => hub.stop());
  await hub.start();
  const row = (
    await sql<Liveness & { statement_timeout: string }>`${sql.raw(
      `select s.*, current_setting('statement_timeout') as statement_timeout from (${LIVENESS_OF_SESSION}) s`,
    )}`.execute(hub.host.db)
  ).rows[0]!;
  expect(row).toMatchObject({ ...BOUNDED, idle_s: '45', statement_timeout: '7s' });
  const boss = (await hub.host.queue!.getDb().executeSql(LIVENESS_OF_SESSION)) as { rows: Liveness[] };
  expect(boss.rows[0]).toMatchObject({ ...BOUNDED, idle_s: '45', jit: 'off' });
});

const unavailable = lostHostUnavailable();

/** The client ports of the sessions named `applicationName`. */
async function portsOf(db: Executor, applicationName: string): Promise<number[]> {
  const r = await sql<{ port: number }>`select client_port as port from pg_stat_activity
    where application_name = ${applicationName} and client_port is not null`.execute(db);
  return r.rows.map((row) => row.port);
}

it.skipIf(unavailable !== undefined)(
  `tells a lost host's hub gone within the bound, a session with the server's defaults not${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  async () => {
    // Short bounds through the URL's options (an operator's way to change them): gone ≈ 3 s.
    const url = new URL(database.url());
    url.searchParams.set(
      'options',
      '-c tcp_keepalives_idle=1 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=2 -c tcp_user_timeout=3000',
    );
    const observer = openDatabase(database.url(), { max: 1 });
    cleanups.push(() => observer.close());

    // The sessions a hub keeps, opened by the hub's own constructors: both pools, the LISTEN
    // connection, pg-boss (its pool and its LISTEN connection). No workers, so nothing opens a new
    // session while the others are cut off.
    const lost = openDatabase(url.toString(), { max: 1, planStable: 1 });
    cleanups.push(() => lost.close());
    await sql`select 1`.execute(lost.db);
    await sql`${PLAN_STABLE}select 1`.execute(lost.db);
    const listener = new HubListener(url.toString(), silent, lost.sessionTag);
    cleanups.push(() => listener.stop());
    await listener.start();
    await listener.listen('switchyard_liveness_test', () => {});
    const boss = new PgBoss({
      ...bossSession(url.toString()),
      schema: 'switchyard_queue',
      max: 1,
      useListenNotify: true,
      ...BOSS_TIMERS,
      application_name: sessionApplicationName(lost.sessionTag),
    });
    boss.on('error', () => {});
    cleanups.push(() => boss.stop({ graceful: false }));
    await boss.start();

    // The control: what every session of the hub was before, the server's keepalive defaults.
    const control = new pg.Client({ connectionString: database.url(), application_name: 'liveness control' });
    control.on('error', () => {});
    await control.connect();
    cleanups.push(() => {
      control.end().catch(() => {});
    });

    const since = await databaseNow(observer.db);
    const worker = `host-lost/1.${lost.sessionTag}`;
    const ports = await portsOf(observer.db, sessionApplicationName(lost.sessionTag));
    // Both pools, the LISTEN connection, pg-boss's pool.
    expect(ports.length).toBeGreaterThanOrEqual(4);
    const controlPorts = await portsOf(observer.db, 'liveness control');
    expect(await workerGone(observer.db, worker, since)).toBe(false);

    cleanups.push(partition([...ports, ...controlPorts]));
    let gone = false;
    // About 3 s by the bound; 30 s allows for a loaded machine, and a session kept for good fails.
    for (let i = 0; i < 150 && !gone; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      gone = await workerGone(observer.db, worker, since);
    }
    expect(gone).toBe(true);
    expect(await portsOf(observer.db, sessionApplicationName(lost.sessionTag))).toEqual([]);
    // Cut off as long, with the server's defaults (7200 s of idle first), its session is still there.
    expect(await portsOf(observer.db, 'liveness control')).toEqual(controlPorts);
  },
  60_000,
);
