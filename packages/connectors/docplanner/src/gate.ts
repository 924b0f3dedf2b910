import {
  type GateDecision,
  type InboundResponse,
  isJsonObject,
  type JsonObject,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { requestMatchKey } from './parse.ts';
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
 * The key a gate request shares with the booking notification that follows it: doctor, address,
 * start instant (offsets normalized away) and patient (phone digits, else the accent-folded name).
 * `slot-booking` ↔ `slot-booked` / `slot-overbooked`; `booking-moving` (its creating_booking) ↔
 * `booking-moved` (its new_visit_booking).
 *
 * @example
 * ```ts
 * matchKey(slotBookingNotification) === matchKey(slotBookedNotification); // true for the same visit
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
      return requestMatchKey(data, data.creating_booking, data.canceling_booking?.patient);
    case 'booking-moved':
      return requestMatchKey(data, data.new_visit_booking, data.old_visit_booking?.patient);
    default:
      return undefined;
  }
}
