/**
 * Read-only statistics the HTTP layer needs that the hub API does not offer (yet): counts for the
 * metrics and a readiness probe. Plain SQL over the hub's own connection pool.
 */
import { sql } from 'kysely';
import { FEED_COMMIT_WINDOW_S } from '../events/store.ts';
import type { Executor } from '../storage/db.ts';

/**
 * Deliveries by status; a dead delivery that was replayed is `replayed`, so `dead` is the dead
 * letters still waiting (what an alert on dead deliveries means). Every status but `succeeded` is
 * counted by index: pending and in flight on deliveries_due_seq_idx; held and skipped from
 * deliveries_settled_idx alone; the dead letters waiting from deliveries_dead_idx alone, the
 * replayed ones from deliveries_replayed_idx alone (migration 49: before, every dead delivery's
 * row was read to tell the two apart). Rows a scrape reads grow with the open and settled
 * deliveries, not with the table. `succeeded`, the bulk, is the statistics' count of live rows
 * (`pg_stat_user_tables.n_live_tup`, kept by every insert and delete) less the others: an
 * estimate. Counting it read every delivery on every scrape, of every process (1.2 s at 4 million
 * deliveries; http/metrics-cost.int.test.ts).
 */
export async function deliveryCounts(db: Executor): Promise<Record<string, number>> {
  const r = await sql<{ status: string; n: string }>`
    with counted as (
      select status, count(*) as n from switchyard.deliveries where status in ('pending', 'in_flight') group by status
      union all
      select status, count(*) from switchyard.deliveries where status in ('held', 'skipped') group by status
      union all
      select 'dead', count(*) from switchyard.deliveries where status = 'dead' and superseded_by is null
      union all
      select 'replayed', count(*) from switchyard.deliveries where superseded_by is not null and status = 'dead')
    select status, n from counted
    union all
    select 'succeeded', greatest(0, coalesce((select n_live_tup from pg_stat_user_tables
                                              where relid = 'switchyard.deliveries'::regclass), 0)
                                    - coalesce((select sum(n) from counted), 0))`.execute(db);
  const out: Record<string, number> = {
    pending: 0,
    in_flight: 0,
    succeeded: 0,
    dead: 0,
    replayed: 0,
    skipped: 0,
    held: 0,
  };
  for (const row of r.rows) out[row.status] = Number(row.n);
  return out;
}

/** How one pulling instance's polls go: what the pull gauges of `/metrics` show. */
export interface PullHealth {
  instance: string;
  /** Age of the oldest notification of the last pulled batch when it arrived; null before one. */
  lagMs: number | null;
  /** Turns that failed since the last one that fetched (0 when that one did). */
  consecutiveFailures: number;
  /** When a turn last fetched from the vendor (a batch, empty or not); null before one did. */
  lastSuccessAt: Date | null;
}

/**
 * The pull health of every enabled pulling instance. The lag alone cannot show a vendor that
 * refuses every poll: it keeps the value of the last batch that came, however long ago.
 */
export async function pullHealth(db: Executor): Promise<PullHealth[]> {
  const r = await sql<{
    id: string;
    pull_lag_ms: string | null;
    pull_consecutive_failures: number;
    pull_last_success_at: Date | null;
  }>`
    select id, pull_lag_ms, pull_consecutive_failures, pull_last_success_at from switchyard.connector_instances
    where mode <> 'push' and disabled_at is null order by id`.execute(db);
  return r.rows.map((row) => ({
    instance: row.id,
    lagMs: row.pull_lag_ms === null ? null : Number(row.pull_lag_ms),
    consecutiveFailures: row.pull_consecutive_failures,
    lastSuccessAt: row.pull_last_success_at,
  }));
}

/**
 * Every subscription and whether it is disabled (by the hub after consecutive dead deliveries, a
 * 410 Gone, or by an operator): a disabled subscription is attempted no more, so its failures stop
 * moving the attempt counters as if it had recovered.
 */
