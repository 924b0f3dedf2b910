import {
  ConnectorError,
  type InboundRequest,
  type PushRoute,
  parseJsonObjectBody,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';

/** The vendor calls one URL: the instance URL. */
export const routes: readonly PushRoute[] = [{ name: 'default', path: '' }];

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/**
 * One request → one notification. The vendor's event `id` is the dedupe key; the booking id orders
 * the events of one booking. Unknown types are kept (normalize stores them as ignored).
 *
 * @example
 * ```ts
 * parse(inboundRequest({ body: { id: 'evt_1', type: 'booking.created', booking: { id: 'b_1' } } }), config);
 * // [{ type: 'booking.created', dedupeKey: 'evt_1', orderingKey: 'b_1', payload: {…} }]
 * ```
 */
export function parse(request: InboundRequest, _config: Config): VendorNotification[] {
  const body = parseJsonObjectBody(request);
  const id = text(body.id);
  const type = text(body.type);
  if (id === undefined) throw ConnectorError.badRequest('the notification has no id');
  if (type === undefined) throw ConnectorError.badRequest('the notification has no type');
  const notification: VendorNotification = { type, dedupeKey: id, payload: body };
  const booking = body.booking;
  if (typeof booking === 'object' && booking !== null && !Array.isArray(booking)) {
    const bookingId = text(booking.id);
    if (bookingId !== undefined) notification.orderingKey = bookingId;
  }
  const occurredAt = text(body.occurred_at);
  if (occurredAt !== undefined && !Number.isNaN(Date.parse(occurredAt))) notification.occurredAt = occurredAt;
  return [notification];
}
