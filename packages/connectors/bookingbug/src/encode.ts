import {
  ConnectorError,
  type EncodedNotification,
  type EventEnvelope,
  isJsonObject,
  type JsonObject,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { CONNECTOR_NAME } from './normalize.ts';

/** The types a BookingBug / JRNI push can produce. */
const ENCODABLE = new Set([
  'appointment.created',
  'appointment.confirmed',
  'appointment.rescheduled',
  'appointment.updated',
  'appointment.cancelled',
  'appointment.restored',
  'appointment.arrived',
  'appointment.in_progress',
  'appointment.completed',
  'appointment.no_show',
  'appointment.status_reverted',
]);

/** The check-in status (admin API spelling, JRNI webhook spelling) an appointment state stands for. */
function checkInOf(data: JsonObject): { api: string; label: string } {
  if (data.status === 'noshow') return { api: 'no_show', label: 'No show' };
  switch (data.workflowStep) {
    case 'arrived':
      return { api: 'checked_in', label: 'Checked in' };
    case 'in_progress':
      return { api: 'being_seen', label: 'Being seen' };
    case 'completed':
      return { api: 'completed', label: 'Completed' };
    default:
      return { api: '', label: '' };
  }
}

/** Event types that change the check-in status: the push must say the new one. */
const CHECK_IN_TYPES = new Set([
  'appointment.arrived',
  'appointment.in_progress',
  'appointment.completed',
  'appointment.no_show',
  'appointment.status_reverted',
]);

/**
 * The push that would produce `event`. An event whose vendor record is a JRNI webhook becomes a
 * JRNI webhook (times, check-in status and `triggerName` / `triggerTime` from the event) on the
 * instance URL. Otherwise it becomes a legacy purchase (from the event's `vendor` record when
 * present, else built from the normalized data) with this booking's current times, sent to the
 * cancellation URL for a cancellation and to the booking URL otherwise.
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
  if (!ENCODABLE.has(event.type)) {
    throw ConnectorError.permanent(`BookingBug has no push that produces ${event.type}`);
  }
  if (isJsonObject(vendor.webhook)) return { route: 'default', body: jrniBody(event, data, vendor.webhook) };
  const cancelled = event.type === 'appointment.cancelled';
  const booking: JsonObject = {
    ...(isJsonObject(vendor.booking) ? vendor.booking : {}),
    id: /^\d+$/.test(bookingId) ? Number(bookingId) : bookingId,
  };
  if (typeof data.start === 'string') booking.datetime = data.start;
  if (typeof data.end === 'string') booking.end_datetime = data.end;
  if (typeof data.durationMinutes === 'number') booking.duration = data.durationMinutes;
  if (cancelled) booking.is_cancelled = true;
  else if (booking.is_cancelled !== undefined || event.type === 'appointment.restored')
    booking.is_cancelled = false;
  if (CHECK_IN_TYPES.has(event.type) || booking.multi_status !== undefined) {
    booking.multi_status = checkInOf(data).api;
  }
  if (!isJsonObject(vendor.booking)) Object.assign(booking, bookingFields(data));

  const purchase: JsonObject = isJsonObject(vendor.purchase)
    ? { ...vendor.purchase }
    : { id: booking.id as number };
  const embedded = isJsonObject(purchase._embedded) ? purchase._embedded : {};
  purchase._embedded = { ...embedded, bookings: [booking] };
  return { route: cancelled ? 'cancellation' : 'default', body: purchase };
}

/** The JRNI webhook for `event`, starting from the one it came from. */
function jrniBody(event: EventEnvelope, data: JsonObject, webhook: JsonObject): JsonObject {
  const body: JsonObject = structuredClone(webhook);
  const appointment: JsonObject = isJsonObject(body.appointment) ? { ...body.appointment } : {};
  if (typeof data.start === 'string') {
    appointment.companyStartTime = data.start;
    appointment.customerStartTime = data.start;
  }
  if (typeof data.end === 'string') {
    appointment.companyEndTime = data.end;
    appointment.customerEndTime = data.end;
  }
  if (typeof data.durationMinutes === 'number') appointment.duration = data.durationMinutes;
  if (CHECK_IN_TYPES.has(event.type) || 'checkInStatus' in appointment) {
    appointment.checkInStatus = checkInOf(data).label;
  }
  if (event.type === 'appointment.restored' && /cancel/i.test(String(appointment.status ?? ''))) {
    appointment.status = 'Booking';
  }
  body.appointment = appointment;
  body.triggerName =
    event.type === 'appointment.created'
      ? 'create'
      : event.type === 'appointment.cancelled'
        ? 'cancelled'
        : event.type === 'appointment.confirmed'
          ? 'confirmed'
          : 'modify';
  body.triggerTime = event.time;
  return body;
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
  if (typeof practitioner?.id === 'string' && /^\d+$/.test(practitioner.id)) {
    // The legacy push names the practitioner's id only in its person link.
    out._links = { person: { href: `https://{host}.bookingbug.com/api/v1/people/${practitioner.id}` } };
  }
  const organization = isJsonObject(data.organization) ? data.organization : undefined;
  if (organization !== undefined) out.company_id = Number(organization.id);
  if (typeof data.timeZone === 'string') out.time_zone = data.timeZone;
  const patient = isJsonObject(data.patient) ? data.patient : undefined;
  if (typeof patient?.given === 'string') out.first_name = patient.given;
  if (typeof patient?.family === 'string') out.last_name = patient.family;
  if (typeof patient?.email === 'string') out.email = patient.email;
  return out;
}
