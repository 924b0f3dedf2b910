import {
  ConnectorError,
  type EncodedNotification,
  type EventEnvelope,
  isJsonObject,
  type JsonObject,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { CONNECTOR_NAME } from './normalize.ts';

/**
 * The BookingBug push that would produce `event`: the purchase (from the event's `vendor` record
 * when present, else built from the normalized data) with this booking's current times, sent to the
 * cancellation URL for a cancellation and to the booking URL otherwise. A JRNI-shaped event (its
 * vendor type is a trigger name) keeps `triggerName`/`triggerTime`.
 *
 * @example
 * ```ts
 * encode(cancelledEvent, config); // { route: 'cancellation', body: { id: 11610441, _embedded: { bookings: [...] }, ... } }
 * ```
 */
export function encode(event: EventEnvelope, _config: Config): EncodedNotification {
  const data = (isJsonObject(event.data) ? event.data : {}) as JsonObject;
  const vendor = isJsonObject(data.vendor) ? data.vendor : {};
  const bookingId = currentBookingId(data);
  const cancelled = event.type === 'appointment.cancelled';
  if (
    ![
      'appointment.created',
      'appointment.rescheduled',
      'appointment.updated',
      'appointment.cancelled',
    ].includes(event.type)
  ) {
    throw ConnectorError.permanent(`BookingBug has no push that produces ${event.type}`);
  }
  const booking: JsonObject = {
    ...(isJsonObject(vendor.booking) ? vendor.booking : {}),
    id: /^\d+$/.test(bookingId) ? Number(bookingId) : bookingId,
  };
  if (typeof data.start === 'string') booking.datetime = data.start;
  if (typeof data.end === 'string') booking.end_datetime = data.end;
  if (typeof data.durationMinutes === 'number') booking.duration = data.durationMinutes;
  if (cancelled) booking.is_cancelled = true;
  else if (booking.is_cancelled !== undefined) booking.is_cancelled = false;
  if (!isJsonObject(vendor.booking)) Object.assign(booking, bookingFields(data));

  const purchase: JsonObject = isJsonObject(vendor.purchase)
    ? { ...vendor.purchase }
    : { id: booking.id as number };
  const embedded = isJsonObject(purchase._embedded) ? purchase._embedded : {};
  purchase._embedded = { ...embedded, bookings: [booking] };
  if (typeof purchase.triggerName === 'string') {
    purchase.triggerName = cancelled
      ? 'cancelled'
      : event.type === 'appointment.created'
        ? 'create'
        : 'modify';
    purchase.triggerTime = event.time;
  }
  return { route: cancelled ? 'cancellation' : 'default', body: purchase };
}

function currentBookingId(data: JsonObject): string {
  const ids = Array.isArray(data.vendorIds) ? data.vendorIds : [];
  const mine = ids.filter(
    (v): v is { system: string; value: string; current?: boolean } =>
      isJsonObject(v) && v.system === CONNECTOR_NAME && typeof v.value === 'string',
  );
  const id = (mine.find((v) => v.current !== false) ?? mine[0])?.value;
  if (id === undefined)
    throw ConnectorError.permanent('the event carries no BookingBug booking id in vendorIds');
  return id;
}

/** Booking fields rebuilt from normalized data, for events that carry no vendor record. */
function bookingFields(data: JsonObject): JsonObject {
  const out: JsonObject = {};
  const service = isJsonObject(data.service) ? data.service : undefined;
  if (service !== undefined) {
    out.service_id = Number(service.id);
    if (typeof service.name === 'string') out.service_name = service.name;
    if (isJsonObject(service.price)) out.price = service.price.amount as number;
  }
  const practitioner = isJsonObject(data.practitioner) ? data.practitioner : undefined;
  if (typeof practitioner?.name === 'string') out.person_name = practitioner.name;
  const organization = isJsonObject(data.organization) ? data.organization : undefined;
  if (organization !== undefined) out.company_id = Number(organization.id);
  if (typeof data.timeZone === 'string') out.time_zone = data.timeZone;
  const patient = isJsonObject(data.patient) ? data.patient : undefined;
  if (typeof patient?.given === 'string') out.first_name = patient.given;
  if (typeof patient?.family === 'string') out.last_name = patient.family;
  if (typeof patient?.email === 'string') out.email = patient.email;
  return out;
}
