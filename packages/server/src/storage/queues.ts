/**
 * What the two queue tables (`inbound_messages`, the normalize queue; `deliveries`, the deliver
 * queue) share, below both stores (inbound/store.ts, deliveries/store.ts): the wake-up channels and
 * NOTIFY, the one lease renewal, and the depth of both queues (metrics, dashboard backlog).
 */
import { sql } from 'kysely';
import { type Executor, PLAN_STABLE, rows } from './db.ts';

export const CHANNEL_NORMALIZE = 'switchyard_normalize';
export const CHANNEL_DELIVER = 'switchyard_deliver';
export const CHANNEL_PULL = 'switchyard_pull';
/**
 * Events a pull subscription would be served were stored: the payload lists those subscriptions'
 * ids, comma-separated ('' when too many to list: every waiter looks). Heard by the feed's
 * long-polls (subscriptions/feed.ts) in every process; sent only when a pull subscription matched,
 * so a webhook-only deployment sends none ({@link FEED_PAYLOAD_MAX}).
 */
export const CHANNEL_FEED = 'switchyard_feed';
/** The longest list of ids a feed NOTIFY carries (Postgres refuses payloads of 8000 bytes and more). */
export const FEED_PAYLOAD_MAX = 7000;

export async function notify(db: Executor, channel: string): Promise<void> {
  // NOTIFY inside a transaction is sent at commit, and identical payloads are folded into one.
  await sql`select pg_notify(${channel}, '')`.execute(db);
}

/** A row this process holds a lease on: its id, the lease token of the claim, and the lease length. */
export interface HeldLease {
  id: string;
  lockToken: string;
  /** How far from now a renewal moves the lease's end (never earlier than it already is). */
  leaseMs: number;
  /**
   * Given back before its work reached anyone (a delivery whose POST never went out: the outage
   * met its rate-limit token, say): its release takes back the attempt its claim counted.
   */
  unsent?: boolean;
}

/**
 * `items` in ascending order of their row's id (`id`): the one order in which every statement that
 * updates several rows of a queue table found by id from arrays (`unnest`) takes its rows. Such a
 * statement locks its rows in its arrays' order (the plan-stable sessions' nested loop over the
 * arrays), so two of them given the same rows in different orders each locked one and waited for
 * the other's: Postgres aborted one after `deadlock_timeout` (40P01, logged and run again). Seen
 * between the lease renewal (its leases in the order they were taken) and the attempt record (its
 * attempts in the order they were answered), and between the renewal and the normalize commit
 * (deliveries/lease-lock-order.int.test.ts). A sort of the batch in the hub, not in the statement:
 * the renewal, the record and the commit run all the time. The ids are lowercase uuids (Postgres's
 * and `randomUUID()`'s), whose string order is the uuid order.
 *
 * @example
 * ```ts
 * const v = inLockOrder(held, (h) => h.id); // then the statement's arrays from v
 * ```
 */
export function inLockOrder<T>(items: readonly T[], id: (item: T) => string): T[] {
  return [...items].sort((a, b) => {
    const x = id(a);
    const y = id(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/**
 * The one lease renewal of both queues: `table`'s rows in `status` whose token still matches,
 * locked in {@link inLockOrder}.
 * Plan-stable: planned at each execution, it saw `status = 'received'` and, between two ANALYZEs
 * of a filling queue, scanned a bitmap of every waiting message (then `inbound_queue_idx`) to renew a
 * few hundred leases, every renewal: 11 ms at 50,000 small rows, up to 188 ms seen in the
 * session's diagnostic runs (bench/analysis.md, session 24). Its generic plan finds each row by id
 * (storage/db.int.test.ts).
 */
export async function renewLeases(
  db: Executor,
  table: 'inbound_messages' | 'deliveries',
  status: 'received' | 'in_flight',
  given: readonly HeldLease[],
): Promise<Set<string>> {
  if (given.length === 0) return new Set();
  const held = inLockOrder(given, (h) => h.id);
  const r = await rows<{ id: string }>(
    sql`${PLAN_STABLE}update ${sql.table(`switchyard.${table}`)} q
          set locked_until = greatest(q.locked_until, now() + make_interval(secs => v.secs))
        from unnest(${held.map((h) => h.id)}::uuid[], ${held.map((h) => h.lockToken)}::uuid[],
          ${held.map((h) => h.leaseMs / 1000)}::float8[]) as v(id, lock_token, secs)
        -- "is not distinct from": no index serves it, so the rows come by id (a status of "=" let
        -- the deliveries' generic plan walk deliveries_sub_idx, whose second column it is).
        where q.id = v.id and q.lock_token = v.lock_token and q.status is not distinct from ${status}
        returning q.id`,
    db,
  );
  return new Set(r.map((x) => x.id));
}

/**
 * The depth of the two queues: inbound messages waiting for normalization, deliveries waiting to be
 * sent (due or retrying). The metrics (`switchyard_queue_depth`) and the dashboard's backlog read it.
 * A disabled subscription's waiting deliveries are not counted: parked until it is enabled
 * (deliveries/store.ts, `PARKED_UNTIL`), no worker can send them, and counted they kept the depth
 * an operator scales workers by high for days (its in-flight ones still are: a worker holds them).
 */
export async function queueDepths(db: Executor): Promise<{ normalize: number; deliver: number }> {
  const r = await sql<{ normalize: string; deliver: string }>`
    select
      (select count(*) from switchyard.inbound_messages where status = 'received') as normalize,
      (select count(*) from switchyard.deliveries where status in ('pending', 'in_flight')
        and (status = 'in_flight' or subscription_id not in
          (select id from switchyard.subscriptions where disabled_at is not null))) as deliver`.execute(db);
  return { normalize: Number(r.rows[0]?.normalize ?? 0), deliver: Number(r.rows[0]?.deliver ?? 0) };
}
