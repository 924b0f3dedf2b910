import {
  type GateDecision,
  type InboundResponse,
  isJsonObject,
  type JsonObject,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { instantOf, requestMatchKey } from './parse.ts';
import type { DpData } from './vendor.ts';

/**
 * The status of a refusal. Docplanner treats any non-2xx as "no"; a 4xx is what carries the
 * `{"error_code": N}` body it shows the patient, and 409 says what happened: the partner's calendar
 * conflicts with the booking.
 */
export const REFUSAL_STATUS = 409;

/**
 * The hub's decision as Docplanner's expected answer: any 2xx approves (200 `{}`), a 4xx refuses.
 * With a `vendorErrorCode` the body is `{"error_code": N}` (a code from the dictionary Docplanner
 * hands out, shown to the patient as a specific message).
 *
 * @example
 * ```ts
 * respond({ outcome: 'refuse', reason: 'slot taken', vendorErrorCode: 3 }, config);
 * // { status: 409, headers: { 'content-type': 'application/json' }, body: { error_code: 3 } }
 * ```
 */
export function respond(decision: GateDecision, _config: Config): InboundResponse {
  if (decision.outcome === 'approve') {
    return { status: 200, headers: { 'content-type': 'application/json' }, body: {} };
  }
  const body: JsonObject =
    decision.vendorErrorCode !== undefined
      ? { error_code: decision.vendorErrorCode }
      : { error: 'refused', message: 'The partner system refused this change.' };
  return { status: REFUSAL_STATUS, headers: { 'content-type': 'application/json' }, body };
}

/**
 * The key a gate request shares with the booking notification that follows it.
 *
 * `slot-booking` ↔ `slot-booked` / `slot-overbooked`: doctor, address, start instant (offsets
 * normalized away) and patient (phone digits, else the accent-folded name): the request has no
 * booking id yet.
 *
 * `booking-moving` ↔ `booking-moved`: the booking being moved (`canceling_booking.id`, which the
 * move reports as `old_visit_booking.id`) and the new start instant (`creating_booking.start_at` =
 * `new_visit_booking.start_at`, so a refused attempt to another time is not linked). No patient:
 * Docplanner's own examples of both carry none.
 *
 * @example
 * ```ts
 * matchKey(slotBookingNotification) === matchKey(slotBookedNotification); // true for the same visit
 * matchKey(bookingMovingNotification); // 'docplanner:move:210045781:2026-03-12T14:00:00.000Z'
 * ```
 */
export function matchKey(notification: VendorNotification): string | undefined {
  const payload = notification.payload;
  if (!isJsonObject(payload) || !isJsonObject(payload.data)) return undefined;
  const data = payload.data as unknown as DpData;
  switch (notification.type) {
    case 'slot-booking':
      return requestMatchKey(data, data.visit_booking_request);
    case 'slot-booked':
    case 'slot-overbooked':
      return requestMatchKey(data, data.visit_booking);
    case 'booking-moving':
      return moveKey(data.canceling_booking?.id, data.creating_booking?.start_at);
    case 'booking-moved':
      return moveKey(data.old_visit_booking?.id, data.new_visit_booking?.start_at);
    default:
      return undefined;
  }
}

function moveKey(bookingId: unknown, startAt: unknown): string | undefined {
  const id = typeof bookingId === 'number' ? String(bookingId) : bookingId;
  const start = instantOf(startAt);
  if (typeof id !== 'string' || id.trim() === '' || start === undefined) return undefined;
  return `docplanner:move:${id.trim()}:${start}`;
}
