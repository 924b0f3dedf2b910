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
 * A normalized event → the push the vendor would have sent. Starts from `data.vendor` when the event
 * came from this connector, so nothing is lost. The simulator adds the API key header.
 *
 * @example
 * ```ts
 * encode(appointmentCreated, config); // { route: 'default', body: { id: '…', type: 'booking.created', booking: {…} } }
 * ```
 */
export function encode(event: EventEnvelope, _config: Config): EncodedNotification {
  if (event.type !== 'appointment.created') {
    throw ConnectorError.permanent(`the vendor has no notification for ${event.type}`);
  }
  const data = (isJsonObject(event.data) ? event.data : {}) as JsonObject;
  const body: JsonObject = isJsonObject(data.vendor) ? structuredClone(data.vendor) : {};
  const ids = Array.isArray(data.vendorIds) ? data.vendorIds.filter(isJsonObject) : [];
  const ours = ids.find((v) => v.system === CONNECTOR_NAME && v.current !== false);
  const bookingId = typeof ours?.value === 'string' ? ours.value : undefined;
  if (bookingId === undefined) throw ConnectorError.permanent('the event has no vendor booking id');
  const booking: JsonObject = isJsonObject(body.booking) ? body.booking : {};
  booking.id = bookingId;
  if (typeof data.start === 'string') booking.start = data.start;
  if (typeof data.end === 'string') booking.end = data.end;
  body.id = typeof body.id === 'string' ? body.id : `evt_${event.id}`;
  body.type = 'booking.created';
  body.occurred_at = event.time;
  body.booking = booking;
  return { route: 'default', headers: { 'content-type': 'application/json' }, body };
}
