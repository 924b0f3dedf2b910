/**
 * The SQL of the `subscriptions` table, one named function each (pg-boss's "plans" style). Functions
 * take an {@link Executor} so callers decide the transaction. The row type is `SubscriptionRow` in
 * storage/subscription-row.ts (why there: its doc comment).
 */
import type { JsonValue } from '@switchyard/core';
import { sql } from 'kysely';
import { parkDeliveries, unparkDeliveries } from '../deliveries/store.ts';
import { type Executor, first, json, rows } from '../storage/db.ts';
import type { StoredSecret, SubscriptionFormat, SubscriptionRow } from '../storage/subscription-row.ts';

/** What create and update write: every field the input can set. */
export interface SubscriptionValues {
  kind: 'webhook' | 'pull';
  url: string | null;
  eventTypes: string[];
  sources: string[] | null;
  secrets: StoredSecret[];
  contentType: string;
  timeoutMs: number;
  retryScheduleMs: number[] | null;
  rateLimit: JsonValue | null;
  ordering: 'hold' | 'release';
  approver: boolean;
  approverFilters: JsonValue | null;
  allowPrivateAddresses: boolean;
  disableAfterConsecutiveDead: number | null;
  managedBy: 'file' | 'api';
  format: SubscriptionFormat;
}

/**
 * Inserts a subscription; `undefined` when one with this id exists. The check is the insert
 * itself (`on conflict do nothing`), so two processes applying the same config file at once get
 * one row and one conflict, never a unique-violation error.
 */
export async function insertSubscription(
  db: Executor,
  id: string,
  v: SubscriptionValues,
): Promise<SubscriptionRow | undefined> {
  const row = await first<SubscriptionRow>(
    sql`insert into switchyard.subscriptions (id, kind, url, event_types, sources, secrets, content_type, timeout_ms,
          retry_schedule_ms, rate_limit, ordering, approver, approver_filters, allow_private_addresses,
          disable_after_consecutive_dead, managed_by, format)
        values (${id}, ${v.kind}, ${v.url}, ${v.eventTypes}::text[], ${v.sources}::text[], ${json(v.secrets)}, ${v.contentType},
          ${v.timeoutMs}, ${v.retryScheduleMs}::integer[], ${json(v.rateLimit)}, ${v.ordering}, ${v.approver},
          ${json(v.approverFilters)}, ${v.allowPrivateAddresses}, ${v.disableAfterConsecutiveDead}, ${v.managedBy}, ${v.format})
        on conflict (id) do nothing
        returning *`,
    db,
  );
  return row;
}

export async function updateSubscription(
  db: Executor,
  id: string,
  v: SubscriptionValues,
): Promise<SubscriptionRow | undefined> {
  return first<SubscriptionRow>(
    sql`update switchyard.subscriptions set kind = ${v.kind}, url = ${v.url}, event_types = ${v.eventTypes}::text[],
          sources = ${v.sources}::text[], secrets = ${json(v.secrets)}, content_type = ${v.contentType}, timeout_ms = ${v.timeoutMs},
          retry_schedule_ms = ${v.retryScheduleMs}::integer[], rate_limit = ${json(v.rateLimit)}, ordering = ${v.ordering},
          approver = ${v.approver}, approver_filters = ${json(v.approverFilters)},
          allow_private_addresses = ${v.allowPrivateAddresses},
          disable_after_consecutive_dead = ${v.disableAfterConsecutiveDead}, managed_by = ${v.managedBy},
          format = ${v.format}, updated_at = now()
        where id = ${id} returning *`,
    db,
  );
}

export async function getSubscription(db: Executor, id: string): Promise<SubscriptionRow | undefined> {
  return first<SubscriptionRow>(sql`select * from switchyard.subscriptions where id = ${id}`, db);
}

/**
 * The subscription row, locked until the transaction ends (`undefined` when there is none): a
 * change that reads the row, merges into it and writes it whole (update, rotate-secret) reads it
 * so, or two at once both read the same row and the second write undoes the first. `for no key
 * update`, the lock the update itself takes: `for update` would also hold up every commit inserting
 * a delivery of the subscription (its foreign key check takes `for key share` on the row).
 */
export async function lockSubscription(db: Executor, id: string): Promise<SubscriptionRow | undefined> {
  return first<SubscriptionRow>(
    sql`select * from switchyard.subscriptions where id = ${id} for no key update`,
    db,
  );
}

/**
 * Every instance's id, in order: what a subscription's `sources` may name. Each row is locked
 * (`for key share`) until the transaction ends: an instance being deleted is waited for (and then
 * is not there), and one found is not deleted under the subscription being saved (the delete
 * looks for subscriptions naming it once it has the row: instances/store.ts `subscriptionsNaming`).
 */
export async function instanceIds(db: Executor): Promise<string[]> {
  return (
    await rows<{ id: string }>(
      sql`select id from switchyard.connector_instances order by id for key share`,
      db,
    )
  ).map((r) => r.id);
}

export async function listSubscriptions(db: Executor): Promise<SubscriptionRow[]> {
  return rows<SubscriptionRow>(sql`select * from switchyard.subscriptions order by created_at, id`, db);
}

