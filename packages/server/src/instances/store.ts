/**
 * The SQL of the `connector_instances` table, one named function each (pg-boss's "plans" style):
 * the admin API's writes and reads, and the poller's pull and reconcile turns. Functions take an
 * {@link Executor} so callers decide the transaction.
 */
import type { JsonValue } from '@switchyard/core';
import { sql } from 'kysely';
import {
  type Executor,
  first,
  json,
  rows,
  SESSION_APPLICATION_NAME,
  sessionsConnected,
} from '../storage/db.ts';
import { CHANNEL_PULL } from '../storage/queues.ts';

export interface InstanceRow {
  id: string;
  connector: string;
  mode: 'push' | 'pull' | 'both';
  settings_sealed: string;
  pull_interval_ms: number | null;
  gate: JsonValue | null;
  managed_by: 'file' | 'api';
  created_at: Date;
  updated_at: Date;
  last_message_at: Date | null;
  last_error: string | null;
  last_error_at: Date | null;
  pull_cursor: string | null;
  pull_next_at: Date | null;
  pull_last_success_at: Date | null;
  pull_consecutive_failures: number;
  pull_lag_ms: string | null;
  reconcile_next_at: Date | null;
  reconcile_last_run_at: Date | null;
  reconcile_last_success_at: Date | null;
  reconcile_last_result: string | null;
  reconcile_last_error: string | null;
  /** Set while the instance is disabled: it takes no pushes and is not pulled. */
  disabled_at: Date | null;
  disabled_reason: string | null;
}

/**
 * Inserts an instance, or replaces the one with this id when `replace` is true; `undefined` when
 * it exists and `replace` is false. The existence check is the insert itself, so two creates of
 * one id at once give one row and one conflict, not two successes. A written row wakes every
 * process's pull loop (NOTIFY on commit).
 */
export async function upsertInstance(
  db: Executor,
  replace: boolean,
  i: {
    id: string;
    connector: string;
    mode: string;
    settingsSealed: string;
    pullIntervalMs: number | null;
    gate: JsonValue | null;
    managedBy: string;
  },
): Promise<InstanceRow | undefined> {
  const row = await first<InstanceRow>(
    sql`with up as (insert into switchyard.connector_instances (id, connector, mode, settings_sealed, pull_interval_ms, gate, managed_by, pull_next_at)
      values (${i.id}, ${i.connector}, ${i.mode}, ${i.settingsSealed}, ${i.pullIntervalMs}, ${json(i.gate)}, ${i.managedBy},
              case when ${i.mode} <> 'push' then now() end)
      on conflict (id) do update set connector = excluded.connector, mode = excluded.mode,
        settings_sealed = excluded.settings_sealed, pull_interval_ms = excluded.pull_interval_ms, gate = excluded.gate,
        managed_by = excluded.managed_by, updated_at = now(),
        pull_next_at = case when excluded.mode = 'push' then null
                            else coalesce(switchyard.connector_instances.pull_next_at, now()) end
        where ${replace}
      returning *),
      -- Every process's pull loop looks at once (a pull turn, or a push instance's reconciliation, may
      -- be due now): an instance written through the admin API of an http-role process is a worker's.
      woken as (select pg_notify(${CHANNEL_PULL}, '') from up)
      select up.* from up cross join (select count(*) from woken) w`,
    db,
  );
  return row;
}

export async function getInstance(db: Executor, id: string): Promise<InstanceRow | undefined> {
  return first<InstanceRow>(sql`select * from switchyard.connector_instances where id = ${id}`, db);
}

/**
 * The instance row, locked until the transaction ends (`undefined` when there is none): a
 * replacement that keeps stored settings (`[redacted]`) reads them so, or a replacement committed
 * between its read and its write is undone. `for no key update`, the lock the update itself takes,
 * as subscriptions' lockSubscription does.
 */
