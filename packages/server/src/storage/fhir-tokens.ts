/**
 * The FHIR read tokens: one per subscription, only the SHA-256 of the token stored (the token is
 * shown once when created; docs/fhir.md#auth). Table `switchyard.fhir_read_tokens`, migration 16.
 */
import { sql } from 'kysely';
import type { Executor } from './db.ts';
import { isSubscriptionGone } from './subscription-gone.ts';

/** The subscription a read token belongs to, with its filters. */
export interface ReadTokenOwnerRow {
  subscriptionId: string;
  eventTypes: string[];
  sources: string[] | null;
}

/**
 * The owner of a token hash, or undefined; undefined too while its subscription is disabled (a
 * credential acts only while its subscription is enabled, as command credentials do).
 *
 * @example
 * ```ts
 * const owner = await findReadToken(db, sha256(token)); // { subscriptionId: 'ehr', eventTypes: ['*'], sources: null }
 * ```
 */
export async function findReadToken(db: Executor, tokenHash: string): Promise<ReadTokenOwnerRow | undefined> {
  const r = await sql<{ subscription_id: string; event_types: string[]; sources: string[] | null }>`
    select t.subscription_id, s.event_types, s.sources
    from switchyard.fhir_read_tokens t join switchyard.subscriptions s on s.id = t.subscription_id
    where t.token_hash = ${tokenHash} and s.disabled_at is null`.execute(db);
  const row = r.rows[0];
  return row
    ? { subscriptionId: row.subscription_id, eventTypes: row.event_types, sources: row.sources }
    : undefined;
}

/**
 * Stores a subscription's token hash, replacing the previous one; false when the subscription does
 * not exist, also when it was deleted while the statement ran (its snapshot held the subscription,
 * the token's foreign key refused it: {@link isSubscriptionGone}), which was a 500.
 */
export async function setReadToken(
  db: Executor,
  subscriptionId: string,
  tokenHash: string,
  hint: string,
): Promise<boolean> {
  try {
    const r = await sql`
      insert into switchyard.fhir_read_tokens (subscription_id, token_hash, hint)
      select id, ${tokenHash}, ${hint} from switchyard.subscriptions where id = ${subscriptionId}
      on conflict (subscription_id) do update set token_hash = excluded.token_hash, hint = excluded.hint,
        created_at = now()`.execute(db);
    return Number(r.numAffectedRows ?? 0) > 0;
  } catch (error) {
    if (isSubscriptionGone(error)) return false;
    throw error;
  }
}

/** Deletes a subscription's token; false when it had none. */
export async function deleteReadToken(db: Executor, subscriptionId: string): Promise<boolean> {
  const r =
    await sql`delete from switchyard.fhir_read_tokens where subscription_id = ${subscriptionId}`.execute(db);
  return Number(r.numAffectedRows ?? 0) > 0;
}
