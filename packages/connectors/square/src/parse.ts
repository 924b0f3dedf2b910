import {
  ConnectorError,
  type InboundRequest,
  isJsonObject,
  type JsonObject,
  type PushRoute,
  parseJsonObjectBody,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';

/** Square calls one URL: the instance URL (the notification URL of the webhook subscription). */
export const routes: readonly PushRoute[] = [{ name: 'default', path: '' }];

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/** The booking id of a Square event: `data.object.booking.id`, else `data.id` without its `:version`. */
export function bookingIdOf(body: JsonObject): string | undefined {
  const data = isJsonObject(body.data) ? body.data : {};
  const object = isJsonObject(data.object) ? data.object : {};
  const booking = isJsonObject(object.booking) ? object.booking : {};
  return text(booking.id) ?? text(data.id)?.split(':')[0];
}

/**
 * One request → one notification. Square's `event_id` is the dedupe key (its retries repeat it);
 * the booking id orders a booking's notifications; `created_at` is when it happened. Unknown types
 * are kept (normalize stores them as ignored).
 *
 * @example
 * ```ts
 * parse(inboundRequest({ body: { event_id: 'e1', type: 'booking.created', data: { object: { booking: { id: 'b1' } } } } }), config);
 * // [{ type: 'booking.created', dedupeKey: 'e1', orderingKey: 'b1', payload: {…} }]
 * ```
 */
export function parse(request: InboundRequest, _config: Config): VendorNotification[] {
  const body = parseJsonObjectBody(request);
  const eventId = text(body.event_id);
  const type = text(body.type);
  if (eventId === undefined) throw ConnectorError.badRequest('the notification has no event_id');
  if (type === undefined) throw ConnectorError.badRequest('the notification has no type');
  const notification: VendorNotification = { type, dedupeKey: eventId, payload: body };
  const bookingId = bookingIdOf(body);
  if (bookingId !== undefined) notification.orderingKey = bookingId;
  const occurredAt = text(body.created_at);
  if (occurredAt !== undefined && !Number.isNaN(Date.parse(occurredAt))) notification.occurredAt = occurredAt;
  return [notification];
}