export async function subscriptionStates(
  db: Executor,
): Promise<{ subscription: string; disabled: boolean }[]> {
  const r = await sql<{ id: string; disabled: boolean }>`
    select id, disabled_at is not null as disabled from switchyard.subscriptions order by id`.execute(db);
  return r.rows.map((row) => ({ subscription: row.id, disabled: row.disabled }));
}

/**
 * Dead deliveries not yet replayed or skipped, by subscription (0 for one without any): the dead
 * letters operators alert on. Counted from deliveries_dead_idx alone (migration 49), which a
 * delivery enters when it dies and leaves when it is replayed or skipped: a scrape reads the dead
 * letters waiting, not every dead delivery and its row (a BitmapAnd per subscription, 94 ms warm
 * and 360 ms cold at 32,000 dead deliveries; http/dead-letters-cost.int.test.ts).
 *
 * @example
 * ```ts
 * await deadBySubscription(db); // [{ subscription: 'crm', dead: 3 }, { subscription: 'erp', dead: 0 }]
 * ```
 */
export async function deadBySubscription(db: Executor): Promise<{ subscription: string; dead: number }[]> {
  const r = await sql<{ id: string; dead: string }>`
    select s.id, (select count(*) from switchyard.deliveries d
                  where d.subscription_id = s.id and d.status = 'dead' and d.superseded_by is null) as dead
    from switchyard.subscriptions s order by s.id`.execute(db);
  return r.rows.map((row) => ({ subscription: row.id, dead: Number(row.dead) }));
}

/** How far one enabled pull subscription's reader is behind: what the feed backlog gauges of `/metrics` show. */
export interface FeedBacklog {
  subscription: string;
  /**
   * At most this many events are stored after its acknowledged position: the sequence numbers from
   * the first stored event after it to the newest drawn. An upper bound, not a count: numbers of
   * rolled-back writes and events its filter would not serve are in it. 0 when nothing is stored
   * after its position.
   */
  unreadEvents: number;
  /** Seconds since the first event stored after its position was stored (0 when there is none). */
  oldestUnreadAgeSeconds: number;
}

/**
 * Each enabled pull subscription's backlog ({@link FeedBacklog}): retention keeps every event after
 * the lowest acknowledged position of these (until `retention.unreadEvents`), so a reader created
 * and never read, or stopped, grows the events table. One probe per subscription by the events'
 * primary key (the first event after its position) and the sequence's last value: no count over the
 * events, which a stopped reader's backlog makes as large as the table. A subscription's filter is
 * not applied: what it holds back is every event after its position, whatever its type.
 *
 * @example
 * ```ts
 * await feedBacklogs(db); // [{ subscription: 'erp', unreadEvents: 1200, oldestUnreadAgeSeconds: 86400 }]
 * ```
 */
export async function feedBacklogs(db: Executor): Promise<FeedBacklog[]> {
  const r = await sql<{ id: string; unread: string; age: number }>`
    select s.id,
           coalesce(pg_sequence_last_value('switchyard.events_sequence_seq'::regclass) - f.sequence + 1, 0)::text as unread,
           coalesce(extract(epoch from now() - f.created_at), 0)::float8 as age
    from switchyard.subscriptions s
    left join switchyard.feed_cursors c on c.subscription_id = s.id
    left join lateral (select e.sequence, e.created_at from switchyard.events e
                       where e.sequence > coalesce(c.cursor, 0) order by e.sequence limit 1) f on true
    where s.kind = 'pull' and s.disabled_at is null
    order by s.id`.execute(db);
  return r.rows.map((row) => ({
    subscription: row.id,
    unreadEvents: Math.max(0, Number(row.unread)),
    oldestUnreadAgeSeconds: Math.max(0, Number(row.age)),
  }));
}

/** The newest attempt id ('0' when there is none). */
export async function maxAttemptId(db: Executor): Promise<string> {
  const r = await sql<{ id: string | null }>`select max(id) as id from switchyard.delivery_attempts`.execute(
    db,
  );
  return r.rows[0]?.id ?? '0';
}