/**
 * Deletes a subscription (its deliveries, cursor and tokens with it, by cascade), run again when a
 * deadlock aborted it ({@link retryingDeadlock}). Returns whether it existed.
 *
 * Its row first, then its in-flight deliveries in id order, then the delete: the cascade takes the
 * deliveries in the order it scans them, while the deliver worker's lease renewal, attempt record
 * and release lock their in-flight rows in id order (`inLockOrder`, storage/queues.ts), batches
 * of several subscriptions' deliveries. The two at once deadlocked: Postgres aborted the renewal
 * (every lease of the batch left unrenewed for a pass, a warning), the record (its batch written
 * again one by one) or the delete (run again a second later, or a 503 to the operator once three
 * tries deadlocked, likely while deleting a busy subscription). Locked first in their order, the
 * rows a worker holds are waited for, never held against it (subscriptions/delete-lock-order.int.test.ts).
 *
 * @example
 * ```ts
 * if (!(await deleteSubscription(db, 'old-crm'))) throw notFound('subscription', 'old-crm');
 * ```
 */
export async function deleteSubscription(db: Executor, id: string): Promise<boolean> {
  const r = await retryingDeadlock(() =>
    db.transaction().execute(async (trx) => {
      // The row before its deliveries, as a disable (its park) and the delete's cascade take them.
      await sql`select 1 from switchyard.subscriptions where id = ${id} for update`.execute(trx);
      await sql`select 1 from switchyard.deliveries where subscription_id = ${id} and status = 'in_flight'
          order by id for update`.execute(trx);
      return sql`delete from switchyard.subscriptions where id = ${id}`.execute(trx);
    }),
  );
  return Number(r.numAffectedRows ?? 0) > 0;
}

/** Tries at most of {@link retryingDeadlock}: the other side of a deadlock has finished by the second. */
const DEADLOCK_ATTEMPTS = 3;
/** The pause before a second try of {@link retryingDeadlock}, ms (doubled before a third). */
const DEADLOCK_BACKOFF_MS = 100;

/**
 * Runs `write` (an autocommit statement, or a whole transaction) again when Postgres aborted it to
 * break a deadlock (40P01). A delete or a disable of a subscription locks its row and then its
 * deliveries (the cascade, the park). A delivery's dead attempt locked its delivery and then the
 * subscription's row (its dead count, the automatic disable): the two at once deadlocked, and
 * Postgres aborted one after `deadlock_timeout` (1 s); aborted, the delete or disable was a 500 to
 * its caller (fresh-clone CI: `DELETE` of a subscription while its deliveries died). The attempt
 * now locks the row first (pipeline/deliver.ts, pipeline/dead-attempt-lock.int.test.ts); this
 * stays for a lock order not found yet: a 500 for what a second try gets through is worse.
 *
 * @example
 * ```ts
 * await retryingDeadlock(() => db.transaction().execute((trx) => disableSubscription(trx, id, why)));
 * ```
 */
export async function retryingDeadlock<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (attempt >= DEADLOCK_ATTEMPTS || (error as { code?: unknown }).code !== '40P01') throw error;
      // The other side, unblocked by the abort, takes the lock it waited for first: run again at
      // once, this one could take the subscription's row before it and deadlock again.
      await new Promise((resolve) => setTimeout(resolve, DEADLOCK_BACKOFF_MS * attempt));
    }
  }
}

/**
 * Disables a subscription (kept as it was if already disabled) and parks its pending deliveries
 * (`parkDeliveries` in deliveries/store.ts says why). Two statements: run it in a transaction.
 */
export async function disableSubscription(
  db: Executor,
  id: string,
  reason: string,
): Promise<SubscriptionRow | undefined> {
  const row = await first<SubscriptionRow>(
    sql`update switchyard.subscriptions set disabled_at = coalesce(disabled_at, now()),
          disabled_reason = case when disabled_at is null then ${reason} else disabled_reason end,
          disabled_at_sequence = case when disabled_at is null
            then (select coalesce(max(sequence), 0) from switchyard.events) else disabled_at_sequence end,
          updated_at = now()
        where id = ${id} returning *`,
    db,
  );
  if (row) await parkDeliveries(db, id);
  return row;
}

/**
 * Enables a subscription and makes its parked deliveries due now; with `onlyIfReason`, only one
 * disabled for that reason (`undefined` otherwise). Two statements: run it in a transaction.
 */
export async function enableSubscription(
  db: Executor,
  id: string,
  onlyIfReason?: string,
): Promise<SubscriptionRow | undefined> {
  const row = await first<SubscriptionRow>(
    sql`update switchyard.subscriptions set disabled_at = null, disabled_reason = null, disabled_at_sequence = null,
          consecutive_dead = 0, updated_at = now()
        where id = ${id} and (${onlyIfReason ?? null}::text is null or disabled_reason = ${onlyIfReason ?? null})
        returning *`,
    db,
  );
  if (row) await unparkDeliveries(db, id);
  return row;
}

export async function setSubscriptionSecrets(
  db: Executor,
  id: string,
  secrets: StoredSecret[],
): Promise<SubscriptionRow | undefined> {
  return first<SubscriptionRow>(
    sql`update switchyard.subscriptions set secrets = ${json(secrets)}, updated_at = now() where id = ${id} returning *`,
    db,
  );
}

export async function resetConsecutiveDead(db: Executor, id: string): Promise<void> {
  await sql`update switchyard.subscriptions set consecutive_dead = 0 where id = ${id} and consecutive_dead <> 0`.execute(
    db,
  );
}

export async function bumpConsecutiveDead(db: Executor, id: string): Promise<number> {
  const r = await first<{ consecutive_dead: number }>(
    sql`update switchyard.subscriptions set consecutive_dead = consecutive_dead + 1 where id = ${id} returning consecutive_dead`,
    db,
  );
  return r?.consecutive_dead ?? 0;
}
