import type pg from 'pg';
import { POOL_IDLE_TIMEOUT_MS, SESSION_LIVENESS, sessionConfig } from '../storage/db.ts';
import { type UnacknowledgedWatchOptions, watchUnacknowledged } from '../storage/unacknowledged.ts';

/**
 * The timers of the hub's pg-boss instance (one per process, `hub.host.queue`, schema
 * `switchyard_queue`: the pipeline's retention schedule, the gates' hand-off and the commands' jobs
 * share it), and the polling backstops of the subsystems' `work()` calls on it.
 *
 * Why: pg-boss's defaults poll. Each instance checks the cron queue and job dependencies every 5 s,
 * the schedules every 30 s, queue statistics, maintenance and its cache every 60 s, and a `work()` without NOTIFY polls
 * its queue every 2 s; with three instances (before they were one) an idle hub ran ~4 statements a
 * second for pg-boss alone. Nothing here needs that: jobs that matter are sent to `notify` queues (gate hand-off,
 * commands) and wake their workers by NOTIFY, the retention schedule ticks daily and may start a
 * minute late, and expired or stranded jobs are found by the commands and gates sweeps. So every
 * timer is a long backstop (docs/architecture.md, "Idle costs nothing measurable").
 *
 * @example
 * ```ts
 * const boss = new PgBoss({ ...bossSession(url), schema: 'switchyard_queue', max: 2, ...BOSS_TIMERS });
 * ```
 */
export const BOSS_TIMERS = {
  /** The longest pg-boss allows for both cron timers (schedules are checked at most this late). */
  cronMonitorIntervalSeconds: 45,
  cronWorkerIntervalSeconds: 45,
  superviseIntervalSeconds: 300,
  monitorIntervalSeconds: 300,
  queueCacheIntervalSeconds: 300,
  bamIntervalSeconds: 300,
  /** Job dependencies (flows), which the hub does not use; pg-boss checks them every 5 s by default. */
  flowIntervalSeconds: 300,
  /** The LISTEN connection's keep-alive query (TCP keep-alive runs beside it). */
  notifyHeartbeatIntervalMs: 60_000,
  /**
   * No row in pg-boss's instance registry (`getInstances()`, which the hub does not read). The
   * registry's heartbeat is an upsert every 30 s, and while it is on pg-boss samples the event loop
   * delay with `monitorEventLoopDelay` at a 20 ms resolution: a timer waking the process 50 times a
   * second, which was most of an idle hub's CPU (strace: ~50 `epoll_pwait` returns a second, none
   * with an event).
   */
  registerInstance: false,
  /**
   * pg-boss's pool (`max: 2`) keeps its connections like the hub's (storage/db.ts says why): its
   * statements come every 30–60 s, so with pg's default 10 s each one opened a connection.
   * pg-boss hands its constructor options to `pg.Pool`.
   */
  idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS,
} as const;

/**
 * The connection settings of pg-boss's sessions (its pool and its LISTEN connection): the hub's
 * ({@link sessionConfig}: the liveness bounds, client keepalive, which pg's pool leaves off), and
 * no JIT, like the hub's (storage/db.ts, `PLANNED_SETTINGS`, says why), as a startup option so it
 * holds before pg-boss's first statement. A database URL's own `options` come after these.
 *
 * @example
 * ```ts
 * const boss = new PgBoss({ ...bossSession(databaseUrl), schema: 'switchyard_queue', ...BOSS_TIMERS });
 * ```
 */
export function bossSession(databaseUrl: string): ReturnType<typeof sessionConfig> {
  return sessionConfig(databaseUrl, '-c jit=off');
}

/**
 * The polling backstop of a `work()` on a queue whose jobs arrive by NOTIFY (`notify: true` and
 * `useListenNotify`): it only matters when a notification was lost.
 */
export const NOTIFY_BACKSTOP_SECONDS = 30;

/** How often a worker of a queue without NOTIFY (the retention schedules) looks for a job. */
export const SCHEDULED_POLL_SECONDS = 60;

/**
 * Bounds pg-boss's statements to a lost Postgres host as the hub's main pool is bounded
 * (storage/unacknowledged.ts): a connection of pg-boss's pool whose bytes go unacknowledged is
 * closed after `SESSION_LIVENESS.userTimeoutMs` of retransmission, so its statement fails (pg-boss reports it and its timers try
 * again) instead of waiting ~15 minutes for the kernel, during which this process fetched no command
 * or gate hand-off job. Call it after `start()`, which opens the pool. pg-boss does not expose its
 * pool: it is read from the database object `getDb()` returns (a private field of pg-boss 12's `Db`,
 * checked by host/boss-unacknowledged.int.test.ts, so that an upgrade renaming it fails a test
 * rather than losing the bound quietly). Returns a function that stops the watch, and does nothing
 * when there is no pool to watch.
 *
 * @example
 * ```ts
 * await boss.start();
 * const unwatch = watchBossConnections(boss);
 * // ... after boss.stop():
 * unwatch();
 * ```
 */
export function watchBossConnections(
  boss: { getDb(): unknown },
  options: Partial<UnacknowledgedWatchOptions> = {},
): () => void {
  // Told by shape, not `instanceof`: pg-boss may resolve another copy of pg than the hub's.
  const pool = (boss.getDb() as { pool?: Partial<pg.Pool> }).pool;
  return typeof pool?.on === 'function' && typeof pool.totalCount === 'number'
    ? watchUnacknowledged(pool as pg.Pool, { boundMs: SESSION_LIVENESS.userTimeoutMs, ...options })
    : () => {};
}
