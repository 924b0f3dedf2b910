/**
 * A subscription deleted while a statement writes rows that reference it (deliveries, feed
 * cursors, feed gaps, FHIR read tokens, command credentials: every `*_subscription_id_fkey` of
 * storage/migrations.ts). A subscription can be deleted at any moment (the API, the configuration
 * file, a test's cleanup), and the foreign key is what stops such a writer from leaving orphans;
 * here is the one rule for telling that refusal apart and for running such a writer again. Below
 * every concept folder: the events, deliveries, subscriptions and commands stores, the normalize
 * commit and the API faces all meet it.
 */
import { sql } from 'kysely';
import pg from 'pg';
import type { Executor } from './db.ts';

/**
 * Whether a statement failed only because a subscription it wrote rows for was deleted while it
 * ran: either its snapshot still held the subscription (a fan-out, a purge noting feed gaps, an
 * insert that selects the subscription) or the caller looked the subscription up in an earlier
 * statement, and the delete committed before the new rows were checked against it: Postgres
 * refused them (23503, foreign key violation on `*_subscription_id_fkey`). Nothing of the
 * statement is stored. A writer that picks its subscriptions from `subscriptions` in the statement
 * runs it again ({@link retryingSubscriptionGone}: its next snapshot no longer holds the
 * subscription); one given a subscription by its caller answers "no such subscription", as a
 * lookup a moment later would have.
 *
 * @example
 * ```ts
 * try { await setFeedCursor(db, id, cursor); }
 * catch (error) { if (isSubscriptionGone(error)) throw notFound('subscription', id); throw error; }
 * ```
 */
export function isSubscriptionGone(error: unknown): boolean {
  return (
    error instanceof pg.DatabaseError &&
    error.code === '23503' &&
    (error.constraint ?? '').endsWith('_subscription_id_fkey')
  );
}

/**
 * Attempts at most of a writer run again by {@link retryingSubscriptionGone} (one delete costs one
 * more; several deletes committed during one statement are rare). Bounded: a writer that keeps
 * meeting deleted subscriptions fails as before.
 */
const SUBSCRIPTION_GONE_ATTEMPTS = 5;

/**
 * Runs `write` (one statement that reads `subscriptions` and writes rows referencing them) and runs
 * it again while it fails only on a subscription deleted meanwhile ({@link isSubscriptionGone}), up
 * to {@link SUBSCRIPTION_GONE_ATTEMPTS}; `onRetry` hears each retry. Inside a transaction (`db` is
 * one) each attempt runs behind a savepoint: a failed statement aborts its transaction, and the
 * retry needs it usable (in READ COMMITTED, the retry's snapshot is taken anew). Autocommit needs
 * none: the statement was its own transaction. Any other failure is thrown as it came, the
 * transaction left as the failure left it.
 *
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await markDone(trx, id);
 *   await retryingSubscriptionGone(trx, () => storeEventsStatement(trx, events));
 * });
 * ```
 */
export async function retryingSubscriptionGone<T>(
  db: Executor,
  write: () => Promise<T>,
  onRetry?: (attempt: number) => void,
): Promise<T> {
  const behindSavepoint = db.isTransaction;
  for (let attempt = 1; ; attempt++) {
    if (behindSavepoint) await sql`savepoint subscription_gone`.execute(db);
    try {
      const r = await write();
      if (behindSavepoint) await sql`release savepoint subscription_gone`.execute(db);
      return r;
    } catch (error) {
      if (attempt >= SUBSCRIPTION_GONE_ATTEMPTS || !isSubscriptionGone(error)) throw error;
      // A rollback that fails (the connection went) must not hide why the statement failed.
      if (behindSavepoint)
        await sql`rollback to savepoint subscription_gone`.execute(db).catch(() => {
          throw error;
        });
      onRetry?.(attempt);
    }
  }
}
