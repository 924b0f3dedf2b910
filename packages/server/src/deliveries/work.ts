/**
 * A leased delivery with what attempting it needs (its subscription and its event), as the two
 * statements that lease deliveries return it: the delivery claim (`claimDeliveryWork` in
 * deliveries/store.ts) and the normalize commit when it leases what it fans out
 * (`commitNormalized` in events/store.ts). One definition of the SQL that packs the subscription
 * and the event, and of the mapping back, so the deliver worker gets the same rows either way.
 * Its own module because both stores use it (events/store.ts cannot import deliveries/store.ts,
 * which imports it).
 */
import { type RawBuilder, sql } from 'kysely';
import type { EventRow } from '../events/store.ts';
import type { SubscriptionRow } from '../storage/subscription-row.ts';
import type { DeliveryRow } from './store.ts';

/** A leased delivery with its subscription and its event (if still stored). */
export interface DeliveryWork {
  delivery: DeliveryRow;
  subscription: SubscriptionRow;
  event: EventRow | undefined;
}

/**
 * SQL: the event of the row aliased `alias` as jsonb (null when the left join found none), the
 * fields the deliver worker reads. `alias` is a constant of the calling statement.
 *
 * @example
 * ```ts
 * sql`select ${eventJson('e')} as ev from switchyard.events e`;
 * ```
 */
export function eventJson(alias: string): RawBuilder<unknown> {
  const e = sql.raw(alias);
  return sql`case when ${e}.id is null then null
    else jsonb_build_object('sequence', ${e}.sequence::text, 'id', ${e}.id, 'type', ${e}.type, 'source', ${e}.source,
      'subject', ${e}.subject, 'envelope', ${e}.envelope, 'inbound_message_id', ${e}.inbound_message_id,
      'traceparent', ${e}.traceparent, 'fhir', ${e}.fhir) end`;
}

/** A subscription row read back from `to_jsonb(s.*)`: its dates and bigints as `SubscriptionRow` has them. */
function subscriptionOfJson(sub: SubscriptionRow): SubscriptionRow {
  return {
    ...sub,
    disabled_at: sub.disabled_at === null ? null : new Date(sub.disabled_at),
    created_at: new Date(sub.created_at),
    updated_at: new Date(sub.updated_at),
    disabled_at_sequence: sub.disabled_at_sequence === null ? null : String(sub.disabled_at_sequence),
    notification_events: String(sub.notification_events),
  };
}

/** A delivery row read back from `to_jsonb(d.*)`: its dates and bigints as `DeliveryRow` has them. */
function deliveryOfJson(d: DeliveryRow): DeliveryRow {
  const date = (v: Date | null) => (v === null ? null : new Date(v));
  return {
    ...d,
    seq: String(d.seq),
    event_sequence: String(d.event_sequence),
    notification_number: d.notification_number === null ? null : String(d.notification_number),
    next_attempt_at: new Date(d.next_attempt_at),
    locked_until: date(d.locked_until),
    created_at: new Date(d.created_at),
    updated_at: new Date(d.updated_at),
    completed_at: date(d.completed_at),
  };
}

/**
 * Maps a leased row back: `sub` from `to_jsonb(s.*)`, `ev` from {@link eventJson}, the delivery
 * either as columns or (`json`) from `to_jsonb(d.*)`.
 */
export function deliveryWorkOf(
  delivery: DeliveryRow,
  sub: SubscriptionRow,
  ev: EventRow | null,
  json = false,
): DeliveryWork {
  return {
    delivery: json ? deliveryOfJson(delivery) : delivery,
    subscription: subscriptionOfJson(sub),
    event: ev === null ? undefined : ev,
  };
}