export async function lockInstance(db: Executor, id: string): Promise<InstanceRow | undefined> {
  return first<InstanceRow>(
    sql`select * from switchyard.connector_instances where id = ${id} for no key update`,
    db,
  );
}

export async function listInstances(db: Executor): Promise<InstanceRow[]> {
  return rows<InstanceRow>(sql`select * from switchyard.connector_instances order by id`, db);
}

/**
 * Disables an instance: pushes to it are refused and it is neither pulled nor reconciled, while its
 * row (settings, pull position) and the messages it already stored stay. The row when this call
 * disabled it; `undefined` when there is no such instance or it was disabled already (kept as it
 * was, reason and time).
 */
export async function disableInstance(
  db: Executor,
  id: string,
  reason: string,
): Promise<InstanceRow | undefined> {
  return first<InstanceRow>(
    sql`update switchyard.connector_instances set disabled_at = now(), disabled_reason = ${reason}, updated_at = now()
        where id = ${id} and disabled_at is null returning *`,
    db,
  );
}

/**
 * Enables an instance disabled for `reason` (only: a disable for another reason stays) and wakes
 * every process's pull loop, since a pull or reconciliation may be due at once. The row when this
 * call enabled it, else `undefined`.
 */
export async function enableInstance(
  db: Executor,
  id: string,
  reason: string,
): Promise<InstanceRow | undefined> {
  return first<InstanceRow>(
    sql`with up as (update switchyard.connector_instances set disabled_at = null, disabled_reason = null, updated_at = now()
          where id = ${id} and disabled_reason = ${reason} returning *),
      woken as (select pg_notify(${CHANNEL_PULL}, '') from up)
      select up.* from up cross join (select count(*) from woken) w`,
    db,
  );
}

/**
 * The ids of the subscriptions whose `sources` or `approverFilters.sources` name the instance, in
 * order, after locking the instance's row (a delete that finds none deletes a row no change to
 * those lists holds at the same time).
 */
export async function subscriptionsNaming(db: Executor, id: string): Promise<string[]> {
  await sql`select id from switchyard.connector_instances where id = ${id} for update`.execute(db);
  return (
    await rows<{ id: string }>(
      sql`select id from switchyard.subscriptions
          where ${id} = any(sources) or approver_filters -> 'sources' ? ${id}
          order by id`,
      db,
    )
  ).map((r) => r.id);
}

export async function deleteInstance(db: Executor, id: string): Promise<boolean> {
  const r = await sql`delete from switchyard.connector_instances where id = ${id}`.execute(db);
  return Number(r.numAffectedRows ?? 0) > 0;
}

export async function recordInstanceError(db: Executor, id: string, error: string): Promise<void> {
  await sql`update switchyard.connector_instances set last_error = ${error}, last_error_at = now() where id = ${id}`.execute(
    db,
  );
}

/**
 * Whether a session that is not a Switchyard process's of a version that names its sessions (its
 * `application_name` is neither {@link SESSION_APPLICATION_NAME} nor starts with it and a space) is
 * connected to this database: a process of a version before 33edb87 may be alive. A session whose
 * type this role may not see (another role's) counts, so the answer errs towards "alive".
 */
const EARLIER_VERSION_CONNECTED = sql`exists (select from pg_stat_activity a
  where a.datname = current_database() and a.pid <> pg_backend_pid()
    and coalesce(a.backend_type, 'client backend') = 'client backend'
    and a.application_name is distinct from ${SESSION_APPLICATION_NAME}
    and a.application_name not like ${`${SESSION_APPLICATION_NAME} %`})`;

/**
 * Whether a session of a version from 33edb87 up to migration 45 is connected (named
 * {@link SESSION_APPLICATION_NAME} alone): such a process leases turns without naming itself, and
 * leaves the holder column as the turn's previous holder wrote it, so a holder is trusted only when
 * none is connected.
 */
