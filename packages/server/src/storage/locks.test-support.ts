/**
 * What the tests of lock ordering share (inbound/key-lock, events/fanout-lease, deliveries/hold-replay):
 * waiting for a condition, and counting the sessions that wait for a lock.
 */
import { sql } from 'kysely';
import type { Executor } from './db.ts';

/**
 * Resolves once `check` holds (checked every 10 ms); fails after 5 s.
 *
 * @example
 * ```ts
 * await until(async () => (await advisoryLockWaiters(db)) === 1);
 * ```
 */
export async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Sessions of the current database waiting for an advisory lock (a subject's, an ordering key's). */
export async function advisoryLockWaiters(db: Executor): Promise<number> {
  return lockWaiters(db, 'advisory');
}

/**
 * Sessions of the current database waiting for a lock: of `waitEvent` (`pg_stat_activity`'s, say
 * `advisory`, `tuple`, `transactionid`), or of any kind.
 */
export async function lockWaiters(db: Executor, waitEvent?: string): Promise<number> {
  const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock'
      and (${waitEvent ?? null}::text is null or wait_event = ${waitEvent ?? null})`.execute(db);
  return r.rows[0]!.n;
}

/**
 * Sessions of the current database waiting for a lock while running a statement whose text is
 * `like` `queryLike`: one statement's wait, not another's that happens to wait a moment too.
 *
 * @example
 * ```ts
 * await until(async () => (await lockWaitersRunning(db, '%set locked_until = greatest%')) === 1);
 * ```
 */
export async function lockWaitersRunning(db: Executor, queryLike: string): Promise<number> {
  const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock' and query like ${queryLike}`.execute(db);
  return r.rows[0]!.n;
}