/**
 * Attempts after `after` (at most `limit`) with the traceparent of each one's span, and the id to
 * continue from. An attempt's id is drawn when its record is inserted and becomes visible at
 * commit, and records of several workers or processes commit in any order: reading past a missing
 * id that may still commit would skip that attempt for good (the caller continues after `last`).
 * So, as the pull feed does (FEED_COMMIT_WINDOW_S), the read stops before an attempt that follows a
 * missing id while that attempt was recorded less than the window ago (its end, `started_at` +
 * `latency_ms`, is when its record was written, give or take the record's short wait for company);
 * after that the missing id is a rollback's or a purged delivery's, for good. The horizon's bound is
 * written `y.id > after + 1` (a range of the primary key): `y.id - 1 > after` was no index
 * condition, so every scrape read the whole attempt log (0.12 s at 530,000 attempts;
 * http/metrics-cost.int.test.ts).
 */
export async function countAttemptsSince(
  db: Executor,
  after: string,
  limit = 10_000,
): Promise<{
  attempts: { outcome: string; latencyMs: number; traceparent: string | null; subscription: string | null }[];
  last: string;
}> {
  const r = await sql<{
    id: string;
    outcome: string;
    latency_ms: number | null;
    traceparent: string | null;
    subscription_id: string | null;
  }>`
    with horizon as (
      select min(y.id) as id from switchyard.delivery_attempts y
      where y.id > ${after}::bigint + 1
        and y.started_at + make_interval(secs => coalesce(y.latency_ms, 0) / 1000.0)
          > now() - make_interval(secs => ${FEED_COMMIT_WINDOW_S})
        and not exists (select 1 from switchyard.delivery_attempts p where p.id = y.id - 1))
    select a.id, a.outcome, a.latency_ms, a.traceparent, d.subscription_id from switchyard.delivery_attempts a
    left join switchyard.deliveries d on d.id = a.delivery_id
    where a.id > ${after}::bigint and a.id < coalesce((select id from horizon), 9223372036854775807)
    order by a.id limit ${limit}`.execute(db);
  const attempts = r.rows
    .filter((row) => row.latency_ms !== null)
    .map((row) => ({
      outcome: row.outcome,
      latencyMs: Number(row.latency_ms),
      traceparent: row.traceparent,
      subscription: row.subscription_id,
    }));
  return { attempts, last: r.rows.length > 0 ? r.rows[r.rows.length - 1]!.id : after };
}

/** Throws unless the database answers, can write, and holds the hub's schema (queues included: they are tables). */
export async function probeDatabase(db: Executor): Promise<void> {
  // A database that answers but cannot write (a standby after a failover, read-only for
  // maintenance) stores no push: not ready, as when it does not answer (SQLSTATE 25006, what a
  // write would get, so the caller reports it as an outage).
  const session = await sql<{ read_only: string }>`
    select current_setting('transaction_read_only') as read_only from switchyard.migrations limit 1`.execute(
    db,
  );
  if (session.rows[0]?.read_only === 'on') {
    throw Object.assign(new Error('the database is read-only (transaction_read_only is on)'), {
      code: '25006',
    });
  }
  await sql`select 1 from switchyard.inbound_messages where false`.execute(db);
  await sql`select 1 from switchyard.deliveries where false`.execute(db);
}

/**
 * {@link probeDatabase} within `timeoutMs`: a database whose connections hang (a silent network)
 * fails the probe in that time rather than whenever the pool gives up. `/readyz` and the
 * `switchyard_database_up` gauge ask this.
 *
 * @example
 * ```ts
 * await probeDatabaseWithin(hub.host.db, 3000); // throws "no answer in 3000 ms" when it hangs
 * ```
 */
export async function probeDatabaseWithin(db: Executor, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probeDatabase(db),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