const UNNAMED_HOLDERS_CONNECTED = sql`exists (select from pg_stat_activity a
  where a.datname = current_database() and a.application_name = ${SESSION_APPLICATION_NAME})`;

type LeaseColumn = 'pull_locked_until' | 'reconcile_locked_until';
const holderOf = (column: LeaseColumn) =>
  sql.ref(column === 'pull_locked_until' ? 'pull_locked_by' : 'reconcile_locked_by');

/**
 * Whether a turn's lease in `column` has lapsed, or was taken by a process that is gone. This
 * version's leases are at most `leaseMs` ahead (renewed every third of it) and name their holder
 * (`pull_locked_by`, the holder's session tag): such a lease is taken over at once when no session
 * of its holder is connected (storage/db.ts, `sessionsConnected`): the holder was killed (a
 * graceful stop gives its leases back), on this host or another. Unless Postgres started after the
 * lease's last renewal (its renewal time is the lease's end less `leaseMs`): the restart ended the
 * holder's sessions, and it may be alive and reconnecting; such a lease is waited out. Before, every
 * lease was waited out (up to `leaseMs`, 30 s by default).
 *
 * Earlier versions' leases keep their rule. Versions before 33edb87 leased a turn for a fixed five
 * minutes, never renewed, so a lease further ahead is theirs: taken over once no session of an
 * earlier version is connected ({@link EARLIER_VERSION_CONNECTED}; while one is, it may be the
 * holder, and the lease is waited out: two processes never run one instance's turn at once). A
 * lease of a version from 33edb87 names no holder (or an earlier turn's, left in place: hence
 * {@link UNNAMED_HOLDERS_CONNECTED}) and is waited out, at most `leaseMs`.
 */
function leaseFree(column: LeaseColumn, leaseMs: number) {
  const c = sql.ref(column);
  const by = holderOf(column);
  const lease = sql`make_interval(secs => ${leaseMs / 1000})`;
  return sql`(${c} is null or ${c} < now()
    or (${c} > now() + ${lease} and not ${EARLIER_VERSION_CONNECTED})
    or (${c} <= now() + ${lease} and ${by} is not null
        and not ${sessionsConnected(sql`${by}`, sql`${c} - ${lease}`)}
        and not ${UNNAMED_HOLDERS_CONNECTED}))`;
}

/**
 * When a lease in `column` may next be free ({@link leaseFree}): when it runs out, or for a lease
 * of an earlier version, a third of this version's lease from now (its holder may be gone by then).
 * A lease whose holder is gone is free now, and the claim takes it.
 */
function leaseEnd(column: LeaseColumn, leaseMs: number) {
  const c = sql.ref(column);
  return sql`case when ${c} > now() + make_interval(secs => ${leaseMs / 1000})
    then now() + make_interval(secs => ${leaseMs / 3000}) else ${c} end`;
}

/**
 * Claims instances whose pull is due, leasing them to `holder` (the claiming hub's session tag) so
 * one process pulls an instance at a time (a lease whose holder is gone is taken over:
 * {@link leaseFree}).
 *
 * @example
 * ```ts
 * const due = await claimDuePulls(db, 30_000, 4, host.sessionTag); // leased for 30 s, renewed while each turn runs
 * ```
 */
export async function claimDuePulls(
  db: Executor,
  leaseMs: number,
  limit: number,
  holder: string,
): Promise<InstanceRow[]> {
  return rows<InstanceRow>(
    sql`update switchyard.connector_instances i set pull_locked_until = now() + make_interval(secs => ${leaseMs / 1000}),
        pull_locked_by = ${holder}
      from (select id from switchyard.connector_instances
            where mode <> 'push' and disabled_at is null and pull_next_at <= now()
              and ${leaseFree('pull_locked_until', leaseMs)}
            order by pull_next_at limit ${limit} for update skip locked) due
      where i.id = due.id returning i.*`,
    db,
  );
}

