/**
 * Events the hub makes itself (not normalized from a vendor notification), e.g. the outcome of a
 * command: stored in `events` and fanned out exactly like normalized events, in the caller's
 * transaction, so an outcome is announced if and only if the state change that caused it commits.
 * An event about an entity moves that entity's current state too (entities/current.ts).
 */
import { type EventEnvelope, SwitchyardError, validateEvent } from '@switchyard/core';
import { sql } from 'kysely';
import { projectStoredEvents } from '../entities/current.ts';
import { hasFhirMeaning } from '../fhir/subscription.ts';
import { type Executor, jsonBatch } from '../storage/db.ts';
import { retryingSubscriptionGone } from '../storage/subscription-gone.ts';
import { fanOutStoredEvents, lockSubjects } from './store.ts';

/**
 * Validates, stores and fans out hub-made events in one statement; an event id already stored is
 * skipped (a repeated call is a no-op). The fan-out matches subscriptions as for normalized events
 * (`commitNormalized` in events/store.ts): type patterns (exact, `entity.*`, `*`), optional
 * source list, active webhook subscriptions only, FHIR subscriptions only for events with a FHIR
 * meaning, `held` behind a dead delivery under `hold`. A subscription deleted while the statement
 * runs costs a retry of the statement, not the caller's transaction (`retryingSubscriptionGone`).
 * Returns how many deliveries were created (the deliver workers are woken by NOTIFY at commit, and
 * the feed's long-polls of the pull subscriptions the events match, `CHANNEL_FEED`).
 *
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await markDone(trx, id);
 *   await storeHubEvents(trx, [envelope]);
 * });
 * ```
 */
export async function storeHubEvents(db: Executor, events: readonly EventEnvelope[]): Promise<number> {
  if (events.length === 0) return 0;
  for (const e of events) {
    const check = validateEvent(e);
    if (!check.valid) {
      throw new SwitchyardError(
        'SY_EVENT_INVALID',
        `hub event ${e.type} is invalid: ${check.errors.map((x) => `${x.path} ${x.message}`).join('; ')}`,
        { details: { errors: check.errors } },
      );
    }
  }
  // Run again when a subscription it fans out to is deleted meanwhile (behind a savepoint in the
  // caller's transaction): that refusal failed the caller's transaction, a command's outcome with it,
  // and the command stayed running until its lease ran out, then was sent to the vendor again.
  const r = await retryingSubscriptionGone(db, () =>
    sql<{ fanned: string }>`
    with input as (
      select * from unnest(${events.map((e) => e.id)}::uuid[], ${events.map((e) => e.type)}::text[],
        ${events.map((e) => e.source)}::text[], ${events.map((e) => e.subject)}::text[],
        ${events.map((e) => e.time)}::timestamptz[], ${jsonBatch(events.map((e) => JSON.stringify(e)))},
        ${events.map((e) => hasFhirMeaning(e))}::boolean[])
        with ordinality as t(id, type, source, subject, time, envelope, fhir, ord)),
    ${lockSubjects()},
    stored as (
      insert into switchyard.events (id, type, source, subject, time, envelope, fhir)
      select id, type, source, subject, time, envelope, fhir from input
      where (select n from subjects_locked) is not null
        and not exists (select 1 from switchyard.events x where x.id = input.id)
      order by ord
      on conflict (id) do nothing
      returning id, type, source, subject, sequence, time, envelope, fhir),
    ${projectStoredEvents()},
    ${fanOutStoredEvents()}
    select (select count(*) from fanned) as fanned, (select count(*) from woken) as woken,
      (select count(*) from feed_woken) as feed_woken`.execute(db),
  );
  return Number(r.rows[0]?.fanned ?? 0);
}
