import {
  ConnectorError,
  type EncodedNotification,
  type EventEnvelope,
  isJsonObject,
  type JsonObject,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { CONNECTOR_NAME } from './normalize.ts';

/** Normalized status → the Square booking status that produces it. */
const VENDOR_STATUS: Record<string, string> = {
  pending: 'PENDING',
  booked: 'ACCEPTED',
  cancelled: 'CANCELLED_BY_SELLER',
  noshow: 'NO_SHOW',
};

/**
 * A normalized event → the notification Square would have sent. Starts from `data.vendor` when the
 * event came from this connector (so the booking's version and fields are kept), else builds one;
 * `appointment.created` is a `booking.created`, every other type a `booking.updated`.
 *
 * @example
 * ```ts
 * encode(appointmentCreated, config); // { route: 'default', body: { event_id: '…', type: 'booking.created', data: {…} } }
 * ```
 */
export function encode(event: EventEnvelope, _config: Config): EncodedNotification {
  if (!event.type.startsWith('appointment.')) {
    throw ConnectorError.permanent(`Square has no notification for ${event.type}`);
  }
  const data = (isJsonObject(event.data) ? event.data : {}) as JsonObject;
  const body: JsonObject = isJsonObject(data.vendor) ? structuredClone(data.vendor) : {};
  const ids = Array.isArray(data.vendorIds) ? data.vendorIds.filter(isJsonObject) : [];
  const ours = ids.find((v) => v.system === CONNECTOR_NAME && v.current !== false);
  const bookingId = typeof ours?.value === 'string' ? ours.value : undefined;
  if (bookingId === undefined) throw ConnectorError.permanent('the event has no Square booking id');
  const envelope: JsonObject = isJsonObject(body.data) ? body.data : {};
  const object: JsonObject = isJsonObject(envelope.object) ? envelope.object : {};
  const booking: JsonObject = isJsonObject(object.booking) ? object.booking : {};
  booking.id = bookingId;
  if (typeof data.start === 'string') booking.start_at = data.start;
  const status = typeof data.status === 'string' ? VENDOR_STATUS[data.status] : undefined;
  const vendorValue = isJsonObject(data.cancelledBy) ? data.cancelledBy.vendorValue : undefined;
  if (typeof vendorValue === 'string') booking.status = vendorValue;
  else if (status !== undefined) booking.status = status;
  if (typeof booking.version !== 'number') booking.version = event.type === 'appointment.created' ? 0 : 1;
  object.booking = booking;
  envelope.type = 'booking';
  envelope.id = `${bookingId}:${booking.version}`;
  envelope.object = object;
  body.event_id = typeof body.event_id === 'string' ? body.event_id : `evt_${event.id}`;
  body.type = event.type === 'appointment.created' ? 'booking.created' : 'booking.updated';
  body.created_at = event.time;
  body.data = envelope;
  return { route: 'default', headers: { 'content-type': 'application/json' }, body };
}