/** When the next pull may be claimed ({@link claimDuePulls} with the same `leaseMs`). */
export async function nextPullDue(db: Executor, leaseMs: number): Promise<Date | undefined> {
  const r = await first<{ at: Date | null }>(
    sql`select min(greatest(pull_next_at, coalesce(${leaseEnd('pull_locked_until', leaseMs)}, pull_next_at))) as at
        from switchyard.connector_instances where mode <> 'push' and disabled_at is null`,
    db,
  );
  return r?.at ?? undefined;
}

/**
 * Whether the turn lease in `column` is still `holder`'s (the session tag its claim wrote), or
 * true for `holder` undefined (a manual "pull now", which holds no lease). A lease is taken over as
 * soon as its holder's sessions are gone ({@link leaseFree}), and a live process can look gone: an
 * operator ended its sessions, a network cut had Postgres end them. Its turn goes on (a vendor call
 * needs no session) and its pool reconnects, so its late writes (the cursor, the renewal, the
 * give-back) are fenced by this: without it the give-back cleared the new holder's lease and made
 * the instance due at once, and a third claim ran its turn beside the new holder's.
 */
function heldBy(column: LeaseColumn, holder: string | undefined) {
  return holder === undefined ? sql`true` : sql`${holderOf(column)} = ${holder}`;
}

/**
 * Saves a pull turn's cursor (undefined: keeps it) and pull health, unless the turn's lease is no
 * longer `holder`'s ({@link heldBy}). Returns whether it was saved.
 */
export async function savePullCursor(
  db: Executor,
  id: string,
  cursor: string | null | undefined,
  lagMs: number | null,
  holder: string | undefined,
): Promise<boolean> {
  const r = await sql`update switchyard.connector_instances set
      pull_cursor = case when ${cursor === undefined} then pull_cursor else ${cursor ?? null} end,
      pull_lag_ms = coalesce(${lagMs}, pull_lag_ms),
      pull_last_success_at = now(), pull_consecutive_failures = 0
    where id = ${id} and ${heldBy('pull_locked_until', holder)}`.execute(db);
  return Number(r.numAffectedRows ?? 0) > 0;
}

/**
 * Ends a pull turn: releases its lease and sets the next due time, unless the lease is no longer
 * `holder`'s ({@link heldBy}: the turn's end is then the new holder's to write). An `error` is the
 * instance's last error; it counts as a failed poll (`pull_consecutive_failures`, the backoff and
 * `SwitchyardPullFailing`) unless `vendorFailure` is false: a turn that failed only because the
 * hub's own database refused what the vendor handed over, or cut the turn short, says so in the
 * last error and leaves the count where it was (the vendor answered; the database's condition has
 * its own counter and alert).
 *
 * @example
 * ```ts
 * await finishPull(db, 'dp-main', 60_000, 'pull failed: 3 pulled notifications waiting to be stored …', holder, false);
 * ```
 */
export async function finishPull(
  db: Executor,
  id: string,
  nextInMs: number,
  error: string | null,
  holder: string | undefined,
  vendorFailure = true,
): Promise<void> {
  await sql`update switchyard.connector_instances set
      pull_next_at = now() + make_interval(secs => ${nextInMs / 1000}), pull_locked_until = null, pull_locked_by = null,
      pull_consecutive_failures = case when ${error}::text is null then 0
        when ${vendorFailure} then pull_consecutive_failures + 1 else pull_consecutive_failures end,
      last_error = coalesce(${error}, last_error),
      last_error_at = case when ${error}::text is null then last_error_at else now() end
    where id = ${id} and ${heldBy('pull_locked_until', holder)}`.execute(db);
}

/**
 * Extends the lease of a pull or reconciliation turn that is still running, to `leaseMs` from now,
 * while it is still `holder`'s: one given up meanwhile (`finishPull` / `finishReconcile` cleared
 * it), or taken over by another process (this one looked gone, or its lease lapsed), is left
 * alone. Returns whether it was renewed: false tells the turn it lost its lease.
 *
 * @example
 * ```ts
 * await renewTurnLease(db, 'pull', 'dp-main', 30_000, host.sessionTag); // every 10 s while the turn runs
 * ```
 */
export async function renewTurnLease(
  db: Executor,
  job: 'pull' | 'reconcile',
  id: string,
  leaseMs: number,
  holder: string,
): Promise<boolean> {
  const name: LeaseColumn = job === 'pull' ? 'pull_locked_until' : 'reconcile_locked_until';
  const column = sql.ref(name);
  const r = await sql`update switchyard.connector_instances
      set ${column} = now() + make_interval(secs => ${leaseMs / 1000})
    where id = ${id} and ${column} is not null and ${heldBy(name, holder)}`.execute(db);
  return Number(r.numAffectedRows ?? 0) > 0;
}

/**
 * Claims push instances of the given connectors whose reconciliation is due (never run counts as
 * due), leasing them so one process runs an instance's reconciliation at a time.
 */
export async function claimDueReconciles(
  db: Executor,
  connectors: readonly string[],
  leaseMs: number,
  limit: number,
  holder: string,
): Promise<InstanceRow[]> {
  if (connectors.length === 0) return [];
  return rows<InstanceRow>(
    sql`update switchyard.connector_instances i set reconcile_locked_until = now() + make_interval(secs => ${leaseMs / 1000}),
        reconcile_locked_by = ${holder}
      from (select id from switchyard.connector_instances
            where mode = 'push' and disabled_at is null and connector = any(${connectors as string[]}::text[])
              and coalesce(reconcile_next_at, '-infinity') <= now()
              and ${leaseFree('reconcile_locked_until', leaseMs)}
            order by reconcile_next_at nulls first limit ${limit} for update skip locked) due
      where i.id = due.id returning i.*`,
    db,
  );
}

/** When the next reconciliation may be claimed ({@link claimDueReconciles} with the same `leaseMs`). */
export async function nextReconcileDue(
  db: Executor,
  connectors: readonly string[],
  leaseMs: number,
): Promise<Date | undefined> {
  if (connectors.length === 0) return undefined;
  const r = await first<{ at: Date | null }>(
    sql`select min(greatest(coalesce(reconcile_next_at, now()), coalesce(${leaseEnd('reconcile_locked_until', leaseMs)}, now()))) as at
        from switchyard.connector_instances
        where mode = 'push' and disabled_at is null and connector = any(${connectors as string[]}::text[])`,
    db,
  );
  return r?.at ?? undefined;
}

/**
 * Ends a reconciliation turn: releases the lease and sets the next due time. `outcome` undefined:
 * nothing ran (reconciliation does not apply to the instance now); otherwise the run's summary or
 * its error. Not written once the lease is no longer `holder`'s ({@link heldBy}).
 */
export async function finishReconcile(
  db: Executor,
  id: string,
  nextInMs: number,
  outcome: { result: string } | { error: string } | undefined,
  holder: string | undefined,
): Promise<void> {
  const ran = outcome !== undefined;
  const result = outcome && 'result' in outcome ? outcome.result : null;
  const error = outcome && 'error' in outcome ? outcome.error : null;
  await sql`update switchyard.connector_instances set
      reconcile_next_at = now() + make_interval(secs => ${nextInMs / 1000}), reconcile_locked_until = null,
      reconcile_locked_by = null,
      reconcile_last_run_at = case when ${ran} then now() else reconcile_last_run_at end,
      reconcile_last_success_at = case when ${result}::text is not null then now() else reconcile_last_success_at end,
      reconcile_last_result = case when ${result}::text is not null then ${result} else reconcile_last_result end,
      reconcile_last_error = case when ${ran} then ${error}::text else reconcile_last_error end
    where id = ${id} and ${heldBy('reconcile_locked_until', holder)}`.execute(db);
}
